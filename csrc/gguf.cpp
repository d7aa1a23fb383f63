#include "gguf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "quant.h"

namespace pyrnn {

namespace {

constexpr uint32_t k_max_dims = 4;            // GGML_MAX_DIMS
constexpr uint64_t k_max_string = 1u << 30;  // no key, name or token is 1 GiB long

std::string quoted(std::string_view s) {
    std::string out = "\"";
    for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (s.size() > 64) out += "...";
    return out + "\"";
}


template <typename T> T load(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

// Reads the header region front to back; every read is bounds-checked and names what it reads.
struct cursor {
    const uint8_t* base;
    size_t size;
    size_t pos = 0;

    [[noreturn]] void truncated(const std::string& what, size_t need) const {
        throw format_error(what + ": expected " + std::to_string(need) + " bytes at offset " +
                           std::to_string(pos) + ", found end of file (file size " +
                           std::to_string(size) + ")");
    }
    const uint8_t* take(size_t n, const std::string& what) {
        if (n > size - pos) truncated(what, n);
        const uint8_t* p = base + pos;
        pos += n;
        return p;
    }
    uint32_t u32(const std::string& what) { return load<uint32_t>(take(4, what)); }
    uint64_t u64(const std::string& what) { return load<uint64_t>(take(8, what)); }
    std::string_view str(const std::string& what) {
        const uint64_t n = u64(what + " length");
        if (n > k_max_string || n > size - pos) {
            throw format_error(what + " length: expected at most " +
                               std::to_string(std::min<uint64_t>(size - pos, k_max_string)) +
                               " (bytes left in file), found " + std::to_string(n));
        }
        const uint8_t* p = take(size_t(n), what);
        return std::string_view(reinterpret_cast<const char*>(p), size_t(n));
    }
    size_t left() const { return size - pos; }
};

gguf_type read_type(cursor& c, const std::string& what) {
    const uint32_t t = c.u32(what);
    if (t > uint32_t(gguf_type::FLOAT64)) {
        throw format_error(what + ": expected a GGUF value type 0..12, found " + std::to_string(t));
    }
    return gguf_type(t);
}

} // namespace

size_t gguf_scalar_size(gguf_type t) {
    switch (t) {
    case gguf_type::UINT8: case gguf_type::INT8: case gguf_type::BOOL: return 1;
    case gguf_type::UINT16: case gguf_type::INT16: return 2;
    case gguf_type::UINT32: case gguf_type::INT32: case gguf_type::FLOAT32: return 4;
    case gguf_type::UINT64: case gguf_type::INT64: case gguf_type::FLOAT64: return 8;
    default: return 0; // STRING, ARRAY: variable
    }
}

const char* gguf_type_name(gguf_type t) {
    static const char* names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                  "bool",  "string", "array",  "uint64", "int64", "float64"};
    const auto i = uint32_t(t);
    return i < 13 ? names[i] : "unknown";
}

// ---- values ----------------------------------------------------------------------------------

bool gguf_value::is_integer() const {
    switch (type) {
    case gguf_type::UINT8: case gguf_type::INT8: case gguf_type::UINT16: case gguf_type::INT16:
    case gguf_type::UINT32: case gguf_type::INT32: case gguf_type::UINT64: case gguf_type::INT64:
        return true;
    default: return false;
    }
}

static int64_t int_at(gguf_type t, const uint8_t* p, const std::string& key) {
    switch (t) {
    case gguf_type::UINT8: return load<uint8_t>(p);
    case gguf_type::INT8: return load<int8_t>(p);
    case gguf_type::UINT16: return load<uint16_t>(p);
    case gguf_type::INT16: return load<int16_t>(p);
    case gguf_type::UINT32: return load<uint32_t>(p);
    case gguf_type::INT32: return load<int32_t>(p);
    case gguf_type::INT64: return load<int64_t>(p);
    case gguf_type::UINT64: {
        const uint64_t v = load<uint64_t>(p);
        if (v > uint64_t(std::numeric_limits<int64_t>::max())) {
            throw format_error("metadata " + quoted(key) + ": expected a value below 2^63, found " +
                               std::to_string(v));
        }
        return int64_t(v);
    }
    default:
        throw format_error("metadata " + quoted(key) + ": expected an integer, found " +
                           gguf_type_name(t));
    }
}

static double float_at(gguf_type t, const uint8_t* p, const std::string& key) {
    if (t == gguf_type::FLOAT32) return load<float>(p);
    if (t == gguf_type::FLOAT64) return load<double>(p);
    return double(int_at(t, p, key));
}

int64_t gguf_value::as_int(const std::string& key) const {
    if (is_array()) throw format_error("metadata " + quoted(key) + ": expected an integer, found an array");
    return int_at(type, data, key);
}

uint64_t gguf_value::as_uint(const std::string& key) const {
    if (type == gguf_type::UINT64 && !is_array()) return load<uint64_t>(data);
    const int64_t v = as_int(key);
    if (v < 0) {
        throw format_error("metadata " + quoted(key) + ": expected a non-negative integer, found " +
                           std::to_string(v));
    }
    return uint64_t(v);
}

double gguf_value::as_float(const std::string& key) const {
    if (is_array()) throw format_error("metadata " + quoted(key) + ": expected a number, found an array");
    if (type == gguf_type::STRING || type == gguf_type::BOOL) {
        throw format_error("metadata " + quoted(key) + ": expected a number, found " + gguf_type_name(type));
    }
    return float_at(type, data, key);
}

std::string_view gguf_value::as_string(const std::string& key) const {
    if (type != gguf_type::STRING) {
        throw format_error("metadata " + quoted(key) + ": expected a string, found " +
                           (is_array() ? std::string("an array") : gguf_type_name(type)));
    }
    return strings[0];
}

double gguf_value::array_float(uint64_t i) const {
    return float_at(elem_type, data + i * gguf_scalar_size(elem_type), "array element");
}

int64_t gguf_value::array_int(uint64_t i) const {
    return int_at(elem_type, data + i * gguf_scalar_size(elem_type), "array element");
}

// ---- file ------------------------------------------------------------------------------------

std::unique_ptr<gguf_file> gguf_file::open(const std::string& path) {
    auto map = std::make_unique<mapped_file>(path);
    std::unique_ptr<gguf_file> f(new gguf_file());
    f->base_ = map->data();
    f->size_ = map->size();
    f->map_ = std::move(map);
    f->path_ = path;
    try {
        f->parse();
    } catch (const format_error& e) {
        throw format_error("'" + path + "' is not a valid GGUF file: " + e.what());
    }
    return f;
}

std::unique_ptr<gguf_file> gguf_file::from_memory(const uint8_t* data, size_t size) {
    std::unique_ptr<gguf_file> f(new gguf_file());
    f->base_ = data;
    f->size_ = size;
    f->parse();
    return f;
}

void gguf_file::parse() {
    cursor c{base_, size_};

    // -- header
    if (size_ < 4) {
        throw format_error("magic: expected \"GGUF\", found a file of " + std::to_string(size_) + " bytes");
    }
    if (std::memcmp(base_, "GGUF", 4) != 0) {
        throw format_error("magic: expected \"GGUF\", found " +
                           quoted(std::string_view(reinterpret_cast<const char*>(base_), 4)));
    }
    c.pos = 4;
    version_ = c.u32("version");
    if (version_ != 2 && version_ != 3) {
        throw format_error("version: expected 2 or 3, found " + std::to_string(version_));
    }
    const uint64_t n_tensors = c.u64("tensor count");
    const uint64_t n_kv = c.u64("metadata count");
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor info at least
    // 8 + 4 + 4 + 8 bytes. Checking counts first keeps a hostile count from allocating gigabytes.
    if (n_kv > c.left() / 13) {
        throw format_error("metadata count: expected at most " + std::to_string(c.left() / 13) +
                           " for a file of " + std::to_string(size_) + " bytes, found " + std::to_string(n_kv));
    }
    if (n_tensors > c.left() / 24) {
        throw format_error("tensor count: expected at most " + std::to_string(c.left() / 24) +
                           " for a file of " + std::to_string(size_) + " bytes, found " + std::to_string(n_tensors));
    }

    // -- key/value pairs
    keys_.reserve(size_t(n_kv));
    for (uint64_t i = 0; i < n_kv; i++) {
        const std::string where = "metadata #" + std::to_string(i);
        const std::string key(c.str(where + " key"));
        const std::string what = "metadata " + quoted(key);
        if (key.empty()) throw format_error(where + " key: expected a non-empty string, found \"\"");
        if (kv_.count(key)) throw format_error(what + ": expected a unique key, found a duplicate");
        gguf_value v;
        v.type = read_type(c, what + " type");
        if (v.type == gguf_type::STRING) {
            v.strings.push_back(c.str(what));
        } else if (v.type == gguf_type::ARRAY) {
            v.elem_type = read_type(c, what + " element type");
            v.count = c.u64(what + " array length");
            if (v.elem_type == gguf_type::ARRAY) {
                throw format_error(what + " element type: expected a scalar or string type, found array");
            }
            if (v.elem_type == gguf_type::STRING) {
                if (v.count > c.left() / 8) {
                    throw format_error(what + " array length: expected at most " + std::to_string(c.left() / 8) +
                                       " strings in the bytes left, found " + std::to_string(v.count));
                }
                v.strings.reserve(size_t(v.count));
                for (uint64_t j = 0; j < v.count; j++) v.strings.push_back(c.str(what + "[" + std::to_string(j) + "]"));
            } else {
                const size_t es = gguf_scalar_size(v.elem_type);
                if (v.count > c.left() / es) {
                    throw format_error(what + " array length: expected at most " + std::to_string(c.left() / es) +
                                       " elements in the bytes left, found " + std::to_string(v.count));
                }
                v.data = c.take(size_t(v.count * es), what);
            }
        } else {
            v.data = c.take(gguf_scalar_size(v.type), what);
            if (v.type == gguf_type::BOOL && *v.data > 1) {
                throw format_error(what + ": expected a bool 0 or 1, found " + std::to_string(*v.data));
            }
        }
        keys_.push_back(key);
        kv_.emplace(key, std::move(v));
    }

    if (const gguf_value* a = find("general.alignment")) {
        if (a->type != gguf_type::UINT32) {
            throw format_error(std::string("metadata \"general.alignment\": expected uint32, found ") +
                               (a->is_array() ? "an array" : gguf_type_name(a->type)));
        }
        alignment_ = load<uint32_t>(a->data);
        if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
            throw format_error("metadata \"general.alignment\": expected a power of two, found " +
                               std::to_string(alignment_));
        }
    }

    // -- tensor infos
    tensors_.reserve(size_t(n_tensors));
    for (uint64_t i = 0; i < n_tensors; i++) {
        gguf_tensor t;
        const std::string where = "tensor #" + std::to_string(i);
        t.name = std::string(c.str(where + " name"));
        const std::string what = "tensor " + quoted(t.name);
        if (t.name.empty()) throw format_error(where + " name: expected a non-empty string, found \"\"");
        if (tensor_index_.count(t.name)) throw format_error(what + ": expected a unique name, found a duplicate");
        t.n_dims = c.u32(what + " dimension count");
        if (t.n_dims == 0 || t.n_dims > k_max_dims) {
            throw format_error(what + " dimension count: expected 1.." + std::to_string(k_max_dims) +
                               ", found " + std::to_string(t.n_dims));
        }
        uint64_t n = 1;
        for (uint32_t d = 0; d < t.n_dims; d++) {
            const uint64_t ne = c.u64(what + " ne[" + std::to_string(d) + "]");
            if (ne > uint64_t(std::numeric_limits<int64_t>::max())) {
                throw format_error(what + " ne[" + std::to_string(d) + "]: expected below 2^63, found " +
                                   std::to_string(ne));
            }
            if (ne != 0 && n > uint64_t(std::numeric_limits<int64_t>::max()) / ne) {
                throw format_error(what + " shape: expected an element count below 2^63, found an overflow at ne[" +
                                   std::to_string(d) + "] = " + std::to_string(ne));
            }
            n *= ne;
            t.ne[d] = int64_t(ne);
        }
        t.n_elements = n;
        t.type = c.u32(what + " type");
        const type_traits* tt = find_type(t.type);
        if (tt == nullptr) {
            throw format_error(what + " type: expected a ggml type id (0-39, not a removed one), found " +
                               std::to_string(t.type));
        }
        if (t.ne[0] % tt->block_size != 0) {
            throw format_error(what + " ne[0]: expected a multiple of " + std::to_string(tt->block_size) +
                               " (block size of " + tt->name + "), found " + std::to_string(t.ne[0]));
        }
        t.n_bytes = n / tt->block_size * tt->type_size; // n < 2^63, type_size/block_size ≤ 8: no overflow
        t.offset = c.u64(what + " offset");
        if (t.offset % alignment_ != 0) {
            throw format_error(what + " offset: expected a multiple of the alignment " + std::to_string(alignment_) +
                               ", found " + std::to_string(t.offset));
        }
        tensor_index_.emplace(t.name, tensors_.size());
        tensors_.push_back(std::move(t));
    }

    // -- data section: starts at the next multiple of the alignment
    const uint64_t pad = (alignment_ - c.pos % alignment_) % alignment_;
    data_offset_ = c.pos + pad;
    if (n_tensors > 0 && data_offset_ > size_) {
        throw format_error("data section: expected to start at offset " + std::to_string(data_offset_) +
                           ", found end of file at " + std::to_string(size_));
    }
    const uint64_t data_size = size_ >= data_offset_ ? size_ - data_offset_ : 0;
    for (gguf_tensor& t : tensors_) {
        if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
            throw format_error("tensor " + quoted(t.name) + " data: expected bytes [" + std::to_string(t.offset) +
                               ", " + std::to_string(t.offset + t.n_bytes) + ") inside the data section of " +
                               std::to_string(data_size) + " bytes, found them past its end (file truncated?)");
        }
        t.data = base_ + data_offset_ + t.offset;
    }
    // Tensors must not overlap: a hostile file could alias one weight onto another.
    std::vector<const gguf_tensor*> by_offset;
    for (const gguf_tensor& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const gguf_tensor* a, const gguf_tensor* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); i++) {
        const gguf_tensor* a = by_offset[i - 1];
        const gguf_tensor* b = by_offset[i];
        if (b->offset < a->offset + a->n_bytes) {
            throw format_error("tensor " + quoted(b->name) + " offset: expected at least " +
                               std::to_string(a->offset + a->n_bytes) + " (end of " + quoted(a->name) +
                               "), found " + std::to_string(b->offset) + " (overlapping data)");
        }
    }
}

const gguf_value* gguf_file::find(const std::string& key) const {
    auto it = kv_.find(key);
    return it == kv_.end() ? nullptr : &it->second;
}

const gguf_value& gguf_file::get(const std::string& key) const {
    const gguf_value* v = find(key);
    if (!v) throw format_error("metadata " + quoted(key) + ": expected to be present, found nothing");
    return *v;
}

uint32_t gguf_file::get_u32(const std::string& key) const {
    const uint64_t v = get(key).as_uint(key);
    if (v > std::numeric_limits<uint32_t>::max()) {
        throw format_error("metadata " + quoted(key) + ": expected a value below 2^32, found " + std::to_string(v));
    }
    return uint32_t(v);
}

uint32_t gguf_file::get_u32(const std::string& key, uint32_t fallback) const {
    return find(key) ? get_u32(key) : fallback;
}

float gguf_file::get_f32(const std::string& key) const {
    const double v = get(key).as_float(key);
    if (!std::isfinite(v)) throw format_error("metadata " + quoted(key) + ": expected a finite number, found " + std::to_string(v));
    return float(v);
}

float gguf_file::get_f32(const std::string& key, float fallback) const {
    return find(key) ? get_f32(key) : fallback;
}

std::string gguf_file::get_string(const std::string& key) const {
    return std::string(get(key).as_string(key));
}

const gguf_tensor* gguf_file::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const gguf_tensor& gguf_file::tensor(const std::string& name) const {
    const gguf_tensor* t = find_tensor(name);
    if (!t) throw format_error("tensor " + quoted(name) + ": expected to be present, found nothing");
    return *t;
}

} // namespace pyrnn
