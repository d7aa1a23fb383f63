// capi.cpp — the C API (include/pyrnn.h) on top of the C++ core. Every entry point catches
// everything: errors become a pyrnn_status plus a thread-local message, never an exception.
#include "include/pyrnn.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bpe_tokenizer.h"
#include "gguf.h"
#include "kernels/kernels.h"
#include "mapped_file.h"
#include "models/model.h"
#include "sampler.h"
#include "sha256.h"
#include "threads.h"
#include "tokenizer.h"

using namespace pyrnn;

namespace {

constexpr const char* version_string = "0.1.0"; // = pyproject.toml's version (test_capi checks)
constexpr char state_magic[8] = {'P', 'Y', 'R', 'N', 'N', 'S', 'T', '\0'};
constexpr size_t state_prefix = 16; // magic, u32 version, u32 header length

// ---- errors at the border ------------------------------------------------------------------

std::string& last_error() {
    thread_local std::string message;
    return message;
}

// Thrown inside, caught at the border.
struct api_error {
    int code;
    std::string message;
};

int& last_status() {
    thread_local int status = PYRNN_OK;
    return status;
}

int set_error(int code, const char* message) {
    last_status() = code;
    try {
        last_error() = message;
    } catch (...) { // no memory even for the message: keep the old one
    }
    return code;
}

// The status for the exception being handled; records its message.
int current_error() {
    try {
        throw;
    } catch (const api_error& e) {
        return set_error(e.code, e.message.c_str());
    } catch (const file_error& e) {
        return set_error(PYRNN_ERR_FILE, e.what());
    } catch (const format_error& e) {
        return set_error(PYRNN_ERR_FORMAT, e.what());
    } catch (const std::bad_alloc&) {
        return set_error(PYRNN_ERR_MEMORY, "out of memory");
    } catch (const std::invalid_argument& e) {
        return set_error(PYRNN_ERR_ARGUMENT, e.what());
    } catch (const std::out_of_range& e) {
        return set_error(PYRNN_ERR_ARGUMENT, e.what());
    } catch (const std::exception& e) {
        return set_error(PYRNN_ERR_INTERNAL, e.what());
    } catch (...) {
        return set_error(PYRNN_ERR_INTERNAL, "unknown C++ exception");
    }
}

template <typename F>
auto guarded(F&& f, decltype(f()) on_error_value) noexcept -> decltype(f()) {
    try {
        return f();
    } catch (...) {
        current_error();
        return on_error_value;
    }
}

// For functions returning a status or a count: the status itself on error.
template <typename F>
auto guarded_status(F&& f) noexcept -> decltype(f()) {
    try {
        return f();
    } catch (...) {
        return current_error();
    }
}

[[noreturn]] void fail(int code, std::string message) { throw api_error{code, std::move(message)}; }

template <typename T>
void require(const T* p, const char* what) {
    if (p == nullptr) fail(PYRNN_ERR_ARGUMENT, std::string(what) + ": expected a pointer, found NULL");
}

// ---- models --------------------------------------------------------------------------------

struct aligned_delete {
    void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(64)); }
};

// What pyrnn_model and its states share. Members are destroyed bottom-up: the model, then the
// file, then the bytes it views.
struct model_impl {
    std::unique_ptr<uint8_t, aligned_delete> bytes; // from_memory only
    std::shared_ptr<const gguf_file> file;
    std::unique_ptr<model> m;
    std::string arch;
    std::string fingerprint;

    std::once_flag tokenizer_once;
    int tokenizer_status = PYRNN_OK;
    std::string tokenizer_error;
    std::string tokenizer_kind;              // "rwkv" or "gpt2"
    std::unique_ptr<world_tokenizer> world;  // "rwkv"
    std::unique_ptr<bpe_tokenizer> bpe;      // "gpt2"
    std::string bpe_pre;                     // "gpt2": tokenizer.ggml.pre ("gpt-2" when absent)

    const model_impl& with_tokenizer() const;
};

// Python's pyrnn.model._fingerprint, byte for byte: sha256 of the header [0, data_offset) and of
// the first and last (up to) 2 KiB of every (n_tensors / 16 or 1)-th tensor's data.
std::string fingerprint(const gguf_file& f) {
    sha256 h;
    h.update(f.bytes(), size_t(f.data_offset()));
    const auto& ts = f.tensors();
    const size_t step = std::max<size_t>(1, ts.size() / 16);
    for (size_t i = 0; i < ts.size(); i += step) {
        const uint64_t n = ts[i].n_bytes;
        const uint64_t head = std::min<uint64_t>(n, 2048);
        const uint64_t tail = n > 2048 ? n - 2048 : 0;
        h.update(ts[i].data, size_t(head));
        h.update(ts[i].data + tail, size_t(n - tail));
    }
    return h.hex_digest();
}

void load_tokenizer(model_impl& mi) {
    const gguf_file& f = *mi.file;
    const gguf_value* kind = f.find("tokenizer.ggml.model");
    if (kind == nullptr) {
        fail(PYRNN_ERR_UNSUPPORTED, "model file: expected tokenizer.ggml.model (a tokenizer in the file), found none");
    }
    mi.tokenizer_kind = std::string(kind->as_string("tokenizer.ggml.model"));
    if (mi.tokenizer_kind != "rwkv" && mi.tokenizer_kind != "gpt2") {
        fail(PYRNN_ERR_UNSUPPORTED, "tokenizer.ggml.model: expected 'rwkv' or 'gpt2', found '" + mi.tokenizer_kind + "'");
    }
    const gguf_value& tokens = f.get("tokenizer.ggml.tokens");
    if (!tokens.is_array() || tokens.elem_type != gguf_type::STRING) {
        fail(PYRNN_ERR_FORMAT, "tokenizer.ggml.tokens: expected an array of strings");
    }
    std::vector<int32_t> types(tokens.strings.size(), 1);
    if (const gguf_value* tv = f.find("tokenizer.ggml.token_type")) {
        if (!tv->is_array() || tv->count != tokens.count) {
            fail(PYRNN_ERR_FORMAT, "tokenizer.ggml.token_type: expected an array of " + std::to_string(tokens.count) +
                                       " integers");
        }
        for (uint64_t i = 0; i < tv->count; i++) types[i] = int32_t(tv->array_int(i));
    }
    if (mi.tokenizer_kind == "rwkv") {
        mi.world = std::make_unique<world_tokenizer>(world_tokenizer::from_gguf_tokens(tokens.strings, types));
        return;
    }
    std::vector<std::string_view> merges;
    if (const gguf_value* m = f.find("tokenizer.ggml.merges")) {
        if (m->strings.size() != m->count) fail(PYRNN_ERR_FORMAT, "tokenizer.ggml.merges: expected an array of strings");
        merges = m->strings;
    }
    const gguf_value* pre = f.find("tokenizer.ggml.pre");
    mi.bpe_pre = pre == nullptr ? "gpt-2" : std::string(pre->as_string("tokenizer.ggml.pre"));
    mi.bpe = std::make_unique<bpe_tokenizer>(tokens.strings, types, merges);
}

const model_impl& model_impl::with_tokenizer() const {
    auto& self = const_cast<model_impl&>(*this); // built once, lazily; immutable afterwards
    std::call_once(self.tokenizer_once, [&self] {
        try {
            load_tokenizer(self);
        } catch (...) {
            self.tokenizer_status = current_error();
            self.tokenizer_error = last_error();
        }
    });
    if (tokenizer_status != PYRNN_OK) fail(tokenizer_status, tokenizer_error);
    return *this;
}

} // namespace

struct pyrnn_model {
    std::shared_ptr<model_impl> impl;
};

struct pyrnn_state {
    std::shared_ptr<model_impl> impl;
    std::vector<float> data;
    mutable std::atomic<bool> busy{false};
};

namespace {

pyrnn_model* finish_load(std::shared_ptr<model_impl> mi, const std::string& where) {
    try {
        mi->m = load_model(mi->file);
    } catch (const format_error& e) {
        throw format_error(where + e.what());
    }
    mi->m->set_threads(default_threads());
    mi->arch = mi->m->arch();
    mi->fingerprint = fingerprint(*mi->file);
    return new pyrnn_model{std::move(mi)};
}

// Holds a state for one call; a second concurrent user gets PYRNN_ERR_BUSY instead of a race.
struct state_guard {
    const pyrnn_state& s;
    explicit state_guard(const pyrnn_state& st) : s(st) {
        if (s.busy.exchange(true, std::memory_order_acquire)) {
            fail(PYRNN_ERR_BUSY, "state: already in use by another thread (give each thread its own pyrnn_state_clone)");
        }
    }
    ~state_guard() { s.busy.store(false, std::memory_order_release); }
};

const model_impl& check_model(const pyrnn_model* m) {
    require(m, "model");
    return *m->impl;
}

// The state belongs to this model file (the same handle, or another handle of the same file).
void check_pair(const model_impl& mi, const pyrnn_state* s) {
    require(s, "state");
    if (s->impl.get() != &mi && (s->impl->fingerprint != mi.fingerprint || s->data.size() != mi.m->state_size())) {
        fail(PYRNN_ERR_STATE, "state: expected a state of this model, found one of another model");
    }
}

int eval(const pyrnn_model* model_, pyrnn_state* state, const int32_t* tokens, size_t n, float* logits, bool all) {
    const model_impl& mi = check_model(model_);
    check_pair(mi, state);
    require(tokens, "tokens");
    if (n == 0) fail(PYRNN_ERR_ARGUMENT, "n: expected at least one token, found 0");
    if (all) require(logits, "logits");
    const int64_t V = mi.m->n_vocab();
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= V) {
            fail(PYRNN_ERR_ARGUMENT, "tokens[" + std::to_string(i) + "]: expected an id in [0, " + std::to_string(V) +
                                         "), found " + std::to_string(tokens[i]));
        }
    }
    std::vector<float> scratch;
    if (logits == nullptr) {
        scratch.resize(size_t(V));
        logits = scratch.data();
    }
    state_guard hold(*state);
    const std::shared_ptr<thread_pool> pool = mi.m->threads_pool(); // kept alive past a set_threads
    pool_scope threads(pool.get());
    mi.m->forward(tokens, n, state->data.data(), logits, all);
    return PYRNN_OK;
}

// ---- state bytes ---------------------------------------------------------------------------

bool little_endian() {
    const uint16_t one = 1;
    uint8_t b;
    std::memcpy(&b, &one, 1);
    return b == 1;
}

void put_u32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}

uint32_t get_u32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto c = uint8_t(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            out += "\\u00";
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

// The JSON header exactly as Python's json.dumps writes it (", " and ": " separators).
std::string state_header(const pyrnn_state& s) {
    return "{\"arch\": " + json_string(s.impl->arch) + ", \"state_size\": " + std::to_string(s.data.size()) +
           ", \"model_fingerprint\": " + json_string(s.impl->fingerprint) + ", \"dtype\": \"float32\"}";
}

// Enough JSON to read a state header: one object; strings, numbers, true/false/null, and nested
// arrays/objects (skipped). Values we keep are strings and integers.
struct json_field {
    bool is_string = false, is_integer = false;
    std::string text;
    long long integer = 0;
};

class json_reader {
  public:
    explicit json_reader(std::string_view s) : s_(s) {}

    std::vector<std::pair<std::string, json_field>> object() {
        std::vector<std::pair<std::string, json_field>> out;
        expect('{');
        if (peek() == '}') {
            pos_++;
        } else {
            for (;;) {
                skip_ws();
                std::string key = string();
                expect(':');
                out.emplace_back(std::move(key), value(0));
                skip_ws();
                if (peek() == ',') { pos_++; continue; }
                expect('}');
                break;
            }
        }
        skip_ws();
        if (pos_ != s_.size()) bad("trailing characters");
        return out;
    }

  private:
    [[noreturn]] void bad(const char* what) {
        fail(PYRNN_ERR_STATE, std::string("state header: expected JSON with arch, state_size, model_fingerprint (") +
                                  what + " at character " + std::to_string(pos_) + ")");
    }
    void skip_ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) pos_++;
    }
    char peek() {
        skip_ws();
        return pos_ < s_.size() ? s_[pos_] : '\0';
    }
    void expect(char c) {
        if (peek() != c) bad("unexpected character");
        pos_++;
    }
    void utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | cp >> 6);
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | cp >> 12);
            out += char(0x80 | (cp >> 6 & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | cp >> 18);
            out += char(0x80 | (cp >> 12 & 0x3F));
            out += char(0x80 | (cp >> 6 & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }
    uint32_t hex4() {
        if (s_.size() - pos_ < 4) bad("short \\u escape");
        uint32_t v = 0;
        for (int i = 0; i < 4; i++) {
            const char c = s_[pos_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
            else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
            else bad("bad \\u escape");
        }
        return v;
    }
    std::string string() {
        expect('"');
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) bad("unterminated string");
            const char c = s_[pos_++];
            if (c == '"') return out;
            if (uint8_t(c) < 0x20) bad("control character in string");
            if (c != '\\') { out += c; continue; }
            if (pos_ >= s_.size()) bad("unterminated escape");
            const char e = s_[pos_++];
            switch (e) {
            case '"': case '\\': case '/': out += e; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                uint32_t cp = hex4();
                if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
                    const size_t save = pos_;
                    pos_ += 2;
                    const uint32_t lo = hex4();
                    if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else pos_ = save;
                }
                utf8(out, cp);
                break;
            }
            default: bad("unknown escape");
            }
        }
    }
    json_field value(int depth) {
        if (depth > 32) bad("nesting too deep");
        json_field v;
        const char c = peek();
        if (c == '"') {
            v.is_string = true;
            v.text = string();
        } else if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            pos_++;
            if (peek() == close) { pos_++; return v; }
            for (;;) {
                if (c == '{') { skip_ws(); string(); expect(':'); }
                value(depth + 1);
                if (peek() == ',') { pos_++; continue; }
                expect(close);
                return v;
            }
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            const size_t start = pos_;
            if (s_[pos_] == '-') pos_++;
            while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') pos_++;
            bool integer = pos_ > start + (s_[start] == '-' ? 1 : 0);
            while (pos_ < s_.size() && std::strchr("0123456789.eE+-", s_[pos_]) != nullptr) {
                integer = false;
                pos_++;
            }
            const std::string num(s_.substr(start, pos_ - start));
            if (integer && num.size() <= 18) {
                v.is_integer = true;
                v.integer = std::stoll(num);
            }
        } else if (s_.substr(pos_, 4) == "true" || s_.substr(pos_, 4) == "null") {
            pos_ += 4;
        } else if (s_.substr(pos_, 5) == "false") {
            pos_ += 5;
        } else {
            bad("unexpected character");
        }
        return v;
    }

    std::string_view s_;
    size_t pos_ = 0;
};

} // namespace

// The sampler of csrc/sampler.h, the same that Python's generate() uses: same seed, same tokens.
struct pyrnn_sampler {
    pyrnn::sampler_params params;
    pyrnn::rng rng;
};

// ==== the API ================================================================================

extern "C" {

const char* pyrnn_version(void) { return version_string; }

const char* pyrnn_last_error(void) { return last_error().c_str(); }

int pyrnn_last_status(void) { return last_status(); }

const char* pyrnn_status_name(int status) {
    switch (status) {
    case PYRNN_OK: return "PYRNN_OK";
    case PYRNN_ERR_ARGUMENT: return "PYRNN_ERR_ARGUMENT";
    case PYRNN_ERR_FILE: return "PYRNN_ERR_FILE";
    case PYRNN_ERR_FORMAT: return "PYRNN_ERR_FORMAT";
    case PYRNN_ERR_STATE: return "PYRNN_ERR_STATE";
    case PYRNN_ERR_UNSUPPORTED: return "PYRNN_ERR_UNSUPPORTED";
    case PYRNN_ERR_MEMORY: return "PYRNN_ERR_MEMORY";
    case PYRNN_ERR_BUSY: return "PYRNN_ERR_BUSY";
    case PYRNN_ERR_INTERNAL: return "PYRNN_ERR_INTERNAL";
    default: return "PYRNN_UNKNOWN_STATUS";
    }
}

const char* pyrnn_isa(void) {
    return guarded([] { return kernels().isa; }, static_cast<const char*>(nullptr));
}

pyrnn_model* pyrnn_model_load(const char* path) {
    return guarded([path] {
        require(path, "path");
        auto mi = std::make_shared<model_impl>();
        mi->file = gguf_file::open(path);
        return finish_load(std::move(mi), "'" + std::string(path) + "': ");
    }, static_cast<pyrnn_model*>(nullptr));
}

pyrnn_model* pyrnn_model_load_from_memory(const void* data, size_t size) {
    return guarded([data, size] {
        require(data, "data");
        auto mi = std::make_shared<model_impl>();
        mi->bytes.reset(static_cast<uint8_t*>(::operator new(std::max<size_t>(size, 1), std::align_val_t(64))));
        std::memcpy(mi->bytes.get(), data, size);
        try {
            mi->file = gguf_file::from_memory(mi->bytes.get(), size);
        } catch (const format_error& e) {
            throw format_error(std::string("model in memory: ") + e.what());
        }
        return finish_load(std::move(mi), "model in memory: ");
    }, static_cast<pyrnn_model*>(nullptr));
}

void pyrnn_model_free(pyrnn_model* model) { delete model; }

int pyrnn_model_set_threads(pyrnn_model* model, int n_threads) {
    return guarded_status([=] {
        require(model, "model");
        if (n_threads < 0 || n_threads > max_threads) {
            fail(PYRNN_ERR_ARGUMENT, "n_threads: expected 0 (physical cores) .. " + std::to_string(max_threads) +
                                         ", found " + std::to_string(n_threads));
        }
        model->impl->m->set_threads(n_threads == 0 ? default_threads() : n_threads);
        return int(PYRNN_OK);
    });
}

int pyrnn_model_threads(const pyrnn_model* model) {
    return guarded_status([=] { return check_model(model).m->threads(); });
}

const char* pyrnn_model_arch(const pyrnn_model* model) {
    return guarded([=] { return check_model(model).arch.c_str(); }, static_cast<const char*>(nullptr));
}

const char* pyrnn_model_fingerprint(const pyrnn_model* model) {
    return guarded([=] { return check_model(model).fingerprint.c_str(); }, static_cast<const char*>(nullptr));
}

int32_t pyrnn_n_vocab(const pyrnn_model* model) {
    return guarded([=] { return int32_t(check_model(model).m->n_vocab()); }, int32_t(-1));
}

int32_t pyrnn_n_embd(const pyrnn_model* model) {
    return guarded([=] { return int32_t(check_model(model).m->n_embd()); }, int32_t(-1));
}

int32_t pyrnn_n_layer(const pyrnn_model* model) {
    return guarded([=] { return int32_t(check_model(model).m->n_layer()); }, int32_t(-1));
}

size_t pyrnn_state_size(const pyrnn_model* model) {
    return guarded([=] { return check_model(model).m->state_size(); }, size_t(0));
}

int pyrnn_eval(const pyrnn_model* model, pyrnn_state* state, const int32_t* tokens, size_t n, float* logits) {
    return guarded_status([=] { return eval(model, state, tokens, n, logits, false); });
}

int pyrnn_eval_all(const pyrnn_model* model, pyrnn_state* state, const int32_t* tokens, size_t n, float* logits) {
    return guarded_status([=] { return eval(model, state, tokens, n, logits, true); });
}

pyrnn_state* pyrnn_state_new(const pyrnn_model* model) {
    return guarded([=] {
        const model_impl& mi = check_model(model);
        auto s = std::make_unique<pyrnn_state>();
        s->impl = model->impl;
        s->data.resize(mi.m->state_size());
        mi.m->init_state(s->data.data());
        return s.release();
    }, static_cast<pyrnn_state*>(nullptr));
}

pyrnn_state* pyrnn_state_clone(const pyrnn_state* state) {
    return guarded([=] {
        require(state, "state");
        auto s = std::make_unique<pyrnn_state>();
        s->impl = state->impl;
        state_guard hold(*state);
        s->data = state->data;
        return s.release();
    }, static_cast<pyrnn_state*>(nullptr));
}

void pyrnn_state_free(pyrnn_state* state) { delete state; }

int pyrnn_state_reset(pyrnn_state* state) {
    return guarded_status([=] {
        require(state, "state");
        state_guard hold(*state);
        state->impl->m->init_state(state->data.data());
        return int(PYRNN_OK);
    });
}

int pyrnn_state_copy(pyrnn_state* dst, const pyrnn_state* src) {
    return guarded_status([=] {
        require(dst, "dst");
        require(src, "src");
        if (dst == src) return int(PYRNN_OK);
        check_pair(*dst->impl, src);
        state_guard hold_src(*src);
        state_guard hold_dst(*dst);
        dst->data = src->data;
        return int(PYRNN_OK);
    });
}

float* pyrnn_state_data(pyrnn_state* state) {
    return guarded([=] {
        require(state, "state");
        return state->data.data();
    }, static_cast<float*>(nullptr));
}

size_t pyrnn_state_serialized_size(const pyrnn_state* state) {
    return guarded([=] {
        require(state, "state");
        return state_prefix + state_header(*state).size() + 4 * state->data.size();
    }, size_t(0));
}

int pyrnn_state_serialize(const pyrnn_state* state, void* buf, size_t capacity) {
    return guarded_status([=] {
        require(state, "state");
        require(buf, "buf");
        const std::string header = state_header(*state);
        const size_t need = state_prefix + header.size() + 4 * state->data.size();
        if (capacity < need) {
            fail(PYRNN_ERR_ARGUMENT, "capacity: expected at least " + std::to_string(need) + " bytes, found " +
                                         std::to_string(capacity));
        }
        auto* p = static_cast<uint8_t*>(buf);
        std::memcpy(p, state_magic, 8);
        put_u32(p + 8, PYRNN_STATE_FORMAT);
        put_u32(p + 12, uint32_t(header.size()));
        std::memcpy(p + state_prefix, header.data(), header.size());
        p += state_prefix + header.size();
        state_guard hold(*state);
        if (little_endian()) {
            std::memcpy(p, state->data.data(), 4 * state->data.size());
        } else {
            for (size_t i = 0; i < state->data.size(); i++) {
                uint32_t v;
                std::memcpy(&v, &state->data[i], 4);
                put_u32(p + 4 * i, v);
            }
        }
        return int(PYRNN_OK);
    });
}

// The checks and messages of Python's State.from_bytes, in the same order.
int pyrnn_state_deserialize(pyrnn_state* state, const void* buf, size_t size) {
    return guarded_status([=] {
        require(state, "state");
        if (buf == nullptr && size > 0) require(buf, "buf");
        const auto* p = static_cast<const uint8_t*>(buf);
        if (size < state_prefix) {
            fail(PYRNN_ERR_STATE, "state: expected at least " + std::to_string(state_prefix) + " bytes, found " +
                                      std::to_string(size));
        }
        if (std::memcmp(p, state_magic, 8) != 0) fail(PYRNN_ERR_STATE, "state magic: expected \"PYRNNST\\0\", found other bytes");
        const uint32_t version = get_u32(p + 8);
        if (version != PYRNN_STATE_FORMAT) {
            fail(PYRNN_ERR_STATE, "state format version: expected " + std::to_string(PYRNN_STATE_FORMAT) + ", found " +
                                      std::to_string(version));
        }
        const uint32_t n = get_u32(p + 12);
        if (n > size - state_prefix) {
            fail(PYRNN_ERR_STATE, "state header length: expected at most " + std::to_string(size - state_prefix) +
                                      ", found " + std::to_string(n));
        }
        const auto fields = json_reader({reinterpret_cast<const char*>(p + state_prefix), n}).object();
        const json_field* arch = nullptr;
        const json_field* count = nullptr;
        const json_field* fp = nullptr;
        const json_field* dtype = nullptr;
        for (const auto& [key, value] : fields) { // the last duplicate wins, as in Python
            if (key == "arch") arch = &value;
            else if (key == "state_size") count = &value;
            else if (key == "model_fingerprint") fp = &value;
            else if (key == "dtype") dtype = &value;
        }
        if (arch == nullptr || count == nullptr || fp == nullptr || !count->is_integer) {
            fail(PYRNN_ERR_STATE, "state header: expected JSON with arch, state_size (an integer), model_fingerprint");
        }
        const model_impl& mi = *state->impl;
        const size_t want = state->data.size();
        if (!arch->is_string || arch->text != mi.arch || count->integer < 0 || uint64_t(count->integer) != want) {
            fail(PYRNN_ERR_STATE, "state: expected a " + mi.arch + " state of " + std::to_string(want) + " floats, found a " +
                                      (arch->is_string ? arch->text : std::string("?")) + " state of " +
                                      std::to_string(count->integer));
        }
        if (!fp->is_string || fp->text != mi.fingerprint) {
            fail(PYRNN_ERR_STATE, "state: expected a state saved with this model, found one of another model file "
                                  "(fingerprint " + fp->text.substr(0, 12) + "..., model " + mi.fingerprint.substr(0, 12) + "...)");
        }
        if (dtype != nullptr && !(dtype->is_string && dtype->text == "float32")) {
            fail(PYRNN_ERR_STATE, "state dtype: expected \"float32\", found another");
        }
        const size_t payload = size - state_prefix - n;
        if (payload != 4 * want) {
            fail(PYRNN_ERR_STATE, "state data: expected " + std::to_string(4 * want) + " bytes, found " + std::to_string(payload));
        }
        const uint8_t* d = p + state_prefix + n;
        state_guard hold(*state);
        for (size_t i = 0; i < want; i++) {
            const uint32_t v = get_u32(d + 4 * i);
            std::memcpy(&state->data[i], &v, 4);
        }
        return int(PYRNN_OK);
    });
}

int64_t pyrnn_tokenize(const pyrnn_model* model, const char* text, int64_t len, int32_t* ids, size_t capacity) {
    return guarded_status([=]() -> int64_t {
        const model_impl& mi = check_model(model).with_tokenizer();
        if (text == nullptr && len != 0) require(text, "text");
        if (ids == nullptr && capacity > 0) require(ids, "ids");
        const size_t n = len < 0 ? std::strlen(text) : size_t(len);
        const std::string_view view(text == nullptr ? "" : text, n);
        if (mi.bpe != nullptr && mi.bpe_pre != "gpt-2") {
            // "mpt" (GPT-NeoX) normalizes to NFC before splitting, which the C API does not do; ASCII
            // is its own NFC, so it encodes the same. Other pre-tokenizers: not known here.
            const bool ascii = std::all_of(view.begin(), view.end(), [](char c) { return uint8_t(c) < 0x80; });
            if (mi.bpe_pre != "mpt" || !ascii) {
                fail(PYRNN_ERR_UNSUPPORTED, "tokenizer.ggml.pre '" + mi.bpe_pre + "': " +
                                                (mi.bpe_pre == "mpt" ? "expected ASCII text (NFC normalization is not "
                                                                       "implemented in the C API), found other bytes"
                                                                     : "expected 'gpt-2' or 'mpt'"));
            }
        }
        const std::vector<int32_t> out = mi.world ? mi.world->encode(view) : mi.bpe->encode(view);
        std::copy_n(out.begin(), std::min(out.size(), capacity), ids);
        return int64_t(out.size());
    });
}

int64_t pyrnn_detokenize(const pyrnn_model* model, const int32_t* ids, size_t n, char* buf, size_t capacity) {
    return guarded_status([=]() -> int64_t {
        const model_impl& mi = check_model(model).with_tokenizer();
        if (ids == nullptr && n > 0) require(ids, "ids");
        if (buf == nullptr && capacity > 0) require(buf, "buf");
        const std::string out = mi.world ? mi.world->decode(ids, n) : mi.bpe->decode(ids, n);
        if (capacity > 0) {
            const size_t k = std::min(out.size(), capacity - 1);
            std::memcpy(buf, out.data(), k);
            buf[k] = '\0';
        }
        return int64_t(out.size());
    });
}

int32_t pyrnn_token_eos(const pyrnn_model* model) {
    return guarded([=]() -> int32_t {
        const gguf_value* v = check_model(model).file->find("tokenizer.ggml.eos_token_id");
        return v == nullptr ? -1 : int32_t(v->as_int("tokenizer.ggml.eos_token_id"));
    }, int32_t(-1));
}

pyrnn_sampler* pyrnn_sampler_new(float temperature, int32_t top_k, float top_p, uint64_t seed) {
    return guarded([&] {
        pyrnn::sampler_params p;
        p.temperature = temperature;
        p.top_k = top_k;
        p.top_p = top_p;
        pyrnn::check_params(p); // throws std::invalid_argument naming the bad field
        return new pyrnn_sampler{p, pyrnn::rng_seeded(seed)};
    }, static_cast<pyrnn_sampler*>(nullptr));
}

void pyrnn_sampler_free(pyrnn_sampler* sampler) { delete sampler; }

int32_t pyrnn_sampler_sample(pyrnn_sampler* sampler, const float* logits, int32_t n_vocab) {
    return guarded_status([=]() -> int32_t {
        require(sampler, "sampler");
        require(logits, "logits");
        if (n_vocab <= 0) fail(PYRNN_ERR_ARGUMENT, "n_vocab: expected at least 1, found " + std::to_string(n_vocab));
        return pyrnn::sample(logits, size_t(n_vocab), nullptr, 0, sampler->params, sampler->rng);
    });
}

} // extern "C"
