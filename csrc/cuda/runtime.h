// runtime.h — CUDA runtime helpers for the backend's .cu files: error checks that name the call, and
// device_buffer, the one owner of device memory (RAII, move-only).
//
//   device_buffer b(n_bytes);                // cudaMalloc; freed by the destructor
//   b.upload(host, n_bytes);                 // synchronous copy host → device
//   float* p = b.as<float>();
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "backend.h"

namespace pyrnn::cuda {

// Throws cuda_error naming the failed call, e.g. "cudaMalloc(4096 bytes): out of memory".
inline void check(cudaError_t e, const std::string& what) {
    if (e != cudaSuccess) throw cuda_error(what + ": " + cudaGetErrorString(e));
}

// The launch just made (configuration errors surface here; execution errors at the next sync).
inline void check_launch(const char* kernel) { check(cudaGetLastError(), std::string("launch of ") + kernel); }

// Lets `kernel` launch with up to this device's opt-in maximum of dynamic shared memory — set to the
// maximum, never to one model's need, because the attribute belongs to the kernel for the whole
// process and models of different sizes share it — after checking that `needed` bytes fit. The
// error names the hyperparameter behind the need: "<field>: expected a value whose state fits one
// block's shared memory (<max> bytes on this device), found <value> (<needed> bytes)".
template <typename Kernel>
void allow_shared_memory(Kernel* kernel, size_t needed, const std::string& field, int64_t value) {
    int dev = 0, optin = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev),
          "cudaDeviceGetAttribute (shared memory per block)");
    if (needed > size_t(optin)) {
        throw cuda_error(field + ": expected a value whose state fits one block's shared memory (" +
                         std::to_string(optin) + " bytes on this device), found " + std::to_string(value) + " (" +
                         std::to_string(needed) + " bytes)");
    }
    check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin),
          "cudaFuncSetAttribute (dynamic shared memory " + std::to_string(optin) + " bytes)");
}

class device_buffer {
  public:
    device_buffer() = default;
    explicit device_buffer(size_t bytes) : bytes_(bytes) {
        if (bytes) check(cudaMalloc(&p_, bytes), "cudaMalloc(" + std::to_string(bytes) + " bytes)");
    }
    ~device_buffer() {
        if (p_) cudaFree(p_); // never throws; a failure here means the context is already gone
    }
    device_buffer(device_buffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr, o.bytes_ = 0; }
    device_buffer& operator=(device_buffer&& o) noexcept {
        if (this != &o) {
            if (p_) cudaFree(p_);
            p_ = o.p_, bytes_ = o.bytes_;
            o.p_ = nullptr, o.bytes_ = 0;
        }
        return *this;
    }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;

    void upload(const void* host, size_t bytes) {
        check(cudaMemcpy(p_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host→device");
    }
    void download(void* host, size_t bytes) const {
        check(cudaMemcpy(host, p_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device→host");
    }
    template <typename T> T* as() const { return static_cast<T*>(p_); }
    size_t bytes() const { return bytes_; }

  private:
    void* p_ = nullptr;
    size_t bytes_ = 0;
};

// Host memory the device can copy to/from asynchronously (and inside a captured graph).
class pinned_buffer {
  public:
    pinned_buffer() = default;
    explicit pinned_buffer(size_t bytes) {
        if (bytes) check(cudaMallocHost(&p_, bytes), "cudaMallocHost(" + std::to_string(bytes) + " bytes)");
    }
    ~pinned_buffer() {
        if (p_) cudaFreeHost(p_);
    }
    pinned_buffer& operator=(pinned_buffer&& o) noexcept {
        if (this != &o) {
            if (p_) cudaFreeHost(p_);
            p_ = o.p_;
            o.p_ = nullptr;
        }
        return *this;
    }
    pinned_buffer(const pinned_buffer&) = delete;
    pinned_buffer& operator=(const pinned_buffer&) = delete;
    template <typename T> T* as() const { return static_cast<T*>(p_); }

  private:
    void* p_ = nullptr;
};

} // namespace pyrnn::cuda
