/*
 * Negative-binomial tail scores in C: nb_tail_score (insights/stats.py, which stays the
 * reference) for the engine's (rows, scales) arrays with a mask of the scores it reads.
 *
 * The selection, the clamps and the parameters of the incomplete beta and gamma functions are
 * computed here; the special functions themselves and the logarithm are scipy's and numpy's
 * ufuncs, called once each per step on gathered arrays, so every score has the same bits as
 * the numpy code gives it (tests/unit/insights/test_native.py compares them).
 *
 *   tail_scores(x, lam, phi, where, out, work, gammainc, betainc, log10) -> None
 */
#include "_native.h"

#include <math.h>
#include <string.h>

#define POISSON_PHI (1.0 + 1e-6) /* stats._POISSON_PHI */

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

/* ``work[row][start:start + count]`` as an array view. */
static PyObject *
work_slice(PyObject *work, Py_ssize_t row, Py_ssize_t start, Py_ssize_t count)
{
    PyObject *line = PySequence_GetItem(work, row);
    if (line == NULL) {
        return NULL;
    }
    PyObject *slice = PySequence_GetSlice(line, start, start + count);
    Py_DECREF(line);
    return slice;
}

/* ``func(work[a][:count], work[b][:count], ..., out=work[out_row][out_start:...])``. */
static int
call_on_work(PyObject *func, PyObject *work, const int *rows, int n_in, int out_row,
             Py_ssize_t out_start, Py_ssize_t count)
{
    PyObject *args[4] = {NULL};
    int ok = 0;
    for (int r = 0; r < n_in; r++) {
        if ((args[r] = work_slice(work, rows[r], 0, count)) == NULL) {
            goto done;
        }
    }
    if ((args[n_in] = work_slice(work, out_row, out_start, count)) == NULL) {
        goto done;
    }
    PyObject *result = PyObject_Vectorcall(func, args, (size_t)(n_in + 1), NULL);
    ok = result != NULL;
    Py_XDECREF(result);
done:
    for (int r = 0; r <= n_in; r++) {
        Py_XDECREF(args[r]);
    }
    return ok ? 0 : -1;
}

enum { W_POISSON_K, W_POISSON_LAM, W_NB_K, W_NB_A, W_NB_B, W_TAIL, W_ROWS };
enum { S_X, S_LAM, S_PHI, S_WHERE, S_COUNT };

PyObject *
native_tail_scores(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 9) {
        return native_usage_error(
            "tail_scores(x, lam, phi, where, out, work, gammainc, betainc, log10)");
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
    Py_ssize_t rows = in[0].rows, cols = in[0].cols, size = rows * cols;
    if (native_get_array(args[4], &out, "out", F64, 8, size, 1) < 0 ||
        native_get_array(args[5], &work, "work", F64, 8, W_ROWS * size, 1) < 0) {
        goto done;
    }
    positions = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(size + 1));
    if (positions == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double *scores = out.buf, *w = work.buf;
#define WORK(row, i) w[(Py_ssize_t)(row) * size + (i)]
    /* the scores to compute, Poisson ones from the front of ``positions``, the others from
     * its back; each gets its special function's parameters */
    Py_ssize_t n_poisson = 0, n_nb = 0;
    for (Py_ssize_t i = 0; i < rows; i++) {
        for (Py_ssize_t j = 0; j < cols; j++) {
            Py_ssize_t index = i * cols + j;
            double k = ceil(*(const double *)at(&in[S_X], i, j));
            scores[index] = 0.0;
            if (!(k > 0) || !*(const char *)at(&in[S_WHERE], i, j)) {
                continue;
            }
            double lam = np_max(*(const double *)at(&in[S_LAM], i, j), 1e-12);
            double phi = *(const double *)at(&in[S_PHI], i, j);
            if (phi <= POISSON_PHI) {
                WORK(W_POISSON_K, n_poisson) = k;
                WORK(W_POISSON_LAM, n_poisson) = lam;
                positions[n_poisson++] = index;
            } else {
                WORK(W_NB_K, n_nb) = k;
                WORK(W_NB_A, n_nb) = lam / (phi - 1.0);
                WORK(W_NB_B, n_nb) = 1.0 - 1.0 / phi;
                positions[size - 1 - n_nb++] = index;
            }
        }
    }
    static const int poisson_in[] = {W_POISSON_K, W_POISSON_LAM}, nb_in[] = {W_NB_K, W_NB_A, W_NB_B};
    if ((n_poisson && call_on_work(args[6], args[5], poisson_in, 2, W_TAIL, 0, n_poisson) < 0) ||
        (n_nb && call_on_work(args[7], args[5], nb_in, 3, W_TAIL, n_poisson, n_nb) < 0)) {
        goto done;
    }
    Py_ssize_t todo = n_poisson + n_nb;
    for (Py_ssize_t t = 0; t < todo; t++) {
        WORK(W_POISSON_K, t) = np_min(np_max(WORK(W_TAIL, t), 1e-300), 1.0);
    }
    static const int log_in[] = {W_POISSON_K};
    if (todo && call_on_work(args[8], args[5], log_in, 1, W_POISSON_K, 0, todo) < 0) {
        goto done;
    }
    for (Py_ssize_t t = 0; t < todo; t++) {
        Py_ssize_t index = t < n_poisson ? positions[t] : positions[size - 1 - (t - n_poisson)];
        scores[index] = np_fmax(-WORK(W_POISSON_K, t), 0.0) + 0.0;
    }
#undef WORK
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
