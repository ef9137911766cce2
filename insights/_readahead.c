/*
 * insights._native, part 7: reading ahead.
 *
 *   prepare(messages: list, max_bytes) -> Prepared
 *   Prepared.batch(index, message[, clock]) -> list | None   (decode_fast takes single records)
 *
 * prepare(messages, max_bytes) queues a list of messages for the reader thread of this module
 * (a C thread: it never takes the GIL), which indexes them while the caller goes on, e.g.
 * feeding the previous chunk to the engine; decode_many(..., prepared=...) then only builds
 * the structs. A job the reader has not started when its owner needs it is read by the owner
 * itself (without the GIL), so the two share the work whichever is ahead. The results are the
 * same as reading now: same index, same build.
 */
#include "_decode.h"
#include <string.h>

enum { JOB_QUEUED = 0, JOB_RUNNING, JOB_DONE };

typedef struct Prepared {
    PyObject_HEAD
    PyObject *items;            /* a tuple of the messages: holds the bytes alive */
    Py_ssize_t count;
    signed char *batch;         /* per message: 1 batch, 0 single record, -1 not read here */
    MessageSpans *spans;        /* per message */
    SpanBuffer buf;
    int state;                  /* under ``lock`` until JOB_DONE has been seen */
    int done_seen;              /* the owner saw JOB_DONE: no more locking */
    struct Prepared *next;      /* in the queue */
} Prepared;

static void
run_job(Prepared *job)
{
    for (Py_ssize_t i = 0; i < job->count; i++) {
        MessageSpans *m = &job->spans[i];
        if (job->batch[i] < 0) {
            m->kind = MSG_REFUSED;
            m->first = m->count = 0;
            continue;
        }
        PyObject *item = PyTuple_GET_ITEM(job->items, i); /* no refcount change: GIL-free */
        decode_index_message((const unsigned char *)PyBytes_AS_STRING(item), PyBytes_GET_SIZE(item),
                      job->batch[i], &job->buf, m);
    }
}

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work_ready = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_done = PTHREAD_COND_INITIALIZER;
static Prepared *queue_head, *queue_tail;
static int reader_running; /* a reader thread exists in this process */
static int reader_busy;    /* jobs being read (taken off the queue), by the reader or helpers */

/* The first queued job, taken off the queue and marked running (``lock`` held); NULL if none. */
static Prepared *
take_queued(void)
{
    Prepared *job = queue_head;
    if (job == NULL) {
        return NULL;
    }
    queue_head = job->next;
    if (queue_head == NULL) {
        queue_tail = NULL;
    }
    job->next = NULL;
    job->state = JOB_RUNNING;
    reader_busy++;
    return job;
}

/* Read ``job`` (taken by take_queued) with ``lock`` released, then mark it done. */
static void
read_taken(Prepared *job)
{
    pthread_mutex_unlock(&lock);
    run_job(job);
    pthread_mutex_lock(&lock);
    job->state = JOB_DONE;
    reader_busy--;
    pthread_cond_broadcast(&work_done);
}

static void *
reader_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        while (queue_head == NULL) {
            pthread_cond_wait(&work_ready, &lock);
        }
        read_taken(take_queued());
    }
    return NULL;
}

/* In a forked child the reader thread is gone: start afresh. */
static void
after_fork_in_child(void)
{
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&work_ready, NULL);
    pthread_cond_init(&work_done, NULL);
    queue_head = queue_tail = NULL;
    reader_running = 0;
    reader_busy = 0;
}

/* Queue ``job`` for the reader thread; 0 when there is none to run it (caller reads now). */
static int
submit(Prepared *job)
{
    static int fork_handler;
    if (!reader_running) {
        pthread_t thread;
        pthread_attr_t attr;
        if (!fork_handler) {
            if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0) {
                return 0;
            }
            fork_handler = 1;
        }
        if (pthread_attr_init(&attr) != 0) {
            return 0;
        }
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, reader_main, NULL);
        pthread_attr_destroy(&attr);
        if (failed) {
            return 0;
        }
        reader_running = 1;
    }
    pthread_mutex_lock(&lock);
    job->state = JOB_QUEUED;
    job->next = NULL;
    if (queue_tail != NULL) {
        queue_tail->next = job;
    }
    else {
        queue_head = job;
    }
    queue_tail = job;
    pthread_cond_signal(&work_ready);
    pthread_mutex_unlock(&lock);
    return 1;
}

/* Wait for ``job`` (without the GIL when ``release``, and then reading the jobs queued behind
 * it meanwhile, so that both threads keep reading). */
static void
wait_for(Prepared *job, int release)
{
    if (job->done_seen) {
        return;
    }
    PyThreadState *saved = release ? PyEval_SaveThread() : NULL;
    pthread_mutex_lock(&lock);
    while (job->state != JOB_DONE) {
        Prepared *other = release ? take_queued() : NULL;
        if (other != NULL) {
            read_taken(other);
        }
        else {
            pthread_cond_wait(&work_done, &lock);
        }
    }
    pthread_mutex_unlock(&lock);
    if (saved != NULL) {
        PyEval_RestoreThread(saved);
    }
    job->done_seen = 1;
}

/* Take a job that is still queued off the queue; 1 if it was. */
static int
withdraw(Prepared *job)
{
    int withdrawn = 0;
    pthread_mutex_lock(&lock);
    if (job->state == JOB_QUEUED && reader_running) {
        Prepared **link = &queue_head, *prev = NULL;
        while (*link != NULL && *link != job) {
            prev = *link;
            link = &(*link)->next;
        }
        if (*link == job) {
            *link = job->next;
            if (queue_tail == job) {
                queue_tail = prev;
            }
            withdrawn = 1;
        }
    }
    pthread_mutex_unlock(&lock);
    return withdrawn;
}

/* Wait until the reader thread has no job (before the schema changes under it). Returns
 * holding the GIL with the reader idle: no other thread can queue a job until it is released. */
void
readahead_wait_idle(void)
{
    while (reader_running) {
        pthread_mutex_lock(&lock);
        int idle = queue_head == NULL && !reader_busy;
        pthread_mutex_unlock(&lock);
        if (idle) {
            return;
        }
        PyThreadState *saved = PyEval_SaveThread();
        pthread_mutex_lock(&lock);
        while (queue_head != NULL || reader_busy) {
            pthread_cond_wait(&work_done, &lock);
        }
        pthread_mutex_unlock(&lock);
        PyEval_RestoreThread(saved); /* another thread may have queued a job meanwhile */
    }
}
#else
static int
submit(Prepared *job)
{
    (void)job;
    return 0;
}

static void
wait_for(Prepared *job, int release)
{
    (void)release;
    job->done_seen = 1;
}

static int
withdraw(Prepared *job)
{
    (void)job;
    return 0;
}

void
readahead_wait_idle(void)
{
}
#endif

/* Make ``job`` done: read it here (without the GIL) if the reader thread has not taken it
 * yet, so that whichever thread is free reads the next chunk; else wait for the reader. */
static void
settle(Prepared *job)
{
    if (job->done_seen) {
        return;
    }
    if (withdraw(job)) {
        PyThreadState *saved = PyEval_SaveThread();
        run_job(job);
        PyEval_RestoreThread(saved);
        job->state = JOB_DONE;
        job->done_seen = 1;
        return;
    }
    wait_for(job, 1);
}

static void
prepared_dealloc(Prepared *self)
{
    if (self->items != NULL && !self->done_seen && !withdraw(self)) {
        wait_for(self, 0); /* running: the reader thread reads our buffers until it is done */
    }
    Py_XDECREF(self->items);
    PyMem_Free(self->batch);
    PyMem_Free(self->spans);
    if (self->buf.owned) {
        PyMem_RawFree(self->buf.items);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
prepared_batch(Prepared *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *clock = nargs == 3 && args[2] != Py_None ? args[2] : NULL;
    if ((nargs != 2 && nargs != 3) || (clock != NULL && !native_is_clock(clock))) {
        return native_usage_error("Prepared.batch(index, message[, clock: ClockOnly | None])");
    }
    Py_ssize_t index = PyLong_AsSsize_t(args[0]);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *records = native_prepared_take((PyObject *)self, index, args[1], MSG_BATCH, clock);
    return decode_none_unless_error(records);
}

static PyMethodDef prepared_methods[] = {
    {"batch", (PyCFunction)(void (*)(void))prepared_batch, METH_FASTCALL,
     "The records of message ``index`` (a batch) if read ahead, else None; with a ClockOnly, "
     "clock-only records go to it (CLOCK_ONLY in their place)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PreparedType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "insights._native.Prepared",
    .tp_basicsize = sizeof(Prepared),
    .tp_dealloc = (destructor)prepared_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Messages being read ahead on the reader thread (see decode_many's prepared).",
    .tp_methods = prepared_methods,
};

int
native_is_prepared(PyObject *obj)
{
    return Py_IS_TYPE(obj, &PreparedType);
}

/* The structs of message ``index`` if ``message`` is the one prepared there and was read as
 * ``kind``; NULL with no exception when not. ``clock``: see decode_build_message. */
PyObject *
native_prepared_take(PyObject *prepared, Py_ssize_t index, PyObject *message, int kind,
                     PyObject *clock)
{
    if (!Py_IS_TYPE(prepared, &PreparedType)) {
        PyErr_SetString(PyExc_TypeError, "expected a Prepared");
        return NULL;
    }
    Prepared *self = (Prepared *)prepared;
    if (index < 0 || index >= self->count || PyTuple_GET_ITEM(self->items, index) != message ||
        !decode_schema_ready()) {
        return NULL;
    }
    settle(self);
    const MessageSpans *m = &self->spans[index];
    if (m->kind != kind) {
        return NULL;
    }
    return decode_build_message(&self->buf, m, clock, message);
}

/* prepare(messages: list, max_bytes) -> Prepared or None (no schema named yet). */
PyObject *
native_prepare(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyList_CheckExact(args[0])) {
        return native_usage_error("prepare(messages: list, max_bytes)");
    }
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[1]);
    if (max_bytes == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!decode_schema_ready()) {
        Py_RETURN_NONE;
    }
    Prepared *self = PyObject_New(Prepared, &PreparedType);
    if (self == NULL) {
        return NULL;
    }
    self->items = NULL;
    self->batch = NULL;
    self->spans = NULL;
    self->buf = (SpanBuffer){NULL, 0, 0, 0};
    self->state = JOB_DONE;
    self->done_seen = 1;
    self->next = NULL;
    self->items = PyList_AsTuple(args[0]); /* the caller may change its list meanwhile */
    if (self->items == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    self->count = PyTuple_GET_SIZE(self->items);
    self->batch = PyMem_Malloc((size_t)(self->count ? self->count : 1));
    self->spans = PyMem_Calloc((size_t)(self->count ? self->count : 1), sizeof(MessageSpans));
    if (self->batch == NULL || self->spans == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    static const char prefix[] = "{\"Records\"";
    const Py_ssize_t prefix_len = (Py_ssize_t)sizeof(prefix) - 1;
    for (Py_ssize_t i = 0; i < self->count; i++) {
        PyObject *item = PyTuple_GET_ITEM(self->items, i);
        if (!PyBytes_CheckExact(item) || PyBytes_GET_SIZE(item) > max_bytes) {
            self->batch[i] = -1; /* decode_many's general path says why */
            continue;
        }
        self->batch[i] = PyBytes_GET_SIZE(item) >= prefix_len &&
                         memcmp(PyBytes_AS_STRING(item), prefix, (size_t)prefix_len) == 0;
    }
    self->done_seen = 0;
    if (!submit(self)) { /* no reader thread here: read now */
        run_job(self);
        self->state = JOB_DONE;
        self->done_seen = 1;
    }
    return (PyObject *)self;
}

int
native_readahead_init(PyObject *module)
{
    if (PyType_Ready(&PreparedType) < 0) {
        return -1;
    }
    Py_INCREF(&PreparedType);
    if (PyModule_AddObject(module, "Prepared", (PyObject *)&PreparedType) < 0) {
        Py_DECREF(&PreparedType);
        return -1;
    }
    return 0;
}

