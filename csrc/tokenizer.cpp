// RWKV "World" tokenizer; see tokenizer.h.
#include "tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <limits>
#include <stdexcept>
#include <utility>

namespace pyrnn {

namespace {

// Token text for an error message: printable ASCII as is, other bytes as \xNN (the message must
// be valid UTF-8 for Python), cut after 80 bytes (a token may be long).
std::string printable(std::string_view s) {
    constexpr size_t max_shown = 80;
    std::string out;
    for (size_t i = 0; i < s.size() && i < max_shown; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    if (s.size() > max_shown) out += "...";
    return out;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Inverse of Python's repr(bytes)[2:-1]. Returns an empty string on success, else what is wrong.
std::string unescape_token(std::string_view s, std::string& out) {
    out.clear();
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c != '\\') {
            out += c;
            continue;
        }
        if (i + 1 == s.size()) return "backslash at the end";
        const char e = s[++i];
        switch (e) {
            case '\\':
                out += '\\';
                break;
            case '\'':
                out += '\'';
                break;
            case '"':
                out += '"';
                break;
            case 'n':
                out += '\n';
                break;
            case 't':
                out += '\t';
                break;
            case 'r':
                out += '\r';
                break;
            case 'x': {
                const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
                const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
                if (hi < 0 || lo < 0) {
                    return "\\x at offset " + std::to_string(i - 1) + " is not followed by two hex digits";
                }
                out += static_cast<char>(hi * 16 + lo);
                i += 2;
                break;
            }
            default:
                // Python would read e.g. \a as BEL and llama.cpp as 'a'; repr(bytes) never writes it.
                return "unknown escape \\" + printable(std::string_view(&s[i], 1)) + " at offset " +
                       std::to_string(i - 1);
        }
    }
    return {};
}

}  // namespace

world_tokenizer::world_tokenizer(std::vector<std::string> token_bytes)
    : world_tokenizer(std::move(token_bytes), std::vector<bool>()) {}

world_tokenizer::world_tokenizer(std::vector<std::string> token_bytes, const std::vector<bool>& matchable)
    : token_bytes_(std::move(token_bytes)) {
    if (token_bytes_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        throw std::invalid_argument("world_tokenizer: " + std::to_string(token_bytes_.size()) +
                                    " tokens do not fit int32 ids");
    }
    build_trie(matchable);
}

// matchable empty = every token may be produced (except id 0 and empty ones, always excluded).
void world_tokenizer::build_trie(const std::vector<bool>& matchable) {
    std::vector<uint32_t> ids;
    ids.reserve(token_bytes_.size());
    for (size_t id = 1; id < token_bytes_.size(); ++id) {
        if (token_bytes_[id].empty()) continue;
        if (!matchable.empty() && !matchable[id]) continue;
        ids.push_back(static_cast<uint32_t>(id));
    }
    // Sorted by bytes (std::string compares as unsigned char), equal bytes by id: every trie node is a
    // contiguous range of ids, and the tokens ending at a node come first in its range.
    std::sort(ids.begin(), ids.end(), [this](uint32_t a, uint32_t b) {
        const int c = token_bytes_[a].compare(token_bytes_[b]);
        return c != 0 ? c < 0 : a < b;
    });

    labels_.assign(1, 0);
    first_child_.assign(1, 0);
    n_children_.assign(1, 0);
    token_.assign(1, -1);

    struct pending {
        uint32_t node;
        size_t lo, hi, depth;  // ids[lo, hi) share their first `depth` bytes
    };
    std::deque<pending> queue{{0, 0, ids.size(), 0}};
    while (!queue.empty()) {
        const pending p = queue.front();
        queue.pop_front();
        size_t i = p.lo;
        // Tokens that end here: keep the highest id of equal byte strings (last in the sorted range).
        while (i < p.hi && token_bytes_[ids[i]].size() == p.depth)
            token_[p.node] = static_cast<int32_t>(ids[i++]);
        // Breadth-first numbering: all children of this node are appended now, hence contiguous.
        first_child_[p.node] = static_cast<uint32_t>(labels_.size());
        while (i < p.hi) {
            const auto byte = static_cast<uint8_t>(token_bytes_[ids[i]][p.depth]);
            size_t j = i + 1;
            while (j < p.hi && static_cast<uint8_t>(token_bytes_[ids[j]][p.depth]) == byte) ++j;
            if (labels_.size() == std::numeric_limits<uint32_t>::max()) {
                throw std::invalid_argument("world_tokenizer: vocabulary too large for a 32-bit trie");
            }
            const auto child = static_cast<uint32_t>(labels_.size());
            labels_.push_back(byte);
            first_child_.push_back(0);
            n_children_.push_back(0);
            token_.push_back(-1);
            ++n_children_[p.node];
            queue.push_back({child, i, j, p.depth + 1});
            i = j;
        }
    }

    root_child_.fill(0);
    for (uint32_t c = first_child_[0]; c < first_child_[0] + n_children_[0]; ++c) {
        root_child_[labels_[c]] = c;
    }
    // encode relies on this: every position can at least take its own byte, so it never fails.
    for (unsigned b = 0; b < 256; ++b) {
        const uint32_t c = root_child_[b];
        if (c == 0 || token_[c] < 0) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "0x%02x", b);
            throw std::invalid_argument(
                std::string("world_tokenizer: no token that encode may produce consists of the single "
                            "byte ") +
                hex + " (a World vocabulary has one for every byte: ids 1..256)");
        }
    }
}

uint32_t world_tokenizer::find_child(uint32_t node, uint8_t byte) const {
    const uint32_t first = first_child_[node];
    const uint32_t n = n_children_[node];
    const uint8_t* labels = labels_.data() + first;
    if (n <= 16) {
        for (uint32_t k = 0; k < n; ++k) {
            if (labels[k] == byte) return first + k;
        }
        return 0;
    }
    const uint8_t* it = std::lower_bound(labels, labels + n, byte);
    return (it != labels + n && *it == byte) ? first + static_cast<uint32_t>(it - labels) : 0;
}

world_tokenizer world_tokenizer::from_gguf_tokens(const std::vector<std::string_view>& tokens,
                                                  const std::vector<int32_t>& token_types) {
    if (tokens.size() != token_types.size()) {
        throw std::invalid_argument("from_gguf_tokens: " + std::to_string(tokens.size()) + " tokens but " +
                                    std::to_string(token_types.size()) + " token types");
    }
    std::vector<std::string> bytes(tokens.size());
    std::vector<bool> matchable(tokens.size());
    for (size_t id = 0; id < tokens.size(); ++id) {
        const std::string why = unescape_token(tokens[id], bytes[id]);
        if (!why.empty()) {
            throw std::invalid_argument("from_gguf_tokens: token " + std::to_string(id) + " \"" +
                                        printable(tokens[id]) + "\": " + why);
        }
        matchable[id] = token_types[id] != token_type_control && token_types[id] != token_type_unused;
    }
    return world_tokenizer(std::move(bytes), matchable);
}

std::vector<int32_t> world_tokenizer::encode(std::string_view text) const {
    const auto* p = reinterpret_cast<const uint8_t*>(text.data());
    const size_t n = text.size();
    std::vector<int32_t> out;
    out.reserve(n / 3 + 1);  // ~4 bytes/token in English text; grows for the rest
    size_t pos = 0;
    while (pos < n) {
        uint32_t node = root_child_[p[pos]];
        int32_t best = token_[node];  // never -1: checked in build_trie
        size_t best_end = pos + 1;
        for (size_t i = pos + 1; i < n;) {
            node = find_child(node, p[i]);
            if (node == 0) break;
            ++i;
            if (token_[node] >= 0) {
                best = token_[node];
                best_end = i;
            }
        }
        out.push_back(best);
        pos = best_end;
    }
    return out;
}

std::string world_tokenizer::decode(const int32_t* ids, size_t n) const {
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
        const int32_t id = ids[i];
        if (id < 0 || static_cast<size_t>(id) >= token_bytes_.size()) {
            throw std::out_of_range("decode: token id " + std::to_string(id) +
                                    " is out of range for vocabulary size " +
                                    std::to_string(token_bytes_.size()));
        }
        total += token_bytes_[static_cast<size_t>(id)].size();
    }
    std::string out;
    out.reserve(total);
    for (size_t i = 0; i < n; ++i) out += token_bytes_[static_cast<size_t>(ids[i])];
    return out;
}

}  // namespace pyrnn
