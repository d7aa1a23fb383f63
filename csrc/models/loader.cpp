#include "loader.h"

#include "../kernels/kernels.h"
#include "../quant.h"

namespace pyrnn {

namespace {

std::string shape_str(const int64_t* ne, size_t n) {
    std::string s = "[";
    for (size_t i = 0; i < n; i++) s += (i ? ", " : "") + std::to_string(ne[i]);
    return s + "]";
}

} // namespace

const gguf_tensor& weight_loader::tensor(const std::string& name, std::initializer_list<int64_t> ne) const {
    const gguf_tensor* t = f_.find_tensor(name);
    if (!t) throw format_error("tensor \"" + name + "\": expected in a " + arch_ + " model, found nothing");
    const std::vector<int64_t> want(ne);
    bool ok = true;
    for (size_t d = 0; d < 4; d++) {
        const int64_t w = d < want.size() ? want[d] : 1;
        const int64_t g = d < t->n_dims ? t->ne[d] : 1;
        ok = ok && (w == g);
    }
    if (!ok) {
        throw format_error("tensor \"" + name + "\" shape (ggml ne): expected " + shape_str(want.data(), want.size()) +
                           ", found " + shape_str(t->ne, t->n_dims));
    }
    return *t;
}

const float* weight_loader::as_f32(const gguf_tensor& t) {
    if (t.type == GGML_TYPE_F32) return reinterpret_cast<const float*>(t.data);
    if (t.type != GGML_TYPE_F16 && t.type != GGML_TYPE_BF16) {
        throw format_error("tensor \"" + t.name + "\" type: expected f32, f16 or bf16, found " + find_type(t.type)->name);
    }
    std::vector<float> out(t.n_elements);
    const auto* h = reinterpret_cast<const uint16_t*>(t.data);
    for (uint64_t i = 0; i < t.n_elements; i++) {
        out[i] = t.type == GGML_TYPE_F16 ? fp16_to_fp32(h[i]) : bf16_to_fp32(h[i]);
    }
    owned_.push_back(std::move(out));
    return owned_.back().data();
}

const float* weight_loader::vec(const std::string& name, int64_t n) { return as_f32(tensor(name, {n})); }

const float* weight_loader::floats(const std::string& name, std::initializer_list<int64_t> ne) {
    return as_f32(tensor(name, ne));
}

matrix weight_loader::mat(const std::string& name, int64_t rows, int64_t cols) {
    const gguf_tensor& t = tensor(name, {cols, rows});
    if (kernels().gemm[t.type] == nullptr) {
        throw format_error("tensor \"" + name + "\" type: expected a type pyrnn computes with, found " +
                           find_type(t.type)->name);
    }
    matrix m{t.data, t.type, rows, cols};
    if (packs_ != nullptr && kernels().packed[t.type] != nullptr && packable(t.type) && rows >= PACK_ROWS) {
        packs_->push_back(pack_rows(t.type, t.data, rows, cols));
        m.packed = packs_->back().data();
        m.packed_rows = packs_->back().rows;
        f_.release(t.data, size_t(row_bytes(t.type, uint64_t(cols)) * uint64_t(m.packed_rows))); // kept packed
    }
    return m;
}


matrix weight_loader::embedding(const std::string& name, int64_t rows, int64_t cols) const {
    const gguf_tensor& t = tensor(name, {cols, rows});
    float probe = 0.0f;
    if (!to_f32(t.type, t.data, &probe, 0)) {
        throw format_error("tensor \"" + name + "\" type: expected an embedding type pyrnn reads, found " +
                           find_type(t.type)->name);
    }
    return matrix{t.data, t.type, rows, cols};
}

} // namespace pyrnn
