/*
 * Attribution sketches in C: AttributionTable.merge_minute and merge_buffers
 * (insights/attribution.py, which stays the reference).
 *
 * Each (row, attribute) has a space-saving sketch of SKETCH_SLOTS (value id, float32 weight)
 * pairs.
 * A closed minute's entries are summed per (row, attribute, value) in entry order, then merged:
 * values already in a sketch first, then new values in key order, each replacing the lightest
 * slot. The float32 arithmetic is numpy's (tests compare the sketches bit for bit).
 *
 *   merge_minute(ids, weights, rows, ranks, weighted, value_ids) -> None
 *   merge_buffers(ids, weights, buffers, row_weights, intern) -> None
 */
#include "native.h"

#include <string.h>

#define N_ATTRS 3
#define SKETCH_SLOTS 5 /* attribution.TOP_N */
#define ROW_SHIFT 34
#define ATTR_SHIFT 32
#define RANK_MASK ((1ULL << ATTR_SHIFT) - 1)

typedef struct {
    unsigned long long key; /* row << ROW_SHIFT | attribute << ATTR_SHIFT | rank */
    Py_ssize_t order;       /* position in (attribute, entry) order: sums add in this order */
    double weight;
    Py_ssize_t cell; /* index of the row's sketch for the attribute in the tables */
    int value;       /* value id */
    int matched;     /* the value was in the sketch */
} Entry;

static int
entry_cmp(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Add a value's sum to its slot if the sketch holds it; 1 if it did. */
static int
merge_matched(int *ids, float *weights, Py_ssize_t cell, int value, double sum)
{
    for (int slot = 0; slot < SKETCH_SLOTS; slot++) {
        if (ids[cell + slot] == value) {
            weights[cell + slot] = weights[cell + slot] + (float)sum;
            return 1;
        }
    }
    return 0;
}

/* A value not in the sketch replaces the lightest slot (the first of equals) and inherits its
 * weight, as space-saving does. */
static void
merge_new(int *ids, float *weights, Py_ssize_t cell, int value, double sum)
{
    int lightest = 0;
    for (int slot = 1; slot < SKETCH_SLOTS; slot++) {
        if (weights[cell + slot] < weights[cell + lightest]) {
            lightest = slot;
        }
    }
    ids[cell + lightest] = value;
    weights[cell + lightest] = weights[cell + lightest] + (float)sum;
}

static int
long_at(PyObject *seq, Py_ssize_t i, long long *out)
{
    *out = PyLong_AsLongLong(PySequence_Fast_GET_ITEM(seq, i));
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static Py_ssize_t sum_sorted(Entry *entries, Py_ssize_t count);

/* Sum the minute's entries per (row, attribute, rank) into ``entries`` sorted by key;
 * returns the number of distinct keys, -1 on error. */
static Py_ssize_t
sum_entries(PyObject *rows, PyObject **ranks, int n_attrs, PyObject *weighted, Entry *entries)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(rows);
    for (int attr = 0; attr < n_attrs; attr++) {
        for (Py_ssize_t i = 0; i < n; i++) {
            long long row, rank;
            if (long_at(rows, i, &row) < 0 || long_at(ranks[attr], i, &rank) < 0) {
                return -1;
            }
            double weight = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(weighted, i));
            if (weight == -1.0 && PyErr_Occurred()) {
                return -1;
            }
            if (row < 0 || rank < 0 || (unsigned long long)rank > RANK_MASK ||
                row >= (1LL << (63 - ROW_SHIFT))) {
                PyErr_SetString(PyExc_ValueError, "row or rank out of range");
                return -1;
            }
            Entry *e = &entries[attr * n + i];
            e->key = ((unsigned long long)row << ROW_SHIFT) |
                     ((unsigned long long)attr << ATTR_SHIFT) | (unsigned long long)rank;
            e->order = attr * n + i;
            e->weight = weight;
        }
    }
    return sum_sorted(entries, n_attrs * n);
}

/* Sort ``count`` entries by key and sum repeats in entry order; returns the distinct keys. */
static Py_ssize_t
sum_sorted(Entry *entries, Py_ssize_t count)
{
    qsort(entries, (size_t)count, sizeof(Entry), entry_cmp);
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (distinct > 0 && entries[distinct - 1].key == entries[i].key) {
            entries[distinct - 1].weight += entries[i].weight;
        } else {
            entries[distinct] = entries[i];
            entries[distinct].weight = 0.0 + entries[i].weight;
            distinct++;
        }
    }
    return distinct;
}

/* Merge the summed entries into the sketches (AttributionTable.add): values already in a
 * sketch first, then new values in key order. Every entry is checked before any is merged. */
static int
merge_sums(Py_buffer *ids, Py_buffer *weights, Entry *entries, Py_ssize_t distinct,
           PyObject *names)
{
    Py_ssize_t cells = ids->len / (Py_ssize_t)sizeof(int);
    for (Py_ssize_t i = 0; i < distinct; i++) {
        Entry *e = &entries[i];
        long long row = (long long)(e->key >> ROW_SHIFT);
        long long attr = (long long)((e->key >> ATTR_SHIFT) & 0x3);
        long long value = (long long)(e->key & RANK_MASK);
        e->cell = (Py_ssize_t)((row * N_ATTRS + attr) * SKETCH_SLOTS);
        if (e->cell + SKETCH_SLOTS > cells) {
            PyErr_SetString(PyExc_IndexError, "row beyond the table's capacity");
            return -1;
        }
        if (names != NULL) {
            if (value >= PySequence_Fast_GET_SIZE(names)) {
                PyErr_SetString(PyExc_IndexError, "rank beyond the value ids");
                return -1;
            }
            if (long_at(names, (Py_ssize_t)value, &value) < 0) {
                return -1;
            }
        }
        e->value = (int)value; /* int32 ids, as numpy's astype(np.int32) */
    }
    int *id_cells = ids->buf;
    float *weight_cells = weights->buf;
    for (Py_ssize_t i = 0; i < distinct; i++) {
        Entry *e = &entries[i];
        e->matched = merge_matched(id_cells, weight_cells, e->cell, e->value, e->weight);
    }
    for (Py_ssize_t i = 0; i < distinct; i++) {
        Entry *e = &entries[i];
        if (!e->matched) {
            merge_new(id_cells, weight_cells, e->cell, e->value, e->weight);
        }
    }
    return 0;
}

static int
get_table(PyObject *obj, Py_buffer *view, const char *format)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        return -1;
    }
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, format) != 0 ||
        view->len % (4 * N_ATTRS * SKETCH_SLOTS) != 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError, "expected a C-contiguous (rows, %d, %d) array of '%s'",
                     N_ATTRS, SKETCH_SLOTS, format);
        return -1;
    }
    return 0;
}

/* AttributionTable.merge_minute for tables of int32 ids and float32 weights. */
PyObject *
native_merge_minute(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6) {
        return native_usage_error("merge_minute(ids, weights, rows, ranks, weighted, value_ids)");
    }
    PyObject *seqs[N_ATTRS + 4] = {NULL};
    Entry *entries = NULL;
    Py_buffer ids = {0}, weights = {0};
    PyObject *result = NULL;
    if (get_table(args[0], &ids, "i") < 0) {
        return NULL;
    }
    if (get_table(args[1], &weights, "f") < 0 || ids.len != weights.len) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "ids and weights differ in shape");
        }
        goto done;
    }
    PyObject *ranks = PySequence_Fast(args[3], "ranks must be a sequence");
    int n_attrs = ranks == NULL ? 0 : (int)PySequence_Fast_GET_SIZE(ranks);
    if (ranks == NULL || n_attrs < 1 || n_attrs > N_ATTRS) {
        if (ranks != NULL) {
            PyErr_SetString(PyExc_ValueError, "one to three rank sequences (one per attribute)");
        }
        Py_XDECREF(ranks);
        goto done;
    }
    seqs[0] = PySequence_Fast(args[2], "rows must be a sequence");
    for (int attr = 0; attr < n_attrs && seqs[attr] != NULL; attr++) {
        seqs[attr + 1] = PySequence_Fast(PySequence_Fast_GET_ITEM(ranks, attr),
                                         "ranks must be sequences");
    }
    Py_DECREF(ranks);
    if (seqs[n_attrs] == NULL) {
        goto done;
    }
    seqs[N_ATTRS + 1] = PySequence_Fast(args[4], "weighted must be a sequence");
    if (seqs[N_ATTRS + 1] == NULL) {
        goto done;
    }
    if (args[5] != Py_None) {
        seqs[N_ATTRS + 2] = PySequence_Fast(args[5], "value ids must be a sequence");
        if (seqs[N_ATTRS + 2] == NULL) {
            goto done;
        }
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seqs[0]);
    for (int k = 1; k <= n_attrs; k++) {
        if (PySequence_Fast_GET_SIZE(seqs[k]) != n) {
            PyErr_SetString(PyExc_ValueError, "rows, ranks and weighted differ in length");
            goto done;
        }
    }
    entries = PyMem_Malloc(sizeof(Entry) * (size_t)(N_ATTRS * n + 1));
    if (entries == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (PySequence_Fast_GET_SIZE(seqs[N_ATTRS + 1]) != n) {
        PyErr_SetString(PyExc_ValueError, "rows and weighted differ in length");
        goto done;
    }
    Py_ssize_t distinct = sum_entries(seqs[0], &seqs[1], n_attrs, seqs[N_ATTRS + 1], entries);
    if (distinct >= 0 && merge_sums(&ids, &weights, entries, distinct, seqs[N_ATTRS + 2]) == 0) {
        result = Py_NewRef(Py_None);
    }
done:
    PyMem_Free(entries);
    for (int k = 0; k < N_ATTRS + 3; k++) {
        Py_XDECREF(seqs[k]);
    }
    if (weights.obj != NULL) {
        PyBuffer_Release(&weights);
    }
    PyBuffer_Release(&ids);
    return result;
}

/* ------------------------------------------------------------------ merge_buffers */
/* One (row, principal, agent, error) -> count entry of a minute buffer, weighted. */
typedef struct {
    long long row;
    PyObject *value[N_ATTRS]; /* borrowed from the buffers */
    Py_ssize_t rank[N_ATTRS];
    double weighted;
} Slot;

static int
str_cmp(const void *a, const void *b)
{
    return PyUnicode_Compare(*(PyObject *const *)a, *(PyObject *const *)b);
}

/* The buffers' entries whose row has a weight; -1 on error. */
static Py_ssize_t
collect_slots(PyObject *buffers, PyObject *row_weights, Slot *slots)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t b = 0; b < PySequence_Fast_GET_SIZE(buffers); b++) {
        PyObject *buffer = PySequence_Fast_GET_ITEM(buffers, b), *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(buffer, &pos, &key, &value)) {
            if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != N_ATTRS + 1 ||
                !PyLong_CheckExact(value)) {
                PyErr_SetString(PyExc_TypeError, "buffer entries are (row, str, str, str): int");
                return -1;
            }
            PyObject *weight = PyDict_GetItemWithError(row_weights, PyTuple_GET_ITEM(key, 0));
            if (weight == NULL) {
                if (PyErr_Occurred()) {
                    return -1;
                }
                continue; /* a row that is not learned this minute */
            }
            Slot *s = &slots[count];
            s->row = PyLong_AsLongLong(PyTuple_GET_ITEM(key, 0));
            double w = PyFloat_AsDouble(weight), n = PyLong_AsDouble(value);
            if ((s->row == -1 || w == -1.0 || n == -1.0) && PyErr_Occurred()) {
                return -1;
            }
            s->weighted = n * w; /* count * weight, as Python multiplies an int by a float */
            for (int a = 0; a < N_ATTRS; a++) {
                s->value[a] = PyTuple_GET_ITEM(key, a + 1);
                if (!PyUnicode_CheckExact(s->value[a])) {
                    PyErr_SetString(PyExc_TypeError, "buffer entries are (row, str, str, str): int");
                    return -1;
                }
            }
            count++;
        }
    }
    return count;
}

/* Rank every slot's values among the distinct values in text order; the distinct values go
 * to ``sorted`` (returns their number). */
static Py_ssize_t
rank_values(Slot *slots, Py_ssize_t count, PyObject **sorted)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        memcpy(&sorted[i * N_ATTRS], slots[i].value, sizeof(slots[i].value));
    }
    qsort(sorted, (size_t)(count * N_ATTRS), sizeof(PyObject *), str_cmp);
    Py_ssize_t distinct = 0;
    for (Py_ssize_t i = 0; i < count * N_ATTRS; i++) {
        if (distinct == 0 || PyUnicode_Compare(sorted[distinct - 1], sorted[i]) != 0) {
            sorted[distinct++] = sorted[i];
        }
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        for (int a = 0; a < N_ATTRS; a++) {
            Py_ssize_t lo = 0, hi = distinct - 1;
            while (lo < hi) {
                Py_ssize_t mid = (lo + hi) / 2;
                if (PyUnicode_Compare(sorted[mid], slots[i].value[a]) < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            slots[i].rank[a] = lo;
        }
    }
    return distinct;
}

/* AttributionTable.merge_buffers: the pure-Python version collects the same entries and calls
 * merge_minute with ranks in text order and the values' interned ids. */
PyObject *
native_merge_buffers(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5 || !PyDict_Check(args[3])) {
        return native_usage_error("merge_buffers(ids, weights, buffers, row_weights: dict, intern)");
    }
    Py_buffer ids = {0}, weights = {0};
    PyObject *buffers = NULL, *value_ids = NULL, *result = NULL;
    Slot *slots = NULL;
    PyObject **sorted = NULL;
    Entry *entries = NULL;
    if (get_table(args[0], &ids, "i") < 0 || get_table(args[1], &weights, "f") < 0 ||
        (buffers = PySequence_Fast(args[2], "buffers must be a sequence")) == NULL) {
        goto done;
    }
    if (ids.len != weights.len) {
        PyErr_SetString(PyExc_ValueError, "ids and weights differ in shape");
        goto done;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t b = 0; b < PySequence_Fast_GET_SIZE(buffers); b++) {
        PyObject *buffer = PySequence_Fast_GET_ITEM(buffers, b);
        if (!PyDict_Check(buffer)) {
            PyErr_SetString(PyExc_TypeError, "buffers must be dicts");
            goto done;
        }
        total += PyDict_GET_SIZE(buffer);
    }
    slots = PyMem_Malloc(sizeof(Slot) * (size_t)(total + 1));
    sorted = PyMem_Malloc(sizeof(PyObject *) * (size_t)(N_ATTRS * total + 1));
    entries = PyMem_Malloc(sizeof(Entry) * (size_t)(N_ATTRS * total + 1));
    if (slots == NULL || sorted == NULL || entries == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t count = collect_slots(buffers, args[3], slots);
    if (count <= 0) {
        result = count < 0 ? NULL : Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t distinct = rank_values(slots, count, sorted);
    /* the values are borrowed from the buffers' keys: hold them while ``intern`` (any
     * callable) runs */
    for (Py_ssize_t i = 0; i < distinct; i++) {
        Py_INCREF(sorted[i]);
    }
    value_ids = PyList_New(distinct);
    for (Py_ssize_t i = 0; value_ids != NULL && i < distinct; i++) {
        PyObject *id = PyObject_CallOneArg(args[4], sorted[i]);
        if (id == NULL) {
            Py_CLEAR(value_ids);
            break;
        }
        PyList_SET_ITEM(value_ids, i, id);
    }
    for (Py_ssize_t i = 0; i < distinct; i++) {
        Py_DECREF(sorted[i]);
    }
    if (value_ids == NULL) {
        goto done;
    }
    for (int attr = 0; attr < N_ATTRS; attr++) {
        for (Py_ssize_t i = 0; i < count; i++) {
            if (slots[i].row < 0 || slots[i].row >= (1LL << (63 - ROW_SHIFT))) {
                PyErr_SetString(PyExc_ValueError, "row out of range");
                goto done;
            }
            Entry *e = &entries[attr * count + i];
            e->key = ((unsigned long long)slots[i].row << ROW_SHIFT) |
                     ((unsigned long long)attr << ATTR_SHIFT) |
                     (unsigned long long)slots[i].rank[attr];
            e->order = attr * count + i;
            e->weight = slots[i].weighted;
        }
    }
    Py_ssize_t summed = sum_sorted(entries, N_ATTRS * count);
    if (merge_sums(&ids, &weights, entries, summed, value_ids) == 0) {
        result = Py_NewRef(Py_None);
    }
done:
    PyMem_Free(slots);
    PyMem_Free(sorted);
    PyMem_Free(entries);
    Py_XDECREF(buffers);
    Py_XDECREF(value_ids);
    if (weights.obj != NULL) {
        PyBuffer_Release(&weights);
    }
    if (ids.obj != NULL) {
        PyBuffer_Release(&ids);
    }
    return result;
}
