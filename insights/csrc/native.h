/* Shared by the translation units of insights._native. */
#ifndef CTINSIGHTS_NATIVE_H
#define CTINSIGHTS_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>

/* Bumped whenever a function's arguments or results change (insights/native.py checks it). */
#define NATIVE_ABI 13

/* insights.windows.RETIRE_EVERY: look-back minutes are retired in blocks of this many (the
 * module exports it; a test keeps the two equal). */
#define RETIRE_EVERY 30

/* The baselines' shape: insights/model.py's default (insights/native.py checks that the model
 * has it, else the module is not used). */
#define N_SLOTS 48
#define N_SCALES 3
#define NATIVE_SCALES {1, 10, 60}
/* Planes of a scoring step's output (baselines._P_*): one row of n values each. */
enum { P_DECAY = 0, P_MU = 1, P_MEAN = 2, P_PHI = 3, P_WINDOW = 6, P_LAM = 9, P_SCORE_PHI = 12,
       P_PEAK0 = 15, N_PLANES = 16 };

/* The model's constants, as insights/model.py's ModelParams has them: set_model(...) stores
 * them (insights/native.py calls it at import, before anything else runs). */
typedef struct {
    double prior_count, prior_minutes, slot_prior_minutes, max_phi, winsor_sigma, suspect_score,
        suspect_weight, poisson_phi;
    int ready;
} NativeModel;
extern NativeModel native_model;
PyObject *native_set_model(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* numpy's maximum and minimum: a NaN operand wins (the C library's fmax/fmin drop it). */
static inline double
np_max(double a, double b)
{
    return (a >= b || isnan(a)) ? a : b;
}

static inline double
np_min(double a, double b)
{
    return (a <= b || isnan(a)) ? a : b;
}

/* The TypeError of a call that does not match ``usage``; returns NULL. */
PyObject *native_usage_error(const char *usage);

/* getattr and setattr by a C string, interned once: PyObject_GetAttrString builds and hashes a
 * new str on every call (a tenth of a quiet stream's engine time). GIL held. */
PyObject *native_getattr(PyObject *obj, const char *name);
int native_setattr(PyObject *obj, const char *name, PyObject *value);

/* An int or float attribute as a C value; -1 with an exception on error (_closing.c). */
int native_attr_long(PyObject *obj, const char *name, long long *out);
int native_attr_double(PyObject *obj, const char *name, double *out);

/* Buffer formats, as NUL-separated lists for native_get_array. */
#define F64 "d\0"
#define F32 "f\0"
#define I64 "l\0q\0"
#define BOOL "?\0"

/* A C-contiguous buffer of ``count`` items (any number when negative) of one of ``formats``;
 * -1 with a TypeError otherwise. */
int native_get_array(PyObject *obj, Py_buffer *view, const char *what, const char *formats,
                     Py_ssize_t itemsize, Py_ssize_t count, int writable);
/* Release the views that hold a buffer. */
void native_release_all(Py_buffer *views, int count);

/* _sketch.c: AttributionTable.merge_minute and merge_buffers. */
PyObject *native_merge_minute(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_merge_buffers(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _stats.c: nb_tail_score. */
PyObject *native_tail_scores(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _stats.c: numpy's and scipy's ufunc loops for doubles, called directly. The ufunc machinery
 * costs microseconds per call, more than a quiet closing step's arithmetic; the loop is the
 * code the ufunc runs on contiguous doubles, so the bits are the same. Floating-point flags
 * are ignored, as under ``np.errstate(all="ignore")``. set_loops(exp2, gammainc, betainc,
 * log10) finds them (insights/native.py calls it once; without them the module is not used). */
typedef struct {
    void (*fn)(char **args, const Py_ssize_t *dims, const Py_ssize_t *steps, void *data);
    void *data;
    int nargs;
} NativeLoop;
enum { LOOP_EXP2, LOOP_GAMMAINC, LOOP_BETAINC, LOOP_LOG10, N_LOOPS };
PyObject *native_set_loops(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
/* 1 when set_loops found every loop and set_model was called, else 0 with a RuntimeError. */
int native_loops_ready(void);
/* ``ufunc(*arrays[:-1], out=arrays[-1])`` on ``n`` contiguous doubles each (in place allowed). */
void native_loop_run(int which, double *const *arrays, Py_ssize_t n);

/* A (rows, cols) grid of values at byte strides. */
typedef struct {
    const char *base;
    Py_ssize_t rows, cols, stride0, stride1;
} NativeGrid;
#define NATIVE_TAIL_WORK_ROWS 6
/* nb_tail_score of the grids (same shape; ``where`` of bools) into ``scores`` (rows * cols,
 * C order); ``work`` holds NATIVE_TAIL_WORK_ROWS * size doubles, ``positions`` size + 1. */
void native_tail_core(const NativeGrid *x, const NativeGrid *lam, const NativeGrid *phi,
                      const NativeGrid *where, double *scores, double *work,
                      Py_ssize_t *positions);

/* _closing.c: BaselineTable.score_minutes and learn_minutes. */
PyObject *native_score_minutes(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_learn_minutes(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* The arrays of a BaselineTable (held as buffers while open), its used size and half-lives. */
#define NATIVE_TABLE_ARRAYS 7
typedef struct {
    Py_buffer view[NATIVE_TABLE_ARRAYS];
    float *counts, *part, *part_raw, *peak_val;
    double *sq;
    long long *last, *peak_min;
    Py_ssize_t size;
    double half_life, peak_half_life;
} NativeTable;
/* Open (-1 with an exception on error; close it either way) and close a table. */
int native_open_table(PyObject *obj, NativeTable *t);
void native_close_table(NativeTable *t);
/* Every row in [0, size) and every item (unless NULL) in [0, items); -1 with IndexError. */
int native_check_rows(const NativeTable *t, const long long *rows, const long long *item,
                      Py_ssize_t n, Py_ssize_t items);
/* score_minutes on checked rows: ``exposures`` and ``minutes`` are PySequence_Fast sequences
 * (one per item), ``scratch`` holds items + 5 * n doubles, ``planes`` N_PLANES * n (16),
 * ``needed`` 3 * n bools; -1 with an exception on error. */
int native_score_core(NativeTable *t, const long long *rows, const double *counts,
                      const long long *item, Py_ssize_t n, PyObject *exposures, PyObject *minutes,
                      double min_excess, double *scratch, double *planes, char *needed);
/* StreamExposure.add_minutes(start, end); -1 with an exception on error. */
int native_add_minutes(PyObject *exposure, long long start, long long end);
/* learn_minutes on checked rows. */
void native_learn_core(NativeTable *t, const long long *rows, const double *counts,
                       const double *scores, const char *guarded, const long long *minutes,
                       const double *planes, Py_ssize_t n);

/* _step.c: MinuteCloser._close_batch in C, and a round of its drain. */
PyObject *native_close_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_next_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _native.c: epoch seconds of "YYYY-MM-DDTHH:MM:SSZ" (``len`` ASCII bytes) when valid and in
 * range, else -1. */
long long native_strict_seconds(const unsigned char *p, Py_ssize_t len);

#endif
