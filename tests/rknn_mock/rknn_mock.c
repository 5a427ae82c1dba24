/*
 * A stand-in for librknnrt.so that implements the RKNN C API's ABI (the entry points edgevit
 * calls, with rknn_api.h's struct layouts) on the CPU. It is NOT an NPU and does not run the
 * model: it checks the buffers, sizes and formats it is given, records each call in the file
 * named by $RKNN_MOCK_LOG, and computes a known function of the input so that a test can
 * check every value that comes back.
 *
 * The "model" is a text file:
 *     EDGEVIT-MOCK-RKNN
 *     input <name> <d0> <d1> <d2> <d3> <nhwc|nchw>
 *     output <name> <fmt nchw|nhwc|undefined> <dims...>
 *     ...
 *
 * Known function: output element j of an output with n elements is
 *     mean over input elements i with i % n == j of v_i,
 * where v_i is the input value (a pixel value for uint8 input) in the order it was given.
 * Each output is held as int8 with an affine scale and zero point, as the NPU holds it,
 * and dequantized when want_float is set.
 *
 * Two more lines steer the mock (tests run in parallel, so nothing comes from the environment):
 *     log <path>     append each call to this file
 *     fail <call>    make that call (rknn_inputs_set, rknn_run) fail with RKNN_ERR_FAIL
 * Built with -DNO_CORE_MASK it lacks rknn_set_core_mask, as the runtime of one-core NPUs does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t rknn_context;

#define RKNN_SUCC 0
#define RKNN_ERR_FAIL -1
#define RKNN_ERR_PARAM_INVALID -5
#define RKNN_ERR_MODEL_INVALID -6
#define RKNN_ERR_CTX_INVALID -7
#define RKNN_ERR_INPUT_INVALID -8
#define RKNN_ERR_OUTPUT_INVALID -9

enum { QUERY_IN_OUT_NUM = 0, QUERY_INPUT_ATTR = 1, QUERY_OUTPUT_ATTR = 2 };
enum { T_FLOAT32 = 0, T_FLOAT16 = 1, T_INT8 = 2, T_UINT8 = 3 };
enum { F_NCHW = 0, F_NHWC = 1, F_NC1HWC2 = 2, F_UNDEFINED = 3 };
enum { QNT_NONE = 0, QNT_DFP = 1, QNT_AFFINE = 2 };

typedef struct {
    uint32_t n_input;
    uint32_t n_output;
} rknn_input_output_num;

typedef struct {
    uint32_t index;
    uint32_t n_dims;
    uint32_t dims[16];
    char name[256];
    uint32_t n_elems;
    uint32_t size;
    int fmt;
    int type;
    int qnt_type;
    int8_t fl;
    int32_t zp;
    float scale;
    uint32_t w_stride;
    uint32_t size_with_stride;
    uint8_t pass_through;
    uint32_t h_stride;
} rknn_tensor_attr;

typedef struct {
    uint32_t index;
    void *buf;
    uint32_t size;
    uint8_t pass_through;
    int type;
    int fmt;
} rknn_input;

typedef struct {
    uint8_t want_float;
    uint8_t is_prealloc;
    uint32_t index;
    void *buf;
    uint32_t size;
} rknn_output;

_Static_assert(sizeof(rknn_tensor_attr) == 376, "rknn_tensor_attr layout");
_Static_assert(sizeof(rknn_input) == 32, "rknn_input layout");
_Static_assert(sizeof(rknn_output) == 24, "rknn_output layout");

#define MAX_OUT 8

typedef struct {
    rknn_tensor_attr input;
    rknn_tensor_attr outputs[MAX_OUT];
    uint32_t n_outputs;
    float *values; /* the input as floats, in the order given */
    uint32_t n_values;
    int inputs_set;
    int8_t *results[MAX_OUT];
    int ran;
    int outstanding; /* outputs handed out and not yet released */
    unsigned core_mask;
    char log[512];
    char fail[64];
} Context;

/* The log of the context being made or used (one test's model names its own file). */
static __thread const char *log_path;

static void record(const char *format, ...) __attribute__((format(printf, 1, 2)));

#include <stdarg.h>
static void record(const char *format, ...) {
    const char *path = log_path;
    if (!path || !*path) return;
    FILE *f = fopen(path, "a");
    if (!f) return;
    va_list args;
    va_start(args, format);
    vfprintf(f, format, args);
    va_end(args);
    fputc('\n', f);
    fclose(f);
}

static int failing(const Context *c, const char *call) { return strcmp(c->fail, call) == 0; }

static Context *live(rknn_context context) {
    Context *c = (Context *)(uintptr_t)context;
    log_path = c ? c->log : NULL;
    return c;
}

static int parse_format(const char *text) {
    if (strcmp(text, "nhwc") == 0) return F_NHWC;
    if (strcmp(text, "nchw") == 0) return F_NCHW;
    return F_UNDEFINED;
}

int rknn_init(rknn_context *context, void *model, uint32_t size, uint32_t flag, void *extend) {
    (void)extend;
    log_path = NULL;
    if (!context || !model || size == 0) return RKNN_ERR_PARAM_INVALID;
    char *text = calloc(size + 1, 1);
    memcpy(text, model, size);
    if (strncmp(text, "EDGEVIT-MOCK-RKNN\n", 18) != 0) {
        free(text);
        return RKNN_ERR_MODEL_INVALID;
    }
    Context *c = calloc(1, sizeof(Context));
    char *save = NULL;
    for (char *line = strtok_r(text + 18, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char kind[16], name[256], fmt[16];
        int used = 0;
        if (sscanf(line, "log %511s", c->log) == 1) continue;
        if (sscanf(line, "fail %63s", c->fail) == 1) continue;
        if (sscanf(line, "%15s %255s %15s%n", kind, name, fmt, &used) < 3) continue;
        rknn_tensor_attr *a;
        if (strcmp(kind, "input") == 0) {
            a = &c->input;
        } else if (strcmp(kind, "output") == 0 && c->n_outputs < MAX_OUT) {
            a = &c->outputs[c->n_outputs];
            a->index = c->n_outputs++;
        } else {
            continue;
        }
        snprintf(a->name, sizeof a->name, "%s", name);
        a->fmt = parse_format(fmt);
        const char *rest = line + used;
        int n = 0, d = 0;
        a->n_elems = 1;
        while (a->n_dims < 16 && sscanf(rest, "%d%n", &d, &n) == 1) {
            a->dims[a->n_dims++] = (uint32_t)d;
            a->n_elems *= (uint32_t)d;
            rest += n;
        }
        if (a == &c->input) {
            a->type = T_INT8;
            a->qnt_type = QNT_AFFINE;
            a->scale = 1.0f / 255.0f;
            a->zp = -128;
            a->size = a->n_elems;
        } else {
            a->type = T_INT8;
            a->qnt_type = QNT_AFFINE;
            a->scale = 1.0f; /* set per output at run time */
            a->zp = 0;
            a->size = a->n_elems;
        }
    }
    free(text);
    log_path = c->log;
    record("rknn_init size=%u flag=%u", size, flag);
    if (c->input.n_dims == 0 || c->n_outputs == 0) {
        free(c);
        return RKNN_ERR_MODEL_INVALID;
    }
    *context = (rknn_context)(uintptr_t)c;
    return RKNN_SUCC;
}

int rknn_destroy(rknn_context context) {
    Context *c = live(context);
    if (!c) return RKNN_ERR_CTX_INVALID;
    record("rknn_destroy outstanding=%d", c->outstanding);
    for (uint32_t i = 0; i < MAX_OUT; i++) free(c->results[i]);
    free(c->values);
    free(c);
    return RKNN_SUCC;
}

int rknn_query(rknn_context context, int cmd, void *info, uint32_t size) {
    Context *c = live(context);
    if (!c || !info) return RKNN_ERR_PARAM_INVALID;
    switch (cmd) {
    case QUERY_IN_OUT_NUM: {
        record("rknn_query IN_OUT_NUM size=%u", size);
        if (size != sizeof(rknn_input_output_num)) return RKNN_ERR_PARAM_INVALID;
        rknn_input_output_num *num = info;
        num->n_input = 1;
        num->n_output = c->n_outputs;
        return RKNN_SUCC;
    }
    case QUERY_INPUT_ATTR:
    case QUERY_OUTPUT_ATTR: {
        rknn_tensor_attr *attr = info;
        record("rknn_query %s index=%u size=%u", cmd == QUERY_INPUT_ATTR ? "INPUT_ATTR" : "OUTPUT_ATTR",
               attr->index, size);
        if (size != sizeof(rknn_tensor_attr)) return RKNN_ERR_PARAM_INVALID;
        if (cmd == QUERY_INPUT_ATTR) {
            if (attr->index != 0) return RKNN_ERR_PARAM_INVALID;
            *attr = c->input;
        } else {
            if (attr->index >= c->n_outputs) return RKNN_ERR_PARAM_INVALID;
            *attr = c->outputs[attr->index];
        }
        return RKNN_SUCC;
    }
    default:
        record("rknn_query cmd=%d", cmd);
        return RKNN_ERR_PARAM_INVALID;
    }
}

#ifndef NO_CORE_MASK
int rknn_set_core_mask(rknn_context context, unsigned core_mask) {
    Context *c = live(context);
    if (!c) return RKNN_ERR_CTX_INVALID;
    record("rknn_set_core_mask mask=%u", core_mask);
    /* RK3588: cores 0, 1, 2; AUTO = 0, ALL = 0xffff. */
    if (core_mask != 0xffff && (core_mask & ~7u)) return RKNN_ERR_PARAM_INVALID;
    c->core_mask = core_mask;
    return RKNN_SUCC;
}
#endif

int rknn_inputs_set(rknn_context context, uint32_t n_inputs, rknn_input *inputs) {
    Context *c = live(context);
    if (!c || !inputs) return RKNN_ERR_PARAM_INVALID;
    rknn_input *in = &inputs[0];
    record("rknn_inputs_set n=%u index=%u type=%d fmt=%d size=%u pass_through=%u", n_inputs, in->index,
           in->type, in->fmt, in->size, in->pass_through);
    if (failing(c, "rknn_inputs_set")) return RKNN_ERR_FAIL;
    if (n_inputs != 1 || in->index != 0 || !in->buf || in->pass_through != 0) return RKNN_ERR_INPUT_INVALID;
    /* 4-D images go in as NHWC (the layout the model was converted for). */
    if (in->fmt != F_NHWC) return RKNN_ERR_INPUT_INVALID;
    uint32_t n = c->input.n_elems;
    uint32_t width = in->type == T_UINT8 ? 1 : in->type == T_FLOAT32 ? 4 : 0;
    if (width == 0 || in->size != n * width) return RKNN_ERR_INPUT_INVALID;
    free(c->values);
    c->values = malloc(n * sizeof(float));
    c->n_values = n;
    for (uint32_t i = 0; i < n; i++)
        c->values[i] = in->type == T_UINT8 ? (float)((uint8_t *)in->buf)[i] : ((float *)in->buf)[i];
    c->inputs_set = 1;
    return RKNN_SUCC;
}

int rknn_run(rknn_context context, void *extend) {
    Context *c = live(context);
    if (!c) return RKNN_ERR_CTX_INVALID;
    record("rknn_run extend=%s", extend ? "set" : "null");
    if (failing(c, "rknn_run")) return RKNN_ERR_FAIL;
    if (!c->inputs_set) return RKNN_ERR_INPUT_INVALID;
    for (uint32_t o = 0; o < c->n_outputs; o++) {
        rknn_tensor_attr *a = &c->outputs[o];
        uint32_t n = a->n_elems;
        float *mean = calloc(n, sizeof(float));
        uint32_t *count = calloc(n, sizeof(uint32_t));
        for (uint32_t i = 0; i < c->n_values; i++) {
            mean[i % n] += c->values[i];
            count[i % n]++;
        }
        float lo = 0, hi = 0;
        for (uint32_t j = 0; j < n; j++) {
            mean[j] = count[j] ? mean[j] / (float)count[j] : 0.0f;
            if (mean[j] < lo) lo = mean[j];
            if (mean[j] > hi) hi = mean[j];
        }
        /* int8 affine quantization over [lo, hi], as the NPU holds outputs. */
        a->scale = hi > lo ? (hi - lo) / 255.0f : 1.0f;
        a->zp = (int32_t)(-128 - (int32_t)(lo / a->scale + (lo < 0 ? -0.5f : 0.5f)));
        free(c->results[o]);
        c->results[o] = malloc(n);
        for (uint32_t j = 0; j < n; j++) {
            float q = mean[j] / a->scale + (float)a->zp;
            q = q < -128 ? -128 : q > 127 ? 127 : q;
            c->results[o][j] = (int8_t)(q < 0 ? q - 0.5f : q + 0.5f);
        }
        free(mean);
        free(count);
    }
    c->ran = 1;
    c->inputs_set = 0;
    return RKNN_SUCC;
}

int rknn_outputs_get(rknn_context context, uint32_t n_outputs, rknn_output *outputs, void *extend) {
    Context *c = live(context);
    if (!c || !outputs) return RKNN_ERR_PARAM_INVALID;
    record("rknn_outputs_get n=%u extend=%s", n_outputs, extend ? "set" : "null");
    if (!c->ran) return RKNN_ERR_OUTPUT_INVALID;
    if (c->outstanding) {
        record("rknn_outputs_get: the previous outputs were not released");
        return RKNN_ERR_OUTPUT_INVALID;
    }
    for (uint32_t k = 0; k < n_outputs; k++) {
        rknn_output *out = &outputs[k];
        record("  output index=%u want_float=%u is_prealloc=%u size=%u", out->index, out->want_float,
               out->is_prealloc, out->size);
        if (out->index >= c->n_outputs) return RKNN_ERR_OUTPUT_INVALID;
        rknn_tensor_attr *a = &c->outputs[out->index];
        uint32_t n = a->n_elems;
        uint32_t bytes = out->want_float ? n * 4 : n;
        if (out->is_prealloc) {
            if (!out->buf || out->size < bytes) return RKNN_ERR_OUTPUT_INVALID;
        } else {
            out->buf = malloc(bytes);
            out->size = bytes;
        }
        /* NHWC outputs are laid out channel-last: element (h, w, ch) of the NCHW result. */
        for (uint32_t j = 0; j < n; j++) {
            uint32_t src = j;
            if (a->fmt == F_NHWC && a->n_dims == 4) {
                uint32_t H = a->dims[1], W = a->dims[2], C = a->dims[3];
                uint32_t ch = j % C, hw = j / C;
                src = ch * H * W + hw;
                (void)W;
            }
            int8_t q = c->results[out->index][src];
            if (out->want_float)
                ((float *)out->buf)[j] = ((float)q - (float)a->zp) * a->scale;
            else
                ((int8_t *)out->buf)[j] = q;
        }
    }
    c->outstanding = 1;
    return RKNN_SUCC;
}

int rknn_outputs_release(rknn_context context, uint32_t n_outputs, rknn_output *outputs) {
    Context *c = live(context);
    if (!c || !outputs) return RKNN_ERR_PARAM_INVALID;
    record("rknn_outputs_release n=%u", n_outputs);
    for (uint32_t k = 0; k < n_outputs; k++) {
        if (!outputs[k].is_prealloc) {
            free(outputs[k].buf);
            outputs[k].buf = NULL;
        }
    }
    c->outstanding = 0;
    return RKNN_SUCC;
}
