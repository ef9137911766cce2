/*
 * insights._native: the per-event loops of replay and the worker, and the attribution
 * sketch merge, in C.
 *
 * Optional accelerator (loaded by insights/native.py). Each loop handles only the common, fully
 * valid case and hands every other item back to the pure-Python code (which stays the
 * reference): the results are the same with or without this module (tests compare both). What
 * it saves is the Python interpreter's cost per event (~2 us of the ~5.5 us a busy stream's
 * event cost in replay).
 *
 *   scan(events, streams, jump, lateness, accept, due, slow, dedupe, routes, horizon)
 *       -> (skipped, late, analysed, duplicates)
 *   merge_minute(...), merge_buffers(...): attribution sketches (_sketch.c)
 *   score_minutes(...), learn_minutes(...): a closing step of the baselines (_closing.c)
 *   set_loops(...), tail_scores(...): ufunc loops, negative-binomial tail scores (_stats.c)
 *   close_step(...), next_batch(...): a closing step, a round of the drain (_step.c)
 *   strict_seconds(text) -> int   (-1 when the text is not the strict form)
 */
#include "native.h"
#include <stddef.h>
#include <structmember.h>

/* Accepted event times, as in insights/timeparse.py: [2006-01-01, 2100-01-01). */
#define MIN_MINUTE (1136073600LL / 60)
#define MAX_MINUTE (4102444800LL / 60)

/* Attribute names, interned at import. The fields of an event and of a stream are slots
 * (msgspec.Struct, dataclass(slots=True)): their offsets are read once per type from the
 * member descriptors, so reading a field is a load instead of a generic attribute lookup.
 * Any other type, or an unset slot, takes PyObject_GetAttr. */
enum { F_EVENT_TIME, F_EVENT_SOURCE, F_EVENT_NAME, F_AWS_REGION, F_RECIPIENT_ACCOUNT_ID,
       F_EVENT_TYPE, F_EVENT_CATEGORY, F_ERROR_CODE, F_READ_ONLY, F_EVENT_ID, F_USER_IDENTITY,
       F_USER_AGENT, F_MANAGEMENT_EVENT, F_MAX_SEEN, F_CLOSED_UNTIL, F_PENDING, F_COUNT };
static PyObject *names[F_COUNT];

typedef struct {
    PyTypeObject *type; /* strong reference; NULL until resolved */
    int usable;         /* every field below is an object slot of ``type`` */
    Py_ssize_t offset[F_COUNT];
} SlotLayout;

static SlotLayout event_layout, stream_layout;

/* The slot offsets of ``fields`` in ``type`` (only object slots qualify). */
static void
resolve_layout(SlotLayout *layout, PyTypeObject *type, const int *fields, int count)
{
    Py_XSETREF(layout->type, (PyTypeObject *)Py_NewRef(type));
    /* plain attribute semantics only: a custom __getattribute__ or __setattr__ must run */
    layout->usable = type->tp_getattro == PyObject_GenericGetAttr &&
                     (layout != &stream_layout || type->tp_setattro == PyObject_GenericSetAttr);
    for (int i = 0; layout->usable && i < count; i++) {
        PyObject *descr = _PyType_Lookup(type, names[fields[i]]); /* borrowed */
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            layout->usable = 0;
            return;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if ((member->type != T_OBJECT_EX && member->type != T_OBJECT) ||
            (member->flags & READONLY)) {
            layout->usable = 0;
            return;
        }
        layout->offset[fields[i]] = member->offset;
    }
}

static const int event_fields[] = {
    F_EVENT_TIME, F_EVENT_SOURCE,  F_EVENT_NAME, F_AWS_REGION,       F_RECIPIENT_ACCOUNT_ID,
    F_EVENT_TYPE, F_EVENT_CATEGORY, F_ERROR_CODE, F_READ_ONLY,       F_EVENT_ID,
    F_USER_IDENTITY, F_USER_AGENT,  F_MANAGEMENT_EVENT};
static const int stream_fields[] = {F_MAX_SEEN, F_CLOSED_UNTIL, F_PENDING};

/* The slot of field ``f`` of ``obj`` when ``obj`` has ``layout``'s type, else NULL. */
static inline PyObject **
slot_of(SlotLayout *layout, PyObject *obj, int f, const int *fields, int count)
{
    if (Py_TYPE(obj) != layout->type) {
        resolve_layout(layout, Py_TYPE(obj), fields, count);
    }
    return layout->usable ? (PyObject **)((char *)obj + layout->offset[f]) : NULL;
}

/* A new reference to field ``f`` of an event or a stream; NULL with an exception on error. */
static PyObject *
get_field(PyObject *obj, int f)
{
    PyObject **slot = f >= F_MAX_SEEN
                          ? slot_of(&stream_layout, obj, f, stream_fields, F_COUNT - F_MAX_SEEN)
                          : slot_of(&event_layout, obj, f, event_fields, F_MAX_SEEN);
    if (slot != NULL && *slot != NULL) {
        return Py_NewRef(*slot);
    }
    return PyObject_GetAttr(obj, names[f]);
}

/* Set field ``f`` of a stream; -1 with an exception on error. */
static int
set_field(PyObject *obj, int f, PyObject *value)
{
    PyObject **slot = slot_of(&stream_layout, obj, f, stream_fields, F_COUNT - F_MAX_SEEN);
    if (slot == NULL) {
        return PyObject_SetAttr(obj, names[f], value);
    }
    Py_XSETREF(*slot, Py_NewRef(value));
    return 0;
}

/* Two ASCII digits as a number, -1 if either is not a digit. */
static int
two_digits(const Py_UCS1 *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') {
        return -1;
    }
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/* Days from 1970-01-01 to a proleptic Gregorian date (month 1-12, year >= 1). */
static long long
days_since_epoch(long long year, int month, int day)
{
    static const int before_month[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    long long y = year - 1; /* whole years before this one */
    long long days = y * 365 + y / 4 - y / 100 + y / 400;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    days += before_month[month - 1] + (month > 2 && leap) + (day - 1);
    return days - 719162; /* days from 0001-01-01 to 1970-01-01 */
}

/* Epoch seconds of "YYYY-MM-DDTHH:MM:SSZ" when every field is valid and the time is in range;
 * -1 for anything else (the Python parser then decides, so this only has to be strict). */
long long
native_strict_seconds(const unsigned char *p, Py_ssize_t len)
{
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (len != 20) {
        return -1;
    }
    if (p[4] != '-' || p[7] != '-' || p[10] != 'T' || p[13] != ':' || p[16] != ':' ||
        p[19] != 'Z') {
        return -1;
    }
    int century = two_digits(p), yy = two_digits(p + 2), month = two_digits(p + 5);
    int day = two_digits(p + 8), hour = two_digits(p + 11), minute = two_digits(p + 14);
    int second = two_digits(p + 17);
    if (century < 0 || yy < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 ||
        minute < 0 || minute > 59 || second < 0 || second > 59) {
        return -1;
    }
    long long year = century * 100 + yy;
    if (year < 1) {
        return -1;
    }
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > month_days[month - 1] + (month == 2 && leap)) {
        return -1;
    }
    long long epoch_minute = (days_since_epoch(year, month, day) * 24 + hour) * 60 + minute;
    if (epoch_minute < MIN_MINUTE || epoch_minute >= MAX_MINUTE) {
        return -1;
    }
    return epoch_minute * 60 + second;
}

static long long
strict_seconds_of(PyObject *text)
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text)) {
        return -1;
    }
    return native_strict_seconds(PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text));
}

/* 1 if attribute ``name`` of ``obj`` is truthy, 0 if not, -1 on error. */
static int
attr_true(PyObject *obj, int f)
{
    PyObject *value = get_field(obj, f);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* The interned str of a string constant (a literal or a static table's: its address is
 * the key), kept for the life of the process; borrowed. NULL with no exception when the
 * table is full, NULL with one on error. */
static PyObject *
interned_name(const char *text)
{
    static struct {
        const char *text;
        PyObject *name;
    } names[64];
    static int used;
    for (int i = 0; i < used; i++) {
        if (names[i].text == text) {
            return names[i].name;
        }
    }
    if (used == (int)(sizeof(names) / sizeof(names[0]))) {
        return NULL;
    }
    PyObject *name = PyUnicode_InternFromString(text);
    if (name != NULL) {
        names[used].text = text;
        names[used++].name = name;
    }
    return name;
}

PyObject *
native_getattr(PyObject *obj, const char *name)
{
    PyObject *interned = interned_name(name);
    if (interned == NULL) {
        return PyErr_Occurred() ? NULL : PyObject_GetAttrString(obj, name);
    }
    return PyObject_GetAttr(obj, interned);
}

int
native_setattr(PyObject *obj, const char *name, PyObject *value)
{
    PyObject *interned = interned_name(name);
    if (interned == NULL) {
        return PyErr_Occurred() ? -1 : PyObject_SetAttrString(obj, name, value);
    }
    return PyObject_SetAttr(obj, interned, value);
}

PyObject *
native_usage_error(const char *usage)
{
    PyErr_Format(PyExc_TypeError, "expected %s", usage);
    return NULL;
}

/* Read an int attribute into *value; -1 on error. */
static int
attr_int(PyObject *obj, int f, long long *value)
{
    PyObject *item = get_field(obj, f);
    if (item == NULL) {
        return -1;
    }
    *value = PyLong_AsLongLong(item);
    Py_DECREF(item);
    return (*value == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int
call_discard(PyObject *func, PyObject *const *args, size_t nargs)
{
    PyObject *result = PyObject_Vectorcall(func, args, nargs, NULL);
    if (result == NULL) {
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static int
call_with_int(PyObject *func, PyObject *first, long long number, PyObject *third)
{
    PyObject *value = PyLong_FromLongLong(number);
    if (value == NULL) {
        return -1;
    }
    PyObject *args[3] = {first, value, third};
    int status = call_discard(func, args, 3);
    Py_DECREF(value);
    return status;
}

/* Streams found by a scan, by the identity of their (account, Region) strings (the decoder's
 * string cache makes the same text the same object, so events of streams interleaved find
 * theirs here without building a key and comparing strings); one slot per pair of strings.
 * A slot is read only once its bit in the scan's ``used`` map is set: the slots are not
 * cleared when a scan starts, so a call with one event costs no more than it did before. */
#define STREAM_CACHE 64

typedef struct {
    PyObject *account, *region, *stream, *key; /* strong; key is (account, region) */
} StreamSlot;

/* Routes found recently by a scan, by the identity of their parts (as streams above): a
 * shape's rows never change, so a hit is what the routes dict would give. */
#define ROUTE_CACHE 256
#define ROUTE_PARTS 8

typedef struct {
    PyObject *part[ROUTE_PARTS]; /* strong: the route key's items */
    PyObject *rows;              /* strong */
} RouteSlot;

typedef struct {
    PyObject *streams, *accept, *due, *slow;
    long long jump, lateness, skipped, late;
    long long horizon; /* records dated after it go to ``slow`` (the caller rejects them) */
    /* accept's common case: the engine's dedupe window (its id set and ids per minute) and
     * its cache of event shapes -> rows */
    PyObject *dedupe, *dedupe_ids, *dedupe_minutes, *routes;
    long long max_ids, window, analysed, duplicates;
    PyObject *key; /* borrowed from ``found``: the (account, Region) of the last stream found */
    /* which slots below hold something (the fields up to here start zeroed) */
    uint64_t found_used[STREAM_CACHE / 64], routed_used[ROUTE_CACHE / 64];
    StreamSlot found[STREAM_CACHE];
    RouteSlot routed[ROUTE_CACHE];
} ScanState;

/* The slot of a hash of object identities in a table of ``size`` (a power of two). */
static inline size_t
identity_slot(uintptr_t hash, size_t size)
{
    return (size_t)((hash * 0x9E3779B97F4A7C15u) >> 40) & (size - 1);
}

/* Whether slot ``i`` of a ``used`` map holds something; marks it as holding from now on. */
static inline int
slot_used(uint64_t *used, size_t i, int mark)
{
    int was = (int)((used[i / 64] >> (i % 64)) & 1);
    if (mark) {
        used[i / 64] |= (uint64_t)1 << (i % 64);
    }
    return was;
}

static PyObject *null_text, *newest_name; /* "null", "newest" */

/* The stream of an event's (account, Region), as a new reference; NULL with no error set when
 * the stream does not exist yet. */
static PyObject *
stream_for(ScanState *st, PyObject *account, PyObject *region)
{
    size_t index = identity_slot((uintptr_t)account ^ ((uintptr_t)region >> 4), STREAM_CACHE);
    StreamSlot *slot = &st->found[index];
    if (slot_used(st->found_used, index, 0) && slot->account == account &&
        slot->region == region) {
        st->key = slot->key;
        return Py_NewRef(slot->stream);
    }
    PyObject *key = PyTuple_Pack(2, account, region);
    if (key == NULL) {
        return NULL;
    }
    PyObject *stream = PyDict_GetItemWithError(st->streams, key);
    if (stream == NULL) {
        Py_DECREF(key);
        return NULL;
    }
    if (slot_used(st->found_used, index, 1)) {
        Py_DECREF(slot->account);
        Py_DECREF(slot->region);
        Py_DECREF(slot->stream);
        Py_DECREF(slot->key);
    }
    slot->account = Py_NewRef(account);
    slot->region = Py_NewRef(region);
    slot->stream = Py_NewRef(stream);
    slot->key = key;
    st->key = key;
    return Py_NewRef(stream);
}

static void
forget_found(ScanState *st)
{
    for (size_t i = 0; i < STREAM_CACHE; i++) {
        if (slot_used(st->found_used, i, 0)) {
            Py_DECREF(st->found[i].account);
            Py_DECREF(st->found[i].region);
            Py_DECREF(st->found[i].stream);
            Py_DECREF(st->found[i].key);
        }
    }
    for (size_t i = 0; i < ROUTE_CACHE; i++) {
        if (slot_used(st->routed_used, i, 0)) {
            for (int k = 0; k < ROUTE_PARTS; k++) {
                Py_DECREF(st->routed[i].part[k]);
            }
            Py_DECREF(st->routed[i].rows);
        }
    }
}

static PyObject *
stream_of(ScanState *st, PyObject *event)
{
    PyObject *account = get_field(event, F_RECIPIENT_ACCOUNT_ID);
    if (account == NULL) {
        return NULL;
    }
    PyObject *region = get_field(event, F_AWS_REGION);
    if (region == NULL) {
        Py_DECREF(account);
        return NULL;
    }
    PyObject *stream = stream_for(st, account, region);
    Py_DECREF(account);
    Py_DECREF(region);
    return stream;
}

static int advance_clock(ScanState *st, PyObject *stream, long long seconds,
                         long long closed_until);
static int move_clock(ScanState *st, PyObject *stream, long long seconds, long long max_seen);

/* A read-only call without an error code only moves its stream's clock. 1 when handled here,
 * 0 when the event is not of that kind, 2 when the Python loop must see it, -1 on error. */
static int
skip_read_only(ScanState *st, PyObject *stream, PyObject *event, long long seconds,
               long long max_seen)
{
    PyObject *read_only = get_field(event, F_READ_ONLY);
    if (read_only == NULL) {
        return -1;
    }
    int is_true = read_only == Py_True;
    Py_DECREF(read_only);
    if (!is_true) {
        return 0;
    }
    PyObject *error = get_field(event, F_ERROR_CODE);
    if (error == NULL) {
        return -1;
    }
    int no_error = error == Py_None;
    Py_DECREF(error);
    if (!no_error) {
        return 0;
    }
    int named = attr_true(event, F_EVENT_NAME);
    if (named <= 0) {
        return named;
    }
    int sourced = attr_true(event, F_EVENT_SOURCE);
    if (sourced <= 0) {
        return sourced < 0 ? -1 : 2; /* rejected by the Python loop, which counts why */
    }
    return move_clock(st, stream, seconds, max_seen);
}

/* The clock step of a read-only call without an error code: late, or skipped and the clock
 * moved; 1, or -1 on error. */
static int
move_clock(ScanState *st, PyObject *stream, long long seconds, long long max_seen)
{
    long long closed_until;
    if (attr_int(stream, F_CLOSED_UNTIL, &closed_until) < 0) {
        return -1;
    }
    if (seconds / 60 < closed_until) {
        st->late++;
        return 1;
    }
    st->skipped++;
    if (seconds > max_seen && advance_clock(st, stream, seconds, closed_until) < 0) {
        return -1;
    }
    return 1;
}

/* Move a stream's clock to ``seconds`` (newer than ``max_seen``) and schedule the minutes the
 * allowed lateness now closes (StreamClocks.schedule: close them to new events, and the stream
 * is due for the next drain); -1 on error. The stream is the last one stream_for found. */
static int
advance_clock(ScanState *st, PyObject *stream, long long seconds, long long closed_until)
{
    PyObject *value = PyLong_FromLongLong(seconds);
    if (value == NULL || set_field(stream, F_MAX_SEEN, value) < 0) {
        Py_XDECREF(value);
        return -1;
    }
    Py_DECREF(value);
    long long target = (seconds - st->lateness) / 60; /* both positive: floor division */
    if (target <= closed_until) {
        return 0;
    }
    value = PyLong_FromLongLong(target);
    int status = value == NULL || set_field(stream, F_CLOSED_UNTIL, value) < 0 ||
                         PyDict_SetItem(st->due, st->key, stream) < 0
                     ? -1
                     : 0;
    Py_XDECREF(value);
    return status;
}

/* The rows of an event's route in the engine's ``routes`` (its key: (stream, source, name,
 * error code, read-only, management, category, type), as InsightEngine._accept), as a new
 * reference; NULL with no error set when the shape has no route (or not a tuple of rows). */
static PyObject *
rows_of_route(ScanState *st, PyObject *stream, PyObject *event)
{
    static const int fields[] = {F_EVENT_SOURCE, F_EVENT_NAME, F_ERROR_CODE, F_READ_ONLY,
                                 F_MANAGEMENT_EVENT, F_EVENT_CATEGORY, F_EVENT_TYPE};
    PyObject *part[ROUTE_PARTS] = {stream};
    uintptr_t hash = (uintptr_t)stream;
    for (int i = 1; i < ROUTE_PARTS; i++) {
        part[i] = get_field(event, fields[i - 1]); /* new references, released below */
        if (part[i] == NULL) {
            for (int k = 1; k < i; k++) {
                Py_DECREF(part[k]);
            }
            return NULL;
        }
        hash = (hash ^ (uintptr_t)part[i]) * 0x9E3779B97F4A7C15u;
    }
    size_t index = identity_slot(hash, ROUTE_CACHE);
    RouteSlot *slot = &st->routed[index];
    PyObject *rows = NULL;
    int hit = slot_used(st->routed_used, index, 0);
    for (int i = 0; hit && i < ROUTE_PARTS; i++) {
        hit = slot->part[i] == part[i];
    }
    if (hit) {
        rows = Py_NewRef(slot->rows);
    } else {
        PyObject *route = PyTuple_New(ROUTE_PARTS);
        if (route != NULL) {
            for (int i = 0; i < ROUTE_PARTS; i++) {
                PyTuple_SET_ITEM(route, i, Py_NewRef(part[i]));
            }
            rows = Py_XNewRef(PyDict_GetItemWithError(st->routes, route));
            Py_DECREF(route);
        }
        if (rows != NULL && !PyTuple_CheckExact(rows)) {
            Py_CLEAR(rows);
        }
        if (rows != NULL) {
            int held = slot_used(st->routed_used, index, 1);
            for (int i = 0; i < ROUTE_PARTS; i++) {
                PyObject *old = held ? slot->part[i] : NULL;
                slot->part[i] = Py_NewRef(part[i]);
                Py_XDECREF(old);
            }
            PyObject *old = held ? slot->rows : NULL;
            slot->rows = Py_NewRef(rows);
            Py_XDECREF(old);
        }
    }
    for (int i = 1; i < ROUTE_PARTS; i++) {
        Py_DECREF(part[i]);
    }
    return rows;
}

/* DedupeWindow.seen's first step for an event of a new newest minute: it becomes the newest,
 * and the ids of minutes older than the window are forgotten (_evict); -1 on error. */
static int
new_newest(ScanState *st, long long minute)
{
    PyObject *value = PyLong_FromLongLong(minute);
    int status = value == NULL ? -1 : PyObject_SetAttr(st->dedupe, newest_name, value);
    Py_XDECREF(value);
    PyObject *old = status < 0 ? NULL : PyList_New(0);
    if (old == NULL) {
        return -1;
    }
    long long before = minute - st->window;
    Py_ssize_t pos = 0;
    PyObject *key, *ids;
    while (status == 0 && PyDict_Next(st->dedupe_minutes, &pos, &key, &ids)) {
        long long at = PyLong_AsLongLong(key);
        if (at == -1 && PyErr_Occurred()) {
            status = -1;
        } else if (at < before) {
            status = PyList_Append(old, key);
        }
    }
    for (Py_ssize_t i = 0; status == 0 && i < PyList_GET_SIZE(old); i++) {
        key = PyList_GET_ITEM(old, i);
        ids = Py_XNewRef(PyDict_GetItemWithError(st->dedupe_minutes, key));
        if (ids == NULL || !PyList_CheckExact(ids) || PyDict_DelItem(st->dedupe_minutes, key) < 0) {
            if (ids != NULL && !PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "dedupe minutes must hold lists");
            }
            status = -1;
        }
        for (Py_ssize_t j = 0; status == 0 && j < PyList_GET_SIZE(ids); j++) {
            status = PySet_Discard(st->dedupe_ids, PyList_GET_ITEM(ids, j)) < 0 ? -1 : 0;
        }
        Py_XDECREF(ids);
    }
    Py_DECREF(old);
    return status;
}

/* DedupeWindow.seen unless the window is full: 1 seen before, 0 remembered now (or not kept),
 * 2 when the Python window must decide, -1 on error. */
static int
dedupe_seen(ScanState *st, PyObject *event_id, long long minute)
{
    long long newest;
    PyObject *value = PyObject_GetAttr(st->dedupe, newest_name);
    if (value == NULL) {
        return -1;
    }
    newest = PyLong_AsLongLong(value);
    Py_DECREF(value);
    if (newest == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!PyUnicode_CheckExact(event_id)) {
        return 2;
    }
    if (minute > newest && new_newest(st, minute) < 0) {
        return -1;
    }
    int seen = PySet_Contains(st->dedupe_ids, event_id);
    if (seen != 0 || st->max_ids <= 0) {
        return seen;
    }
    if (PySet_GET_SIZE(st->dedupe_ids) >= st->max_ids) {
        return 2; /* full: the oldest minute goes */
    }
    PyObject *key = PyLong_FromLongLong(minute);
    if (key == NULL) {
        return -1;
    }
    PyObject *bucket = PyDict_GetItemWithError(st->dedupe_minutes, key); /* borrowed */
    int status = -1;
    if (bucket == NULL && !PyErr_Occurred()) {
        bucket = PyList_New(0);
        if (bucket != NULL && PyDict_SetItem(st->dedupe_minutes, key, bucket) == 0) {
            Py_DECREF(bucket); /* the dict holds it */
        } else {
            Py_XDECREF(bucket);
            bucket = NULL;
        }
    }
    if (bucket != NULL && PyList_CheckExact(bucket) && PySet_Add(st->dedupe_ids, event_id) == 0 &&
        PyList_Append(bucket, event_id) == 0) {
        status = 0;
    }
    if (bucket != NULL && !PyList_CheckExact(bucket)) {
        PyErr_SetString(PyExc_TypeError, "dedupe minutes must hold lists");
    }
    Py_DECREF(key);
    return status;
}

/* ``value or "null"`` as a new reference. */
static PyObject *
or_null(PyObject *value)
{
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        Py_DECREF(value);
        return NULL;
    }
    if (truth) {
        return value;
    }
    Py_DECREF(value);
    return Py_NewRef(null_text);
}

/* The principal of an event: its identity's ARN, else invoked-by, else principal id, else
 * "null" (as InsightEngine._accept). */
static PyObject *
principal_of(PyObject *event)
{
    static const char *choices[] = {"arn", "invoked_by", "principal_id"};
    PyObject *ident = get_field(event, F_USER_IDENTITY);
    if (ident == NULL || ident == Py_None) {
        Py_XDECREF(ident);
        return ident == NULL ? NULL : Py_NewRef(null_text);
    }
    for (int i = 0; i < 3; i++) {
        PyObject *value = native_getattr(ident, choices[i]);
        int truth = value == NULL ? -1 : PyObject_IsTrue(value);
        if (truth != 0) {
            Py_DECREF(ident);
            if (truth < 0) {
                Py_XDECREF(value);
                return NULL;
            }
            return value;
        }
        Py_DECREF(value);
    }
    Py_DECREF(ident);
    return Py_NewRef(null_text);
}

/* Count the event in its minute's buffer under each of ``rows``: (row, principal, agent,
 * error) -> count. */
static int
count_in_buffer(PyObject *stream, PyObject *event, long long minute, PyObject *rows)
{
    PyObject *pending = get_field(stream, F_PENDING), *key = NULL, *slot = NULL;
    PyObject *principal = NULL, *agent = NULL, *error = NULL, *held = NULL;
    int status = -1;
    if (pending == NULL || !PyDict_CheckExact(pending)) {
        if (pending != NULL) {
            PyErr_SetString(PyExc_TypeError, "a stream's pending minutes must be a dict");
        }
        goto done;
    }
    key = PyLong_FromLongLong(minute);
    if (key == NULL) {
        goto done;
    }
    /* held, not borrowed: reading the identity below runs attribute lookups */
    PyObject *buffer = Py_XNewRef(PyDict_GetItemWithError(pending, key));
    if (buffer == NULL) {
        if (PyErr_Occurred() || (buffer = PyDict_New()) == NULL) {
            goto done;
        }
        if (PyDict_SetItem(pending, key, buffer) < 0) {
            Py_DECREF(buffer);
            goto done;
        }
    }
    held = buffer;
    if ((principal = principal_of(event)) == NULL) {
        goto done;
    }
    agent = get_field(event, F_USER_AGENT);
    if (agent == NULL || (agent = or_null(agent)) == NULL) {
        goto done;
    }
    error = get_field(event, F_ERROR_CODE);
    if (error == NULL || (error = or_null(error)) == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(rows); i++) {
        slot = PyTuple_Pack(4, PyTuple_GET_ITEM(rows, i), principal, agent, error);
        if (slot == NULL) {
            goto done;
        }
        PyObject *count = PyDict_GetItemWithError(buffer, slot); /* borrowed */
        long long n = count == NULL ? 0 : PyLong_AsLongLong(count);
        if ((count == NULL || n == -1) && PyErr_Occurred()) {
            goto done;
        }
        PyObject *next = PyLong_FromLongLong(n + 1);
        if (next == NULL || PyDict_SetItem(buffer, slot, next) < 0) {
            Py_XDECREF(next);
            goto done;
        }
        Py_DECREF(next);
        Py_CLEAR(slot);
    }
    status = 0;
done:
    Py_XDECREF(held);
    Py_XDECREF(slot);
    Py_XDECREF(principal);
    Py_XDECREF(agent);
    Py_XDECREF(error);
    Py_XDECREF(key);
    Py_XDECREF(pending);
    return status;
}

/* InsightEngine._accept for an event whose shape was routed before: 1 when handled here, 0
 * when the Python method must take it (a new shape, a dedupe eviction), -1 on error. */
static int
accept_routed(ScanState *st, PyObject *stream, PyObject *event, long long seconds,
              long long max_seen)
{
    /* the route first: looking it up changes nothing, so a new shape can still go to Python */
    PyObject *rows = rows_of_route(st, stream, event);
    if (rows == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    long long minute = seconds / 60, closed_until;
    int status = -1;
    PyObject *event_id = get_field(event, F_EVENT_ID);
    if (event_id == NULL) {
        goto done;
    }
    if (event_id != Py_None) {
        int seen = dedupe_seen(st, event_id, minute);
        if (seen != 0) {
            st->duplicates += seen == 1;
            status = seen == 2 ? 0 : (seen == 1 ? 1 : -1);
            goto done;
        }
    }
    if (attr_int(stream, F_CLOSED_UNTIL, &closed_until) < 0) {
        goto done;
    }
    if (minute < closed_until) {
        st->late++;
        status = 1;
        goto done;
    }
    if (PyTuple_GET_SIZE(rows) > 0) {
        if (count_in_buffer(stream, event, minute, rows) < 0) {
            goto done;
        }
        st->analysed++;
    } else {
        st->skipped++;
    }
    status = seconds > max_seen && advance_clock(st, stream, seconds, closed_until) < 0 ? -1 : 1;
done:
    Py_XDECREF(event_id);
    Py_DECREF(rows);
    return status;
}

/* One event of scan(); 0 or -1 on error. */
static int
scan_one(ScanState *st, PyObject *event)
{
    PyObject *text = get_field(event, F_EVENT_TIME);
    if (text == NULL) {
        return -1;
    }
    long long seconds = strict_seconds_of(text);
    Py_DECREF(text);
    if (seconds < 0) {
        return call_discard(st->slow, &event, 1);
    }
    PyObject *stream = stream_of(st, event);
    if (stream == NULL) {
        return PyErr_Occurred() ? -1 : call_discard(st->slow, &event, 1);
    }
    long long max_seen;
    int status = attr_int(stream, F_MAX_SEEN, &max_seen);
    if (status == 0) {
        if (seconds > max_seen + st->jump || seconds > st->horizon) {
            status = call_discard(st->slow, &event, 1); /* held back: the Python loop decides */
        } else {
            status = skip_read_only(st, stream, event, seconds, max_seen);
            if (status == 0) {
                status = accept_routed(st, stream, event, seconds, max_seen);
                if (status == 0) {
                    status = call_with_int(st->accept, stream, seconds, event);
                } else if (status == 1) {
                    status = 0;
                }
            } else if (status == 2) {
                status = call_discard(st->slow, &event, 1);
            } else if (status == 1) {
                status = 0;
            }
        }
    }
    Py_DECREF(stream);
    return status;
}

/* The engine's per-event loop (InsightEngine._process_slice) for events whose time is in the
 * strict form and whose stream exists: read-only calls move the clock here, others go to
 * ``accept(stream, seconds, event)``, anything else to ``slow(event)``. */
static PyObject *
scan(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 10 || !PyList_CheckExact(args[0]) || !PyDict_CheckExact(args[1]) ||
        !PyDict_CheckExact(args[5]) || !PyDict_CheckExact(args[8])) {
        return native_usage_error("scan(events: list, streams: dict, jump, lateness, accept, "
                                  "due: dict, slow, dedupe, routes: dict, horizon: int)");
    }
    ScanState st;
    memset(&st, 0, offsetof(ScanState, found)); /* not the slots: see STREAM_CACHE */
    st.streams = args[1];
    st.accept = args[4];
    st.due = args[5];
    st.slow = args[6];
    st.dedupe = args[7];
    st.routes = args[8];
    st.jump = PyLong_AsLongLong(args[2]);
    st.lateness = PyLong_AsLongLong(args[3]);
    st.horizon = PyLong_AsLongLong(args[9]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *max_ids = native_getattr(st.dedupe, "max_ids");
    st.max_ids = max_ids == NULL ? -1 : PyLong_AsLongLong(max_ids);
    Py_XDECREF(max_ids);
    PyObject *window = PyErr_Occurred() ? NULL : native_getattr(st.dedupe, "window");
    st.window = window == NULL ? -1 : PyLong_AsLongLong(window);
    Py_XDECREF(window);
    if (PyErr_Occurred()) {
        return NULL;
    }
    /* borrowed for the call: the window keeps its set and dict (it only mutates them) */
    st.dedupe_ids = native_getattr(st.dedupe, "ids");
    st.dedupe_minutes = native_getattr(st.dedupe, "by_minute");
    PyObject *held[2] = {st.dedupe_ids, st.dedupe_minutes};
    if (st.dedupe_ids == NULL || st.dedupe_minutes == NULL || !PySet_CheckExact(st.dedupe_ids) ||
        !PyDict_CheckExact(st.dedupe_minutes)) {
        Py_XDECREF(held[0]);
        Py_XDECREF(held[1]);
        return PyErr_Occurred() ? NULL : native_usage_error("a DedupeWindow (set, dict)");
    }
    PyObject *events = args[0], *result = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events); i++) {
        PyObject *event = PyList_GET_ITEM(events, i);
        Py_INCREF(event);
        int status = scan_one(&st, event);
        Py_DECREF(event);
        if (status < 0) {
            goto done;
        }
    }
    result = Py_BuildValue("(LLLL)", st.skipped, st.late, st.analysed, st.duplicates);
done:
    Py_DECREF(held[0]);
    Py_DECREF(held[1]);
    forget_found(&st);
    return result;
}

static PyObject *
strict_seconds(PyObject *module, PyObject *text)
{
    return PyLong_FromLongLong(strict_seconds_of(text));
}

static PyMethodDef native_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scan, METH_FASTCALL,
     "The engine's per-event loop for the common case."},
    {"merge_minute", (PyCFunction)(void (*)(void))native_merge_minute, METH_FASTCALL,
     "Merge one minute's attribute values into the space-saving sketches."},
    {"merge_buffers", (PyCFunction)(void (*)(void))native_merge_buffers, METH_FASTCALL,
     "Merge the learned rows' entries of minute buffers into the sketches."},
    {"set_model", (PyCFunction)(void (*)(void))native_set_model, METH_FASTCALL,
     "Store the model's constants (insights.model.ModelParams.native_arguments())."},
    {"set_loops", (PyCFunction)(void (*)(void))native_set_loops, METH_FASTCALL,
     "Find the double loops of exp2, gammainc, betainc and log10; whether all were found."},
    {"tail_scores", (PyCFunction)(void (*)(void))native_tail_scores, METH_FASTCALL,
     "nb_tail_score of (rows, scales) arrays where a mask says so."},
    {"score_minutes", (PyCFunction)(void (*)(void))native_score_minutes, METH_FASTCALL,
     "BaselineTable.score_minutes: close buckets, expect, window, scales to score."},
    {"learn_minutes", (PyCFunction)(void (*)(void))native_learn_minutes, METH_FASTCALL,
     "BaselineTable.learn_minutes: learn a scored minute."},
    {"next_batch", (PyCFunction)(void (*)(void))native_next_batch, METH_FASTCALL,
     "A round of MinuteCloser.drain: the next minute of each due stream, gaps skipped."},
    {"close_step", (PyCFunction)(void (*)(void))native_close_step, METH_FASTCALL,
     "MinuteCloser._close_batch when no stream of the step has an open insight."},
    {"strict_seconds", strict_seconds, METH_O,
     "Epoch seconds of a strict YYYY-MM-DDTHH:MM:SSZ time in range, else -1."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "insights._native", "Per-event loops of ctinsights in C.", -1,
    native_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    static const char *spelled[F_COUNT] = {
        [F_EVENT_TIME] = "event_time",
        [F_EVENT_SOURCE] = "event_source",
        [F_EVENT_NAME] = "event_name",
        [F_AWS_REGION] = "aws_region",
        [F_RECIPIENT_ACCOUNT_ID] = "recipient_account_id",
        [F_EVENT_TYPE] = "event_type",
        [F_EVENT_CATEGORY] = "event_category",
        [F_ERROR_CODE] = "error_code",
        [F_READ_ONLY] = "read_only",
        [F_EVENT_ID] = "event_id",
        [F_USER_IDENTITY] = "user_identity",
        [F_USER_AGENT] = "user_agent",
        [F_MANAGEMENT_EVENT] = "management_event",
        [F_MAX_SEEN] = "max_seen",
        [F_CLOSED_UNTIL] = "closed_until",
        [F_PENDING] = "pending",
    };
    null_text = PyUnicode_InternFromString("null");
    newest_name = PyUnicode_InternFromString("newest");
    if (null_text == NULL || newest_name == NULL) {
        return NULL;
    }
    for (int f = 0; f < F_COUNT; f++) {
        names[f] = PyUnicode_InternFromString(spelled[f]);
        if (names[f] == NULL) {
            return NULL;
        }
    }
    PyObject *module = PyModule_Create(&native_module);
    /* the calling convention of these functions, and the baselines' shape it was compiled
     * for: insights/native.py loads only its own */
    static const long long scales[N_SCALES] = NATIVE_SCALES;
    PyObject *shape = Py_BuildValue("((LLL)i)", scales[0], scales[1], scales[2], N_SLOTS);
    if (module != NULL && (PyModule_AddIntConstant(module, "ABI", NATIVE_ABI) < 0 ||
                           PyModule_AddIntConstant(module, "RETIRE_EVERY", RETIRE_EVERY) < 0 ||
                           PyModule_AddObjectRef(module, "SHAPE", shape) < 0)) {
        Py_CLEAR(module);
    }
    Py_XDECREF(shape);
    return module;
}
