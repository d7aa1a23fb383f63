/* pyrnn_jni.c — JNI glue: org.pyrnn.PyrnnJni's native methods over the C API (pyrnn.h).
 *
 *   long model = PyrnnJni.modelLoad(path);              // Java side: see PyrnnJni.java
 *   long state = PyrnnJni.stateNew(model);
 *   float[] logits = PyrnnJni.eval(model, state, PyrnnJni.tokenize(model, "Hello"));
 *
 * Handles cross as jlong. Text crosses as UTF-8 byte[] (not jstring: JNI's "modified UTF-8"
 * mangles NUL and characters outside the BMP). Every failure throws a java.lang.RuntimeException
 * carrying pyrnn_last_error(); nothing here aborts the VM.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>

#include "pyrnn.h"

#define JNI_FN(name) JNICALL Java_org_pyrnn_PyrnnJni_##name

static void throw_error(JNIEnv* env, const char* message) {
    jclass cls = (*env)->FindClass(env, "java/lang/RuntimeException");
    if (cls != NULL) (*env)->ThrowNew(env, cls, message);
}

static void throw_last(JNIEnv* env) { throw_error(env, pyrnn_last_error()); }

static pyrnn_model* as_model(jlong h) { return (pyrnn_model*)(intptr_t)h; }
static pyrnn_state* as_state(jlong h) { return (pyrnn_state*)(intptr_t)h; }
static pyrnn_sampler* as_sampler(jlong h) { return (pyrnn_sampler*)(intptr_t)h; }

JNIEXPORT jlong JNI_FN(modelLoad)(JNIEnv* env, jclass cls, jstring path) {
    (void)cls;
    const char* p = (*env)->GetStringUTFChars(env, path, NULL); /* file paths: no NUL, fine */
    if (p == NULL) return 0;
    pyrnn_model* m = pyrnn_model_load(p);
    (*env)->ReleaseStringUTFChars(env, path, p);
    if (m == NULL) throw_last(env);
    return (jlong)(intptr_t)m;
}

JNIEXPORT jlong JNI_FN(modelLoadFromMemory)(JNIEnv* env, jclass cls, jbyteArray data) {
    (void)cls;
    jsize n = (*env)->GetArrayLength(env, data);
    jbyte* bytes = (*env)->GetByteArrayElements(env, data, NULL);
    if (bytes == NULL) return 0;
    pyrnn_model* m = pyrnn_model_load_from_memory(bytes, (size_t)n); /* copies */
    (*env)->ReleaseByteArrayElements(env, data, bytes, JNI_ABORT);
    if (m == NULL) throw_last(env);
    return (jlong)(intptr_t)m;
}

JNIEXPORT void JNI_FN(modelFree)(JNIEnv* env, jclass cls, jlong model) {
    (void)env, (void)cls;
    pyrnn_model_free(as_model(model));
}

JNIEXPORT void JNI_FN(setThreads)(JNIEnv* env, jclass cls, jlong model, jint n) {
    (void)cls;
    if (pyrnn_model_set_threads(as_model(model), n) != PYRNN_OK) throw_last(env);
}

JNIEXPORT jint JNI_FN(nVocab)(JNIEnv* env, jclass cls, jlong model) {
    (void)cls;
    int32_t v = pyrnn_n_vocab(as_model(model));
    if (v < 0) throw_last(env);
    return v;
}

JNIEXPORT jint JNI_FN(eosToken)(JNIEnv* env, jclass cls, jlong model) {
    (void)env, (void)cls;
    return pyrnn_token_eos(as_model(model));
}

JNIEXPORT jlong JNI_FN(stateNew)(JNIEnv* env, jclass cls, jlong model) {
    (void)cls;
    pyrnn_state* s = pyrnn_state_new(as_model(model));
    if (s == NULL) throw_last(env);
    return (jlong)(intptr_t)s;
}

JNIEXPORT jlong JNI_FN(stateClone)(JNIEnv* env, jclass cls, jlong state) {
    (void)cls;
    pyrnn_state* s = pyrnn_state_clone(as_state(state));
    if (s == NULL) throw_last(env);
    return (jlong)(intptr_t)s;
}

JNIEXPORT void JNI_FN(stateFree)(JNIEnv* env, jclass cls, jlong state) {
    (void)env, (void)cls;
    pyrnn_state_free(as_state(state));
}

JNIEXPORT jbyteArray JNI_FN(stateSave)(JNIEnv* env, jclass cls, jlong state) {
    (void)cls;
    size_t n = pyrnn_state_serialized_size(as_state(state));
    if (n == 0) { throw_last(env); return NULL; }
    if (n > 0x7fffffff) { throw_error(env, "state: too large for a Java byte[]"); return NULL; }
    void* buf = malloc(n);
    if (buf == NULL) { throw_error(env, "out of memory"); return NULL; }
    jbyteArray out = NULL;
    if (pyrnn_state_serialize(as_state(state), buf, n) != PYRNN_OK) {
        throw_last(env);
    } else if ((out = (*env)->NewByteArray(env, (jsize)n)) != NULL) {
        (*env)->SetByteArrayRegion(env, out, 0, (jsize)n, (const jbyte*)buf);
    }
    free(buf);
    return out;
}

JNIEXPORT void JNI_FN(stateLoad)(JNIEnv* env, jclass cls, jlong state, jbyteArray blob) {
    (void)cls;
    jsize n = (*env)->GetArrayLength(env, blob);
    jbyte* bytes = (*env)->GetByteArrayElements(env, blob, NULL);
    if (bytes == NULL) return;
    int rc = pyrnn_state_deserialize(as_state(state), bytes, (size_t)n);
    (*env)->ReleaseByteArrayElements(env, blob, bytes, JNI_ABORT);
    if (rc != PYRNN_OK) throw_last(env);
}

JNIEXPORT jintArray JNI_FN(tokenizeUtf8)(JNIEnv* env, jclass cls, jlong model, jbyteArray text) {
    (void)cls;
    jsize len = (*env)->GetArrayLength(env, text);
    jbyte* bytes = (*env)->GetByteArrayElements(env, text, NULL);
    if (bytes == NULL) return NULL;
    jintArray out = NULL;
    int64_t n = pyrnn_tokenize(as_model(model), (const char*)bytes, len, NULL, 0);
    int32_t* ids = n > 0 ? malloc(sizeof(int32_t) * (size_t)n) : NULL;
    if (n < 0) {
        throw_last(env);
    } else if (n > 0 && ids == NULL) {
        throw_error(env, "out of memory");
    } else {
        pyrnn_tokenize(as_model(model), (const char*)bytes, len, ids, (size_t)n);
        if ((out = (*env)->NewIntArray(env, (jsize)n)) != NULL && n > 0) {
            (*env)->SetIntArrayRegion(env, out, 0, (jsize)n, (const jint*)ids);
        }
    }
    free(ids);
    (*env)->ReleaseByteArrayElements(env, text, bytes, JNI_ABORT);
    return out;
}

JNIEXPORT jbyteArray JNI_FN(detokenize)(JNIEnv* env, jclass cls, jlong model, jintArray ids) {
    (void)cls;
    jsize n = (*env)->GetArrayLength(env, ids);
    jint* p = (*env)->GetIntArrayElements(env, ids, NULL);
    if (p == NULL) return NULL;
    jbyteArray out = NULL;
    int64_t len = pyrnn_detokenize(as_model(model), (const int32_t*)p, (size_t)n, NULL, 0);
    char* buf = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (len < 0) {
        throw_last(env);
    } else if (buf == NULL) {
        throw_error(env, "out of memory");
    } else {
        pyrnn_detokenize(as_model(model), (const int32_t*)p, (size_t)n, buf, (size_t)len + 1);
        if ((out = (*env)->NewByteArray(env, (jsize)len)) != NULL) {
            (*env)->SetByteArrayRegion(env, out, 0, (jsize)len, (const jbyte*)buf);
        }
    }
    free(buf);
    (*env)->ReleaseIntArrayElements(env, ids, p, JNI_ABORT);
    return out;
}

/* Feeds tokens; returns the last token's logits. */
JNIEXPORT jfloatArray JNI_FN(eval)(JNIEnv* env, jclass cls, jlong model, jlong state, jintArray tokens) {
    (void)cls;
    int32_t n_vocab = pyrnn_n_vocab(as_model(model));
    if (n_vocab < 0) { throw_last(env); return NULL; }
    jsize n = (*env)->GetArrayLength(env, tokens);
    jfloatArray out = (*env)->NewFloatArray(env, n_vocab);
    if (out == NULL) return NULL;
    jint* ids = (*env)->GetIntArrayElements(env, tokens, NULL);
    if (ids == NULL) return NULL;
    jfloat* logits = (*env)->GetFloatArrayElements(env, out, NULL);
    if (logits == NULL) {
        (*env)->ReleaseIntArrayElements(env, tokens, ids, JNI_ABORT);
        return NULL;
    }
    int rc = pyrnn_eval(as_model(model), as_state(state), (const int32_t*)ids, (size_t)n, logits);
    (*env)->ReleaseFloatArrayElements(env, out, logits, 0);
    (*env)->ReleaseIntArrayElements(env, tokens, ids, JNI_ABORT);
    if (rc != PYRNN_OK) { throw_last(env); return NULL; }
    return out;
}

JNIEXPORT jlong JNI_FN(samplerNew)(JNIEnv* env, jclass cls, jfloat temperature, jint top_k, jfloat top_p, jlong seed) {
    (void)cls;
    pyrnn_sampler* s = pyrnn_sampler_new(temperature, top_k, top_p, (uint64_t)seed);
    if (s == NULL) throw_last(env);
    return (jlong)(intptr_t)s;
}

JNIEXPORT void JNI_FN(samplerFree)(JNIEnv* env, jclass cls, jlong sampler) {
    (void)env, (void)cls;
    pyrnn_sampler_free(as_sampler(sampler));
}

JNIEXPORT jint JNI_FN(sample)(JNIEnv* env, jclass cls, jlong sampler, jfloatArray logits) {
    (void)cls;
    jsize n = (*env)->GetArrayLength(env, logits);
    jfloat* p = (*env)->GetFloatArrayElements(env, logits, NULL);
    if (p == NULL) return -1;
    int32_t tok = pyrnn_sampler_sample(as_sampler(sampler), p, n);
    (*env)->ReleaseFloatArrayElements(env, logits, p, JNI_ABORT);
    if (tok < 0) throw_last(env);
    return tok;
}
