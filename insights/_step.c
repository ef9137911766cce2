/* InsightEngine._close_batch for the usual step: no stream of the step has an open insight.
 *
 *   close_step(batch, table, open, ids, weights, intern, min_excess, start_score,
 *              rescale_exponent, lookback, tools) -> None | False | tuple
 *
 * ``batch`` is the step's list of (stream, minute, buffer); ``tools`` is
 * (exp2, gammainc, betainc, log10, empty, int64, float64, bool). The step gathers each
 * stream-minute's rows (sorted) and counts from its buffer, then calls the same C code the
 * Python step calls, in the same order: score_minutes, tail_scores, learn_minutes,
 * merge_buffers, then remembers the buffers for attribution look-back.
 *
 * Returns None, having changed nothing, when the Python step must run instead: a stream of the
 * step has open insights, a row is in an open insight, or an exposure must be rebased first.
 * Returns False when the step is done (no score reached ``start_score``: nothing starts).
 * Otherwise the minute is scored but not learned, and the result is
 * (rows, counts, item, minute, planes, scratch, needed, scores) for the Python step to decide
 * the Starts, learn, merge and remember.
 */
#include "_native.h"

#include <stdlib.h>
#include <string.h>

enum { T_EXP2, T_GAMMAINC, T_BETAINC, T_LOG10, T_EMPTY, T_I64, T_F64, T_BOOL, T_COUNT };

#define N_PLANES 16 /* baselines._PLANES */
#define P_DECAY 0
#define P_WINDOW 6
#define P_LAM 9
#define P_SCORE_PHI 12
#define N_SCALES 3
#define W_ROWS 6 /* the work rows of tail_scores */

typedef struct {
    long long row, count;
} RowCount;

typedef struct {
    RowCount *data;
    Py_ssize_t size, capacity;
} Gathered;

static int
row_order(const void *a, const void *b)
{
    long long x = ((const RowCount *)a)->row, y = ((const RowCount *)b)->row;
    return (x > y) - (x < y);
}

static int
push(Gathered *g, long long row, long long count)
{
    if (g->size == g->capacity) {
        Py_ssize_t capacity = g->capacity ? 2 * g->capacity : 64;
        RowCount *data = PyMem_Realloc(g->data, (size_t)capacity * sizeof(RowCount));
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        g->data = data;
        g->capacity = capacity;
    }
    g->data[g->size].row = row;
    g->data[g->size].count = count;
    g->size++;
    return 0;
}

/* Whether the exposure must be rebased before ``minute`` (needs_rescale); -1 on error. */
static int
needs_rescale(PyObject *exposure, long long minute, double exponent)
{
    PyObject *ref = native_getattr(exposure, "ref_minute");
    PyObject *half = ref == NULL ? NULL : native_getattr(exposure, "half_life");
    long long ref_minute = ref == NULL ? -1 : PyLong_AsLongLong(ref);
    double half_life = half == NULL ? -1.0 : PyFloat_AsDouble(half);
    Py_XDECREF(ref);
    Py_XDECREF(half);
    if (PyErr_Occurred()) {
        return -1;
    }
    return (double)(minute - ref_minute) / half_life > exponent;
}

/* Whether the stream has open insights; -1 on error. */
static int
has_open_rows(PyObject *stream)
{
    PyObject *open_rows = native_getattr(stream, "open_rows");
    if (open_rows == NULL) {
        return -1;
    }
    Py_ssize_t size = PyObject_Size(open_rows);
    Py_DECREF(open_rows);
    return size < 0 ? -1 : size > 0;
}

/* Appends the buffer's rows, summed per row and sorted; 1 when a row is in ``open``. */
static int
gather_buffer(PyObject *buffer, PyObject *open, Gathered *g)
{
    if (!PyDict_Check(buffer)) {
        PyErr_SetString(PyExc_TypeError, "a minute buffer must be a dict");
        return -1;
    }
    Py_ssize_t first = g->size, pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(buffer, &pos, &key, &value)) {
        if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 4) {
            PyErr_SetString(PyExc_TypeError, "a buffer key must be (row, principal, agent, error)");
            return -1;
        }
        long long row = PyLong_AsLongLong(PyTuple_GET_ITEM(key, 0));
        long long count = PyLong_AsLongLong(value);
        if (PyErr_Occurred() || push(g, row, count) < 0) {
            return -1;
        }
    }
    RowCount *rows = g->data + first;
    Py_ssize_t n = g->size - first, kept = 0;
    qsort(rows, (size_t)n, sizeof(RowCount), row_order);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (kept && rows[kept - 1].row == rows[i].row) {
            rows[kept - 1].count += rows[i].count;
        } else {
            rows[kept++] = rows[i];
        }
    }
    g->size = first + kept;
    if (PyDict_GET_SIZE(open) == 0) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < kept; i++) {
        PyObject *row = PyLong_FromLongLong(rows[i].row);
        int found = row == NULL ? -1 : PyDict_Contains(open, row);
        Py_XDECREF(row);
        if (found != 0) {
            return found;
        }
    }
    return 0;
}

static PyObject *
new_array(PyObject *const *tools, PyObject *shape, int dtype, void **data, Py_ssize_t count,
          const char *formats, Py_ssize_t itemsize)
{
    if (shape == NULL) {
        return NULL;
    }
    PyObject *array = PyObject_CallFunctionObjArgs(tools[T_EMPTY], shape, tools[dtype], NULL);
    Py_DECREF(shape);
    Py_buffer view;
    if (array == NULL || native_get_array(array, &view, "array", formats, itemsize, count, 1) < 0) {
        Py_XDECREF(array);
        return NULL;
    }
    *data = view.buf; /* the array owns the memory; the view only checked it */
    PyBuffer_Release(&view);
    return array;
}

/* ``planes[lo:lo + 3].T``: one plane group as an (n, scales) view. */
static PyObject *
planes_view(PyObject *planes, Py_ssize_t lo)
{
    PyObject *rows = PySequence_GetSlice(planes, lo, lo + N_SCALES);
    if (rows == NULL) {
        return NULL;
    }
    PyObject *view = native_getattr(rows, "T");
    Py_DECREF(rows);
    return view;
}

/* StreamState.remember: keep the buffer for look-back, drop minutes at or before the cutoff. */
static int
remember(PyObject *stream, PyObject *minute_obj, long long minute, PyObject *buffer,
         long long lookback)
{
    PyObject *recent = native_getattr(stream, "recent");
    if (recent == NULL) {
        return -1;
    }
    int status = 0;
    if (!PyDict_Check(recent)) {
        PyErr_SetString(PyExc_TypeError, "stream.recent must be a dict");
        status = -1;
    } else if (PyDict_GET_SIZE(buffer) && PyDict_SetItem(recent, minute_obj, buffer) < 0) {
        status = -1;
    }
    long long cutoff = minute - lookback;
    while (status == 0 && PyDict_GET_SIZE(recent)) {
        Py_ssize_t pos = 0;
        PyObject *oldest, *unused;
        PyDict_Next(recent, &pos, &oldest, &unused);
        long long value = PyLong_AsLongLong(oldest);
        if (value == -1 && PyErr_Occurred()) {
            status = -1;
        } else if (value > cutoff) {
            break;
        } else {
            Py_INCREF(oldest);
            status = PyDict_DelItem(recent, oldest);
            Py_DECREF(oldest);
        }
    }
    Py_DECREF(recent);
    return status;
}

PyObject *
native_close_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 11) {
        return native_usage_error("close_step(batch, table, open, ids, weights, intern, "
                                  "min_excess, start_score, rescale_exponent, lookback, tools)");
    }
    PyObject *batch = args[0], *table = args[1], *open = args[2], *tools_obj = args[10];
    double start_score = PyFloat_AsDouble(args[7]);
    double exponent = PyFloat_AsDouble(args[8]);
    long long lookback = PyLong_AsLongLong(args[9]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_Check(batch) || !PyDict_Check(open) || !PyTuple_Check(tools_obj) ||
        PyTuple_GET_SIZE(tools_obj) != T_COUNT) {
        return native_usage_error("close_step(batch: list, table, open: dict, ..., tools: tuple)");
    }
    PyObject *const *tools = &PyTuple_GET_ITEM(tools_obj, 0);
    Py_ssize_t n_items = PyList_GET_SIZE(batch);
    PyObject *result = NULL, *exposures = NULL, *minutes = NULL, *buffers = NULL;
    PyObject *rows = NULL, *counts = NULL, *item = NULL, *minute = NULL, *planes = NULL;
    PyObject *scratch = NULL, *needed = NULL, *scores = NULL, *work = NULL, *guarded = NULL;
    PyObject *x = NULL, *lam = NULL, *phi = NULL, *weights = NULL, *done = NULL;
    Gathered g = {NULL, 0, 0};
    Py_ssize_t *bounds = PyMem_Calloc((size_t)n_items + 1, sizeof(Py_ssize_t));
    long long *minute_of = PyMem_Calloc((size_t)n_items + 1, sizeof(long long));
    exposures = PyList_New(n_items);
    minutes = PyList_New(n_items);
    buffers = PyList_New(n_items);
    if (bounds == NULL || minute_of == NULL || exposures == NULL || minutes == NULL ||
        buffers == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_NoMemory();
        }
        goto done;
    }
    /* 1. checks and the gather: nothing changes until every stream-minute qualifies */
    for (Py_ssize_t i = 0; i < n_items; i++) {
        PyObject *entry = PyList_GET_ITEM(batch, i);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3) {
            PyErr_SetString(PyExc_TypeError, "a batch entry must be (stream, minute, buffer)");
            goto done;
        }
        PyObject *stream = PyTuple_GET_ITEM(entry, 0), *at = PyTuple_GET_ITEM(entry, 1);
        PyObject *buffer = PyTuple_GET_ITEM(entry, 2);
        minute_of[i] = PyLong_AsLongLong(at);
        if (minute_of[i] == -1 && PyErr_Occurred()) {
            goto done;
        }
        PyObject *exposure = native_getattr(stream, "exposure");
        if (exposure == NULL) {
            goto done;
        }
        PyList_SET_ITEM(exposures, i, exposure);
        int skip = has_open_rows(stream);
        if (skip == 0) {
            skip = needs_rescale(exposure, minute_of[i] + 1, exponent);
        }
        if (skip == 0) {
            skip = gather_buffer(buffer, open, &g);
        }
        if (skip < 0) {
            goto done;
        }
        if (skip) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        bounds[i + 1] = g.size;
        PyList_SET_ITEM(minutes, i, Py_NewRef(at));
        PyList_SET_ITEM(buffers, i, Py_NewRef(buffer));
    }
    /* 2. the arrays of the step */
    Py_ssize_t n = g.size;
    long long *rows_p, *item_p, *minute_p;
    double *counts_p, *planes_p, *scores_p;
    char *guarded_p;
    void *unused;
    rows = new_array(tools, PyLong_FromSsize_t(n), T_I64, (void **)&rows_p, n, I64, 8);
    counts = rows == NULL ? NULL
                          : new_array(tools, PyLong_FromSsize_t(n), T_F64, (void **)&counts_p, n,
                                      F64, 8);
    item = counts == NULL ? NULL
                          : new_array(tools, PyLong_FromSsize_t(n), T_I64, (void **)&item_p, n,
                                      I64, 8);
    minute = item == NULL ? NULL
                          : new_array(tools, PyLong_FromSsize_t(n), T_I64, (void **)&minute_p, n,
                                      I64, 8);
    planes = minute == NULL ? NULL
                            : new_array(tools, Py_BuildValue("(nn)", (Py_ssize_t)N_PLANES, n),
                                        T_F64, (void **)&planes_p, N_PLANES * n, F64, 8);
    needed = planes == NULL ? NULL
                            : new_array(tools, Py_BuildValue("(nn)", n, (Py_ssize_t)N_SCALES),
                                        T_BOOL, &unused, N_SCALES * n, BOOL, 1);
    scratch = needed == NULL ? NULL
                             : new_array(tools, PyLong_FromSsize_t(n_items + 5 * n), T_F64,
                                         &unused, n_items + 5 * n, F64, 8);
    scores = scratch == NULL ? NULL
                             : new_array(tools, Py_BuildValue("(nn)", n, (Py_ssize_t)N_SCALES),
                                         T_F64, (void **)&scores_p, N_SCALES * n, F64, 8);
    work = scores == NULL ? NULL
                          : new_array(tools,
                                      Py_BuildValue("(nn)", (Py_ssize_t)W_ROWS, N_SCALES * n),
                                      T_F64, &unused, W_ROWS * N_SCALES * n, F64, 8);
    if (work == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_items; i++) {
        for (Py_ssize_t j = bounds[i]; j < bounds[i + 1]; j++) {
            rows_p[j] = g.data[j].row;
            counts_p[j] = (double)g.data[j].count;
            item_p[j] = i;
            minute_p[j] = minute_of[i];
        }
    }
    /* 3. score: the baselines' side, then the tail scores */
    PyObject *min_excess = args[6];
    PyObject *score_args[11] = {table,       rows,    counts,  item,    exposures, minutes,
                                min_excess,  tools[T_EXP2], scratch, planes, needed};
    done = native_score_minutes(module, score_args, 11);
    if (done == NULL) {
        goto done;
    }
    Py_CLEAR(done);
    x = planes_view(planes, P_WINDOW);
    lam = x == NULL ? NULL : planes_view(planes, P_LAM);
    phi = lam == NULL ? NULL : planes_view(planes, P_SCORE_PHI);
    if (phi == NULL) {
        goto done;
    }
    PyObject *tail_args[9] = {x,    lam,  phi, needed, scores, work, tools[T_GAMMAINC],
                              tools[T_BETAINC], tools[T_LOG10]};
    done = native_tail_scores(module, tail_args, 9);
    if (done == NULL) {
        goto done;
    }
    Py_CLEAR(done);
    for (Py_ssize_t k = 0; k < N_SCALES * n; k++) {
        if (scores_p[k] >= start_score) {
            result = PyTuple_Pack(8, rows, counts, item, minute, planes, scratch, needed, scores);
            goto done;
        }
    }
    /* 4. nothing starts: learn every row, merge the buffers, remember them */
    guarded = new_array(tools, PyLong_FromSsize_t(n), T_BOOL, (void **)&guarded_p, n, BOOL, 1);
    if (guarded == NULL) {
        goto done;
    }
    memset(guarded_p, 0, (size_t)n);
    PyObject *learn_args[7] = {table, rows, counts, scores, guarded, minute, planes};
    done = native_learn_minutes(module, learn_args, 7);
    if (done == NULL) {
        goto done;
    }
    Py_CLEAR(done);
    weights = PyDict_New();
    if (weights == NULL) {
        goto done;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *row = PyLong_FromLongLong(rows_p[j]);
        PyObject *decay = row == NULL ? NULL : PyFloat_FromDouble(planes_p[P_DECAY * n + j]);
        int status = decay == NULL ? -1 : PyDict_SetItem(weights, row, decay);
        Py_XDECREF(row);
        Py_XDECREF(decay);
        if (status < 0) {
            goto done;
        }
    }
    PyObject *merge_args[5] = {args[3], args[4], buffers, weights, args[5]};
    done = native_merge_buffers(module, merge_args, 5);
    if (done == NULL) {
        goto done;
    }
    Py_CLEAR(done);
    for (Py_ssize_t i = 0; i < n_items; i++) {
        PyObject *entry = PyList_GET_ITEM(batch, i);
        if (remember(PyTuple_GET_ITEM(entry, 0), PyTuple_GET_ITEM(entry, 1), minute_of[i],
                     PyTuple_GET_ITEM(entry, 2), lookback) < 0) {
            goto done;
        }
    }
    result = Py_NewRef(Py_False);
done:
    PyMem_Free(g.data);
    PyMem_Free(bounds);
    PyMem_Free(minute_of);
    Py_XDECREF(exposures);
    Py_XDECREF(minutes);
    Py_XDECREF(buffers);
    Py_XDECREF(rows);
    Py_XDECREF(counts);
    Py_XDECREF(item);
    Py_XDECREF(minute);
    Py_XDECREF(planes);
    Py_XDECREF(scratch);
    Py_XDECREF(needed);
    Py_XDECREF(scores);
    Py_XDECREF(work);
    Py_XDECREF(guarded);
    Py_XDECREF(x);
    Py_XDECREF(lam);
    Py_XDECREF(phi);
    Py_XDECREF(weights);
    Py_XDECREF(done);
    return result;
}
