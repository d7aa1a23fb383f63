// model_base.h — what every CUDA model shares: its device and stream, the uploaded weights, device
// states (flat float buffers in the CPU layout), and forward() — chunking, token upload, logits
// download, and a captured CUDA graph for one-token decode. An architecture supplies run_chunk().
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <string>

#include "backend.h"
#include "ops.cuh"

namespace pyrnn::cuda {

// A state: one device buffer of the CPU state's floats, zero at the start (as the CPU's init_state
// for the architectures implemented here).
class flat_state final : public device_state {
  public:
    explicit flat_state(size_t n);
    size_t size() const override { return n_; }
    void upload(const float* host) override { buf_.upload(host, n_ * sizeof(float)); }
    void download(float* host) const override { buf_.download(host, n_ * sizeof(float)); }
    void copy_from(const device_state& other) override;
    float* data() const { return buf_.as<float>(); }

  private:
    size_t n_;
    device_buffer buf_;
};

class model_base : public device_model {
  public:
    std::string device_name() const override { return device_name_; }
    std::unique_ptr<device_state> new_state() const override { return std::make_unique<flat_state>(state_size()); }
    void forward(const int32_t* tokens, size_t n, device_state& state, float* logits, bool all_logits) override;
    ~model_base() override;

  protected:
    static constexpr int64_t k_chunk = 128; // tokens whose activations are held at once

    model_base(std::shared_ptr<const gguf_file> f, int device);
    // Allocates the token and logits buffers (call once n_vocab is known).
    void init_io(int64_t n_vocab);
    // Feeds d_tokens[0..T) from state; when `logits` is non-null writes the last token's logits there
    // (or all T tokens' when all_logits). Launches only (no sync, no allocation): it is captured.
    virtual void run_chunk(const int32_t* d_tokens, int64_t T, float* state, float* logits, bool all_logits) = 0;

    std::shared_ptr<const gguf_file> file_;
    weight_store ws_;
    cudaStream_t stream_ = nullptr;

  private:
    void decode_graph(int32_t token, float* state, float* logits);
    int device_ = 0;
    std::string device_name_;
    std::mutex mu_; // forward() calls share the scratch buffers and the stream
    device_buffer d_tokens_, d_logits_;
    pinned_buffer h_token_, h_logits_;
    int64_t n_vocab_ = 0;
    bool use_graph_ = true;               // PYRNN_CUDA_GRAPH=0 turns it off (for comparison)
    cudaGraphExec_t graph_ = nullptr;     // one-token decode, captured for graph_state_
    const float* graph_state_ = nullptr;
};

} // namespace pyrnn::cuda
