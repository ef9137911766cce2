/*
 * insights._native, part 8: clock-only records.
 *
 *   ClockOnly() -> an empty buffer (len(): entries not taken yet)
 *   CLOCK_ONLY: the placeholder that stands for each of its records in an events list
 *
 * A read-only call without an error code counts for no detection key: the engine only moves
 * its stream's clock with it (InsightEngine._scan), and most of CloudTrail's volume is such
 * calls. decode_many(..., clock_only=True) does not build a struct for a complete one: the
 * events get CLOCK_ONLY in its place, and this buffer gets, in the same order, what the engine
 * reads of it (its time, account and Region) and where its JSON is. The engine's scan takes one
 * entry per placeholder; if it needs the whole record after all (a stream it has not seen, a
 * clock jump), it builds the struct from that JSON then. Which records qualify is decided in
 * _decode.c, from the spans of the reader.
 */
#include "_native.h"

typedef struct {
    PyObject_HEAD
    ClockEntry *items;
    Py_ssize_t count, capacity, taken;
} ClockOnly;

PyObject *native_clock_marker;

static PyTypeObject ClockOnlyType;

int
native_is_clock(PyObject *obj)
{
    return Py_IS_TYPE(obj, &ClockOnlyType);
}

void
native_clock_clear(ClockEntry *entry)
{
    Py_CLEAR(entry->owner);
    Py_CLEAR(entry->account);
    Py_CLEAR(entry->region);
}

ClockEntry *
native_clock_push(PyObject *clock)
{
    ClockOnly *self = (ClockOnly *)clock;
    if (self->count == self->capacity) {
        Py_ssize_t capacity = self->capacity ? self->capacity * 2 : 256;
        ClockEntry *items = PyMem_Realloc(self->items, (size_t)capacity * sizeof(ClockEntry));
        if (items == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        self->items = items;
        self->capacity = capacity;
    }
    ClockEntry *entry = &self->items[self->count++];
    memset(entry, 0, sizeof(*entry));
    return entry;
}

Py_ssize_t
native_clock_count(PyObject *clock)
{
    return ((ClockOnly *)clock)->count;
}

void
native_clock_truncate(PyObject *clock, Py_ssize_t count)
{
    ClockOnly *self = (ClockOnly *)clock;
    while (self->count > count && self->count > self->taken) {
        native_clock_clear(&self->items[--self->count]);
    }
}

ClockEntry *
native_clock_take(PyObject *clock)
{
    ClockOnly *self = (ClockOnly *)clock;
    if (self->taken >= self->count) {
        return NULL;
    }
    ClockEntry *entry = &self->items[self->taken++];
    if (self->taken == self->count) { /* all taken: the next decode starts at the front */
        self->taken = self->count = 0;
    }
    return entry;
}

static PyObject *
clock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        return native_usage_error("ClockOnly()");
    }
    ClockOnly *self = (ClockOnly *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->items = NULL;
        self->count = self->capacity = self->taken = 0;
    }
    return (PyObject *)self;
}

static void
clock_dealloc(ClockOnly *self)
{
    for (Py_ssize_t i = self->taken; i < self->count; i++) {
        native_clock_clear(&self->items[i]);
    }
    PyMem_Free(self->items);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
clock_length(ClockOnly *self)
{
    return self->count - self->taken;
}

static PySequenceMethods clock_sequence = {
    .sq_length = (lenfunc)clock_length,
};

static PyTypeObject ClockOnlyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "insights._native.ClockOnly",
    .tp_basicsize = sizeof(ClockOnly),
    .tp_dealloc = (destructor)clock_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Clock-only records that decode_many left unbuilt, for the engine's scan.",
    .tp_new = clock_new,
    .tp_as_sequence = &clock_sequence,
};

static PyTypeObject MarkerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "insights._native.ClockOnlyMarker",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Stands for a clock-only record in an events list (see ClockOnly).",
};

int
native_clock_init(PyObject *module)
{
    if (PyType_Ready(&ClockOnlyType) < 0 || PyType_Ready(&MarkerType) < 0) {
        return -1;
    }
    native_clock_marker = PyObject_New(PyObject, &MarkerType);
    if (native_clock_marker == NULL) {
        return -1;
    }
    Py_INCREF(&ClockOnlyType);
    if (PyModule_AddObject(module, "ClockOnly", (PyObject *)&ClockOnlyType) < 0) {
        Py_DECREF(&ClockOnlyType);
        return -1;
    }
    if (PyModule_AddObjectRef(module, "CLOCK_ONLY", native_clock_marker) < 0) {
        return -1;
    }
    return 0;
}
