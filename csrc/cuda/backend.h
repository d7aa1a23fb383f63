// backend.h — the CUDA backend as the rest of pyrnn sees it: plain C++, no CUDA headers, so the
// bindings compile the same with or without -DPYRNN_CUDA=ON (absent.cpp answers for a CPU-only build).
//
//   if (!cuda::built()) ...                                  // a CPU-only build: every load throws
//   auto m = cuda::load_model(file, 0);                      // weights uploaded once, block formats kept
//   auto s = m->new_state();                                 // zeros on the device, as init_state
//   s->upload(host_state);                                   // the CPU model's state layout, exactly
//   m->forward(tokens, n, *s, logits, false);                // logits come back to the host
//   s->download(host_state);
//
// A device model is immutable after loading; forward() calls on one model are serialised (they share
// the model's scratch buffers and stream). States live on the device and hold the same floats, in the
// same layout, as the CPU model's state (model.h), so bytes(state) is device-independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../gguf.h"

namespace pyrnn::cuda {

// An error of the CUDA runtime or of a device operation (the message names the call and the cause).
struct cuda_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class device_state {
  public:
    virtual ~device_state() = default;
    virtual size_t size() const = 0;                  // floats
    virtual void upload(const float* host) = 0;       // size() floats
    virtual void download(float* host) const = 0;     // size() floats
    virtual void copy_from(const device_state& other) = 0; // same size; device to device
};

class device_model {
  public:
    virtual ~device_model() = default;
    virtual std::string arch() const = 0;
    virtual int64_t n_vocab() const = 0;
    virtual int64_t n_embd() const = 0;
    virtual int64_t n_layer() const = 0;
    virtual size_t state_size() const = 0;
    virtual std::string device_name() const = 0; // e.g. "NVIDIA H100 80GB HBM3 (sm_90)"
    virtual std::unique_ptr<device_state> new_state() const = 0; // the state before the first token
    // As model::forward (model.h); tokens are host ids < n_vocab (checked by the caller), logits a host
    // buffer of n_vocab (or n × n_vocab) floats.
    virtual void forward(const int32_t* tokens, size_t n, device_state& state, float* logits, bool all_logits) = 0;
};

// Whether this build has the CUDA backend (-DPYRNN_CUDA=ON).
bool built();

// CUDA devices visible (0 in a CPU-only build; throws cuda_error when the driver/runtime cannot answer).
int device_count();

// Builds the device model that general.architecture names, on device `device`. Throws cuda_error in a
// CPU-only build, without a device, for a tensor type it lacks, or for an architecture the CPU runs
// and this backend does not yet; format_error for a malformed file or an architecture pyrnn does not
// know (the CPU's message). The architecture is checked before any device is needed.
std::unique_ptr<device_model> load_model(std::shared_ptr<const gguf_file> file, int device);

// Architectures the CUDA backend implements (empty in a CPU-only build).
std::vector<std::string> architectures();

} // namespace pyrnn::cuda
