/*
 * A closing step of the baselines in C: BaselineTable.score_minutes and learn_minutes
 * (insights/baselines.py, which stays the reference).
 *
 * A closing step scores a few rows (keys) of each stream whose minute just closed. On quiet
 * streams a step holds a handful of rows, and the ~100 numpy calls of the pure-Python step cost
 * far more than the arithmetic. Here the step is two calls. The arithmetic is numpy's, in
 * numpy's order: IEEE operations on doubles and floats (built without FMA contraction), row
 * sums in numpy's pairwise order, NaN-propagating minimum and maximum, and every power of two
 * computed by numpy's own exp2 loop in one run per step (its result can depend on the CPU's
 * vector unit). So both paths give the same bits; tests/unit/insights/test_native.py compares
 * them.
 *
 *   score_minutes(table, rows, counts, item, exposures, minutes, min_excess, scratch, planes,
 *                 needed) -> None   (then accounts each exposure's minute)
 *   learn_minutes(table, rows, counts, scores, guarded, minute, planes) -> None
 */
#include "native.h"

#include <math.h>
#include <string.h>

/* The shape and the planes are in _native.h, the constants in native_model (set_model). */
#define N_LONG (N_SCALES - 1)
#define N_DAYTYPES 2
static const long long scale_minutes[N_SCALES] = NATIVE_SCALES;

/* ------------------------------------------------------------------ numpy's arithmetic */
/* (np_max and np_min are in _native.h) */

/* numpy's pairwise sum of 48 contiguous doubles (eight accumulators, then a tree). */
static double
pairwise48(const double *a)
{
    double r[8];
    for (int j = 0; j < 8; j++) {
        r[j] = a[j];
    }
    for (int i = 8; i < N_SLOTS; i += 8) {
        for (int j = 0; j < 8; j++) {
            r[j] += a[i + j];
        }
    }
    return ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
}

static inline long long
floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline long long
floor_mod(long long a, long long b)
{
    return a - floor_div(a, b) * b;
}

static inline int
daytype_of(long long minute)
{
    return floor_mod(floor_div(minute, 1440) + 3, 7) >= 5;
}

static inline int
slot_of(long long minute)
{
    return daytype_of(minute) * 24 + (int)floor_mod(floor_div(minute, 60), 24);
}

/* ------------------------------------------------------------------ buffers */
int
native_get_array(PyObject *obj, Py_buffer *view, const char *what, const char *formats,
                 Py_ssize_t itemsize, Py_ssize_t count, int writable)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    int format_ok = 0;
    for (const char *f = formats; *f != '\0' && view->format != NULL; f += strlen(f) + 1) {
        format_ok |= strcmp(view->format, f) == 0;
    }
    if (!format_ok || view->itemsize != itemsize || (count >= 0 && view->len != count * itemsize)) {
        PyBuffer_Release(view);
        view->obj = NULL;
        if (count >= 0) {
            PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous array of %zd items of '%s'",
                         what, count, formats);
        } else {
            PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous array of '%s'", what,
                         formats);
        }
        return -1;
    }
    return 0;
}

void
native_release_all(Py_buffer *views, int count)
{
    for (int i = 0; i < count; i++) {
        if (views[i].obj != NULL) {
            PyBuffer_Release(&views[i]);
            views[i].obj = NULL;
        }
    }
}

#define get_array native_get_array
#define release_all native_release_all

enum { T_COUNTS, T_SQ, T_PART, T_PART_RAW, T_LAST, T_PEAK_VAL, T_PEAK_MIN };
_Static_assert(T_PEAK_MIN + 1 == NATIVE_TABLE_ARRAYS, "table arrays");

int
native_attr_double(PyObject *obj, const char *name, double *out)
{
    PyObject *value = native_getattr(obj, name);
    if (value == NULL) {
        return -1;
    }
    *out = PyFloat_AsDouble(value);
    Py_DECREF(value);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

int
native_attr_long(PyObject *obj, const char *name, long long *out)
{
    PyObject *value = native_getattr(obj, name);
    if (value == NULL) {
        return -1;
    }
    *out = PyLong_AsLongLong(value);
    Py_DECREF(value);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

int
native_open_table(PyObject *obj, NativeTable *t)
{
    static const struct {
        const char *name, *formats;
        Py_ssize_t itemsize, per_row;
    } spec[NATIVE_TABLE_ARRAYS] = {
        [T_COUNTS] = {"counts", F32, 4, N_SLOTS},
        [T_SQ] = {"sq", F64, 8, N_SCALES},
        [T_PART] = {"part", F32, 4, N_LONG},
        [T_PART_RAW] = {"part_raw", F32, 4, N_LONG},
        [T_LAST] = {"last_minute", I64, 8, 1},
        [T_PEAK_VAL] = {"peak_val", F32, 4, N_SCALES * N_DAYTYPES},
        [T_PEAK_MIN] = {"peak_min", I64, 8, N_SCALES * N_DAYTYPES},
    };
    memset(t, 0, sizeof(*t));
    long long size;
    if (native_attr_long(obj, "size", &size) < 0 ||
        native_attr_double(obj, "half_life", &t->half_life) < 0 ||
        native_attr_double(obj, "peak_half_life", &t->peak_half_life) < 0) {
        return -1;
    }
    Py_ssize_t capacity = -1;
    for (int a = 0; a < NATIVE_TABLE_ARRAYS; a++) {
        PyObject *array = native_getattr(obj, spec[a].name);
        if (array == NULL) {
            return -1;
        }
        int got = get_array(array, &t->view[a], spec[a].name, spec[a].formats, spec[a].itemsize,
                            -1, 1);
        Py_DECREF(array);
        if (got < 0) {
            return -1;
        }
        Py_ssize_t rows = t->view[a].len / (spec[a].itemsize * spec[a].per_row);
        if (rows * spec[a].itemsize * spec[a].per_row != t->view[a].len ||
            (capacity >= 0 && rows != capacity)) {
            PyErr_Format(PyExc_ValueError, "table array %s has the wrong shape", spec[a].name);
            return -1;
        }
        capacity = rows;
    }
    if (size < 0 || size > capacity) {
        PyErr_SetString(PyExc_ValueError, "table size beyond its capacity");
        return -1;
    }
    t->size = (Py_ssize_t)size;
    t->counts = t->view[T_COUNTS].buf;
    t->sq = t->view[T_SQ].buf;
    t->part = t->view[T_PART].buf;
    t->part_raw = t->view[T_PART_RAW].buf;
    t->last = t->view[T_LAST].buf;
    t->peak_val = t->view[T_PEAK_VAL].buf;
    t->peak_min = t->view[T_PEAK_MIN].buf;
    return 0;
}

void
native_close_table(NativeTable *t)
{
    release_all(t->view, NATIVE_TABLE_ARRAYS);
}

/* Every row in [0, size) and every item in [0, items). */
int
native_check_rows(const NativeTable *t, const long long *rows, const long long *item, Py_ssize_t n,
           Py_ssize_t items)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (rows[i] < 0 || rows[i] >= t->size || (item != NULL && (item[i] < 0 || item[i] >= items))) {
            PyErr_SetString(PyExc_IndexError, "row or item out of range");
            return -1;
        }
    }
    return 0;
}

static inline Py_ssize_t
peak_cell(long long row, int scale, int daytype)
{
    return ((Py_ssize_t)row * N_SCALES + scale) * N_DAYTYPES + daytype;
}

/* ------------------------------------------------------------------ score_minutes */
/* One stream-minute of the step: its clock and its stream's exposure before the minute. */
typedef struct {
    long long minute, ref;
    double total, decay;
    double slots[N_SLOTS];
} Item;

/* A 10/60-minute bucket of a row that ended before the row's minute. */
typedef struct {
    Py_ssize_t i;
    int part;
    long long end;
    double weight, peak_decay; /* exponents first, then numpy's exp2 of them */
} Flush;

/* The 48 seasonal slots of a StreamExposure, as a buffer; -1 on error. */
static int
exposure_slots(PyObject *exposure, Py_buffer *view, int writable)
{
    PyObject *slots = native_getattr(exposure, "slots");
    if (slots == NULL) {
        return -1;
    }
    int got = get_array(slots, view, "exposure slots", F64, 8, N_SLOTS, writable);
    Py_DECREF(slots);
    return got;
}

static int
read_items(PyObject *exposures, PyObject *minutes, Item *items, Py_ssize_t count,
           double *half_life)
{
    for (Py_ssize_t j = 0; j < count; j++) {
        PyObject *exposure = PySequence_Fast_GET_ITEM(exposures, j);
        Item *it = &items[j];
        it->minute = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(minutes, j));
        if ((it->minute == -1 && PyErr_Occurred()) ||
            native_attr_long(exposure, "ref_minute", &it->ref) < 0 ||
            native_attr_double(exposure, "total", &it->total) < 0 ||
            (j == 0 && native_attr_double(exposure, "half_life", half_life) < 0)) {
            return -1;
        }
        Py_buffer view;
        if (exposure_slots(exposure, &view, 0) < 0) {
            return -1;
        }
        memcpy(it->slots, view.buf, sizeof(it->slots));
        PyBuffer_Release(&view);
    }
    return 0;
}

/* StreamExposure._add_run(start, end, first): the minutes [start, end) of one hour, ``first``
 * the weight of ``start`` (add_minute is the run of one minute). */
static int
account_run(PyObject *exposure, long long start, long long end, double first)
{
    double half_life, total;
    if (native_attr_double(exposure, "half_life", &half_life) < 0 ||
        native_attr_double(exposure, "total", &total) < 0) {
        return -1;
    }
    Py_buffer view;
    if (exposure_slots(exposure, &view, 1) < 0) {
        return -1;
    }
    /* as Python computes it: ratio ** (end - start) is pow(ratio, float(end - start)) */
    double ratio = pow(2.0, 1.0 / half_life);
    double weight = first * (pow(ratio, (double)(end - start)) - 1.0) / (ratio - 1.0);
    double *cells = view.buf;
    int slot = slot_of(start);
    cells[slot] = cells[slot] + weight;
    PyBuffer_Release(&view);
    PyObject *value = PyFloat_FromDouble(total + weight);
    if (value == NULL) {
        return -1;
    }
    int set = native_setattr(exposure, "total", value);
    Py_DECREF(value);
    return set;
}

int
native_add_minutes(PyObject *exposure, long long start, long long end)
{
    long long ref;
    double half_life;
    if (native_attr_long(exposure, "ref_minute", &ref) < 0 ||
        native_attr_double(exposure, "half_life", &half_life) < 0) {
        return -1;
    }
    for (long long minute = start; minute < end;) {
        long long chunk_end = floor_div(minute, 60) * 60 + 60;
        chunk_end = chunk_end < end ? chunk_end : end;
        double first = (double)(minute - ref) / half_life;
        double *in_place[2] = {&first, &first};
        native_loop_run(LOOP_EXP2, in_place, 1);
        if (account_run(exposure, minute, chunk_end, first) < 0) {
            return -1;
        }
        minute = chunk_end;
    }
    return 0;
}

/* The buckets of rows that closed (BaselineTable.flush_buckets' selection), with exponents. */
static Py_ssize_t
find_flushes(const NativeTable *t, const long long *rows, const long long *item, const Item *items,
             Py_ssize_t n, Flush *flushes)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        long long last = t->last[rows[i]];
        const Item *it = &items[item[i]];
        for (int p = 0; p < N_LONG && last >= 0; p++) {
            long long length = scale_minutes[p + 1];
            long long bucket = floor_div(last, length);
            if (bucket == floor_div(it->minute, length)) {
                continue;
            }
            Flush *f = &flushes[count++];
            f->i = i;
            f->part = p;
            f->end = (bucket + 1) * length - 1;
            f->weight = (double)(f->end - it->ref) / t->half_life;
            long long age = f->end - t->peak_min[peak_cell(rows[i], p + 1, daytype_of(f->end))];
            f->peak_decay = (double)(-(age > 0 ? age : 0)) / t->peak_half_life;
        }
    }
    return count;
}

static void
apply_flushes(NativeTable *t, const long long *rows, const Flush *flushes, Py_ssize_t count)
{
    for (Py_ssize_t k = 0; k < count; k++) {
        const Flush *f = &flushes[k];
        long long row = rows[f->i];
        Py_ssize_t cell = (Py_ssize_t)row * N_LONG + f->part;
        double value = (double)t->part[cell];
        double raw = (double)t->part_raw[cell];
        t->sq[row * N_SCALES + f->part + 1] += value * value * f->weight;
        Py_ssize_t peak = peak_cell(row, f->part + 1, daytype_of(f->end));
        if (raw >= (double)t->peak_val[peak] * f->peak_decay) {
            t->peak_val[peak] = (float)raw;
            t->peak_min[peak] = f->end;
        }
        t->part[cell] = 0.0f;
        t->part_raw[cell] = 0.0f;
    }
}

/* BaselineTable.expect, window_counts and the scales to score, for row i. */
static void
score_row(const NativeTable *t, long long row, double count, const Item *it, double min_excess,
          double *planes, Py_ssize_t n, Py_ssize_t i, char *needed)
{
#define PLANE(p) planes[(Py_ssize_t)(p) * n + i]
    double now = it->decay;
    double counts[N_SLOTS], weighted[N_SLOTS];
    for (int s = 0; s < N_SLOTS; s++) {
        counts[s] = (double)t->counts[row * N_SLOTS + s];
    }
    double total = pairwise48(counts);
    const NativeModel *m = &native_model;
    double mean = (total + m->prior_count * now) / (it->total + m->prior_minutes * now);
    int slot = slot_of(it->minute);
    double mu = (counts[slot] + m->slot_prior_minutes * now * mean) /
                (it->slots[slot] + m->slot_prior_minutes * now);
    for (int s = 0; s < N_SLOTS; s++) {
        double inv = it->slots[s] > 0 ? 1.0 / it->slots[s] : 0.0;
        weighted[s] = counts[s] * counts[s] * inv;
    }
    double between = pairwise48(weighted);
    double phi[N_SCALES];
    for (int s = 0; s < N_SCALES; s++) {
        double scale = (double)scale_minutes[s];
        double buckets = np_max(np_max(it->total, 1.0) / scale, 1.0);
        double within = np_max(t->sq[row * N_SCALES + s] - between * scale, 0.0);
        phi[s] = (within / buckets) / np_max(scale * mean, 1e-9);
        phi[s] = np_min(np_max(phi[s], 1.0), m->max_phi);
    }
    long long last = t->last[row];
    PLANE(P_DECAY) = now;
    PLANE(P_MU) = mu;
    PLANE(P_MEAN) = mean;
    for (int s = 0; s < N_SCALES; s++) {
        long long length = scale_minutes[s];
        double window = count;
        if (s > 0) {
            int same = last >= 0 && floor_div(last, length) == floor_div(it->minute, length);
            window = (same ? (double)t->part[row * N_LONG + s - 1] : 0.0) + count;
        }
        double elapsed = (double)floor_mod(it->minute, length) + 1.0;
        double lam = mu * elapsed;
        PLANE(P_PHI + s) = phi[s];
        PLANE(P_WINDOW + s) = window;
        PLANE(P_LAM + s) = lam;
        PLANE(P_SCORE_PHI + s) = elapsed < (double)length ? np_max(phi[s], phi[0]) : phi[s];
        needed[i * N_SCALES + s] = s == 0 || window - floor(lam) >= min_excess;
    }
#undef PLANE
}

int
native_score_core(NativeTable *t, const long long *rows, const double *counts,
                  const long long *item, Py_ssize_t n, PyObject *exposures, PyObject *minutes,
                  double min_excess, double *scratch, double *planes, char *needed)
{
    Py_ssize_t n_items = PySequence_Fast_GET_SIZE(exposures);
    Item *items = PyMem_Malloc(sizeof(Item) * (size_t)n_items);
    Flush *flushes = PyMem_Malloc(sizeof(Flush) * (size_t)(N_LONG * n + 1));
    int status = -1;
    if (items == NULL || flushes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    double half_life = 1.0;
    if (read_items(exposures, minutes, items, n_items, &half_life) < 0) {
        goto done;
    }
    /* every exponent of the step, in one exp2 run: minute decay per item, then the closed
     * buckets' weights and peak decays, then the minute-scale peak decay per row */
    Py_ssize_t n_flush = find_flushes(t, rows, item, items, n, flushes);
    Py_ssize_t k = 0;
    for (Py_ssize_t j = 0; j < n_items; j++) {
        scratch[k++] = (double)(items[j].minute - items[j].ref) / half_life;
    }
    for (Py_ssize_t f = 0; f < n_flush; f++) {
        scratch[k++] = flushes[f].weight;
        scratch[k++] = flushes[f].peak_decay;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long long minute = items[item[i]].minute;
        long long age = minute - t->peak_min[peak_cell(rows[i], 0, daytype_of(minute))];
        scratch[k++] = (double)(-(age > 0 ? age : 0)) / t->peak_half_life;
    }
    double *in_place[2] = {scratch, scratch};
    native_loop_run(LOOP_EXP2, in_place, k);
    k = 0;
    for (Py_ssize_t j = 0; j < n_items; j++) {
        items[j].decay = scratch[k++];
    }
    for (Py_ssize_t j = 0; j < n_items; j++) {
        PyObject *exposure = PySequence_Fast_GET_ITEM(exposures, j);
        if (account_run(exposure, items[j].minute, items[j].minute + 1, items[j].decay) < 0) {
            goto done;
        }
    }
    for (Py_ssize_t f = 0; f < n_flush; f++) {
        flushes[f].weight = scratch[k++];
        flushes[f].peak_decay = scratch[k++];
    }
    apply_flushes(t, rows, flushes, n_flush);
    for (Py_ssize_t i = 0; i < n; i++) {
        score_row(t, rows[i], counts[i], &items[item[i]], min_excess, planes, n, i, needed);
        planes[(Py_ssize_t)P_PEAK0 * n + i] = scratch[k++];
    }
    status = 0;
done:
    PyMem_Free(items);
    PyMem_Free(flushes);
    return status;
}

enum { A_ROWS, A_COUNTS, A_ITEM, A_SCRATCH, A_PLANES, A_NEEDED, A_COUNT };

PyObject *
native_score_minutes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 10) {
        return native_usage_error("score_minutes(table, rows, counts, item, exposures, minutes, "
                                  "min_excess, scratch, planes, needed)");
    }
    if (!native_loops_ready()) {
        return NULL;
    }
    NativeTable t;
    memset(&t, 0, sizeof(t));
    Py_buffer view[A_COUNT] = {{0}};
    PyObject *exposures = NULL, *minutes = NULL, *result = NULL;
    double min_excess = PyFloat_AsDouble(args[6]);
    if ((min_excess == -1.0 && PyErr_Occurred()) || native_open_table(args[0], &t) < 0) {
        goto done;
    }
    exposures = PySequence_Fast(args[4], "exposures must be a sequence");
    minutes = exposures == NULL ? NULL : PySequence_Fast(args[5], "minutes must be a sequence");
    if (minutes == NULL) {
        goto done;
    }
    Py_ssize_t n_items = PySequence_Fast_GET_SIZE(exposures);
    if (PySequence_Fast_GET_SIZE(minutes) != n_items || n_items == 0) {
        PyErr_SetString(PyExc_ValueError, "one minute per exposure, at least one");
        goto done;
    }
    if (get_array(args[1], &view[A_ROWS], "rows", I64, 8, -1, 0) < 0) {
        goto done;
    }
    Py_ssize_t n = view[A_ROWS].len / 8;
    if (get_array(args[2], &view[A_COUNTS], "counts", F64, 8, n, 0) < 0 ||
        get_array(args[3], &view[A_ITEM], "item", I64, 8, n, 0) < 0 ||
        get_array(args[7], &view[A_SCRATCH], "scratch", F64, 8, -1, 1) < 0 ||
        get_array(args[8], &view[A_PLANES], "planes", F64, 8, N_PLANES * n, 1) < 0 ||
        get_array(args[9], &view[A_NEEDED], "needed", BOOL, 1, N_SCALES * n, 1) < 0) {
        goto done;
    }
    const long long *rows = view[A_ROWS].buf, *item = view[A_ITEM].buf;
    if (view[A_SCRATCH].len / 8 < n_items + 5 * n) {
        PyErr_SetString(PyExc_ValueError, "scratch holds fewer than items + 5 * rows values");
        goto done;
    }
    if (native_check_rows(&t, rows, item, n, n_items) < 0 ||
        native_score_core(&t, rows, view[A_COUNTS].buf, item, n, exposures, minutes, min_excess,
                          view[A_SCRATCH].buf, view[A_PLANES].buf, view[A_NEEDED].buf) < 0) {
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(exposures);
    Py_XDECREF(minutes);
    release_all(view, A_COUNT);
    native_close_table(&t);
    return result;
}

/* ------------------------------------------------------------------ learn_minutes */
void
native_learn_core(NativeTable *t, const long long *rows, const double *counts,
                  const double *scores, const char *guarded, const long long *minutes,
                  const double *planes, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        long long row = rows[i], minute = minutes[i];
        double count = counts[i];
        double mu = planes[P_MU * n + i], phi = planes[P_PHI * n + i];
        double now = planes[P_DECAY * n + i];
        double cap = ceil(mu + native_model.winsor_sigma * sqrt(phi * mu));
        double clipped = np_min(count, cap);
        double learn = scores[i * N_SCALES] >= native_model.suspect_score
                           ? clipped + native_model.suspect_weight * (count - clipped)
                           : count;
        if (guarded[i]) {
            learn = clipped;
        }
        Py_ssize_t slot = (Py_ssize_t)row * N_SLOTS + slot_of(minute);
        t->counts[slot] = t->counts[slot] + (float)(learn * now);
        t->sq[row * N_SCALES] += learn * learn * now;
        for (int p = 0; p < N_LONG; p++) {
            t->part[row * N_LONG + p] = t->part[row * N_LONG + p] + (float)learn;
            t->part_raw[row * N_LONG + p] = t->part_raw[row * N_LONG + p] + (float)count;
        }
        Py_ssize_t peak = peak_cell(row, 0, daytype_of(minute));
        if (count >= (double)t->peak_val[peak] * planes[P_PEAK0 * n + i]) {
            t->peak_val[peak] = (float)count;
            t->peak_min[peak] = minute;
        }
        t->last[row] = minute;
    }
}

enum { L_ROWS, L_COUNTS, L_SCORES, L_GUARDED, L_MINUTE, L_PLANES, L_COUNT };

PyObject *
native_learn_minutes(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7) {
        return native_usage_error(
            "learn_minutes(table, rows, counts, scores, guarded, minute, planes)");
    }
    if (!native_loops_ready()) {
        return NULL;
    }
    NativeTable t;
    memset(&t, 0, sizeof(t));
    Py_buffer view[L_COUNT] = {{0}};
    PyObject *result = NULL;
    if (native_open_table(args[0], &t) < 0 || get_array(args[1], &view[L_ROWS], "rows", I64, 8, -1, 0) < 0) {
        goto done;
    }
    Py_ssize_t n = view[L_ROWS].len / 8;
    if (get_array(args[2], &view[L_COUNTS], "counts", F64, 8, n, 0) < 0 ||
        get_array(args[3], &view[L_SCORES], "scores", F64, 8, N_SCALES * n, 0) < 0 ||
        get_array(args[4], &view[L_GUARDED], "guarded", BOOL, 1, n, 0) < 0 ||
        get_array(args[5], &view[L_MINUTE], "minute", I64, 8, n, 0) < 0 ||
        get_array(args[6], &view[L_PLANES], "planes", F64, 8, N_PLANES * n, 0) < 0) {
        goto done;
    }
    const long long *rows = view[L_ROWS].buf, *minutes = view[L_MINUTE].buf;
    const double *counts = view[L_COUNTS].buf, *scores = view[L_SCORES].buf;
    const double *planes = view[L_PLANES].buf;
    const char *guarded = view[L_GUARDED].buf;
    if (native_check_rows(&t, rows, NULL, n, 0) < 0) {
        goto done;
    }
    native_learn_core(&t, rows, counts, scores, guarded, minutes, planes, n);
    result = Py_NewRef(Py_None);
done:
    release_all(view, L_COUNT);
    native_close_table(&t);
    return result;
}
