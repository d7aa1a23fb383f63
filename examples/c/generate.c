/* generate.c — load a model, feed a prompt, sample tokens, print the text: the C API end to end.
 *
 *   pyrnn_generate MODEL.gguf "Once upon a time" [-n 64] [--temp 1.0] [--top-k 0] [--top-p 1.0]
 *                  [--seed 42] [--threads 0] [--state-out FILE]
 *
 * Build: cmake -S . -B build/c -DPYRNN_CAPI=ON -DPYRNN_PYTHON=OFF && cmake --build build/c
 * Exit status: 0, or 1 with the library's message on stderr. Plain C99; no Python anywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyrnn.h"

static int usage(void) {
    fprintf(stderr, "usage: pyrnn_generate MODEL PROMPT [-n N] [--temp T] [--top-k K] [--top-p P] [--seed S] "
                    "[--threads N] [--state-out FILE]\n");
    return 2;
}

static int fail(const char* what) {
    fprintf(stderr, "pyrnn_generate: %s: %s\n", what, pyrnn_last_error());
    return 1;
}

int main(int argc, char** argv) {
    if (argc < 3) return usage();
    const char* path = argv[1];
    const char* prompt = argv[2];
    int n_predict = 64, top_k = 0, threads = 0;
    float temperature = 1.0f, top_p = 1.0f;
    unsigned long long seed = 42;
    const char* state_out = NULL;
    for (int i = 3; i < argc; i++) {
        const char* a = argv[i];
        if (i + 1 >= argc) return usage();
        const char* v = argv[++i];
        if (strcmp(a, "-n") == 0) n_predict = atoi(v);
        else if (strcmp(a, "--temp") == 0) temperature = (float)atof(v);
        else if (strcmp(a, "--top-k") == 0) top_k = atoi(v);
        else if (strcmp(a, "--top-p") == 0) top_p = (float)atof(v);
        else if (strcmp(a, "--seed") == 0) seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0) threads = atoi(v);
        else if (strcmp(a, "--state-out") == 0) state_out = v;
        else return usage();
    }

    pyrnn_model* model = pyrnn_model_load(path);
    if (!model) return fail("load");
    if (pyrnn_model_set_threads(model, threads) != PYRNN_OK) return fail("threads");
    const int32_t n_vocab = pyrnn_n_vocab(model);
    fprintf(stderr, "pyrnn %s: %s, %d layers, vocabulary %d, state %zu floats, kernels %s\n", pyrnn_version(),
            pyrnn_model_arch(model), pyrnn_n_layer(model), n_vocab, pyrnn_state_size(model), pyrnn_isa());

    /* Ask for the count first, then encode into a buffer of that size. */
    int64_t n_prompt = pyrnn_tokenize(model, prompt, -1, NULL, 0);
    if (n_prompt < 0) return fail("tokenize");
    if (n_prompt == 0) {
        fprintf(stderr, "pyrnn_generate: prompt: expected some text, found none\n");
        return 1;
    }
    int32_t* ids = malloc(sizeof(int32_t) * (size_t)n_prompt);
    float* logits = malloc(sizeof(float) * (size_t)n_vocab);
    if (!ids || !logits) return 1;
    pyrnn_tokenize(model, prompt, -1, ids, (size_t)n_prompt);

    pyrnn_state* state = pyrnn_state_new(model);
    if (!state) return fail("state");
    if (pyrnn_eval(model, state, ids, (size_t)n_prompt, logits) != PYRNN_OK) return fail("prefill");

    pyrnn_sampler* sampler = pyrnn_sampler_new(temperature, top_k, top_p, seed);
    if (!sampler) return fail("sampler");
    fputs(prompt, stdout);
    const int32_t eos = pyrnn_token_eos(model);
    for (int i = 0; i < n_predict; i++) {
        int32_t tok = pyrnn_sampler_sample(sampler, logits, n_vocab);
        if (tok < 0) return fail("sample");
        if (tok == eos) break;
        char piece[512];
        int64_t len = pyrnn_detokenize(model, &tok, 1, piece, sizeof piece);
        if (len < 0) return fail("detokenize");
        fwrite(piece, 1, len < (int64_t)sizeof piece ? (size_t)len : sizeof piece - 1, stdout);
        fflush(stdout);
        if (pyrnn_eval(model, state, &tok, 1, logits) != PYRNN_OK) return fail("eval");
    }
    fputc('\n', stdout);

    if (state_out) { /* the state after prompt and output: Python reads it with pyrnn.State.load */
        size_t size = pyrnn_state_serialized_size(state);
        void* blob = malloc(size);
        if (!blob || pyrnn_state_serialize(state, blob, size) != PYRNN_OK) return fail("serialize");
        FILE* f = fopen(state_out, "wb");
        if (!f || fwrite(blob, 1, size, f) != size || fclose(f) != 0) {
            fprintf(stderr, "pyrnn_generate: cannot write %s\n", state_out);
            return 1;
        }
        free(blob);
    }

    pyrnn_sampler_free(sampler);
    pyrnn_state_free(state);
    pyrnn_model_free(model);
    free(ids);
    free(logits);
    return 0;
}
