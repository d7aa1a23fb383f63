// PyrnnJni.java — the Java face of pyrnn_jni.c (which calls the C API in pyrnn.h).
//
//   long model = PyrnnJni.modelLoad(getFilesDir() + "/rwkv7-0.1b-q8_0.gguf");
//   String text = PyrnnJni.generate(model, "Once upon a time", 64, 0.8f, 40, 0.95f, 42);
//   PyrnnJni.modelFree(model);
//
// Handles are plain longs: free each exactly once (modelFree, stateFree, samplerFree). Failures
// throw RuntimeException with pyrnn's message. A model may be shared by threads; a state may not.
package org.pyrnn;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

public final class PyrnnJni {
    static {
        System.loadLibrary("pyrnn_jni");
    }

    private PyrnnJni() {}

    public static native long modelLoad(String path);
    public static native long modelLoadFromMemory(byte[] gguf); // e.g. an asset read into memory
    public static native void modelFree(long model);
    public static native void setThreads(long model, int n);     // 0: physical cores
    public static native int nVocab(long model);
    public static native int eosToken(long model);                // -1: none

    public static native long stateNew(long model);
    public static native long stateClone(long state);
    public static native void stateFree(long state);
    public static native byte[] stateSave(long state);            // the Python package reads these bytes
    public static native void stateLoad(long state, byte[] blob);

    static native int[] tokenizeUtf8(long model, byte[] text);
    public static native byte[] detokenize(long model, int[] ids); // bytes: a piece may split a character
    public static native float[] eval(long model, long state, int[] tokens); // → last token's logits

    public static native long samplerNew(float temperature, int topK, float topP, long seed);
    public static native void samplerFree(long sampler);
    public static native int sample(long sampler, float[] logits);

    public static int[] tokenize(long model, String text) {
        return tokenizeUtf8(model, text.getBytes(StandardCharsets.UTF_8));
    }

    /** The prompt's continuation: nTokens sampled tokens at most (fewer at end-of-text). */
    public static String generate(long model, String prompt, int nTokens, float temperature, int topK, float topP,
                                  long seed) {
        byte[] text = generateUtf8(model, prompt, nTokens, temperature, topK, topP, seed);
        return new String(text, StandardCharsets.UTF_8); // the whole text: its characters are complete
    }

    /** The same as the bytes the tokens stand for (normally UTF-8). */
    public static byte[] generateUtf8(long model, String prompt, int nTokens, float temperature, int topK, float topP,
                                      long seed) {
        long state = stateNew(model);
        long sampler = samplerNew(temperature, topK, topP, seed);
        try {
            float[] logits = eval(model, state, tokenize(model, prompt));
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int eos = eosToken(model);
            for (int i = 0; i < nTokens; i++) {
                int tok = sample(sampler, logits);
                if (tok == eos) break;
                byte[] piece = detokenize(model, new int[] {tok});
                out.write(piece, 0, piece.length);
                logits = eval(model, state, new int[] {tok});
            }
            return out.toByteArray();
        } finally {
            samplerFree(sampler);
            stateFree(state);
        }
    }

    /** Desktop check: java -Djava.library.path=DIR org.pyrnn.PyrnnJni MODEL PROMPT [N]. */
    public static void main(String[] args) {
        long model = modelLoad(args[0]);
        try {
            int n = args.length > 2 ? Integer.parseInt(args[2]) : 32;
            byte[] text = generateUtf8(model, args[1], n, 0.0f, 0, 1.0f, 0); // greedy
            byte[] prompt = args[1].getBytes(StandardCharsets.UTF_8);
            System.out.write(prompt, 0, prompt.length);
            System.out.write(text, 0, text.length);
            System.out.println();
        } finally {
            modelFree(model);
        }
    }
}
