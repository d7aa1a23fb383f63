// Byte-level BPE encode/decode (see bpe_tokenizer.h for what it matches and why).
#include "bpe_tokenizer.h"

#include <algorithm>
#include <queue>
#include <stdexcept>

#include "gguf.h"

namespace pyrnn {

namespace {

// GPT-2's printable stand-in code point for each byte → the byte; -1 for other code points.
std::vector<int> byte_level_inverse() {
    std::vector<int> inv(324, -1);
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        inv[keep ? b : 256 + extra++] = b;
    }
    return inv;
}

// The bytes a byte-level token stands for, or false if `text` (UTF-8) is not all stand-ins.
bool byte_level_bytes(std::string_view text, const std::vector<int>& inv, std::string& out) {
    out.clear();
    for (size_t i = 0; i < text.size();) {
        const auto c = uint8_t(text[i]);
        uint32_t cp;
        if (c < 0x80) {
            cp = c;
            i += 1;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < text.size()) {
            cp = uint32_t(c & 0x1F) << 6 | (uint8_t(text[i + 1]) & 0x3F);
            i += 2;
        } else {
            return false; // stand-ins are all below U+0800
        }
        if (cp >= inv.size() || inv[cp] < 0) return false;
        out += char(inv[cp]);
    }
    return true;
}

// Strict UTF-8 → code points (no overlong forms, surrogates or values above U+10FFFF);
// offsets[i] is the byte where code point i starts, offsets[n] = text.size().
void decode_utf8(std::string_view text, std::vector<uint32_t>& cps, std::vector<size_t>& offsets) {
    cps.clear();
    offsets.clear();
    for (size_t i = 0; i < text.size();) {
        const auto c = uint8_t(text[i]);
        const size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
        bool ok = len > 0 && i + len <= text.size();
        for (size_t k = 1; ok && k < len; k++) {
            const auto cc = uint8_t(text[i + k]);
            ok = (cc & 0xC0) == 0x80;
            cp = cp << 6 | (cc & 0x3Fu);
        }
        static const uint32_t min_of_len[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (!ok || cp < min_of_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            throw std::invalid_argument("text: expected UTF-8, found an invalid sequence at byte " + std::to_string(i));
        }
        cps.push_back(cp);
        offsets.push_back(i);
        i += len;
    }
    offsets.push_back(text.size());
}

bool in_ranges(uint32_t cp, const code_point_range* r, size_t n) {
    const code_point_range* end = r + n;
    const code_point_range* it = std::upper_bound(r, end, cp, [](uint32_t v, const code_point_range& x) { return v < x.first; });
    return it != r && cp <= (it - 1)->last;
}

bool is_letter(uint32_t cp) { return in_ranges(cp, bpe_unicode::letters, bpe_unicode::letters_size); }
bool is_number(uint32_t cp) { return in_ranges(cp, bpe_unicode::numbers, bpe_unicode::numbers_size); }
bool is_space(uint32_t cp) { return in_ranges(cp, bpe_unicode::white_space, bpe_unicode::white_space_size); }
bool is_other(uint32_t cp) { return !is_space(cp) && !is_letter(cp) && !is_number(cp); }

// End of the GPT-2 regex match starting at code point i (the alternatives in their order; the
// first that matches wins, as in a backtracking regex engine).
size_t match_gpt2(const std::vector<uint32_t>& cp, size_t i) {
    const size_t n = cp.size();
    if (cp[i] == '\'' && i + 1 < n) {  // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
        const uint32_t a = cp[i + 1], b = i + 2 < n ? cp[i + 2] : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
    }
    for (bool (*cls)(uint32_t) : {is_letter, is_number, is_other}) {  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
        size_t j = i + (cp[i] == ' ' && i + 1 < n && cls(cp[i + 1]) ? 1 : 0);
        if (!cls(cp[j])) continue;
        while (j < n && cls(cp[j])) j++;
        return j;
    }
    size_t j = i;  // cp[i] is white space here: every other code point matched above
    while (j < n && is_space(cp[j])) j++;
    if (j < n && j - i > 1) return j - 1;  // '\s+(?!\S)': leave the last one to the word after it
    return j;                              // '\s+'
}

}  // namespace

bpe_tokenizer::bpe_tokenizer(const std::vector<std::string_view>& tokens, const std::vector<int32_t>& types,
                             const std::vector<std::string_view>& merges) {
    if (types.size() != tokens.size()) {
        throw format_error("tokenizer.ggml.token_type: expected " + std::to_string(tokens.size()) + " entries, found " +
                           std::to_string(types.size()));
    }
    const std::vector<int> inv = byte_level_inverse();
    std::unordered_map<std::string, int32_t> vocab;  // bytes → id of NORMAL and CONTROL tokens (first id wins)
    token_bytes_.resize(tokens.size());
    std::string bytes;
    for (size_t i = 0; i < tokens.size(); i++) {
        const bool byte_level = byte_level_bytes(tokens[i], inv, bytes);
        const int32_t type = types[i];
        token_bytes_[i] = type == token_type_normal && byte_level ? bytes : std::string(tokens[i]);
        if ((type == token_type_normal || type == token_type_control) && byte_level) vocab.emplace(bytes, int32_t(i));
        if ((type == token_type_control || type == token_type_user_defined) && !tokens[i].empty()) {
            added_[type == token_type_control ? 0 : 1].emplace_back(std::string(tokens[i]), int32_t(i));
        }
    }
    for (int b = 0; b < 256; b++) {
        const auto it = vocab.find(std::string(1, char(b)));
        byte_id_[size_t(b)] = it == vocab.end() ? -1 : it->second;
    }
    std::string left, right;
    uint32_t rank = 0;
    for (size_t m = 0; m < merges.size(); m++) {
        const size_t cut = merges[m].size() < 2 ? std::string_view::npos : merges[m].find(' ', 1);
        if (cut == std::string_view::npos) {
            throw format_error("tokenizer.ggml.merges[" + std::to_string(m) + "]: expected 'left right', found '" +
                               std::string(merges[m]) + "'");
        }
        if (!byte_level_bytes(merges[m].substr(0, cut), inv, left) ||
            !byte_level_bytes(merges[m].substr(cut + 1), inv, right)) {
            continue;
        }
        const auto a = vocab.find(left), b = vocab.find(right), ab = vocab.find(left + right);
        if (a == vocab.end() || b == vocab.end() || ab == vocab.end()) continue;
        // Ranks count the merges kept; a repeated pair takes its last rank (as a map built in order).
        merges_[uint64_t(uint32_t(a->second)) << 32 | uint32_t(b->second)] = merge{rank++, ab->second};
    }
}

std::vector<int32_t> bpe_tokenizer::encode(std::string_view text) const {
    std::vector<uint32_t> cps;
    std::vector<size_t> offsets;
    decode_utf8(text, cps, offsets);  // validates all of it before any work
    std::vector<int32_t> out;
    split_added(text, 0, out);
    return out;
}

// Cuts added tokens of set `set` out of `text` (leftmost, then longest), passing the rest on to
// the next set, then to the pre-tokenizer.
void bpe_tokenizer::split_added(std::string_view text, size_t set, std::vector<int32_t>& out) const {
    if (set == added_.size()) {
        encode_piece(text, out);
        return;
    }
    size_t start = 0;
    for (size_t i = 0; i < text.size(); i++) {
        const std::pair<std::string, int32_t>* best = nullptr;
        for (const auto& a : added_[set]) {
            if (text.compare(i, a.first.size(), a.first) == 0 && (best == nullptr || a.first.size() > best->first.size())) {
                best = &a;
            }
        }
        if (best == nullptr) continue;
        if (i > start) split_added(text.substr(start, i - start), set + 1, out);
        out.push_back(best->second);
        start = i + best->first.size();
        i = start - 1;
    }
    if (start < text.size()) split_added(text.substr(start), set + 1, out);
}

void bpe_tokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
    std::vector<uint32_t> cps;
    std::vector<size_t> offsets;
    decode_utf8(piece, cps, offsets);
    for (size_t i = 0; i < cps.size();) {
        const size_t end = match_gpt2(cps, i);
        merge_word(piece.substr(offsets[i], offsets[end] - offsets[i]), out);
        i = end;
    }
}

// BPE over one pre-token's bytes as `tokenizers` does it: a queue of candidate merges ordered by
// (rank, position); a popped candidate whose symbols have changed since is skipped. O(n log n).
void bpe_tokenizer::merge_word(std::string_view bytes, std::vector<int32_t>& out) const {
    struct symbol {
        int32_t id;
        int32_t prev, next;  // neighbours in the word, -1 at the ends; id -1: merged away
    };
    std::vector<symbol> s;
    s.reserve(bytes.size());
    for (char c : bytes) {
        const int32_t id = byte_id_[uint8_t(c)];
        if (id < 0) continue;  // no token for this byte: dropped (tokenizers without an unk token)
        s.push_back(symbol{id, int32_t(s.size()) - 1, int32_t(s.size()) + 1});
    }
    if (s.empty()) return;
    s.back().next = -1;
    struct candidate {
        uint32_t rank;
        int32_t pos;
        int32_t result;
        bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<candidate, std::vector<candidate>, std::greater<candidate>> queue;
    const auto find = [this](int32_t a, int32_t b) {
        const auto it = merges_.find(uint64_t(uint32_t(a)) << 32 | uint32_t(b));
        return it == merges_.end() ? nullptr : &it->second;
    };
    const auto push = [&](int32_t pos) {
        if (pos < 0 || s[size_t(pos)].next < 0) return;
        if (const merge* m = find(s[size_t(pos)].id, s[size_t(s[size_t(pos)].next)].id)) queue.push({m->rank, pos, m->result});
    };
    for (size_t i = 0; i + 1 < s.size(); i++) push(int32_t(i));
    while (!queue.empty()) {
        const candidate c = queue.top();
        queue.pop();
        symbol& left = s[size_t(c.pos)];
        if (left.id < 0 || left.next < 0) continue;
        const merge* m = find(left.id, s[size_t(left.next)].id);
        if (m == nullptr || m->result != c.result) continue;  // stale: a neighbour changed
        symbol& right = s[size_t(left.next)];
        left.id = c.result;
        left.next = right.next;
        if (right.next >= 0) s[size_t(right.next)].prev = c.pos;
        right.id = -1;
        push(left.prev);
        push(c.pos);
    }
    for (int32_t i = 0; i >= 0; i = s[size_t(i)].next) out.push_back(s[size_t(i)].id);
}

std::string bpe_tokenizer::decode(const int32_t* ids, size_t n) const {
    std::string out;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || size_t(ids[i]) >= token_bytes_.size()) {
            throw std::out_of_range("ids[" + std::to_string(i) + "]: expected an id in [0, " +
                                    std::to_string(token_bytes_.size()) + "), found " + std::to_string(ids[i]));
        }
        out += token_bytes_[size_t(ids[i])];
    }
    return out;
}

}  // namespace pyrnn
