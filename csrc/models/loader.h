// loader.h — fetches a model's tensors from a GGUF file, checking each name, shape and type.
//
//   weight_loader w(file, "rwkv7", owned, &packs);         // owned: the model's deque<vector<float>>
//   uint32_t n_layer = w.u32("block_count");              // reads "rwkv7.block_count"
//   matrix wk = w.mat("blk.0.time_mix_key.weight", C, C);  // rows × cols (ggml ne1 × ne0)
//   const float* ln = w.vec("blk.0.attn_norm.weight", C);  // f32 (f16/bf16 widened once, owned)
//
// Shapes are given in ggml order as the file lists them; trailing dimensions of 1 are optional,
// as llama.cpp writes some vectors as (C,1,1).
#pragma once

#include <deque>
#include <initializer_list>
#include <string>
#include <vector>

#include "../kernels/packed.h"
#include "gguf.h"
#include "model.h"

namespace pyrnn {

class weight_loader {
  public:
    // Widened copies of f16/bf16 vectors go to `owned`, which the model keeps. With `packs`, mat()
    // also repacks each matrix whose type this CPU's kernels have a packed form of (the copies go
    // there, kept by the model); without, matrices stay views of the file (for a device upload).
    weight_loader(const gguf_file& f, std::string arch, std::deque<std::vector<float>>& owned,
                  std::deque<packed_matrix>* packs)
        : f_(f), arch_(std::move(arch)), owned_(owned), packs_(packs) {}

    // Hyperparameters under "<arch>.<key>".
    uint32_t u32(const std::string& key) const { return f_.get_u32(arch_ + "." + key); }
    uint32_t u32(const std::string& key, uint32_t fallback) const { return f_.get_u32(arch_ + "." + key, fallback); }
    float f32(const std::string& key, float fallback) const { return f_.get_f32(arch_ + "." + key, fallback); }

    bool has(const std::string& name) const { return f_.find_tensor(name) != nullptr; }
    // The tensor, checked against `ne` (ggml order; trailing 1s optional on either side).
    const gguf_tensor& tensor(const std::string& name, std::initializer_list<int64_t> ne) const;
    // A float vector of n elements (stored as F32, F16 or BF16).
    const float* vec(const std::string& name, int64_t n);
    // A float tensor of any shape matching `ne`, as contiguous f32.
    const float* floats(const std::string& name, std::initializer_list<int64_t> ne);
    // A matrix for matmul: its stored type must have a kernel.
    matrix mat(const std::string& name, int64_t rows, int64_t cols);
    // An embedding table (rows looked up one at a time with get_row).
    matrix embedding(const std::string& name, int64_t rows, int64_t cols) const;

  private:
    const float* as_f32(const gguf_tensor& t);
    const gguf_file& f_;
    std::string arch_;
    std::deque<std::vector<float>>& owned_; // a deque keeps pointers stable as it grows
    std::deque<packed_matrix>* packs_;
};

} // namespace pyrnn
