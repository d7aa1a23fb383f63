// gguf.h — GGUF v2/v3 reader: memory-maps a model file and validates all of it before use.
//
//   auto f = gguf_file::open("model.gguf");            // throws format_error or file_error
//   std::string arch = f->get_string("general.architecture");
//   uint32_t n_layer = f->get_u32(arch + ".block_count");
//   const gguf_tensor& emb = f->tensor("token_embd.weight");   // emb.ne = {C, V}, emb.data → bytes
//
// Layout (ggml docs/gguf.md): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, the key/value
// pairs, the tensor infos, padding to `general.alignment` (default 32), then the data section.
// Every count, length, shape, type and offset is checked against the file before anything is
// used; a bad file throws one format_error whose message names the field, the expected and the
// found value. This is the only place in pyrnn that parses model bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mapped_file.h"

namespace pyrnn {

// A model file that is not what it claims to be. Python sees pyrnn.FormatError (a ValueError).
struct format_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class gguf_type : uint32_t {
    UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
    BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(gguf_type t);
size_t gguf_scalar_size(gguf_type t); // bytes of one value; 0 for STRING and ARRAY

// One metadata value. Scalars and arrays of numbers point into the mapping; strings are views.
struct gguf_value {
    gguf_type type = gguf_type::UINT8;
    gguf_type elem_type = gguf_type::UINT8;  // arrays only
    uint64_t count = 1;                       // array length; 1 for a scalar
    const uint8_t* data = nullptr;            // scalar bytes, or the first element of a numeric array
    std::vector<std::string_view> strings;    // STRING (one) or ARRAY of STRING (count)

    bool is_array() const { return type == gguf_type::ARRAY; }
    bool is_integer() const;                  // any integer scalar type
    int64_t as_int(const std::string& key) const;   // range-checked; throws format_error
    uint64_t as_uint(const std::string& key) const;
    double as_float(const std::string& key) const;  // f32, f64 (or an integer)
    std::string_view as_string(const std::string& key) const;
    // Numeric array element i, converted.
    double array_float(uint64_t i) const;
    int64_t array_int(uint64_t i) const;
};

struct gguf_tensor {
    std::string name;
    uint32_t n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous (row) dimension
    uint32_t type = 0;             // ggml_type id
    uint64_t offset = 0;           // relative to the data section
    uint64_t n_elements = 0;
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr; // into the mapping, aligned to the file's alignment
};

class gguf_file {
  public:
    // Maps and validates `path`. Throws file_error (cannot open/map) or format_error.
    static std::unique_ptr<gguf_file> open(const std::string& path);
    // Validates a GGUF image already in memory (fuzzing, the C API); the bytes must outlive the result.
    static std::unique_ptr<gguf_file> from_memory(const uint8_t* data, size_t size);

    const std::string& path() const { return path_; } // "" for from_memory
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    size_t file_size() const { return size_; }
    const uint8_t* bytes() const { return base_; }

    const std::vector<std::string>& keys() const { return keys_; } // in file order
    const gguf_value* find(const std::string& key) const;           // nullptr if absent
    const gguf_value& get(const std::string& key) const;            // throws if absent

    // Typed getters: throw format_error naming the key when absent, of the wrong type or out of range.
    uint32_t get_u32(const std::string& key) const;
    uint32_t get_u32(const std::string& key, uint32_t fallback) const;
    float get_f32(const std::string& key) const;
    float get_f32(const std::string& key, float fallback) const;
    std::string get_string(const std::string& key) const;

    // mapped_file::release for bytes of this file's mapping (a no-op for from_memory images).
    void release(const void* p, size_t n) const {
        if (map_) map_->release(p, n);
    }

    const std::vector<gguf_tensor>& tensors() const { return tensors_; } // in file order
    const gguf_tensor* find_tensor(const std::string& name) const;
    const gguf_tensor& tensor(const std::string& name) const;        // throws if absent

  private:
    gguf_file() = default;
    void parse();

    std::unique_ptr<mapped_file> map_;
    std::string path_;
    const uint8_t* base_ = nullptr;
    size_t size_ = 0;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::string> keys_;
    std::unordered_map<std::string, gguf_value> kv_;
    std::vector<gguf_tensor> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

} // namespace pyrnn
