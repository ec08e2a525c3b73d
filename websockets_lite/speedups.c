/* The optional C routine of websockets_lite: XOR masking (RFC 6455 5.3).
 *
 * Built at install when a C compiler is present (setup.py); everything
 * works without it, through the pure-Python masker in protocol/frames.py.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, key, /)\n--\n\n"
"Return ``data`` XORed with the 4-byte ``key`` repeated, as bytes.\n"
"``data`` is any contiguous buffer (bytes, bytearray, memoryview).");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *result = NULL;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "apply_mask() takes exactly 2 arguments");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (key.len != 4) {
        PyErr_SetString(PyExc_ValueError, "the mask key must be 4 bytes");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, data.len);
    if (result == NULL) {
        goto done;
    }

    const unsigned char *in = (const unsigned char *)data.buf;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *k = (const unsigned char *)key.buf;
    Py_ssize_t size = data.len;
    Py_ssize_t i = 0;

    /* The key repeated to 8 (and 16) bytes: every block starts at a
       multiple of 4 from the start, so the key's phase stays the same. */
    unsigned char repeated[16];
    for (int j = 0; j < 16; j++) {
        repeated[j] = k[j & 3];
    }

    /* Only long payloads are worth handing the GIL over. */
    PyThreadState *released = size >= 65536 ? PyEval_SaveThread() : NULL;
#if defined(__SSE2__)
    __m128i wide = _mm_loadu_si128((const __m128i *)repeated);
    for (; i + 16 <= size; i += 16) {
        __m128i block = _mm_loadu_si128((const __m128i *)(in + i));
        _mm_storeu_si128((__m128i *)(out + i), _mm_xor_si128(block, wide));
    }
#endif
    uint64_t word;
    memcpy(&word, repeated, 8);
    for (; i + 8 <= size; i += 8) {
        uint64_t block;
        memcpy(&block, in + i, 8);
        block ^= word;
        memcpy(out + i, &block, 8);
    }
    for (; i < size; i++) {
        out[i] = in[i] ^ k[i & 3];
    }
    if (released != NULL) {
        PyEval_RestoreThread(released);
    }

done:
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "websockets_lite.speedups",
    "The optional C routines of websockets_lite: apply_mask().",
    -1,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit_speedups(void)
{
    return PyModule_Create(&speedups_module);
}
