// RWKV "World" tokenizer (rwkv_vocab_v20230424): greedy longest-prefix match over raw bytes.
// Same ids as the official pip `rwkv.rwkv_tokenizer.TRIE_TOKENIZER.encodeBytes`
// (shared/reference/ARCHITECTURES.md §1.5.1). Not BPE: at each position take the longest
// vocabulary entry that is a prefix of the remaining bytes. No BOS/EOS is added.
//
// Usage:
//
//   #include "tokenizer.h"
//
//   std::vector<std::string> vocab = ...;  // vocab[id] = raw bytes of token id; vocab[0] = "<s>"
//   pyrnn::world_tokenizer tok(std::move(vocab));
//   std::vector<int32_t> ids = tok.encode("Hello world");       // {33155, 40213}
//   std::string bytes = tok.decode(ids.data(), ids.size());      // "Hello world"
//
//   // From a GGUF whose tokenizer.ggml.model is "rwkv" (llama.cpp's layout, §1.6):
//   auto tok2 = pyrnn::world_tokenizer::from_gguf_tokens(gguf_tokens, gguf_token_types);
//
// A world_tokenizer is immutable after construction: encode/decode may run concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pyrnn {

class world_tokenizer {
  public:
    // GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type) that encode never produces.
    static constexpr int32_t token_type_control = 3;
    static constexpr int32_t token_type_unused = 5;

    // token_bytes[id] = raw bytes of token id. Id 0 is the "<s>"/end-of-text token: it is kept for
    // decode but never produced by encode; empty entries are never produced either. If several ids
    // have the same bytes, encode produces the highest of them (both references do: the pip
    // tokenizer's dict and llama.cpp's trie keep the last one).
    // Throws std::invalid_argument if some byte value has no single-byte token that encode may
    // produce (then some inputs could not be encoded; every World vocabulary has ids 1..256 = bytes
    // 0..255), or if there are more than INT32_MAX tokens.
    explicit world_tokenizer(std::vector<std::string> token_bytes);

    // Builds from GGUF `tokenizer.ggml.tokens` / `tokenizer.ggml.token_type` as llama.cpp writes them
    // for tokenizer model "rwkv": each entry is repr(bytes)[2:-1], i.e. printable ASCII as is and the
    // escapes \xNN \n \t \r \\ \' (we also accept \" and upper-case hex, which mean the same to
    // Python and to llama.cpp). Any other byte is taken as itself, as llama.cpp does. Entries such as
    // "<s>" (id 0, CONTROL) and "[PAD123]" (UNUSED) are unescaped like the rest, so decode returns
    // those texts, but tokens typed CONTROL (3) or UNUSED (5), and id 0 whatever its type, are never
    // produced by encode. This deliberately differs from llama.cpp, which puts every entry into its
    // trie and so turns the literal text "<s>" or "[PAD65530]" into that id: we match the official
    // tokenizer, whose vocabulary has neither.
    // Throws std::invalid_argument naming the token id and its text on a malformed escape (an
    // unknown escape such as \a or \u, a trailing backslash, \x without two hex digits), if the two
    // lists differ in length, or for the reasons the constructor throws.
    static world_tokenizer from_gguf_tokens(const std::vector<std::string_view>& tokens,
                                            const std::vector<int32_t>& token_types);

    // Any bytes in (normally UTF-8; invalid UTF-8 too); never fails. Empty text gives no ids.
    std::vector<int32_t> encode(std::string_view text) const;

    // Concatenated bytes of the ids, control and unused ones included (id 0 gives its bytes, "<s>"
    // for a World vocabulary). The result may end inside a UTF-8 sequence when a stream of ids is
    // decoded piece by piece. An id < 0 or >= vocab_size() throws std::out_of_range naming the id
    // and the vocabulary size.
    std::string decode(const int32_t* ids, size_t n) const;

    size_t vocab_size() const { return token_bytes_.size(); }

  private:
    world_tokenizer(std::vector<std::string> token_bytes, const std::vector<bool>& matchable);
    void build_trie(const std::vector<bool>& matchable);
    uint32_t find_child(uint32_t node, uint8_t byte) const;

    std::vector<std::string> token_bytes_;

    // Trie over the bytes of the matchable tokens, nodes numbered in breadth-first order so that the
    // children of a node are contiguous (first_child_, n_children_) with labels_ sorted: a child
    // lookup is a short scan of a small byte array and there is no per-node allocation. Node 0 is the
    // root; it is nobody's child, so find_child returns 0 for "no such child". token_[node] is the id
    // ending there, or -1.
    std::vector<uint8_t> labels_;
    std::vector<uint32_t> first_child_;
    std::vector<uint16_t> n_children_;
    std::vector<int32_t> token_;
    // The root's child for each first byte, looked up directly (every input position starts there).
    std::array<uint32_t, 256> root_child_{};
};

}  // namespace pyrnn
