/*
 * Negative-binomial tail scores in C: nb_tail_score (insights/stats.py, which stays the
 * reference) for the engine's (rows, scales) arrays with a mask of the scores it reads.
 *
 * The selection, the clamps and the parameters of the incomplete beta and gamma functions are
 * computed here; the special functions themselves and the logarithm are scipy's and numpy's
 * ufunc loops (found once by set_loops, then called directly), once each per step on gathered
 * arrays, so every score has the same bits as the numpy code gives it
 * (tests/unit/insights/test_native.py compares them).
 *
 *   set_loops(exp2, gammainc, betainc, log10) -> bool   (whether their loops were found)
 *   tail_scores(x, lam, phi, where, out, work) -> None
 */
#include "native.h"
#define NPY_NO_DEPRECATED_API NPY_2_0_API_VERSION
#include <numpy/ndarraytypes.h>
#include <numpy/ufuncobject.h>

#include <math.h>
#include <string.h>

NativeModel native_model;

PyObject *
native_set_model(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    double values[8];
    if (nargs != 8) {
        return native_usage_error("set_model(prior_count, prior_minutes, slot_prior_minutes, "
                                  "max_phi, winsor_sigma, suspect_score, suspect_weight, "
                                  "poisson_phi)");
    }
    for (int k = 0; k < 8; k++) {
        values[k] = PyFloat_AsDouble(args[k]);
        if (values[k] == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    }
    native_model = (NativeModel){values[0], values[1], values[2], values[3], values[4],
                                 values[5], values[6], values[7], 1};
    Py_RETURN_NONE;
}

/* A 1-d or 2-d array of any strides, read as (rows, cols). */
typedef struct {
    Py_buffer view;
    Py_ssize_t rows, cols, stride0, stride1;
} Strided;

static int
get_strided(PyObject *obj, Strided *a, const char *what, const char *format,
            Py_ssize_t itemsize)
{
    if (PyObject_GetBuffer(obj, &a->view, PyBUF_RECORDS_RO) < 0) {
        a->view.obj = NULL;
        return -1;
    }
    Py_buffer *v = &a->view;
    if (v->format == NULL || strcmp(v->format, format) != 0 || v->itemsize != itemsize ||
        v->ndim < 1 || v->ndim > 2) {
        PyBuffer_Release(v);
        v->obj = NULL;
        PyErr_Format(PyExc_TypeError, "%s: expected a 1-d or 2-d array of '%s'", what, format);
        return -1;
    }
    a->rows = v->shape[0];
    a->stride0 = v->strides[0];
    a->cols = v->ndim == 2 ? v->shape[1] : 1;
    a->stride1 = v->ndim == 2 ? v->strides[1] : 0;
    return 0;
}

static inline const char *
at(const Strided *a, Py_ssize_t i, Py_ssize_t j)
{
    return (const char *)a->view.buf + i * a->stride0 + j * a->stride1;
}


/* numpy's fmax: the other operand when one is NaN */
static inline double
np_fmax(double a, double b)
{
    return (a >= b || isnan(b)) ? a : b;
}

/* ------------------------------------------------------------------ ufunc loops */
/* numpy's own PyUFuncObject (numpy/ufuncobject.h): its fields only, no numpy C API call. */

static NativeLoop loops[N_LOOPS];

/* The ufunc's loop whose every argument is a double; 0 when it has none. */
static int
find_loop(PyObject *ufunc, int nargs, NativeLoop *loop)
{
    memset(loop, 0, sizeof(*loop));
    if (strcmp(Py_TYPE(ufunc)->tp_name, "numpy.ufunc") != 0) {
        return 0;
    }
    const PyUFuncObject *u = (const PyUFuncObject *)ufunc;
    if (u->nargs != nargs || u->nout != 1 || u->nin != nargs - 1 || u->ntypes <= 0 ||
        u->ntypes > 1024 || u->types == NULL || u->functions == NULL) {
        return 0;
    }
    for (int t = 0; t < u->ntypes; t++) {
        int all_double = 1;
        for (int a = 0; a < nargs; a++) {
            all_double &= u->types[t * nargs + a] == NPY_DOUBLE;
        }
        if (all_double && u->functions[t] != NULL) {
            loop->fn = (void (*)(char **, const Py_ssize_t *, const Py_ssize_t *, void *))
                u->functions[t];
            loop->data = u->data == NULL ? NULL : u->data[t];
            loop->nargs = nargs;
            return 1;
        }
    }
    return 0;
}

PyObject *
native_set_loops(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    static const int arity[N_LOOPS] = {[LOOP_EXP2] = 2, [LOOP_GAMMAINC] = 3,
                                       [LOOP_BETAINC] = 4, [LOOP_LOG10] = 2};
    if (nargs != N_LOOPS) {
        return native_usage_error("set_loops(exp2, gammainc, betainc, log10)");
    }
    NativeLoop found[N_LOOPS];
    for (int k = 0; k < N_LOOPS; k++) {
        if (!find_loop(args[k], arity[k], &found[k])) {
            Py_RETURN_FALSE;
        }
    }
    memcpy(loops, found, sizeof(loops));
    Py_RETURN_TRUE;
}

int
native_loops_ready(void)
{
    if (!native_model.ready) {
        PyErr_SetString(PyExc_RuntimeError, "set_model() has not been called");
        return 0;
    }
    for (int k = 0; k < N_LOOPS; k++) {
        if (loops[k].fn == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "set_loops() has not found numpy's loops");
            return 0;
        }
    }
    return 1;
}

void
native_loop_run(int which, double *const *arrays, Py_ssize_t n)
{
    const NativeLoop *loop = &loops[which];
    Py_ssize_t steps[4] = {8, 8, 8, 8};
    if (n > 0) {
        loop->fn((char **)arrays, &n, steps, loop->data);
    }
}

/* ------------------------------------------------------------------ tail scores */
enum { W_POISSON_K, W_POISSON_LAM, W_NB_K, W_NB_A, W_NB_B, W_TAIL, W_ROWS };
_Static_assert(W_ROWS == NATIVE_TAIL_WORK_ROWS, "work rows");

void
native_tail_core(const NativeGrid *x, const NativeGrid *lam, const NativeGrid *phi,
                 const NativeGrid *where, double *scores, double *w, Py_ssize_t *positions)
{
    Py_ssize_t rows = x->rows, cols = x->cols, size = rows * cols;
#define WORK(row, i) w[(Py_ssize_t)(row) * size + (i)]
#define AT(g, type, i, j) (*(const type *)((g)->base + (i) * (g)->stride0 + (j) * (g)->stride1))
    /* the scores to compute, Poisson ones from the front of ``positions``, the others from
     * its back; each gets its special function's parameters */
    Py_ssize_t n_poisson = 0, n_nb = 0;
    for (Py_ssize_t i = 0; i < rows; i++) {
        for (Py_ssize_t j = 0; j < cols; j++) {
            Py_ssize_t index = i * cols + j;
            double k = ceil(AT(x, double, i, j));
            scores[index] = 0.0;
            if (!(k > 0) || !AT(where, char, i, j)) {
                continue;
            }
            double lam_ij = np_max(AT(lam, double, i, j), 1e-12);
            double phi_ij = AT(phi, double, i, j);
            if (phi_ij <= native_model.poisson_phi) {
                WORK(W_POISSON_K, n_poisson) = k;
                WORK(W_POISSON_LAM, n_poisson) = lam_ij;
                positions[n_poisson++] = index;
            } else {
                WORK(W_NB_K, n_nb) = k;
                WORK(W_NB_A, n_nb) = lam_ij / (phi_ij - 1.0);
                WORK(W_NB_B, n_nb) = 1.0 - 1.0 / phi_ij;
                positions[size - 1 - n_nb++] = index;
            }
        }
    }
#undef AT
    double *poisson[3] = {&WORK(W_POISSON_K, 0), &WORK(W_POISSON_LAM, 0), &WORK(W_TAIL, 0)};
    double *nb[4] = {&WORK(W_NB_K, 0), &WORK(W_NB_A, 0), &WORK(W_NB_B, 0),
                     &WORK(W_TAIL, n_poisson)};
    native_loop_run(LOOP_GAMMAINC, poisson, n_poisson);
    native_loop_run(LOOP_BETAINC, nb, n_nb);
    Py_ssize_t todo = n_poisson + n_nb;
    for (Py_ssize_t t = 0; t < todo; t++) {
        WORK(W_POISSON_K, t) = np_min(np_max(WORK(W_TAIL, t), 1e-300), 1.0);
    }
    double *logs[2] = {&WORK(W_POISSON_K, 0), &WORK(W_POISSON_K, 0)};
    native_loop_run(LOOP_LOG10, logs, todo);
    for (Py_ssize_t t = 0; t < todo; t++) {
        Py_ssize_t index = t < n_poisson ? positions[t] : positions[size - 1 - (t - n_poisson)];
        scores[index] = np_fmax(-WORK(W_POISSON_K, t), 0.0) + 0.0;
    }
#undef WORK
}

enum { S_X, S_LAM, S_PHI, S_WHERE, S_COUNT };

PyObject *
native_tail_scores(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6) {
        return native_usage_error("tail_scores(x, lam, phi, where, out, work)");
    }
    if (!native_loops_ready()) {
        return NULL;
    }
    static const char *what[S_COUNT] = {"x", "lam", "phi", "where"};
    Strided in[S_COUNT];
    memset(in, 0, sizeof(in));
    Py_buffer out = {0}, work = {0};
    Py_ssize_t *positions = NULL;
    PyObject *result = NULL;
    for (int a = 0; a < S_COUNT; a++) {
        if (get_strided(args[a], &in[a], what[a], a == S_WHERE ? "?" : "d",
                        a == S_WHERE ? 1 : 8) < 0) {
            goto done;
        }
        if (in[a].rows != in[0].rows || in[a].cols != in[0].cols) {
            PyErr_SetString(PyExc_ValueError, "x, lam, phi and where differ in shape");
            goto done;
        }
    }
    Py_ssize_t size = in[0].rows * in[0].cols;
    if (native_get_array(args[4], &out, "out", F64, 8, size, 1) < 0 ||
        native_get_array(args[5], &work, "work", F64, 8, W_ROWS * size, 1) < 0) {
        goto done;
    }
    positions = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(size + 1));
    if (positions == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    NativeGrid grid[S_COUNT];
    for (int a = 0; a < S_COUNT; a++) {
        grid[a].base = in[a].view.buf;
        grid[a].rows = in[a].rows;
        grid[a].cols = in[a].cols;
        grid[a].stride0 = in[a].stride0;
        grid[a].stride1 = in[a].stride1;
    }
    native_tail_core(&grid[S_X], &grid[S_LAM], &grid[S_PHI], &grid[S_WHERE], out.buf, work.buf,
                     positions);
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(positions);
    for (int a = 0; a < S_COUNT; a++) {
        if (in[a].view.obj != NULL) {
            PyBuffer_Release(&in[a].view);
        }
    }
    native_release_all(&out, 1);
    native_release_all(&work, 1);
    return result;
}
