// sampler.h — choosing the next token from logits: pure functions over a logits span and an
// explicitly seeded RNG (no globals, no hidden state).
//
//   pyrnn::sampler_params p;              // defaults: temperature 1, every filter off
//   p.temperature = 0.8f; p.top_k = 40; p.top_p = 0.95f; p.min_p = 0.05f;
//   pyrnn::rng r = pyrnn::rng_seeded(42);
//   int32_t id = pyrnn::sample(logits, n_vocab, history.data(), history.size(), p, r);
//
// The chain, in this order (llama.cpp's default order: penalties, top-k, top-p, min-p, temperature):
//   1. penalties over the last `penalty_window` tokens of history, per distinct token t seen c times:
//        logit[t] = logit[t] > 0 ? logit[t] / repeat_penalty : logit[t] * repeat_penalty
//        logit[t] -= presence_penalty + c * frequency_penalty
//   2. temperature 0 → greedy: the largest logit, the lowest id among equal ones; stop here.
//   3. top-k: keep the k largest (ties broken by lower id); 0 = off.
//   4. top-p: softmax of the survivors; keep the most probable prefix whose mass reaches p (at
//      least one token); 1 = off.
//   5. min-p: keep tokens whose probability is at least min_p × the largest; 0 = off.
//   6. temperature: logits / temperature, softmax over the survivors.
//   7. draw: u in [0, 1) from the RNG; the first id (in id order) whose cumulative probability
//      exceeds u × total.
// A -inf logit is a token that can never be chosen; NaN or +inf logits are errors (std::invalid_argument).
//
// The RNG is xoshiro256** (Blackman & Vigna), its 256-bit state filled from the seed by
// splitmix64, uniform doubles from the top 53 bits: the same seed gives the same stream on every
// platform. Sampled ids are then the same wherever the logits and the C library's expf agree
// (expf may differ by an ulp between C libraries, which only matters when u falls on a boundary).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace pyrnn {

struct sampler_params {
    float temperature = 1.0f;       // 0: greedy
    int32_t top_k = 0;              // 0: off
    float top_p = 1.0f;             // (0, 1]; 1: off
    float min_p = 0.0f;             // [0, 1]; 0: off
    float repeat_penalty = 1.0f;    // > 0; 1: off
    float presence_penalty = 0.0f;  // subtracted once from every token in the window
    float frequency_penalty = 0.0f; // subtracted once per occurrence in the window
    int32_t penalty_window = 64;    // last tokens of history the penalties look at; 0: none
};

// Throws std::invalid_argument naming the field, the expected range and the found value.
void check_params(const sampler_params& p);

struct rng {
    uint64_t s[4];
};

rng rng_seeded(uint64_t seed);
uint64_t rng_next(rng& r);  // xoshiro256**
double rng_uniform(rng& r); // [0, 1), 53 random bits

// Step 1 in place over logits[0..n_vocab). History ids outside [0, n_vocab) are errors.
void apply_penalties(float* logits, size_t n_vocab, const int32_t* history, size_t n_history,
                     const sampler_params& p);

// Steps 1, 3-6: the distribution the draw uses, probs[0..n_vocab) (0 for removed tokens; sums
// to 1). With temperature 0: 1 at the greedy id. `logits` is not modified.
void sample_probs(const float* logits, size_t n_vocab, const int32_t* history, size_t n_history,
                  const sampler_params& p, float* probs);

// The whole chain: one token id. Draws one number from `r` unless temperature is 0.
int32_t sample(const float* logits, size_t n_vocab, const int32_t* history, size_t n_history,
               const sampler_params& p, rng& r);

} // namespace pyrnn
