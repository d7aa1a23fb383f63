// sampler.cpp — see sampler.h for the chain and its order.
#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace pyrnn {

namespace {

std::string num(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
}

[[noreturn]] void bad(const std::string& field, const std::string& expected, double found) {
    throw std::invalid_argument(field + ": expected " + expected + ", found " + num(found));
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

// Higher logit first; among equal logits the lower id first (a deterministic tie rule).
struct by_logit {
    const float* l;
    bool operator()(int32_t a, int32_t b) const { return l[a] > l[b] || (l[a] == l[b] && a < b); }
};

// Per-thread scratch reused between calls: a vocabulary-sized allocation per token would cost page
// faults (large blocks are mmapped and returned on free). Holds no state between calls.
struct scratch {
    std::vector<float> logits, probs;
    std::vector<int32_t> ids;
};
scratch& local_scratch() {
    thread_local scratch s;
    return s;
}

// Copies the logits into scratch, checks them, applies penalties; returns the working copy.
std::vector<float>& prepared(const float* logits, size_t n, const int32_t* history, size_t n_history,
                             const sampler_params& p) {
    check_params(p);
    if (n == 0) throw std::invalid_argument("logits: expected at least one, found an empty array");
    if (n > size_t(std::numeric_limits<int32_t>::max())) bad("logits size", "at most 2^31-1", double(n));
    std::vector<float>& l = local_scratch().logits;
    l.assign(logits, logits + n);
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        if (std::isnan(l[i]) || l[i] == std::numeric_limits<float>::infinity())
            bad("logits[" + std::to_string(i) + "]", "a finite number or -inf", l[i]);
        any |= std::isfinite(l[i]);
    }
    if (!any) throw std::invalid_argument("logits: expected at least one finite logit, found all -inf");
    apply_penalties(l.data(), n, history, n_history, p);
    return l;
}

int32_t argmax(const std::vector<float>& l) {
    int32_t best = 0;
    float top = l[0];
    for (size_t i = 1; i < l.size(); i++)
        if (l[i] > top) top = l[best = int32_t(i)]; // strict: the lowest id wins ties
    return best;
}

} // namespace

void check_params(const sampler_params& p) {
    if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
        bad("temperature", "a finite number >= 0", p.temperature);
    if (p.top_k < 0) bad("top_k", ">= 0 (0: off)", p.top_k);
    if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) bad("top_p", "in (0, 1] (1: off)", p.top_p);
    if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) bad("min_p", "in [0, 1] (0: off)", p.min_p);
    if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty))
        bad("repeat_penalty", "a finite number > 0 (1: off)", p.repeat_penalty);
    if (!std::isfinite(p.presence_penalty)) bad("presence_penalty", "a finite number", p.presence_penalty);
    if (!std::isfinite(p.frequency_penalty)) bad("frequency_penalty", "a finite number", p.frequency_penalty);
    if (p.penalty_window < 0) bad("penalty_window", ">= 0", p.penalty_window);
}

rng rng_seeded(uint64_t seed) {
    rng r;
    for (uint64_t& s : r.s) s = splitmix64(seed);
    return r;
}

uint64_t rng_next(rng& r) {
    uint64_t* s = r.s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double rng_uniform(rng& r) { return double(rng_next(r) >> 11) * 0x1.0p-53; }

void apply_penalties(float* logits, size_t n_vocab, const int32_t* history, size_t n_history,
                     const sampler_params& p) {
    const size_t window = std::min(n_history, size_t(p.penalty_window));
    if (window == 0 || (p.repeat_penalty == 1.0f && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f))
        return;
    std::unordered_map<int32_t, int> count;
    for (size_t i = n_history - window; i < n_history; i++) {
        const int32_t t = history[i];
        if (t < 0 || size_t(t) >= n_vocab)
            bad("history[" + std::to_string(i) + "]", "a token id in 0.." + std::to_string(n_vocab - 1), t);
        count[t]++;
    }
    for (const auto& [t, c] : count) {
        float& l = logits[t];
        l = l > 0.0f ? l / p.repeat_penalty : l * p.repeat_penalty; // llama.cpp: <= 0 multiplies
        l -= p.presence_penalty + float(c) * p.frequency_penalty;
    }
}

void sample_probs(const float* logits, size_t n, const int32_t* history, size_t n_history,
                  const sampler_params& p, float* probs) {
    const std::vector<float>& l = prepared(logits, n, history, n_history, p);
    std::fill(probs, probs + n, 0.0f);
    if (p.temperature == 0.0f) {
        probs[argmax(l)] = 1.0f;
        return;
    }
    std::vector<int32_t>& ids = local_scratch().ids;
    ids.clear();
    for (size_t i = 0; i < n; i++)
        if (std::isfinite(l[i])) ids.push_back(int32_t(i));
    if (ids.empty()) throw std::invalid_argument("logits: expected at least one finite logit after penalties");
    const by_logit order{l.data()};

    if (p.top_k > 0 && size_t(p.top_k) < ids.size()) {
        std::nth_element(ids.begin(), ids.begin() + p.top_k, ids.end(), order);
        ids.resize(size_t(p.top_k));
    }
    if (p.top_p < 1.0f && ids.size() > 1) {
        float m = -std::numeric_limits<float>::infinity();
        for (int32_t i : ids) m = std::max(m, l[i]);
        double total = 0.0;
        for (int32_t i : ids) total += std::exp(l[i] - m);
        const double target = double(p.top_p) * total;
        // Sort only as far as needed: the top 256 usually hold the mass; widen 8x when they do not.
        size_t sorted = std::min<size_t>(ids.size(), 256), keep = 0;
        double cum = 0.0;
        std::partial_sort(ids.begin(), ids.begin() + sorted, ids.end(), order);
        while (true) {
            for (; keep < sorted; keep++) {
                cum += std::exp(l[ids[keep]] - m);
                if (cum >= target) break;
            }
            if (keep < sorted || sorted == ids.size()) break;
            const size_t wider = std::min(ids.size(), sorted * 8);
            std::partial_sort(ids.begin() + sorted, ids.begin() + wider, ids.end(), order);
            sorted = wider;
        }
        ids.resize(std::min(keep + 1, ids.size()));
    }
    float m = -std::numeric_limits<float>::infinity();
    for (int32_t i : ids) m = std::max(m, l[i]);
    if (p.min_p > 0.0f) {
        // p_i >= min_p * p_max  <=>  l_i - m >= log(min_p): compared in logits, no softmax needed
        const double floor = double(m) + std::log(double(p.min_p));
        ids.erase(std::remove_if(ids.begin(), ids.end(), [&](int32_t i) { return double(l[i]) < floor; }),
                  ids.end());
    }
    double total = 0.0;
    for (int32_t i : ids) {
        const float e = std::exp((l[i] - m) / p.temperature);
        probs[i] = e;
        total += e;
    }
    for (int32_t i : ids) probs[i] = float(double(probs[i]) / total);
}

int32_t sample(const float* logits, size_t n, const int32_t* history, size_t n_history, const sampler_params& p,
               rng& r) {
    if (p.temperature == 0.0f) return argmax(prepared(logits, n, history, n_history, p));
    std::vector<float>& probs = local_scratch().probs;
    probs.resize(n);
    sample_probs(logits, n, history, n_history, p, probs.data());
    double total = 0.0;
    for (float q : probs) total += q;
    const double u = rng_uniform(r) * total;
    double cum = 0.0;
    int32_t last = -1;
    for (size_t i = 0; i < n; i++) {
        if (probs[i] <= 0.0f) continue;
        cum += probs[i];
        last = int32_t(i);
        if (cum > u) return last;
    }
    return last; // u within rounding of the total: the last token with mass
}

} // namespace pyrnn
