// model.h — a loaded model: hyperparameters plus weights that view the memory-mapped GGUF file.
//
//   auto file = std::shared_ptr<gguf_file>(gguf_file::open("rwkv7.gguf"));
//   std::unique_ptr<model> m = load_model(file);          // checks every tensor's name, shape, type
//   std::vector<float> state(m->state_size());
//   m->init_state(state.data());
//   std::vector<float> logits(m->n_vocab());
//   m->forward(tokens.data(), tokens.size(), state.data(), logits.data(), false);  // state_in → state_out
//
// A model is immutable after loading: any number of threads may run forward() at once, each with
// its own state. The state is a flat float32 buffer whose layout each architecture documents; it
// is the whole memory of the sequence (no KV cache), so copying it forks a conversation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gguf.h"
#include "threads.h"

namespace pyrnn {

// A weight matrix: `rows` rows of `cols` elements of ggml type `type`, row-major (ne0 = cols).
// Where this CPU's kernels have a packed form of the type (kernels/packed.h), the loader also keeps
// rows [0, packed_rows) repacked at `packed`, and matmul reads those instead of `data`.
struct matrix {
    const void* data = nullptr;
    uint32_t type = 0;
    int64_t rows = 0;
    int64_t cols = 0;
    const uint8_t* packed = nullptr;
    int64_t packed_rows = 0; // a multiple of PACK_ROWS; 0: none
};

class model {
  public:
    virtual ~model() = default;

    virtual std::string arch() const = 0;
    virtual int64_t n_vocab() const = 0;
    virtual int64_t n_embd() const = 0;
    virtual int64_t n_layer() const = 0;
    virtual size_t state_size() const = 0;          // floats
    virtual void init_state(float* state) const = 0; // the state before the first token

    // Feeds tokens[0..n) (n ≥ 1) starting from `state`, which is updated in place. Writes the
    // logits of the last token to `logits` (n_vocab floats), or of every token when `all_logits`
    // (n × n_vocab). Token ids must be < n_vocab (checked at the border).
    virtual void forward(const int32_t* tokens, size_t n, float* state, float* logits, bool all_logits) const = 0;

    const gguf_file& file() const { return *file_; }

    // Threads that split this model's matrix products (the caller counts as one). forward() callers
    // hold threads_pool() for the call and enter a pool_scope(pool.get()), so set_threads may run
    // while other threads evaluate: they finish on the pool they started with, which lives until
    // the last of them lets it go.
    void set_threads(int n) { std::atomic_store(&pool_, n > 1 ? std::make_shared<thread_pool>(n) : nullptr); }
    int threads() const {
        const std::shared_ptr<thread_pool> p = threads_pool();
        return p ? p->size() : 1;
    }
    std::shared_ptr<thread_pool> threads_pool() const { return std::atomic_load(&pool_); }

  protected:
    explicit model(std::shared_ptr<const gguf_file> f) : file_(std::move(f)) {}
    std::shared_ptr<const gguf_file> file_; // keeps the mapping (and so every weight) alive
    std::shared_ptr<thread_pool> pool_; // read and replaced only through std::atomic_load/store
};

// Builds the model that general.architecture names. Throws format_error for an unknown
// architecture or any missing/misshapen tensor or hyperparameter.
std::unique_ptr<model> load_model(std::shared_ptr<const gguf_file> file);

// Architectures in the registry, e.g. {"rwkv4", "rwkv5", "rwkv6", "rwkv7"}.
std::vector<std::string> model_architectures();

} // namespace pyrnn
