"""Smoke test of an installed pyrnn wheel on another machine (aarch64 under qemu) against the
reference output computed on the build host (tests/aarch64_smoke/reference.py, x86-64).

Run by tools/test_aarch64_wheel.sh as
    PYRNN_SMOKE_REF=ref.npz PYRNN_SMOKE_ISA=neon PYRNN_SMOKE_SITE=DIR python3 -m pytest smoke_aarch64.py
The file name does not match test_*.py on purpose: the main `pytest -q` run does not collect it.

What it proves: the wheel imports outside the source tree, picks the kernels the emulated CPU
supports (neon without dotprod on cortex-a53, neon_dotprod on cortex-a76), tokenizes the prompt to
the same ids, computes the same logits as x86-64 within TOL, decodes greedily to the same tokens
wherever the choice is not a near-tie, and continues from a state serialized on x86-64.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import pyrnn

# Logits are O(10) here. Measured on this q8_0 model: x86-64 ref vs avx2 differ by up to 0.025,
# NEON (a53 and a76) vs avx2 by 0.032 (activations rounded differently at quantization boundaries);
# 0.05 still catches a wrong kernel (those are off by O(1)).
TOL = 0.05

REF = np.load(os.environ["PYRNN_SMOKE_REF"])


@pytest.fixture(scope="module")
def model() -> pyrnn.Model:
    return pyrnn.load(pyrnn.default_model_path())


def test_the_installed_wheel_is_imported() -> None:
    site = Path(os.environ["PYRNN_SMOKE_SITE"]).resolve()
    assert site in Path(pyrnn.__file__).resolve().parents, pyrnn.__file__


def test_dispatch_picks_the_emulated_cpus_kernels() -> None:
    assert pyrnn.isa() == os.environ["PYRNN_SMOKE_ISA"], (pyrnn.isa(), pyrnn.cpu_features())


def test_prompt_tokenizes_to_the_same_ids(model: pyrnn.Model) -> None:
    ids = model.tokenizer.encode(str(REF["prompt"]))
    assert ids == REF["prompt_ids"].tolist()
    assert model.tokenizer.decode(ids) == str(REF["prompt"]).encode()


def test_teacher_forced_logits_match_x86(model: pyrnn.Model) -> None:
    """Feed the x86 tokens; every step's logits within TOL, and the same argmax where x86's margin
    between the best two is over 2*TOL (a TOL error on each cannot swap them)."""
    ref, ids = REF["logits"], REF["ids"].tolist()
    state = model.new_state()
    got = [model.forward(REF["prompt_ids"].tolist(), state)]
    got += [model.forward([t], state) for t in ids[:-1]]
    got = np.stack(got)
    err = np.abs(got - ref).max(axis=1)
    assert err.max() <= TOL, f"max-abs logit error per step: {np.round(err, 4)}"
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * TOL
    assert clear.sum() >= len(ids) // 2, "too few clear choices to compare: pick another prompt"
    assert (got.argmax(axis=1)[clear] == ref.argmax(axis=1)[clear]).all()


def test_greedy_generation_matches_x86(model: pyrnn.Model) -> None:
    """Free-running greedy decoding gives the x86 tokens up to the first near-tie on x86."""
    from reference import greedy  # beside this file

    ref = REF["logits"]
    top2 = np.sort(ref, axis=1)[:, -2:]
    near_tie = np.flatnonzero(top2[:, 1] - top2[:, 0] <= 2 * TOL)
    n = int(near_tie[0]) + 1 if len(near_tie) else len(ref)  # at the near-tie: either of the two
    ids, _ = greedy(model, REF["prompt_ids"].tolist(), n)
    assert ids[: n - 1] == REF["ids"].tolist()[: n - 1]
    assert ids[n - 1] in np.argsort(ref[n - 1])[-2:]
    assert n >= 4, "near-tie too early to prove anything: pick another prompt"


def test_state_serialized_on_x86_continues_here(model: pyrnn.Model) -> None:
    state = pyrnn.State.from_bytes(model, REF["state_after_prompt"].tobytes())
    logits = model.forward([int(REF["ids"][0])], state)
    assert np.abs(logits - REF["logits"][1]).max() <= TOL
