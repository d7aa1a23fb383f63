// model_base.cu — device states, chunked forward and the decode graph (model_base.h).
#include "model_base.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace pyrnn::cuda {

flat_state::flat_state(size_t n) : n_(n), buf_(n * sizeof(float)) {
    check(cudaMemset(buf_.as<void>(), 0, n * sizeof(float)), "cudaMemset (new state)");
}

void flat_state::copy_from(const device_state& other) {
    const auto* o = dynamic_cast<const flat_state*>(&other);
    if (!o || o->n_ != n_) {
        throw cuda_error("state: expected a device state of " + std::to_string(n_) + " floats, found " +
                         std::to_string(other.size()));
    }
    check(cudaMemcpy(data(), o->data(), n_ * sizeof(float), cudaMemcpyDeviceToDevice), "cudaMemcpy (state copy)");
}

model_base::model_base(std::shared_ptr<const gguf_file> f, int device) : file_(std::move(f)), device_(device) {
    check(cudaSetDevice(device), "cudaSetDevice(" + std::to_string(device) + ")");
    cudaDeviceProp p{};
    check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
    device_name_ = std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")";
    // A blocking stream: the synchronous state and weight copies (cudaMemcpy, cudaMemset on the
    // legacy default stream) are then ordered with this model's kernels in both directions.
    check(cudaStreamCreate(&stream_), "cudaStreamCreate");
    const char* g = std::getenv("PYRNN_CUDA_GRAPH");
    use_graph_ = !(g && std::strcmp(g, "0") == 0);
}

model_base::~model_base() {
    if (graph_) cudaGraphExecDestroy(graph_);
    if (stream_) cudaStreamDestroy(stream_);
}

void model_base::init_io(int64_t n_vocab) {
    n_vocab_ = n_vocab;
    d_tokens_ = device_buffer(size_t(k_chunk) * sizeof(int32_t));
    d_logits_ = device_buffer(size_t(k_chunk * n_vocab) * sizeof(float));
    h_token_ = pinned_buffer(sizeof(int32_t));
    h_logits_ = pinned_buffer(size_t(n_vocab) * sizeof(float));
}

// One token, last logits: a graph captured once per state buffer replays every launch of the token
// (token in from pinned memory, logits out to pinned memory) with one cudaGraphLaunch.
void model_base::decode_graph(int32_t token, float* state, float* logits) {
    *h_token_.as<int32_t>() = token;
    if (!graph_ || graph_state_ != state) {
        if (graph_) cudaGraphExecDestroy(graph_), graph_ = nullptr;
        check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
        cudaGraph_t g = nullptr;
        try {
            check(cudaMemcpyAsync(d_tokens_.as<int32_t>(), h_token_.as<int32_t>(), sizeof(int32_t),
                                  cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync (token)");
            run_chunk(d_tokens_.as<int32_t>(), 1, state, d_logits_.as<float>(), false);
            check(cudaMemcpyAsync(h_logits_.as<float>(), d_logits_.as<float>(), size_t(n_vocab_) * sizeof(float),
                                  cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync (logits)");
        } catch (...) {
            cudaStreamEndCapture(stream_, &g);
            if (g) cudaGraphDestroy(g);
            throw;
        }
        check(cudaStreamEndCapture(stream_, &g), "cudaStreamEndCapture");
        const cudaError_t e = cudaGraphInstantiate(&graph_, g, 0);
        cudaGraphDestroy(g);
        check(e, "cudaGraphInstantiate");
        graph_state_ = state;
    }
    check(cudaGraphLaunch(graph_, stream_), "cudaGraphLaunch");
    check(cudaStreamSynchronize(stream_), "decode step");
    std::memcpy(logits, h_logits_.as<float>(), size_t(n_vocab_) * sizeof(float));
}

void model_base::forward(const int32_t* tokens, size_t n, device_state& state, float* logits, bool all_logits) {
    auto* fs = dynamic_cast<flat_state*>(&state);
    if (!fs || fs->size() != state_size()) {
        throw cuda_error("state: expected a device state of " + std::to_string(state_size()) + " floats for this " +
                         arch() + " model, found " + std::to_string(state.size()));
    }
    std::lock_guard<std::mutex> lock(mu_);
    check(cudaSetDevice(device_), "cudaSetDevice");
    if (n == 1 && !all_logits && use_graph_) return decode_graph(tokens[0], fs->data(), logits);
    for (size_t start = 0; start < n; start += size_t(k_chunk)) {
        const int64_t T = int64_t(std::min(size_t(k_chunk), n - start));
        const bool last = start + size_t(T) == n;
        check(cudaMemcpyAsync(d_tokens_.as<int32_t>(), tokens + start, size_t(T) * sizeof(int32_t),
                              cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync (tokens)");
        float* d_logits = all_logits || last ? d_logits_.as<float>() : nullptr;
        run_chunk(d_tokens_.as<int32_t>(), T, fs->data(), d_logits, all_logits);
        if (d_logits) {
            const int64_t rows = all_logits ? T : 1;
            float* dst = all_logits ? logits + int64_t(start) * n_vocab_ : logits;
            check(cudaMemcpyAsync(dst, d_logits, size_t(rows * n_vocab_) * sizeof(float), cudaMemcpyDeviceToHost,
                                  stream_), "cudaMemcpyAsync (logits)");
        }
        check(cudaStreamSynchronize(stream_), "forward chunk"); // tokens/logits buffers are reused next chunk
    }
}

} // namespace pyrnn::cuda
