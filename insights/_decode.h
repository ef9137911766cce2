/* Shared by _decode.c (the JSON reader) and _readahead.c (its reader thread). */
#ifndef CTINSIGHTS_DECODE_H
#define CTINSIGHTS_DECODE_H

#include "_native.h"

#define MAX_FIELDS 16
#define MAX_NESTED 8
#define NO_SLOT 0xFFFF
#define MAX_PLACES 8

/* 16 bytes: the reader thread writes ~20 per record and the owner reads them back. */
typedef struct {
    const unsigned char *s;
    uint32_t n;
    uint16_t tag;
    uint16_t slot; /* of the string cache, computed by the reader; NO_SLOT if not cached */
} Span;

/* Where one record's kept values are: its own fields and those of its nested struct. The
 * reader also says whether it is clock-only, so that the owner need not read its text. */
typedef struct {
    const unsigned char *text; /* the record's JSON object */
    Py_ssize_t len;
    long long clock_seconds; /* its time when clock-only (see _clock.c), else -1 */
    int place;     /* clock-only: which of the message's first MAX_PLACES account-Regions it
                      has, or -1 (then the owner reads it) */
    int place_new; /* the first record of the message with that one */
    Span top[MAX_FIELDS];
    Span nested[MAX_NESTED];
} RecordSpans;

/* A growable array of RecordSpans (PyMem_Raw*: usable without the GIL); ``owned`` once it
 * left the caller's first array. */
typedef struct {
    RecordSpans *items;
    Py_ssize_t count, capacity;
    int owned;
} SpanBuffer;

/* What one message holds, as far as this reader goes. */
enum { MSG_REFUSED = 0, MSG_RECORD = NATIVE_RECORD, MSG_BATCH = NATIVE_BATCH };

typedef struct {
    int kind;
    Py_ssize_t first, count; /* its records in the SpanBuffer */
} MessageSpans;

/* Index one message (no GIL needed): a batch when ``batch``, else a single record. */
void decode_index_message(const unsigned char *data, Py_ssize_t size, int batch, SpanBuffer *buf,
                          MessageSpans *out);
/* The structs of one indexed message (GIL): a record, or a list of them for a batch; NULL with
 * no exception when msgspec must decode it. With a ClockOnly ``clock``, a clock-only record is
 * appended to it instead (``owner``: the message's bytes) and CLOCK_ONLY stands in its place. */
PyObject *decode_build_message(const SpanBuffer *buf, const MessageSpans *m, PyObject *clock,
                               PyObject *owner);
/* None for "not handled" (NULL with no exception), else ``result``. */
PyObject *decode_none_unless_error(PyObject *result);
/* Has decode_schema named the structs? */
int decode_schema_ready(void);
/* Wait until the reader thread has no job; returns holding the GIL with the reader idle. */
void readahead_wait_idle(void);

#endif
