/* MinuteCloser._close_batch and the rounds of its drain, in C.
 *
 *   close_step(batch, table, ids, weights, intern, min_excess, start_score, sparse,
 *              rescale_exponent, lookback, tools) -> None | False | list | tuple
 *   next_batch(due, ahead, gap_piece, rescale_exponent, rebase) -> list
 *
 * ``batch`` is the step's list of (stream, minute, buffer); ``tools`` is
 * (empty, int64, float64, bool), to make the arrays of a possible Start. The step gathers each
 * stream-minute's rows (sorted; the stream's open rows included) and counts from its buffer,
 * then runs the C code the Python step calls, in the same order, on memory of its own:
 * score_minutes, tail_scores, learn_minutes, merge_buffers, then remembers the buffers for
 * attribution look-back.
 *
 * Returns None, having changed nothing, when the Python step must run instead: an exposure must
 * be rebased first. When no row outside an open insight needs Python's review (at no scale is
 * its window ``min_excess`` above the expectation while it scores ``start_score`` or expects
 * fewer than ``sparse`` calls, and its minute is not a suspicious one (``suspect_score``) of a
 * key expecting fewer than ``sparse`` calls a minute: MinuteCloser._candidates), the step is
 * done, open rows learned as guarded: False, or
 * when insights of the step are open, what they observe, a list of
 * (item, row, count, mu, (phi per scale)) per open row for Python to feed them. Otherwise the
 * minute is scored but not learned, and the result is
 * (rows, counts, item, minute, planes, scratch, needed, scores) for the Python step to decide
 * the Starts, feed the open insights, learn, merge and remember.
 *
 * next_batch is one round of the drain: the next minute of each stream of ``due`` (removing
 * those with none), empty minutes before it accounted to the stream's exposure in pieces of
 * ``gap_piece`` minutes, ``rebase(stream, minute)`` called first where the exposure is due.
 */
#include "native.h"

#include <stdlib.h>
#include <string.h>

enum { T_EMPTY, T_I64, T_F64, T_BOOL, T_COUNT };


typedef struct {
    long long row, count;
    int open; /* in an open insight of its stream */
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
push(Gathered *g, long long row, long long count, int open)
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
    g->data[g->size].open = open;
    g->size++;
    return 0;
}

/* Whether the exposure must be rebased before ``minute`` (needs_rescale); -1 on error. */
static int
needs_rescale(PyObject *exposure, long long minute, double exponent)
{
    long long ref_minute;
    double half_life;
    if (native_attr_long(exposure, "ref_minute", &ref_minute) < 0 ||
        native_attr_double(exposure, "half_life", &half_life) < 0) {
        return -1;
    }
    return (double)(minute - ref_minute) / half_life > exponent;
}

/* Appends the rows of ``buffer`` and the stream's ``open_rows`` (count 0 unless in the buffer),
 * summed per row and sorted, as the Python step's ``active`` dict; 1 when the stream has open
 * insights, -1 on error. */
static int
gather_rows(PyObject *stream, PyObject *buffer, Gathered *g)
{
    if (!PyDict_Check(buffer)) {
        PyErr_SetString(PyExc_TypeError, "a minute buffer must be a dict");
        return -1;
    }
    PyObject *open_rows = native_getattr(stream, "open_rows");
    if (open_rows == NULL) {
        return -1;
    }
    PyObject *iter = PyObject_GetIter(open_rows), *row_obj;
    Py_DECREF(open_rows);
    if (iter == NULL) {
        return -1;
    }
    Py_ssize_t first = g->size, pos = 0;
    int has_open = 0, status = 0;
    while (status == 0 && (row_obj = PyIter_Next(iter)) != NULL) {
        long long row = PyLong_AsLongLong(row_obj);
        Py_DECREF(row_obj);
        status = (row == -1 && PyErr_Occurred()) || push(g, row, 0, 1) < 0 ? -1 : 0;
        has_open = 1;
    }
    Py_DECREF(iter);
    if (status < 0 || PyErr_Occurred()) {
        return -1;
    }
    PyObject *key, *value;
    while (PyDict_Next(buffer, &pos, &key, &value)) {
        if (!PyTuple_Check(key) || PyTuple_GET_SIZE(key) != 4) {
            PyErr_SetString(PyExc_TypeError, "a buffer key must be (row, principal, agent, error)");
            return -1;
        }
        long long row = PyLong_AsLongLong(PyTuple_GET_ITEM(key, 0));
        long long count = PyLong_AsLongLong(value);
        if (PyErr_Occurred() || push(g, row, count, 0) < 0) {
            return -1;
        }
    }
    RowCount *rows = g->data + first;
    Py_ssize_t n = g->size - first, kept = 0;
    qsort(rows, (size_t)n, sizeof(RowCount), row_order);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (kept && rows[kept - 1].row == rows[i].row) {
            rows[kept - 1].count += rows[i].count;
            rows[kept - 1].open |= rows[i].open;
        } else {
            rows[kept++] = rows[i];
        }
    }
    g->size = first + kept;
    return has_open;
}

/* A new numpy array of ``shape`` (a new reference, stolen) holding a copy of ``bytes`` bytes. */
static PyObject *
array_of(PyObject *const *tools, PyObject *shape, int dtype, const void *data, Py_ssize_t bytes)
{
    if (shape == NULL) {
        return NULL;
    }
    PyObject *array = PyObject_CallFunctionObjArgs(tools[T_EMPTY], shape, tools[dtype], NULL);
    Py_DECREF(shape);
    Py_buffer view;
    if (array == NULL ||
        PyObject_GetBuffer(array, &view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        Py_XDECREF(array);
        return NULL;
    }
    if (view.len != bytes) {
        PyBuffer_Release(&view);
        Py_DECREF(array);
        PyErr_SetString(PyExc_ValueError, "close_step: an array of the wrong size");
        return NULL;
    }
    memcpy(view.buf, data, (size_t)bytes);
    PyBuffer_Release(&view);
    return array;
}

/* The memory of a step with n rows and n_items stream-minutes (one block, 8-byte aligned). */
typedef struct {
    long long *rows, *item, *minute;
    double *counts, *planes, *scratch, *scores, *work;
    char *needed, *guarded;
    Py_ssize_t *positions;
    void *block;
} StepMemory;

static int
step_memory(StepMemory *m, Py_ssize_t n, Py_ssize_t n_items)
{
    Py_ssize_t words[] = {n, n, n, n, N_PLANES * n, n_items + 5 * n, N_SCALES * n,
                          NATIVE_TAIL_WORK_ROWS * N_SCALES * n, N_SCALES * n + 1,
                          (N_SCALES * n + 7) / 8, (n + 7) / 8};
    Py_ssize_t total = 0;
    for (size_t k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        total += words[k];
    }
    char *block = PyMem_Calloc((size_t)total + 1, 8);
    if (block == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    m->block = block;
    char *at = block;
#define TAKE(field, k) (m->field = (void *)at, at += 8 * words[k])
    TAKE(rows, 0);
    TAKE(item, 1);
    TAKE(minute, 2);
    TAKE(counts, 3);
    TAKE(planes, 4);
    TAKE(scratch, 5);
    TAKE(scores, 6);
    TAKE(work, 7);
    TAKE(positions, 8);
    TAKE(needed, 9);
    TAKE(guarded, 10);
#undef TAKE
    return 0;
}

/* The arrays a Start needs, as the Python step makes them:
 * (rows, counts, item, minute, planes, scratch, needed, scores). */
static PyObject *
start_arrays(PyObject *const *tools, const StepMemory *m, Py_ssize_t n, Py_ssize_t n_items)
{
    PyObject *arrays[8] = {NULL};
    PyObject *result = NULL;
    arrays[0] = array_of(tools, PyLong_FromSsize_t(n), T_I64, m->rows, 8 * n);
    arrays[1] = arrays[0] ? array_of(tools, PyLong_FromSsize_t(n), T_F64, m->counts, 8 * n) : NULL;
    arrays[2] = arrays[1] ? array_of(tools, PyLong_FromSsize_t(n), T_I64, m->item, 8 * n) : NULL;
    arrays[3] = arrays[2] ? array_of(tools, PyLong_FromSsize_t(n), T_I64, m->minute, 8 * n) : NULL;
    arrays[4] = arrays[3] ? array_of(tools, Py_BuildValue("(nn)", (Py_ssize_t)N_PLANES, n),
                                     T_F64, m->planes, 8 * N_PLANES * n)
                          : NULL;
    arrays[5] = arrays[4] ? array_of(tools, PyLong_FromSsize_t(n_items + 5 * n), T_F64,
                                     m->scratch, 8 * (n_items + 5 * n))
                          : NULL;
    arrays[6] = arrays[5] ? array_of(tools, Py_BuildValue("(nn)", n, (Py_ssize_t)N_SCALES),
                                     T_BOOL, m->needed, N_SCALES * n)
                          : NULL;
    arrays[7] = arrays[6] ? array_of(tools, Py_BuildValue("(nn)", n, (Py_ssize_t)N_SCALES),
                                     T_F64, m->scores, 8 * N_SCALES * n)
                          : NULL;
    if (arrays[7] != NULL) {
        result = PyTuple_New(8);
    }
    for (int k = 0; k < 8; k++) {
        if (result != NULL) {
            PyTuple_SET_ITEM(result, k, arrays[k]);
        } else {
            Py_XDECREF(arrays[k]);
        }
    }
    return result;
}

/* A plane group of the step's planes, as the (n, scales) grid ``planes[lo:lo + 3].T``. */
static NativeGrid
plane_grid(const double *planes, Py_ssize_t lo, Py_ssize_t n)
{
    NativeGrid g = {(const char *)(planes + lo * n), n, N_SCALES, 8, 8 * n};
    return g;
}

/* StreamState.remember: keep the buffer for look-back; once RETIRE_EVERY minutes are at or
 * before the cutoff, StreamState.retire takes them (their counts per row stay in the stream's
 * history). */
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
    if (status == 0 && PyDict_GET_SIZE(recent)) {
        Py_ssize_t pos = 0;
        PyObject *oldest, *unused;
        PyDict_Next(recent, &pos, &oldest, &unused);
        long long value = PyLong_AsLongLong(oldest);
        if (value == -1 && PyErr_Occurred()) {
            status = -1;
        } else if (value <= cutoff - RETIRE_EVERY) {
            PyObject *done = PyObject_CallMethod(stream, "retire", "L", cutoff);
            status = done == NULL ? -1 : 0;
            Py_XDECREF(done);
        }
    }
    Py_DECREF(recent);
    return status;
}

/* What the open insights of a learned step observe: (item, row, count, mu, (phi per scale))
 * for each open row, in the step's order. */
static PyObject *
observations(const StepMemory *m, Py_ssize_t n)
{
    PyObject *out = PyList_New(0);
    for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
        if (!m->guarded[i]) {
            continue;
        }
        const double *planes = m->planes;
        PyObject *seen = Py_BuildValue(
            "(LLLd(ddd))", m->item[i], m->rows[i], (long long)m->counts[i], planes[P_MU * n + i],
            planes[P_PHI * n + i], planes[(P_PHI + 1) * n + i], planes[(P_PHI + 2) * n + i]);
        if (seen == NULL || PyList_Append(out, seen) < 0) {
            Py_CLEAR(out);
        }
        Py_XDECREF(seen);
    }
    return out;
}

PyObject *
native_close_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 11) {
        return native_usage_error("close_step(batch, table, ids, weights, intern, min_excess, "
                                  "start_score, sparse, rescale_exponent, lookback, tools)");
    }
    PyObject *batch = args[0], *tools_obj = args[10];
    double min_excess = PyFloat_AsDouble(args[5]);
    double start_score = PyFloat_AsDouble(args[6]);
    double sparse = PyFloat_AsDouble(args[7]);
    double exponent = PyFloat_AsDouble(args[8]);
    long long lookback = PyLong_AsLongLong(args[9]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_Check(batch) || !PyTuple_Check(tools_obj) ||
        PyTuple_GET_SIZE(tools_obj) != T_COUNT) {
        return native_usage_error("close_step(batch: list, table, ..., tools: tuple)");
    }
    if (!native_loops_ready()) {
        return NULL;
    }
    PyObject *const *tools = &PyTuple_GET_ITEM(tools_obj, 0);
    Py_ssize_t n_items = PyList_GET_SIZE(batch);
    PyObject *result = NULL, *exposures = NULL, *minutes = NULL, *buffers = NULL;
    PyObject *weights = NULL, *done = NULL;
    NativeTable table;
    memset(&table, 0, sizeof(table));
    StepMemory m = {0};
    Gathered g = {NULL, 0, 0};
    int any_open = 0;
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
        int skip = needs_rescale(exposure, minute_of[i] + 1, exponent);
        int has_open = skip == 0 ? gather_rows(stream, buffer, &g) : 0;
        if (skip < 0 || has_open < 0) {
            goto done;
        }
        if (skip) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        any_open |= has_open;
        bounds[i + 1] = g.size;
        PyList_SET_ITEM(minutes, i, Py_NewRef(at));
        PyList_SET_ITEM(buffers, i, Py_NewRef(buffer));
    }
    /* 2. the step's memory */
    Py_ssize_t n = g.size;
    if (step_memory(&m, n, n_items) < 0 || native_open_table(args[1], &table) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_items; i++) {
        for (Py_ssize_t j = bounds[i]; j < bounds[i + 1]; j++) {
            m.rows[j] = g.data[j].row;
            m.counts[j] = (double)g.data[j].count;
            m.item[j] = i;
            m.minute[j] = minute_of[i];
            m.guarded[j] = (char)g.data[j].open;
        }
    }
    /* 3. score: the baselines' side, then the tail scores */
    if (native_check_rows(&table, m.rows, m.item, n, n_items) < 0 ||
        native_score_core(&table, m.rows, m.counts, m.item, n, exposures, minutes, min_excess,
                          m.scratch, m.planes, m.needed) < 0) {
        goto done;
    }
    NativeGrid x = plane_grid(m.planes, P_WINDOW, n), lam = plane_grid(m.planes, P_LAM, n);
    NativeGrid phi = plane_grid(m.planes, P_SCORE_PHI, n);
    NativeGrid where = {m.needed, n, N_SCALES, N_SCALES, 1};
    native_tail_core(&x, &lam, &phi, &where, m.scores, m.work, m.positions);
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t s = 0; s < N_SCALES && !m.guarded[i]; s++) { /* open rows never start */
            double window = m.planes[(P_WINDOW + s) * n + i];
            double expected = m.planes[(P_LAM + s) * n + i];
            double score = m.scores[i * N_SCALES + s];
            int could_start = window - floor(expected) >= min_excess &&
                              (score >= start_score || expected < sparse);
            int sparse_suspect =
                s == 0 && expected < sparse && score >= native_model.suspect_score;
            if (could_start || sparse_suspect) {
                result = start_arrays(tools, &m, n, n_items);
                goto done;
            }
        }
    }
    /* 4. nothing starts: learn every row (open ones guarded), merge the others' buffers,
     * remember them all */
    native_learn_core(&table, m.rows, m.counts, m.scores, m.guarded, m.minute, m.planes, n);
    native_close_table(&table);
    weights = PyDict_New();
    if (weights == NULL) {
        goto done;
    }
    for (Py_ssize_t j = 0; j < n; j++) {
        if (m.guarded[j]) {
            continue;
        }
        PyObject *row = PyLong_FromLongLong(m.rows[j]);
        PyObject *decay = row == NULL ? NULL : PyFloat_FromDouble(m.planes[P_DECAY * n + j]);
        int status = decay == NULL ? -1 : PyDict_SetItem(weights, row, decay);
        Py_XDECREF(row);
        Py_XDECREF(decay);
        if (status < 0) {
            goto done;
        }
    }
    PyObject *merge_args[5] = {args[2], args[3], buffers, weights, args[4]};
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
    result = any_open ? observations(&m, n) : Py_NewRef(Py_False);
done:
    native_close_table(&table);
    PyMem_Free(m.block);
    PyMem_Free(g.data);
    PyMem_Free(bounds);
    PyMem_Free(minute_of);
    Py_XDECREF(exposures);
    Py_XDECREF(minutes);
    Py_XDECREF(buffers);
    Py_XDECREF(weights);
    Py_XDECREF(done);
    return result;
}

/* ------------------------------------------------------------------ the drain's rounds */
static int
set_ll(PyObject *obj, const char *name, long long value)
{
    PyObject *number = PyLong_FromLongLong(value);
    int status = number == NULL ? -1 : native_setattr(obj, name, number);
    Py_XDECREF(number);
    return status;
}

/* MinuteCloser._skip_empty: account the closed minutes [start, end) that no event fell in, in
 * pieces of ``piece`` minutes, rebasing the stream (``rebase(stream, minute)``) where due. */
static int
skip_empty(PyObject *stream, long long start, long long end, long long piece, double exponent,
           PyObject *rebase)
{
    PyObject *exposure = native_getattr(stream, "exposure"); /* a rebase changes it in place */
    if (exposure == NULL) {
        return -1;
    }
    int status = 0;
    while (status == 0 && start < end) {
        long long stop = end < start + piece ? end : start + piece;
        int due = needs_rescale(exposure, stop, exponent);
        if (due > 0) {
            PyObject *minute = PyLong_FromLongLong(stop);
            PyObject *done = minute == NULL ? NULL
                                            : PyObject_CallFunctionObjArgs(rebase, stream, minute,
                                                                           NULL);
            Py_XDECREF(minute);
            due = done == NULL ? -1 : 0;
            Py_XDECREF(done);
        }
        status = due < 0 ? -1 : native_add_minutes(exposure, start, stop);
        start = stop;
    }
    Py_DECREF(exposure);
    return status;
}

/* ``sorted(pending, reverse=True)``: a stream's pending minutes, newest first. */
static PyObject *
newest_first(PyObject *pending)
{
    PyObject *minutes = PySequence_List(pending);
    if (minutes != NULL && (PyList_Sort(minutes) < 0 || PyList_Reverse(minutes) < 0)) {
        Py_CLEAR(minutes);
    }
    return minutes;
}

/* MinuteCloser._next_to_close: 1 with the next minute of ``stream`` to score in ``out``, 0 when
 * it has none, -1 on error; empty minutes are skipped. ``ahead`` holds the drain's sorted
 * pending minutes of its streams. */
static int
next_to_close(PyObject *stream, PyObject *key, PyObject *pending, PyObject *ahead,
              long long piece, double exponent, PyObject *rebase, long long *out)
{
    long long minute, target;
    if (native_attr_long(stream, "next_close", &minute) < 0 ||
        native_attr_long(stream, "closed_until", &target) < 0) {
        return -1;
    }
    if (minute < target) {
        PyObject *open_rows = native_getattr(stream, "open_rows");
        Py_ssize_t open = open_rows == NULL ? -1 : PyObject_Size(open_rows);
        Py_XDECREF(open_rows);
        PyObject *at = open < 0 ? NULL : PyLong_FromLongLong(minute);
        int has = at == NULL ? -1 : PyDict_Contains(pending, at);
        Py_XDECREF(at);
        if (has < 0) {
            return -1;
        }
        if (open == 0 && !has) {
            PyObject *sorted = PyDict_GetItemWithError(ahead, key); /* borrowed */
            if (sorted == NULL) {
                if (PyErr_Occurred() || (sorted = newest_first(pending)) == NULL) {
                    return -1;
                }
                int set = PyDict_SetItem(ahead, key, sorted);
                Py_DECREF(sorted); /* ``ahead`` holds it */
                if (set < 0) {
                    return -1;
                }
            }
            long long gap_end = target;
            while (PyList_GET_SIZE(sorted) > 0) {
                Py_ssize_t last = PyList_GET_SIZE(sorted) - 1;
                long long oldest = PyLong_AsLongLong(PyList_GET_ITEM(sorted, last));
                if (oldest == -1 && PyErr_Occurred()) {
                    return -1;
                }
                if (oldest >= minute) { /* else closed since (or behind next_close) */
                    gap_end = oldest < target ? oldest : target;
                    break;
                }
                if (PyList_SetSlice(sorted, last, last + 1, NULL) < 0) {
                    return -1;
                }
            }
            if (skip_empty(stream, minute, gap_end, piece, exponent, rebase) < 0) {
                return -1;
            }
            minute = gap_end;
            if (set_ll(stream, "next_close", minute) < 0) {
                return -1;
            }
        }
    }
    if (minute >= target) {
        return 0;
    }
    *out = minute;
    return set_ll(stream, "next_close", minute + 1) < 0 ? -1 : 1;
}

PyObject *
native_next_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 || !PyDict_Check(args[0]) || !PyDict_Check(args[1])) {
        return native_usage_error(
            "next_batch(due: dict, ahead: dict, gap_piece, rescale_exponent, rebase)");
    }
    PyObject *due = args[0], *ahead = args[1], *rebase = args[4];
    long long piece = PyLong_AsLongLong(args[2]);
    double exponent = PyFloat_AsDouble(args[3]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (piece < 1) {
        PyErr_SetString(PyExc_ValueError, "gap_piece must be at least 1");
        return NULL;
    }
    PyObject *items = PyDict_Items(due), *batch = PyList_New(0);
    if (items == NULL || batch == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        PyObject *key = PyTuple_GET_ITEM(pair, 0), *stream = PyTuple_GET_ITEM(pair, 1);
        PyObject *pending = native_getattr(stream, "pending");
        if (pending == NULL) {
            goto fail;
        }
        if (!PyDict_Check(pending)) {
            Py_DECREF(pending);
            PyErr_SetString(PyExc_TypeError, "stream.pending must be a dict");
            goto fail;
        }
        long long minute = 0;
        int found = next_to_close(stream, key, pending, ahead, piece, exponent, rebase, &minute);
        PyObject *entry = NULL;
        if (found == 0) {
            if (PyDict_DelItem(due, key) < 0) {
                Py_DECREF(pending);
                goto fail;
            }
        } else if (found > 0) {
            PyObject *at = PyLong_FromLongLong(minute);
            PyObject *buffer = at == NULL ? NULL : PyDict_GetItemWithError(pending, at);
            if (buffer != NULL) {
                Py_INCREF(buffer);
                if (PyDict_DelItem(pending, at) < 0) {
                    Py_CLEAR(buffer);
                }
            } else if (at != NULL && !PyErr_Occurred()) {
                buffer = PyDict_New();
            }
            entry = buffer == NULL ? NULL : PyTuple_Pack(3, stream, at, buffer);
            Py_XDECREF(at);
            Py_XDECREF(buffer);
            if (entry == NULL || PyList_Append(batch, entry) < 0) {
                Py_XDECREF(entry);
                Py_DECREF(pending);
                goto fail;
            }
            Py_DECREF(entry);
        }
        Py_DECREF(pending);
        if (found < 0) {
            goto fail;
        }
    }
    Py_DECREF(items);
    return batch;
fail:
    Py_XDECREF(items);
    Py_XDECREF(batch);
    return NULL;
}
