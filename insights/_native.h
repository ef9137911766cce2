/* Shared by the translation units of insights._native. */
#ifndef CTINSIGHTS_NATIVE_H
#define CTINSIGHTS_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* The TypeError of a call that does not match ``usage``; returns NULL. */
PyObject *native_usage_error(const char *usage);

/* _sketch.c: AttributionTable.merge_minute and merge_buffers. */
PyObject *native_merge_minute(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_merge_buffers(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _closing.c: BaselineTable.score_minutes and learn_minutes. */
PyObject *native_score_minutes(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *native_learn_minutes(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

#endif
