/* pyrnn.h — the C API of pyrnn: run recurrent language models (RWKV 4-7, Mamba 1/2, RetNet) from
 * GGUF files in C, C++, JNI, Swift, ... without Python.
 *
 *   #include "pyrnn.h"
 *
 *   pyrnn_model* model = pyrnn_model_load("rwkv7-0.1b.gguf");
 *   if (!model) { fprintf(stderr, "%s\n", pyrnn_last_error()); return 1; }
 *   pyrnn_model_set_threads(model, 4);
 *   const int32_t n_vocab = pyrnn_n_vocab(model);
 *
 *   int32_t ids[512];
 *   int64_t n = pyrnn_tokenize(model, "Once upon a time", -1, ids, 512);   // n > 512: too small
 *   float* logits = malloc(sizeof(float) * n_vocab);
 *   pyrnn_state* state = pyrnn_state_new(model);          // the state before the first token
 *   pyrnn_eval(model, state, ids, (size_t)n, logits);      // prefill: state_in → state_out, last logits
 *
 *   pyrnn_sampler* sampler = pyrnn_sampler_new(0.8f, 40, 0.95f, 1234);
 *   for (int i = 0; i < 100; i++) {
 *       int32_t tok = pyrnn_sampler_sample(sampler, logits, n_vocab);
 *       char piece[256];
 *       int64_t len = pyrnn_detokenize(model, &tok, 1, piece, sizeof piece);   // snprintf-like
 *       fwrite(piece, 1, (size_t)len, stdout);             // a piece may end inside a UTF-8 character
 *       pyrnn_eval(model, state, &tok, 1, logits);
 *   }
 *
 *   size_t size = pyrnn_state_serialized_size(state);      // a cached prompt, to disk or to Python
 *   void* blob = malloc(size);
 *   pyrnn_state_serialize(state, blob, size);
 *
 *   pyrnn_sampler_free(sampler); pyrnn_state_free(state); pyrnn_model_free(model);
 *   free(logits); free(blob);
 *
 * Conventions
 *   - Functions that can fail return a negative pyrnn_status (or NULL for constructors) and set a
 *     thread-local message read with pyrnn_last_error(); successful calls leave it unchanged (like
 *     errno). No C++ exception ever crosses this API.
 *   - A model is immutable after loading (but for its thread count, which may change at any time:
 *     calls already running finish with the old one): any number of threads may evaluate it at
 *     once, each with its own state.
 *     A state is used by one thread at a time; a second concurrent use fails with PYRNN_ERR_BUSY.
 *   - A state keeps its model's data alive: pyrnn_model_free may come before pyrnn_state_free.
 *   - States serialize to the same bytes as the Python package (pyrnn.State: bytes(state) and
 *     State.from_bytes): magic "PYRNNST\0", u32 version 1, u32 JSON header length, a JSON header
 *     {"arch", "state_size", "model_fingerprint", "dtype": "float32"}, then little-endian float32
 *     data. A state only loads into the model file it was made with (same fingerprint).
 *   - Tokenizers: the RWKV World vocabulary (tokenizer.ggml.model "rwkv") and byte-level BPE
 *     ("gpt2", pre-tokenizer "gpt-2": the packaged default model) encode and decode with the ids of
 *     the Python package. GPT-NeoX vocabularies (pre "mpt": Mamba, Pile-era RWKV-4) normalize text
 *     to NFC first, which the C API does not do: they encode ASCII text only (PYRNN_ERR_UNSUPPORTED
 *     for other text: normalize and tokenize elsewhere, or pass ids) and decode anything.
 */
#ifndef PYRNN_H
#define PYRNN_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && !defined(PYRNN_STATIC)
#  ifdef PYRNN_BUILD
#    define PYRNN_API __declspec(dllexport)
#  else
#    define PYRNN_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__)
#  define PYRNN_API __attribute__((visibility("default")))
#else
#  define PYRNN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define PYRNN_STATE_FORMAT 1 /* the state byte format version this library reads and writes */

typedef enum pyrnn_status {
    PYRNN_OK = 0,
    PYRNN_ERR_ARGUMENT = -1,    /* a NULL handle, an out-of-range token id or size, ...            */
    PYRNN_ERR_FILE = -2,        /* the file cannot be opened or mapped (missing, permissions)       */
    PYRNN_ERR_FORMAT = -3,      /* the model file is not a valid GGUF model pyrnn can run           */
    PYRNN_ERR_STATE = -4,       /* state bytes damaged, or of another model                         */
    PYRNN_ERR_UNSUPPORTED = -5, /* valid, but not available in the C API (e.g. BPE tokenize)        */
    PYRNN_ERR_MEMORY = -6,      /* out of memory                                                    */
    PYRNN_ERR_BUSY = -7,        /* the state is in use by another thread                            */
    PYRNN_ERR_INTERNAL = -8     /* a bug: please report the message                                 */
} pyrnn_status;

typedef struct pyrnn_model pyrnn_model;     /* a loaded model (memory-mapped weights)   */
typedef struct pyrnn_state pyrnn_state;     /* the recurrent state of one sequence      */
typedef struct pyrnn_sampler pyrnn_sampler; /* picks the next token from logits         */

/* ---- library ------------------------------------------------------------------------------ */

PYRNN_API const char* pyrnn_version(void);     /* "0.1.0"                                      */
/* The message of the last failed call on this thread ("" if none). Valid until the next failing
 * call on this thread. */
PYRNN_API const char* pyrnn_last_error(void);
/* The pyrnn_status of that call (PYRNN_OK if none failed yet): what a NULL from a constructor was. */
PYRNN_API int pyrnn_last_status(void);
PYRNN_API const char* pyrnn_status_name(int status); /* "PYRNN_ERR_FORMAT", ...                */
PYRNN_API const char* pyrnn_isa(void);          /* the kernels in use: "avx2", "ref", ...      */

/* ---- models ------------------------------------------------------------------------------- */

/* Maps and validates a GGUF model file; NULL on failure (PYRNN_ERR_FILE/FORMAT in the message). */
PYRNN_API pyrnn_model* pyrnn_model_load(const char* path);
/* The same from a GGUF image in memory (an Android asset, a download). The bytes are copied into
 * an aligned buffer the model owns, so `data` may be freed after the call. */
PYRNN_API pyrnn_model* pyrnn_model_load_from_memory(const void* data, size_t size);
PYRNN_API void pyrnn_model_free(pyrnn_model* model); /* NULL is fine */

/* Threads that split the matrix products (the caller counts as one); 0 = physical cores (the
 * default). Safe while other threads evaluate: their calls finish with the count they began with. */
PYRNN_API int pyrnn_model_set_threads(pyrnn_model* model, int n_threads);
PYRNN_API int pyrnn_model_threads(const pyrnn_model* model);

PYRNN_API const char* pyrnn_model_arch(const pyrnn_model* model);        /* "rwkv7", "mamba", ... */
PYRNN_API const char* pyrnn_model_fingerprint(const pyrnn_model* model); /* 64 hex digits         */
PYRNN_API int32_t pyrnn_n_vocab(const pyrnn_model* model);               /* -1 for NULL          */
PYRNN_API int32_t pyrnn_n_embd(const pyrnn_model* model);
PYRNN_API int32_t pyrnn_n_layer(const pyrnn_model* model);
/* Floats in a state: the same at token 10 and token 100,000. 0 for NULL. */
PYRNN_API size_t pyrnn_state_size(const pyrnn_model* model);

/* Feeds tokens[0..n) (n >= 1) from `state`, which becomes the state after them (in place), and
 * writes the last token's logits (n_vocab floats) to `logits` (NULL: not wanted). Every id must be
 * in [0, n_vocab); arguments are checked before anything runs, so a refused call leaves the state
 * unchanged. */
PYRNN_API int pyrnn_eval(const pyrnn_model* model, pyrnn_state* state, const int32_t* tokens, size_t n,
                         float* logits);
/* The same, writing the logits of every token: n × n_vocab floats, row i for tokens[i]. */
PYRNN_API int pyrnn_eval_all(const pyrnn_model* model, pyrnn_state* state, const int32_t* tokens, size_t n,
                             float* logits);

/* ---- states ------------------------------------------------------------------------------- */

PYRNN_API pyrnn_state* pyrnn_state_new(const pyrnn_model* model); /* the state before any token */
PYRNN_API pyrnn_state* pyrnn_state_clone(const pyrnn_state* state); /* forks a conversation      */
PYRNN_API void pyrnn_state_free(pyrnn_state* state);                /* NULL is fine              */
PYRNN_API int pyrnn_state_reset(pyrnn_state* state);                /* back to before any token  */
/* dst = src; both of the same model. */
PYRNN_API int pyrnn_state_copy(pyrnn_state* dst, const pyrnn_state* src);
/* The raw floats (pyrnn_state_size of them), in the layout docs/FORMAT.md gives per architecture. */
PYRNN_API float* pyrnn_state_data(pyrnn_state* state);

/* Bytes pyrnn_state_serialize writes (0 for NULL). */
PYRNN_API size_t pyrnn_state_serialized_size(const pyrnn_state* state);
/* Writes the state's bytes (see Conventions); capacity must be >= pyrnn_state_serialized_size. */
PYRNN_API int pyrnn_state_serialize(const pyrnn_state* state, void* buf, size_t capacity);
/* Replaces `state` with saved bytes; refuses (PYRNN_ERR_STATE, state unchanged) bytes that are
 * damaged, of another architecture or size, or saved with another model file. */
PYRNN_API int pyrnn_state_deserialize(pyrnn_state* state, const void* buf, size_t size);

/* ---- tokenizer ---------------------------------------------------------------------------- */

/* Text (len < 0: NUL-terminated) → ids. Returns the number of ids the text has; only the first
 * `capacity` are written, so a result > capacity means "call again with more room". Negative: an
 * error. World vocabularies take any bytes; BPE ones need valid UTF-8 (PYRNN_ERR_ARGUMENT naming
 * the byte otherwise) and, for pre "mpt", ASCII (PYRNN_ERR_UNSUPPORTED). No BOS is added. */
PYRNN_API int64_t pyrnn_tokenize(const pyrnn_model* model, const char* text, int64_t len, int32_t* ids,
                                 size_t capacity);
/* Ids → the bytes they stand for, snprintf-like: returns the byte count; writes at most
 * capacity - 1 bytes and a terminating NUL (when capacity > 0), so a result >= capacity means the
 * text was cut. A piece may end inside a UTF-8 character (stream the bytes). Negative: an error. */
PYRNN_API int64_t pyrnn_detokenize(const pyrnn_model* model, const int32_t* ids, size_t n, char* buf,
                                   size_t capacity);
/* tokenizer.ggml.eos_token_id, or -1 when the file names none. */
PYRNN_API int32_t pyrnn_token_eos(const pyrnn_model* model);

/* ---- sampler ------------------------------------------------------------------------------ */

/* The sampler Python's generate() uses (csrc/sampler.h), so the same seed gives the same tokens:
 *   temperature 0: greedy (the lowest id among the largest logits); top_k 0: off; top_p 1: off.
 *   Order: top-k, top-p, temperature, then one draw from xoshiro256** seeded by SplitMix64(seed).
 * Bad values (temperature < 0, top_p outside (0, 1]) make pyrnn_sampler_new return NULL. */
PYRNN_API pyrnn_sampler* pyrnn_sampler_new(float temperature, int32_t top_k, float top_p, uint64_t seed);
PYRNN_API void pyrnn_sampler_free(pyrnn_sampler* sampler);
/* The next token id (>= 0), or a negative pyrnn_status. */
PYRNN_API int32_t pyrnn_sampler_sample(pyrnn_sampler* sampler, const float* logits, int32_t n_vocab);

#ifdef __cplusplus
}
#endif

#endif /* PYRNN_H */
