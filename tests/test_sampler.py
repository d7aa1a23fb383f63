"""The C++ sampler (csrc/sampler.h): each step of the chain, its order, edge values, errors, the RNG,
and sampled frequencies against the distribution."""

from __future__ import annotations

import numpy as np
import pytest

from pyrnn import _core

M64 = (1 << 64) - 1


def params(**kw: float) -> _core.SamplerParams:
    return _core.SamplerParams(**kw)


def softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    e = np.exp(x - x[np.isfinite(x)].max())
    return e / e.sum()


def reference_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                    min_p: float = 0.0) -> np.ndarray:
    """The chain of csrc/sampler.h written out in float64 (no penalties): top-k, top-p, min-p, temperature."""
    x = np.asarray(logits, np.float64)
    order = sorted(range(len(x)), key=lambda i: (-x[i], i))
    keep = [i for i in order if np.isfinite(x[i])]
    if 0 < top_k < len(keep):
        keep = keep[:top_k]
    if top_p < 1:
        p = softmax(x[keep])
        n = int(np.searchsorted(np.cumsum(p), top_p * p.sum() * (1 - 1e-12))) + 1
        keep = keep[:n]
    if min_p > 0:
        m = x[keep].max()
        keep = [i for i in keep if x[i] >= m + np.log(min_p)]
    out = np.zeros(len(x))
    out[keep] = softmax(x[keep] / temperature)
    return out


def splitmix_xoshiro(seed: int, n: int) -> list[int]:
    """xoshiro256** seeded by splitmix64, written from the published reference code."""
    def splitmix() -> int:
        nonlocal seed
        seed = (seed + 0x9E3779B97F4A7C15) & M64
        z = seed
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & M64

    s = [splitmix() for _ in range(4)]
    out = []
    for _ in range(n):
        out.append((rotl((s[1] * 5) & M64, 7) * 9) & M64)
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
    return out


@pytest.mark.parametrize("seed", [0, 1, 42, M64])
def test_rng_is_xoshiro256starstar(seed: int) -> None:
    """Rng is exactly xoshiro256** seeded by splitmix64, so a seed means the same stream on every platform."""
    r = _core.Rng(seed)
    assert [r.next_u64() for _ in range(20)] == splitmix_xoshiro(seed, 20)
    r2, ref = _core.Rng(seed), splitmix_xoshiro(seed, 5)
    assert [r2.uniform() for _ in range(5)] == [(x >> 11) * 2.0**-53 for x in ref]


def test_rng_seed_out_of_range() -> None:
    """Seeds outside 0..2^64-1 are refused by name."""
    for bad in (-1, 1 << 64):
        with pytest.raises(ValueError, match="seed"):
            _core.Rng(bad)


def test_same_seed_same_sequence() -> None:
    """The same seed draws the same ids; another seed draws other ids."""
    logits = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    p = params(temperature=1.0)

    def draws(seed: int) -> list[int]:
        r = _core.Rng(seed)
        return [_core.sample(logits, p, r) for _ in range(50)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_greedy_is_argmax_lowest_id_on_ties_and_uses_no_randomness() -> None:
    """Temperature 0 picks the largest logit, the lowest id among equal ones, and draws nothing from the RNG."""
    logits = np.array([0.5, 2.0, -1.0, 2.0, 1.0], np.float32)
    r = _core.Rng(3)
    assert _core.sample(logits, params(temperature=0), r) == 1
    assert r.next_u64() == _core.Rng(3).next_u64()
    np.testing.assert_array_equal(_core.sample_probs(logits, params(temperature=0)), [0, 1, 0, 0, 0])


def test_all_logits_equal() -> None:
    """Equal logits: a uniform distribution, greedy picks id 0, top-k keeps the lowest ids."""
    logits = np.full(8, 3.25, np.float32)
    np.testing.assert_allclose(_core.sample_probs(logits, params()), np.full(8, 1 / 8), rtol=1e-6)
    assert _core.sample(logits, params(temperature=0), _core.Rng(0)) == 0
    np.testing.assert_allclose(_core.sample_probs(logits, params(top_k=3)), [1 / 3] * 3 + [0] * 5, rtol=1e-6)


def test_no_filters_is_softmax() -> None:
    """Temperature 1, top-p 1, top-k 0, min-p 0: the plain softmax."""
    logits = np.random.default_rng(1).standard_normal(300).astype(np.float32) * 3
    np.testing.assert_allclose(_core.sample_probs(logits, params()), softmax(logits), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("temperature", [0.25, 0.7, 1.0, 1.5, 10.0])
def test_temperature_scales_logits(temperature: float) -> None:
    """Temperature T gives softmax(logits / T)."""
    logits = np.random.default_rng(2).standard_normal(100).astype(np.float32) * 2
    np.testing.assert_allclose(_core.sample_probs(logits, params(temperature=temperature)),
                               softmax(logits / temperature), rtol=1e-5, atol=1e-9)


def test_top_k_one_is_greedy_at_any_temperature() -> None:
    """top-k 1 always returns the argmax, whatever the seed and temperature."""
    logits = np.random.default_rng(3).standard_normal(50).astype(np.float32)
    for seed in range(20):
        assert _core.sample(logits, params(temperature=2.0, top_k=1), _core.Rng(seed)) == int(np.argmax(logits))


def test_top_k_larger_than_vocab_is_off() -> None:
    """A top-k of at least the vocabulary size removes nothing."""
    logits = np.random.default_rng(4).standard_normal(20).astype(np.float32)
    np.testing.assert_allclose(_core.sample_probs(logits, params(top_k=20)), softmax(logits), rtol=1e-5)
    np.testing.assert_allclose(_core.sample_probs(logits, params(top_k=1000)), softmax(logits), rtol=1e-5)


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    """top-p keeps the most probable tokens until their mass reaches p (at least one), renormalised."""
    probs = np.array([0.1, 0.4, 0.2, 0.3])
    logits = np.log(probs).astype(np.float32)
    np.testing.assert_allclose(_core.sample_probs(logits, params(top_p=0.65)), [0, 4 / 7, 0, 3 / 7], rtol=1e-5)
    np.testing.assert_allclose(_core.sample_probs(logits, params(top_p=0.75)), [0, 4 / 9, 2 / 9, 3 / 9], rtol=1e-5)
    np.testing.assert_allclose(_core.sample_probs(logits, params(top_p=1e-6)), [0, 1, 0, 0])
    np.testing.assert_allclose(_core.sample_probs(logits, params(top_p=1.0)), probs, rtol=1e-5)


def test_min_p_keeps_tokens_near_the_best() -> None:
    """min-p keeps tokens with probability >= min_p × the largest; 0 keeps all, 1 keeps the best."""
    probs = np.array([0.05, 0.5, 0.3, 0.15])
    logits = np.log(probs).astype(np.float32)
    np.testing.assert_allclose(_core.sample_probs(logits, params(min_p=0.0)), probs, rtol=1e-5)
    np.testing.assert_allclose(_core.sample_probs(logits, params(min_p=0.4)), [0, 0.5 / 0.8, 0.3 / 0.8, 0],
                               rtol=1e-5)
    np.testing.assert_allclose(_core.sample_probs(logits, params(min_p=1.0)), [0, 1, 0, 0])


def test_filters_see_temperature_one_probabilities() -> None:
    """Order: top-p and min-p choose tokens before temperature, so temperature does not change which survive."""
    logits = np.random.default_rng(5).standard_normal(200).astype(np.float32) * 2
    for t in (0.3, 3.0):
        kept1 = _core.sample_probs(logits, params(top_p=0.8, min_p=0.02)) > 0
        kept_t = _core.sample_probs(logits, params(temperature=t, top_p=0.8, min_p=0.02)) > 0
        np.testing.assert_array_equal(kept1, kept_t)


@pytest.mark.parametrize("opts", [
    {"top_k": 10}, {"top_p": 0.5}, {"min_p": 0.1}, {"temperature": 0.6, "top_k": 30, "top_p": 0.9, "min_p": 0.05},
    {"temperature": 1.7, "top_k": 5, "top_p": 0.99},
])
def test_chain_matches_float64_reference(opts: dict[str, float]) -> None:
    """The whole chain equals a float64 NumPy write-out of the documented order."""
    logits = np.random.default_rng(6).standard_normal(500).astype(np.float32) * 2.5
    np.testing.assert_allclose(_core.sample_probs(logits, params(**opts)), reference_probs(logits, **opts),
                               rtol=1e-5, atol=1e-8)


def test_repeat_penalty_divides_positive_multiplies_negative() -> None:
    """llama.cpp's rule: a repeated token's positive logit is divided by the penalty, others multiplied."""
    logits = np.array([2.0, -2.0, 0.0, 3.0], np.float32)
    out = _core.apply_penalties(logits, params(repeat_penalty=2.0), [0, 1, 2, 0])
    np.testing.assert_array_equal(out, [1.0, -4.0, 0.0, 3.0])  # counted once however often repeated


def test_presence_and_frequency_subtract() -> None:
    """presence subtracts once per token seen, frequency once per occurrence."""
    logits = np.zeros(4, np.float32)
    out = _core.apply_penalties(logits, params(presence_penalty=0.5, frequency_penalty=0.25), [1, 1, 1, 3])
    np.testing.assert_allclose(out, [0, -0.5 - 0.75, 0, -0.5 - 0.25])


def test_penalty_window_sees_only_recent_tokens() -> None:
    """Only the last penalty_window ids count; window 0 and an empty history change nothing."""
    logits = np.ones(4, np.float32)
    p = params(frequency_penalty=1.0, penalty_window=2)
    np.testing.assert_array_equal(_core.apply_penalties(logits, p, [0, 0, 0, 1, 2]), [1, 0, 0, 1])
    np.testing.assert_array_equal(_core.apply_penalties(logits, params(frequency_penalty=1.0, penalty_window=0),
                                                        [0, 1]), logits)
    np.testing.assert_array_equal(_core.apply_penalties(logits, p, []), logits)
    np.testing.assert_array_equal(_core.apply_penalties(logits, p, None), logits)


def test_penalties_come_first_in_the_chain() -> None:
    """Penalties change the logits before greedy and the filters see them."""
    logits = np.array([3.0, 2.9, 0.0], np.float32)
    assert _core.sample(logits, params(temperature=0), _core.Rng(0)) == 0
    assert _core.sample(logits, params(temperature=0, repeat_penalty=1.1), _core.Rng(0), [0]) == 1
    assert _core.sample(logits, params(temperature=0, presence_penalty=0.2), _core.Rng(0), [0]) == 1
    np.testing.assert_array_equal(_core.sample_probs(logits, params(top_k=1, frequency_penalty=1.0), [0]) > 0,
                                  [False, True, False])


def test_history_id_out_of_range() -> None:
    """A history id outside the vocabulary is refused by position."""
    with pytest.raises(ValueError, match=r"history\[1\]: expected a token id in 0..3, found 4"):
        _core.apply_penalties(np.zeros(4, np.float32), params(repeat_penalty=1.2), [0, 4])
    with pytest.raises(ValueError, match="history"):
        _core.sample(np.zeros(4, np.float32), params(), _core.Rng(0), [-1])


def test_minus_infinity_logits_are_never_chosen() -> None:
    """-inf logits have probability 0 and are never sampled, greedy or not."""
    logits = np.array([-np.inf, 0.0, -np.inf, 0.5, -np.inf], np.float32)
    probs = _core.sample_probs(logits, params())
    assert probs[[0, 2, 4]].tolist() == [0, 0, 0]
    r = _core.Rng(9)
    assert {_core.sample(logits, params(), r) for _ in range(200)} == {1, 3}
    assert _core.sample(np.array([-np.inf, -np.inf, -1.0], np.float32), params(temperature=0), r) == 2
    assert _core.sample(np.array([-np.inf, -np.inf, -1.0], np.float32), params(top_p=0.5, top_k=2), r) == 2


def test_all_minus_infinity_is_an_error() -> None:
    """Nothing to choose from is a clear error, not an arbitrary id."""
    with pytest.raises(ValueError, match="all -inf"):
        _core.sample(np.full(5, -np.inf, np.float32), params(), _core.Rng(0))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_logits_are_errors(bad: float) -> None:
    """A NaN or +inf logit is reported with its index."""
    logits = np.zeros(6, np.float32)
    logits[3] = bad
    with pytest.raises(ValueError, match=r"logits\[3\]: expected a finite number or -inf"):
        _core.sample(logits, params(), _core.Rng(0))
    with pytest.raises(ValueError, match=r"logits\[3\]"):
        _core.sample(logits, params(temperature=0), _core.Rng(0))


@pytest.mark.parametrize("field,value", [
    ("temperature", -0.1), ("temperature", float("nan")), ("top_k", -1), ("top_p", 0.0), ("top_p", 1.5),
    ("min_p", -0.01), ("min_p", 1.01), ("repeat_penalty", 0.0), ("presence_penalty", float("inf")),
    ("frequency_penalty", float("nan")), ("penalty_window", -1),
])
def test_bad_params_are_named(field: str, value: float) -> None:
    """Each out-of-range setting is refused with its name."""
    with pytest.raises(ValueError, match=f"^{field}: expected"):
        _core.SamplerParams(**{field: value})


def test_bad_logits_shape() -> None:
    """Logits must be one vector; an empty one is refused."""
    with pytest.raises(ValueError, match="1-D"):
        _core.sample(np.zeros((2, 3), np.float32), params(), _core.Rng(0))
    with pytest.raises(ValueError, match="empty"):
        _core.sample(np.zeros(0, np.float32), params(), _core.Rng(0))


@pytest.mark.parametrize("opts", [{}, {"temperature": 0.7, "top_k": 8, "top_p": 0.9, "min_p": 0.05}])
def test_sampled_frequencies_match_the_distribution(opts: dict[str, float]) -> None:
    """40,000 draws (fixed seed) fit the chain's distribution: Pearson chi-square below the 0.999 quantile."""
    logits = np.random.default_rng(10).standard_normal(12).astype(np.float32)
    p = params(**opts)
    expected_p = reference_probs(logits, **opts)
    n = 40_000
    r = _core.Rng(1234)
    counts = np.bincount([_core.sample(logits, p, r) for _ in range(n)], minlength=len(logits))
    support = expected_p > 0
    assert counts[~support].sum() == 0
    expected = n * expected_p[support]
    chi2 = float(((counts[support] - expected) ** 2 / expected).sum())
    # chi-square 0.999 quantiles for df = 1..11 (support size - 1)
    q999 = [10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88, 29.59, 31.26]
    assert chi2 < q999[int(support.sum()) - 2], (chi2, counts, expected)
