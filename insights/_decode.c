/*
 * insights._native, part 6: a JSON reader for the common CloudTrail shapes.
 *
 * It builds the same msgspec Struct instances as insights/events.py's typed decoders, for a
 * single record object and for a ``{"Records": [...]}`` batch, and hands back everything else
 * (returns "not handled") for msgspec to decode: what it accepts it must decode exactly as
 * msgspec would, and it may refuse anything (tests compare the two on mutated input). It refuses
 * what msgspec rejects or treats specially, and some valid JSON it does not need to read fast:
 *
 *   - escapes in a key or in a string it keeps (escapes in skipped strings are read; a \u
 *     escape of a surrogate is refused, msgspec rejects a lone one);
 *   - a control character in a string, invalid UTF-8 anywhere, a malformed number or literal,
 *     trailing data, containers nested more than MAX_DEPTH deep;
 *   - a field of the struct given twice (msgspec keeps the last), or of another JSON type than
 *     the field's (msgspec raises ValidationError and events.py reads record by record);
 *   - a batch object with any key besides "Records", or a Records item that is not an object.
 *
 * Why: msgspec builds a new str for every kept field (15 per record) and scans unknown values
 * byte by byte. Here strings are scanned 16 bytes at a time (SSE2) and a kept string of the
 * low-cardinality fields (eventSource, eventName, awsRegion, account, userAgent, ARNs...) is
 * taken from a small cache of earlier ones, so a record costs about one allocation besides its
 * struct and its eventTime and eventID.
 *
 *   decode_schema(record_type, fields, nested_type, nested_fields) -> None
 *       fields: ((json_key, attribute, kind, cached), ...); kind 0 = str | None,
 *       1 = bool | None, 2 = the nested struct | None. Every attribute defaults to None.
 *   decode_batch(data: bytes) -> list | None
 *   decode_record(data: bytes) -> record | None
 *
 * The reading is done in two passes (see "reading" and "building" below) so that the first
 * can run on the reader thread of _readahead.c.
 */
#include "_decode.h"
#include <structmember.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#if defined(__GNUC__)
#define HOT inline __attribute__((always_inline))
#else
#define HOT inline
#endif

#define MAX_DEPTH 64
#define CACHE_SLOTS 4096 /* power of two */
#define CACHE_MAX_LEN 96

enum { KIND_STR = 0, KIND_BOOL = 1, KIND_NESTED = 2 };

/* Results of the readers below: ok, not handled (no exception set), Python error (set). */
enum { OK = 0, REFUSE = -1, FAIL = -2 };

typedef struct {
    const char *key; /* UTF-8 of the JSON key, owned by ``key_objects`` */
    Py_ssize_t key_len;
    uint64_t head; /* its first 8 bytes, zero-padded: most keys differ there */
    Py_ssize_t offset; /* of the object slot in the instance */
    int kind;
    int cached;
} Field;

typedef struct {
    PyTypeObject *type; /* strong reference; NULL until decode_schema */
    int count;
    Field fields[MAX_FIELDS];
    PyObject *key_objects; /* a tuple holding the key strings alive */
} Schema;

static Schema record_schema, nested_schema;
static PyObject *string_cache[CACHE_SLOTS];

typedef struct {
    const unsigned char *p, *end;
    int depth;
} Reader;

static inline void
skip_space(Reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) {
        r->p++;
    }
}

/* The first byte at or after ``p`` that ends a plain run of string bytes: a quote, a
 * backslash, a control character or a non-ASCII byte (``end`` if none). */
static inline const unsigned char *
string_stop(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* signed compare: bytes >= 0x80 are negative, so below 0x20 as well */
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                                _mm_cmpeq_epi8(v, backslash)),
                                   _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(hit);
        if (mask != 0) {
            return p + __builtin_ctz((unsigned)mask);
        }
        p += 16;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && *p >= 0x20 && *p < 0x80) {
        p++;
    }
    return p;
}

static inline int
hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Length of the valid UTF-8 sequence at ``p`` (a byte >= 0x80), 0 if it is not one. */
static int
utf8_length(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF; /* bounds of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    }
    else {
        return 0;
    }
    if (end - p < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (int i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/* Read a string at the opening quote. With ``plain`` set (a key or a kept string) any escape
 * is refused; otherwise escapes are checked. ``*start``/``*len`` give its bytes and ``*ascii``
 * whether all are ASCII. */
static HOT int
read_string(Reader *r, int plain, const unsigned char **start, Py_ssize_t *len, int *ascii)
{
    const unsigned char *p = r->p + 1, *end = r->end;
    *start = p;
    *ascii = 1;
    for (;;) {
        p = string_stop(p, end);
        if (p >= end) {
            return REFUSE;
        }
        unsigned char c = *p;
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            if (plain || end - p < 2) {
                return REFUSE;
            }
            unsigned char e = p[1];
            if (e == 'u') {
                if (end - p < 6) {
                    return REFUSE;
                }
                int code = 0;
                for (int i = 2; i < 6; i++) {
                    int h = hex_value(p[i]);
                    if (h < 0) {
                        return REFUSE;
                    }
                    code = code * 16 + h;
                }
                if (code >= 0xD800 && code <= 0xDFFF) { /* even a valid pair: rare */
                    return REFUSE;
                }
                p += 6;
            }
            else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                     e == 'r' || e == 't') {
                p += 2;
            }
            else {
                return REFUSE;
            }
            continue;
        }
        int n = utf8_length(p, end); /* 0 for a control character too */
        if (n == 0) {
            return REFUSE;
        }
        *ascii = 0;
        p += n;
    }
    *len = p - *start;
    r->p = p + 1;
    return OK;
}

static int
skip_number(Reader *r)
{
    const unsigned char *p = r->p, *end = r->end;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        return REFUSE;
    }
    if (*p == '0') {
        p++;
    }
    else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    else {
        return REFUSE;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            return REFUSE;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            return REFUSE;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    r->p = p;
    return OK;
}

static int
read_literal(Reader *r, const char *word, Py_ssize_t len)
{
    if (r->end - r->p < len || memcmp(r->p, word, (size_t)len) != 0) {
        return REFUSE;
    }
    r->p += len;
    return OK;
}

/* The container grammar shared by every reader below. */

/* Step into an object or array at its opening bracket: 1 if it is empty (and left again),
 * 0 if items follow, REFUSE if nested too deep. */
static HOT int
open_container(Reader *r, unsigned char close)
{
    if (++r->depth > MAX_DEPTH) {
        return REFUSE;
    }
    r->p++;
    skip_space(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        r->depth--;
        return 1;
    }
    return 0;
}

/* Read an object's ``"key":`` (escapes refused when ``plain``). */
static HOT int
read_key(Reader *r, int plain, const unsigned char **key, Py_ssize_t *n)
{
    int ascii;
    if (r->p >= r->end || *r->p != '"' || read_string(r, plain, key, n, &ascii) != OK) {
        return REFUSE;
    }
    skip_space(r);
    if (r->p >= r->end || *r->p != ':') {
        return REFUSE;
    }
    r->p++;
    skip_space(r);
    return OK;
}

/* After an item: 1 if another follows (after its comma), 0 if the container closed here,
 * REFUSE otherwise. */
static HOT int
next_item(Reader *r, unsigned char close)
{
    skip_space(r);
    if (r->p >= r->end) {
        return REFUSE;
    }
    if (*r->p == ',') {
        r->p++;
        skip_space(r);
        return 1;
    }
    if (*r->p != close) {
        return REFUSE;
    }
    r->p++;
    r->depth--;
    return 0;
}

static int skip_value(Reader *r);

/* Skip an object or array (at its opening bracket), checking its syntax. */
static int
skip_container(Reader *r)
{
    unsigned char close = *r->p == '{' ? '}' : ']';
    int more = open_container(r, close);
    if (more != 0) {
        return more > 0 ? OK : REFUSE;
    }
    do {
        const unsigned char *key;
        Py_ssize_t n;
        if ((close == '}' && read_key(r, 0, &key, &n) != OK) || skip_value(r) != OK) {
            return REFUSE;
        }
    } while ((more = next_item(r, close)) > 0);
    return more == 0 ? OK : REFUSE;
}

/* Skip any JSON value, checking its syntax. */
static int
skip_value(Reader *r)
{
    if (r->p >= r->end) {
        return REFUSE;
    }
    const unsigned char *s;
    Py_ssize_t n;
    int ascii;
    switch (*r->p) {
    case '"':
        return read_string(r, 0, &s, &n, &ascii);
    case '{':
    case '[':
        return skip_container(r);
    case 't':
        return read_literal(r, "true", 4);
    case 'f':
        return read_literal(r, "false", 5);
    case 'n':
        return read_literal(r, "null", 4);
    default:
        return skip_number(r);
    }
}

/* The string cache slot of ``n`` ASCII bytes: a multiplicative hash of 8-byte words (the
 * byte-wise FNV-1a loop was a fifth of the reader's time). Needs no GIL. */
static uint16_t
cache_slot(const unsigned char *s, Py_ssize_t n)
{
    uint64_t h = (uint64_t)n * 0x9E3779B97F4A7C15u;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9u;
        h ^= h >> 31;
    }
    if (i < n) { /* the last 1-7 bytes, by fixed-size loads (no memcpy call) */
        uint64_t w;
        if (n >= 8) {
            memcpy(&w, s + n - 8, 8); /* overlaps the words above */
        }
        else if (n >= 4) {
            uint32_t lo, hi;
            memcpy(&lo, s, 4);
            memcpy(&hi, s + n - 4, 4);
            w = ((uint64_t)hi << 32) | lo;
        }
        else {
            w = (uint64_t)s[0] | ((uint64_t)s[n / 2] << 8) | ((uint64_t)s[n - 1] << 16);
        }
        h = (h ^ w) * 0xBF58476D1CE4E5B9u;
        h ^= h >> 31;
    }
    h = (h ^ (h >> 29)) * 0x94D049BB133111EBu;
    return (uint16_t)((h >> 32) & (CACHE_SLOTS - 1));
}

/* A str of the given UTF-8 bytes, from cache ``slot`` when it holds the same (NO_SLOT: not
 * cached). NULL with an exception on error; a UnicodeDecodeError is turned into "not handled"
 * by the caller. */
static PyObject *
make_string(const unsigned char *s, Py_ssize_t n, int ascii, uint16_t slot)
{
    if (!ascii) {
        return PyUnicode_DecodeUTF8((const char *)s, n, "strict");
    }
    if (slot != NO_SLOT) {
        PyObject *hit = string_cache[slot];
        if (hit != NULL && PyUnicode_GET_LENGTH(hit) == n &&
            memcmp(PyUnicode_1BYTE_DATA(hit), s, (size_t)n) == 0) {
            return Py_NewRef(hit);
        }
    }
    PyObject *text = PyUnicode_New(n, 127);
    if (text == NULL) {
        return NULL;
    }
    memcpy(PyUnicode_1BYTE_DATA(text), s, (size_t)n);
    if (slot != NO_SLOT) {
        Py_XSETREF(string_cache[slot], Py_NewRef(text));
    }
    return text;
}

/* The first 8 bytes of a key, zero-padded. */
static inline uint64_t
key_head(const unsigned char *key, Py_ssize_t n)
{
    uint64_t head = 0;
    if (n >= 8) {
        memcpy(&head, key, 8);
        return head;
    }
    for (Py_ssize_t i = n - 1; i >= 0; i--) { /* little-endian, as the 8-byte load */
        head = (head << 8) | key[i];
    }
    return head;
}

/* The field of ``schema`` named by a key, or -1. */
static inline int
field_of(const Schema *schema, const unsigned char *key, Py_ssize_t n)
{
    uint64_t head = key_head(key, n);
    for (int i = 0; i < schema->count; i++) {
        const Field *f = &schema->fields[i];
        if (f->head == head && f->key_len == n &&
            (n <= 8 || memcmp(f->key + 8, key + 8, (size_t)(n - 8)) == 0)) {
            return i;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ reading (no GIL)
 * The first pass only checks the JSON and notes where each kept value is ("spans"); it touches
 * no Python object, so it can run without the GIL (_readahead.c). The second pass
 * builds the structs from the spans. */
enum { TAG_ABSENT = 0, TAG_NULL, TAG_ASCII, TAG_UTF8, TAG_TRUE, TAG_FALSE, TAG_NESTED };

static RecordSpans *
next_record(SpanBuffer *buf)
{
    if (buf->count == buf->capacity) {
        Py_ssize_t capacity = buf->capacity ? buf->capacity * 2 : 64;
        size_t size = (size_t)capacity * sizeof(RecordSpans);
        RecordSpans *items =
            buf->owned ? PyMem_RawRealloc(buf->items, size) : PyMem_RawMalloc(size);
        if (items == NULL) {
            return NULL;
        }
        if (!buf->owned && buf->count > 0) {
            memcpy(items, buf->items, (size_t)buf->count * sizeof(RecordSpans));
        }
        buf->items = items;
        buf->capacity = capacity;
        buf->owned = 1;
    }
    return &buf->items[buf->count++];
}

/* Read an object (at its opening brace) as ``schema``'s fields into ``spans``; a nested
 * struct's fields go to ``nested`` (NULL: none allowed). */
static int
index_struct(Reader *r, const Schema *schema, Span *spans, Span *nested)
{
    for (int i = 0; i < schema->count; i++) {
        spans[i].tag = TAG_ABSENT;
    }
    int more = open_container(r, '}');
    if (more != 0) {
        return more > 0 ? OK : REFUSE;
    }
    do {
        const unsigned char *key;
        Py_ssize_t n;
        int ascii;
        if (read_key(r, 1, &key, &n) != OK) {
            return REFUSE;
        }
        int i = field_of(schema, key, n);
        if (i < 0) {
            if (skip_value(r) != OK) {
                return REFUSE;
            }
        }
        else {
            Span *span = &spans[i];
            const Field *f = &schema->fields[i];
            if (span->tag != TAG_ABSENT || r->p >= r->end) {
                return REFUSE; /* given twice: msgspec keeps the last */
            }
            unsigned char c = *r->p;
            if (c == 'n') {
                if (read_literal(r, "null", 4) != OK) {
                    return REFUSE;
                }
                span->tag = TAG_NULL;
            }
            else if (f->kind == KIND_STR) {
                Py_ssize_t len;
                if (c != '"' || read_string(r, 1, &span->s, &len, &ascii) != OK ||
                    len > (Py_ssize_t)UINT32_MAX) {
                    return REFUSE;
                }
                span->n = (uint32_t)len;
                span->tag = ascii ? TAG_ASCII : TAG_UTF8;
                span->slot = ascii && f->cached && len <= CACHE_MAX_LEN ? cache_slot(span->s, len)
                                                                       : NO_SLOT;
            }
            else if (f->kind == KIND_BOOL) {
                if (c == 't' && read_literal(r, "true", 4) == OK) {
                    span->tag = TAG_TRUE;
                }
                else if (c == 'f' && read_literal(r, "false", 5) == OK) {
                    span->tag = TAG_FALSE;
                }
                else {
                    return REFUSE;
                }
            }
            else {
                if (c != '{' || nested == NULL ||
                    index_struct(r, &nested_schema, nested, NULL) != OK) {
                    return REFUSE;
                }
                span->tag = TAG_NESTED;
            }
        }
    } while ((more = next_item(r, '}')) > 0);
    return more == 0 ? OK : REFUSE;
}

static int
index_record(Reader *r, SpanBuffer *buf)
{
    RecordSpans *rec = next_record(buf);
    if (rec == NULL) {
        return REFUSE; /* out of memory: msgspec decides (and says so) */
    }
    rec->text = r->p;
    if (r->p >= r->end || *r->p != '{' ||
        index_struct(r, &record_schema, rec->top, rec->nested) != OK) {
        return REFUSE;
    }
    rec->len = r->p - rec->text;
    return OK;
}

/* The records of a single-object message. */
static int
index_single(Reader *r, SpanBuffer *buf)
{
    if (index_record(r, buf) != OK) {
        return REFUSE;
    }
    skip_space(r);
    return r->p == r->end ? OK : REFUSE;
}

/* The records of exactly {"Records": [objects]}. */
static int
index_batch(Reader *r, SpanBuffer *buf)
{
    static const char head[] = "Records";
    const unsigned char *key;
    Py_ssize_t n;
    if (r->p >= r->end || *r->p != '{' || open_container(r, '}') != 0 ||
        read_key(r, 1, &key, &n) != OK || n != (Py_ssize_t)sizeof(head) - 1 ||
        memcmp(key, head, sizeof(head) - 1) != 0 || r->p >= r->end || *r->p != '[') {
        return REFUSE;
    }
    int more = open_container(r, ']');
    if (more < 0) {
        return REFUSE;
    }
    if (more == 0) {
        do {
            if (index_record(r, buf) != OK) {
                return REFUSE;
            }
        } while ((more = next_item(r, ']')) > 0);
        if (more < 0) {
            return REFUSE;
        }
    }
    /* the object closes after "Records": a comma would bring another key */
    if (next_item(r, '}') != 0) {
        return REFUSE;
    }
    skip_space(r);
    return r->p == r->end ? OK : REFUSE;
}

/* Index one message: a batch when it begins with the batch prefix (as events.py decides),
 * else a single record. Needs no GIL. */
static void mark_clock_only(SpanBuffer *buf, Py_ssize_t first);

void
decode_index_message(const unsigned char *data, Py_ssize_t size, int batch, SpanBuffer *buf,
              MessageSpans *out)
{
    Reader r = {data, data + size, 0};
    out->first = buf->count;
    skip_space(&r);
    int status = batch ? index_batch(&r, buf) : index_single(&r, buf);
    out->kind = status != OK ? MSG_REFUSED : batch ? MSG_BATCH : MSG_RECORD;
    if (status != OK) {
        buf->count = out->first;
    }
    out->count = buf->count - out->first;
    mark_clock_only(buf, out->first);
}

/* ------------------------------------------------------------------ building (GIL) */
static int build_struct(const Schema *schema, const Span *spans, const Span *nested,
                        PyObject **result);

static int
build_value(const Field *f, const Span *span, const Span *nested, PyObject **value)
{
    switch (span->tag) {
    case TAG_ASCII:
    case TAG_UTF8:
        *value = make_string(span->s, span->n, span->tag == TAG_ASCII, span->slot);
        if (*value == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear(); /* msgspec raises it: events.py reads the message again */
                return REFUSE;
            }
            return FAIL;
        }
        return OK;
    case TAG_TRUE:
        *value = Py_NewRef(Py_True);
        return OK;
    case TAG_FALSE:
        *value = Py_NewRef(Py_False);
        return OK;
    case TAG_NESTED:
        return build_struct(&nested_schema, nested, NULL, value);
    default: /* absent or null: every field defaults to None */
        *value = Py_NewRef(Py_None);
        return OK;
    }
}

static int
build_struct(const Schema *schema, const Span *spans, const Span *nested, PyObject **result)
{
    PyObject *values[MAX_FIELDS];
    for (int i = 0; i < schema->count; i++) {
        int status = build_value(&schema->fields[i], &spans[i], nested, &values[i]);
        if (status != OK) {
            for (int j = 0; j < i; j++) {
                Py_DECREF(values[j]);
            }
            return status;
        }
    }
    /* a non-GC object of object slots, as msgspec allocates a gc=False Struct */
    PyObject *obj = PyObject_Malloc((size_t)schema->type->tp_basicsize);
    if (obj == NULL) {
        for (int i = 0; i < schema->count; i++) {
            Py_DECREF(values[i]);
        }
        PyErr_NoMemory();
        return FAIL;
    }
    PyObject_Init(obj, schema->type);
    for (int i = 0; i < schema->count; i++) {
        *(PyObject **)((char *)obj + schema->fields[i].offset) = values[i];
    }
    *result = obj;
    return OK;
}

/* ------------------------------------------------------------------ clock-only records */
/* Record fields the clock-only test reads (their index in the record schema), -1 if absent. */
enum { C_TIME, C_SOURCE, C_NAME, C_REGION, C_ACCOUNT, C_READ_ONLY, C_ERROR, C_TYPE, C_CATEGORY,
       C_COUNT };
static int clock_field[C_COUNT];
static int clock_ready; /* every one of them is in the schema, of the expected kind */

static void
find_clock_fields(PyObject *fields)
{
    static const char *attrs[C_COUNT] = {
        "event_time", "event_source", "event_name", "aws_region",    "recipient_account_id",
        "read_only",  "error_code",   "event_type", "event_category"};
    static const int kinds[C_COUNT] = {KIND_STR,  KIND_STR, KIND_STR, KIND_STR, KIND_STR,
                                       KIND_BOOL, KIND_STR, KIND_STR, KIND_STR};
    clock_ready = 1;
    for (int c = 0; c < C_COUNT; c++) {
        clock_field[c] = -1;
        for (int i = 0; i < record_schema.count; i++) {
            PyObject *attr = PyTuple_GET_ITEM(PyTuple_GET_ITEM(fields, i), 1);
            if (PyUnicode_CompareWithASCIIString(attr, attrs[c]) == 0 &&
                record_schema.fields[i].kind == kinds[c]) {
                clock_field[c] = i;
            }
        }
        clock_ready = clock_ready && clock_field[c] >= 0;
    }
}

static inline int
span_is(const Span *span, const char *text, uint32_t n)
{
    return span->tag == TAG_ASCII && span->n == n && memcmp(span->s, text, n) == 0;
}

/* 1 when ``rec`` is a record the engine only reads the clock of: complete (as
 * record_is_complete in _native.c) and a read-only call without an error code; its time in
 * ``seconds``. (Its strings need no check: the reader validated their UTF-8.) */
static int
is_clock_only(const RecordSpans *rec, long long *seconds)
{
    const Span *top = rec->top;
    if (!clock_ready || top[clock_field[C_READ_ONLY]].tag != TAG_TRUE) {
        return 0;
    }
    int error = top[clock_field[C_ERROR]].tag;
    if (error != TAG_ABSENT && error != TAG_NULL) {
        return 0;
    }
    for (int c = C_SOURCE; c <= C_ACCOUNT; c++) {
        const Span *span = &top[clock_field[c]];
        if (span->tag != TAG_ASCII || span->n == 0) {
            return 0;
        }
    }
    const Span *time = &top[clock_field[C_TIME]];
    if (time->tag != TAG_ASCII ||
        (*seconds = native_strict_seconds(time->s, (Py_ssize_t)time->n)) < 0 ||
        span_is(&top[clock_field[C_TYPE]], "AwsCloudTrailInsight", 20) ||
        span_is(&top[clock_field[C_CATEGORY]], "Insight", 7)) {
        return 0;
    }
    return 1;
}

static int
same_span(const Span *a, const Span *b)
{
    return a->n == b->n && memcmp(a->s, b->s, a->n) == 0;
}

/* Whether each record of a message from ``first`` on is clock-only, and which account-Region
 * of the message it has (no GIL needed: the reader thread does it while the record is in its
 * cache, so that the owner does not read the record's text again). */
static void
mark_clock_only(SpanBuffer *buf, Py_ssize_t first)
{
    const RecordSpans *places[MAX_PLACES];
    int n_places = 0;
    const int account = clock_field[C_ACCOUNT], region = clock_field[C_REGION];
    for (Py_ssize_t i = first; i < buf->count; i++) {
        RecordSpans *rec = &buf->items[i];
        long long seconds;
        rec->clock_seconds = is_clock_only(rec, &seconds) ? seconds : -1;
        rec->place = -1;
        rec->place_new = 0;
        if (rec->clock_seconds < 0) {
            continue;
        }
        for (int k = 0; k < n_places && rec->place < 0; k++) {
            if (same_span(&rec->top[account], &places[k]->top[account]) &&
                same_span(&rec->top[region], &places[k]->top[region])) {
                rec->place = k;
            }
        }
        if (rec->place < 0 && n_places < MAX_PLACES) {
            places[n_places] = rec;
            rec->place = n_places++;
            rec->place_new = 1;
        }
    }
}

/* The account and Region strings of the message's account-Regions so far. */
typedef struct {
    PyObject *account, *region;
} Place;

static void
clear_places(Place *places)
{
    for (int k = 0; k < MAX_PLACES; k++) {
        Py_CLEAR(places[k].account);
        Py_CLEAR(places[k].region);
    }
}

/* Append ``rec`` to ``clock`` if it is clock-only: 1 appended, 0 not, -1 error. */
static int
append_clock_only(PyObject *clock, PyObject *owner, const RecordSpans *rec, Place *places)
{
    if (rec->clock_seconds < 0) {
        return 0;
    }
    Place fresh = {NULL, NULL}, *place = rec->place >= 0 ? &places[rec->place] : &fresh;
    if (rec->place_new || place->account == NULL) {
        const Span *a = &rec->top[clock_field[C_ACCOUNT]], *r = &rec->top[clock_field[C_REGION]];
        PyObject *account = make_string(a->s, a->n, 1, a->slot);
        PyObject *region = account == NULL ? NULL : make_string(r->s, r->n, 1, r->slot);
        if (region == NULL) {
            Py_XDECREF(account);
            return -1;
        }
        Py_XSETREF(place->account, account);
        Py_XSETREF(place->region, region);
    }
    ClockEntry *entry = native_clock_push(clock);
    if (entry != NULL) {
        *entry = (ClockEntry){Py_NewRef(owner), rec->text, rec->len, rec->clock_seconds,
                              Py_NewRef(place->account), Py_NewRef(place->region)};
    }
    Py_XDECREF(fresh.account);
    Py_XDECREF(fresh.region);
    return entry == NULL ? -1 : 1;
}

/* One record of a message: its struct, or CLOCK_ONLY once appended to ``clock``. */
static int
build_record(const RecordSpans *rec, PyObject *clock, PyObject *owner, Place *places,
             PyObject **record)
{
    if (clock != NULL) {
        int appended = append_clock_only(clock, owner, rec, places);
        if (appended != 0) {
            *record = appended > 0 ? Py_NewRef(native_clock_marker) : NULL;
            return appended > 0 ? OK : FAIL;
        }
    }
    return build_struct(&record_schema, rec->top, rec->nested, record);
}

/* The structs of one indexed message: a record, or a list of them for a batch. NULL with no
 * exception when a string is not valid UTF-8 (msgspec must decode the message; nothing of it
 * stays in ``clock``). */
PyObject *
decode_build_message(const SpanBuffer *buf, const MessageSpans *m, PyObject *clock,
                     PyObject *owner)
{
    PyObject *record = NULL;
    Place places[MAX_PLACES] = {{NULL, NULL}};
    if (m->kind == MSG_RECORD) {
        int status = build_record(&buf->items[m->first], clock, owner, places, &record);
        clear_places(places);
        return status == OK ? record : NULL;
    }
    Py_ssize_t appended = clock != NULL ? native_clock_count(clock) : 0;
    PyObject *records = PyList_New(m->count);
    for (Py_ssize_t i = 0; records != NULL && i < m->count; i++) {
        if (build_record(&buf->items[m->first + i], clock, owner, places, &record) != OK) {
            Py_CLEAR(records);
            if (clock != NULL) { /* the message is read again (or fails) as a whole */
                native_clock_truncate(clock, appended);
            }
            break;
        }
        PyList_SET_ITEM(records, i, record);
    }
    clear_places(places);
    return records;
}

/* Index and build ``len`` bytes now (``owner`` holds them). */
static PyObject *
decode_bytes(const unsigned char *text, Py_ssize_t len, int batch, PyObject *clock,
             PyObject *owner)
{
    if (record_schema.type == NULL) {
        return NULL;
    }
    RecordSpans one;
    SpanBuffer local = {&one, 0, 1, 0}; /* a single record needs no allocation */
    MessageSpans m;
    decode_index_message(text, len, batch, &local, &m);
    PyObject *result =
        m.kind == MSG_REFUSED ? NULL : decode_build_message(&local, &m, clock, owner);
    if (local.owned) {
        PyMem_RawFree(local.items);
    }
    return result;
}

static PyObject *
decode_now(PyObject *data, int batch, PyObject *clock)
{
    if (!PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes");
        return NULL;
    }
    return decode_bytes((const unsigned char *)PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data),
                        batch, clock, data);
}

/* The record ``data`` holds (or CLOCK_ONLY, see decode_build_message), NULL with no
 * exception when not handled here. */
PyObject *
native_decode_one(PyObject *data, PyObject *clock)
{
    return decode_now(data, 0, clock);
}

PyObject *
native_decode_text(const unsigned char *text, Py_ssize_t len)
{
    return decode_bytes(text, len, 0, NULL, NULL);
}

PyObject *
decode_none_unless_error(PyObject *result)
{
    if (result == NULL && !PyErr_Occurred()) {
        Py_RETURN_NONE;
    }
    return result;
}

PyObject *
native_decode_record(PyObject *module, PyObject *data)
{
    (void)module;
    return decode_none_unless_error(decode_now(data, 0, NULL));
}

PyObject *
native_decode_batch(PyObject *module, PyObject *data)
{
    (void)module;
    return decode_none_unless_error(decode_now(data, 1, NULL));
}

/* Fill ``schema`` from a type and its ((json_key, attribute, kind, cached), ...) tuple. */
static int
set_schema(Schema *schema, PyObject *type, PyObject *fields)
{
    if (!PyType_Check(type) || !PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) > MAX_FIELDS) {
        PyErr_SetString(PyExc_TypeError, "expected a type and a tuple of fields");
        return -1;
    }
    PyTypeObject *t = (PyTypeObject *)type;
    Py_ssize_t count = PyTuple_GET_SIZE(fields);
    /* instances are allocated here as a non-GC object of plain object slots: the layout of a
     * msgspec Struct with gc=False; every slot must be one of ``fields`` */
    if (PyType_IS_GC(t) || t->tp_itemsize != 0 || t->tp_dictoffset != 0 ||
        t->tp_weaklistoffset != 0 ||
        t->tp_basicsize != (Py_ssize_t)(sizeof(PyObject) + (size_t)count * sizeof(PyObject *))) {
        PyErr_SetString(PyExc_TypeError, "the type's layout is not a gc=False msgspec Struct");
        return -1;
    }
    Schema fresh = {0};
    fresh.count = (int)count;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyTuple_GET_ITEM(fields, i);
        PyObject *key, *attr;
        int kind, cached;
        if (!PyTuple_Check(item) || !PyArg_ParseTuple(item, "UUip", &key, &attr, &kind, &cached)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "expected (json_key, attribute, kind, cached)");
            }
            return -1;
        }
        PyObject *descr = _PyType_Lookup(t, attr); /* borrowed */
        if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type) || kind < KIND_STR ||
            kind > KIND_NESTED) {
            PyErr_Format(PyExc_TypeError, "%R is not an object slot of a known kind", attr);
            return -1;
        }
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type != T_OBJECT_EX || (member->flags & READONLY)) {
            PyErr_Format(PyExc_TypeError, "%R is not a writable object slot", attr);
            return -1;
        }
        Py_ssize_t key_len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(key, &key_len);
        if (utf8 == NULL) {
            return -1;
        }
        uint64_t head = key_head((const unsigned char *)utf8, key_len);
        fresh.fields[i] = (Field){utf8, key_len, head, member->offset, kind, cached};
    }
    for (Py_ssize_t i = 0; i < count; i++) { /* each slot exactly once */
        for (Py_ssize_t j = 0; j < i; j++) {
            if (fresh.fields[i].offset == fresh.fields[j].offset) {
                PyErr_SetString(PyExc_TypeError, "two fields share a slot");
                return -1;
            }
        }
    }
    Py_XSETREF(schema->type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(schema->key_objects, Py_NewRef(fields));
    schema->count = fresh.count;
    memcpy(schema->fields, fresh.fields, sizeof(fresh.fields));
    return 0;
}

PyObject *
native_decode_schema(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs == 4 && PyTuple_Check(args[3]) && PyTuple_GET_SIZE(args[3]) > MAX_NESTED) {
        PyErr_SetString(PyExc_TypeError, "too many nested fields");
        return NULL;
    }
    if (nargs != 4) {
        return native_usage_error(
            "decode_schema(record_type, fields: tuple, nested_type, nested_fields: tuple)");
    }
    readahead_wait_idle(); /* the reader thread reads the schema */
    Py_CLEAR(record_schema.type); /* unusable until both are set */
    if (set_schema(&nested_schema, args[2], args[3]) < 0 ||
        set_schema(&record_schema, args[0], args[1]) < 0) {
        Py_CLEAR(record_schema.type);
        Py_CLEAR(nested_schema.type);
        return NULL;
    }
    find_clock_fields(args[1]);
    Py_RETURN_NONE;
}

int
decode_schema_ready(void)
{
    return record_schema.type != NULL;
}
