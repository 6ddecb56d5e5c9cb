/* server._valuecodec: google.protobuf.Value wire bytes <-> plain JSON values.
 *
 * The pure-Python twins live in server/codec/values.py (value_within, build_value); this
 * module must return exactly what they do.  It reads the serialized message instead of
 * walking upb objects, because every attribute access on a upb message makes a Python
 * object and that was the largest cost of our own code on the ingest path.
 *
 * Wire format handled (google/protobuf/struct.proto):
 *   Value      1 null_value (varint)  2 number_value (fixed64 double)  3 string_value (bytes)
 *              4 bool_value (varint)  5 struct_value (Struct)           6 list_value (ListValue)
 *   Struct     1 repeated map entry {1 key string, 2 value Value}
 *   ListValue  1 repeated Value
 *
 * Protobuf semantics followed: the last member of the oneof on the wire wins; repeated
 * occurrences of the same message member merge (their payloads are parsed as if
 * concatenated); a field with an unexpected wire type is an unknown field; unknown
 * fields of every wire type (groups included) are skipped; map entries with a repeated
 * key keep the last value; strings must be valid UTF-8.  Every read is bounds-checked;
 * malformed input raises ValueError.  Struct/list nesting is limited to MAX_NESTING
 * whatever the caller's budget, so recursion is bounded.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_NESTING 100        /* struct/list (and group) levels when decoding */
#define ENCODE_MAX_DEPTH 200   /* dict/list levels when encoding */
#define EXACT_INT 9007199254740992.0 /* 2**53 */

static PyObject *TooDeep; /* the module's exception class; owned by the module */

/* ------------------------------------------------------------------------------------ */
/* Decoding                                                                               */

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Seg;

/* A small vector of byte ranges: the payloads of one field's repeated occurrences. */
typedef struct {
    Seg *v;
    Py_ssize_t n, cap;
    Seg small[4];
} SegVec;

static inline void
segvec_init(SegVec *s)
{
    s->v = s->small;
    s->n = 0;
    s->cap = (Py_ssize_t)(sizeof(s->small) / sizeof(s->small[0]));
}

static inline void
segvec_free(SegVec *s)
{
    if (s->v != s->small) {
        PyMem_Free(s->v);
    }
}

static int
segvec_push(SegVec *s, const uint8_t *p, const uint8_t *end)
{
    if (s->n == s->cap) {
        Py_ssize_t cap = s->cap * 2;
        Seg *nv;
        if (s->v == s->small) {
            nv = PyMem_Malloc((size_t)cap * sizeof(Seg));
            if (nv != NULL) {
                memcpy(nv, s->small, sizeof(s->small));
            }
        }
        else {
            nv = PyMem_Realloc(s->v, (size_t)cap * sizeof(Seg));
        }
        if (nv == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n].p = p;
    s->v[s->n].end = end;
    s->n++;
    return 0;
}

static const uint8_t *
malformed(const char *what)
{
    PyErr_Format(PyExc_ValueError, "malformed google.protobuf.Value: %s", what);
    return NULL;
}

/* A varint of at most 10 bytes (bits past 64 are dropped, as protobuf does). */
static inline const uint8_t *
read_varint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    if (p < end && !(*p & 0x80)) {
        *out = *p;
        return p + 1;
    }
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) {
            return malformed("truncated varint");
        }
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return p;
        }
    }
    return malformed("varint longer than 10 bytes");
}

/* A tag: a varint of at most 5 bytes and 32 bits, with a field number above zero. */
static inline const uint8_t *
read_tag(const uint8_t *p, const uint8_t *end, uint32_t *field, int *wire_type)
{
    uint64_t v;
    if (p < end && !(*p & 0x80)) {
        v = *p++;
    }
    else {
        v = 0;
        for (int i = 0;; i++) {
            if (i == 5) {
                return malformed("tag longer than 5 bytes");
            }
            if (p >= end) {
                return malformed("truncated tag");
            }
            uint8_t b = *p++;
            v |= (uint64_t)(b & 0x7f) << (7 * i);
            if (!(b & 0x80)) {
                break;
            }
        }
        if (v > UINT32_MAX) {
            return malformed("tag out of range");
        }
    }
    *field = (uint32_t)(v >> 3);
    *wire_type = (int)(v & 7);
    if (*field == 0) {
        return malformed("field number 0");
    }
    return p;
}

/* A length-delimited payload: returns its start, sets *data_end. */
static inline const uint8_t *
read_len(const uint8_t *p, const uint8_t *end, const uint8_t **data_end)
{
    uint64_t n;
    p = read_varint(p, end, &n);
    if (p == NULL) {
        return NULL;
    }
    if (n > (uint64_t)(end - p)) {
        return malformed("length past the end of the data");
    }
    *data_end = p + n;
    return p;
}

/* Skips the value of an unknown field whose tag was just read. */
static const uint8_t *
skip_field(const uint8_t *p, const uint8_t *end, uint32_t field, int wire_type, int depth)
{
    uint64_t ignored;
    const uint8_t *data_end;
    switch (wire_type) {
    case 0:
        return read_varint(p, end, &ignored);
    case 1:
        if (end - p < 8) {
            return malformed("truncated fixed64");
        }
        return p + 8;
    case 2:
        if (read_len(p, end, &data_end) == NULL) {
            return NULL;
        }
        return data_end;
    case 5:
        if (end - p < 4) {
            return malformed("truncated fixed32");
        }
        return p + 4;
    case 3:
        if (depth >= MAX_NESTING) {
            return malformed("groups nested too deep");
        }
        for (;;) {
            uint32_t f;
            int wt;
            if (p >= end) {
                return malformed("unterminated group");
            }
            p = read_tag(p, end, &f, &wt);
            if (p == NULL) {
                return NULL;
            }
            if (wt == 4) {
                if (f != field) {
                    return malformed("mismatched end of group");
                }
                return p;
            }
            p = skip_field(p, end, f, wt, depth + 1);
            if (p == NULL) {
                return NULL;
            }
        }
    case 4:
        return malformed("unexpected end of group");
    default:
        return malformed("invalid wire type");
    }
}

static PyObject *parse_value(const Seg *segs, Py_ssize_t nseg, long long budget, int depth,
                             PyObject *missing);

static PyObject *
decode_str(const uint8_t *p, const uint8_t *end)
{
    Py_ssize_t n = end - p;
    if (n > 1) { /* ASCII: skip the decoder's set-up */
        uint8_t any = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            any |= p[i];
        }
        if (!(any & 0x80)) {
            PyObject *s = PyUnicode_New(n, 127);
            if (s != NULL) {
                memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
            }
            return s;
        }
    }
    return PyUnicode_DecodeUTF8((const char *)p, n, NULL);
}

/* Struct keys and param names repeat (the same few names in every item of a list, in
 * every event), so short ASCII ones are kept in a small direct-mapped cache: a hit costs
 * no allocation, decoding or hashing (the cached str keeps its hash).  Only touched with
 * the GIL held. */
#define KEY_CACHE_SIZE 256
#define KEY_CACHE_MAX_LEN 32
static PyObject *key_cache[KEY_CACHE_SIZE];

static PyObject *
decode_key(const uint8_t *p, const uint8_t *end)
{
    Py_ssize_t n = end - p;
    if (n == 0 || n > KEY_CACHE_MAX_LEN) {
        return decode_str(p, end);
    }
    uint32_t h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    PyObject **slot = &key_cache[(h ^ (h >> 16)) & (KEY_CACHE_SIZE - 1)];
    PyObject *k = *slot;
    if (k != NULL && PyUnicode_GET_LENGTH(k) == n &&
        memcmp(PyUnicode_1BYTE_DATA(k), p, (size_t)n) == 0) {
        return Py_NewRef(k);
    }
    k = decode_str(p, end);
    if (k != NULL && PyUnicode_IS_COMPACT_ASCII(k)) {
        if (PyObject_Hash(k) == -1) {
            Py_DECREF(k);
            return NULL;
        }
        Py_XSETREF(*slot, Py_NewRef(k));
    }
    return k;
}

/* A message of {1 string, 2 google.protobuf.Value}: a Struct map entry or an EventParam.
 * Sets the last string field (earlier ones are still checked, as protobuf does), gathers
 * every Value payload (protobuf merges them) and says whether an unknown field was seen. */
static int
read_named_value(const uint8_t *p, const uint8_t *end, int depth, const uint8_t **name,
                 const uint8_t **name_end, SegVec *values, int *unknown)
{
    *name = NULL;
    *name_end = NULL;
    *unknown = 0;
    while (p < end) {
        uint32_t f;
        int wt;
        p = read_tag(p, end, &f, &wt);
        if (p == NULL) {
            return -1;
        }
        if (f == 1 && wt == 2) {
            if (*name != NULL) { /* superseded, but protobuf still checks it */
                PyObject *old = decode_str(*name, *name_end);
                if (old == NULL) {
                    return -1;
                }
                Py_DECREF(old);
            }
            *name = read_len(p, end, name_end);
            if (*name == NULL) {
                return -1;
            }
            p = *name_end;
        }
        else if (f == 2 && wt == 2) {
            const uint8_t *data_end, *data = read_len(p, end, &data_end);
            if (data == NULL || segvec_push(values, data, data_end) < 0) {
                return -1;
            }
            p = data_end;
        }
        else {
            *unknown = 1;
            p = skip_field(p, end, f, wt, depth);
            if (p == NULL) {
                return -1;
            }
        }
    }
    return 0;
}

/* One map entry of a Struct, stored into dict.  Like upb (the Python runtime), an entry
 * that holds an unknown field is checked but left out of the map. */
static int
parse_entry(const uint8_t *p, const uint8_t *end, PyObject *dict, long long budget, int depth,
            PyObject *missing)
{
    const uint8_t *key, *key_end;
    int unknown;
    SegVec values;
    segvec_init(&values);
    if (read_named_value(p, end, depth, &key, &key_end, &values, &unknown) < 0) {
        goto error;
    }
    PyObject *k = key != NULL ? decode_key(key, key_end) : PyUnicode_New(0, 0);
    if (k == NULL) {
        goto error;
    }
    PyObject *v = parse_value(values.v, values.n, unknown ? LLONG_MAX : budget, depth, missing);
    if (v == NULL) {
        Py_DECREF(k);
        goto error;
    }
    int rc = unknown ? 0 : PyDict_SetItem(dict, k, v);
    Py_DECREF(k);
    Py_DECREF(v);
    segvec_free(&values);
    return rc;
error:
    segvec_free(&values);
    return -1;
}

static int
enter_container(long long budget, int depth)
{
    if (budget <= 0) {
        PyErr_SetNone(TooDeep);
        return -1;
    }
    if (depth >= MAX_NESTING) {
        PyErr_Format(PyExc_ValueError,
                     "malformed google.protobuf.Value: nested deeper than %d levels",
                     MAX_NESTING);
        return -1;
    }
    return 0;
}

/* A Struct made of the (merged) payloads in segs. */
static PyObject *
build_struct(const Seg *segs, Py_ssize_t nseg, long long budget, int depth, PyObject *missing)
{
    if (enter_container(budget, depth) < 0) {
        return NULL;
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nseg; i++) {
        const uint8_t *p = segs[i].p, *end = segs[i].end;
        while (p < end) {
            uint32_t f;
            int wt;
            p = read_tag(p, end, &f, &wt);
            if (p == NULL) {
                goto error;
            }
            if (f == 1 && wt == 2) {
                const uint8_t *entry_end, *entry = read_len(p, end, &entry_end);
                if (entry == NULL ||
                    parse_entry(entry, entry_end, dict, budget - 1, depth + 1, missing) < 0) {
                    goto error;
                }
                p = entry_end;
            }
            else {
                p = skip_field(p, end, f, wt, depth + 1);
                if (p == NULL) {
                    goto error;
                }
            }
        }
    }
    return dict;
error:
    Py_DECREF(dict);
    return NULL;
}

/* A ListValue made of the (merged) payloads in segs. */
static PyObject *
build_list(const Seg *segs, Py_ssize_t nseg, long long budget, int depth, PyObject *missing)
{
    if (enter_container(budget, depth) < 0) {
        return NULL;
    }
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nseg; i++) {
        const uint8_t *p = segs[i].p, *end = segs[i].end;
        while (p < end) {
            uint32_t f;
            int wt;
            p = read_tag(p, end, &f, &wt);
            if (p == NULL) {
                goto error;
            }
            if (f == 1 && wt == 2) {
                Seg item;
                item.p = read_len(p, end, &item.end);
                if (item.p == NULL) {
                    goto error;
                }
                PyObject *v = parse_value(&item, 1, budget - 1, depth + 1, missing);
                if (v == NULL) {
                    goto error;
                }
                int rc = PyList_Append(list, v);
                Py_DECREF(v);
                if (rc < 0) {
                    goto error;
                }
                p = item.end;
            }
            else {
                p = skip_field(p, end, f, wt, depth + 1);
                if (p == NULL) {
                    goto error;
                }
            }
        }
    }
    return list;
error:
    Py_DECREF(list);
    return NULL;
}

static inline double
read_double(const uint8_t *p)
{
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) {
        bits = (bits << 8) | p[i];
    }
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Checks a struct/list member that a later oneof member replaced: protobuf parses it
 * (and fails on malformed content) even though nothing of it survives. */
static int
check_superseded(int kind, const SegVec *run, int depth, PyObject *missing)
{
    PyObject *obj = kind == 5 ? build_struct(run->v, run->n, LLONG_MAX, depth, missing)
                              : build_list(run->v, run->n, LLONG_MAX, depth, missing);
    if (obj == NULL) {
        return -1;
    }
    Py_DECREF(obj);
    return 0;
}

/* The Value made of the (merged) payloads in segs; no payload at all is an unset Value. */
static PyObject *
parse_value(const Seg *segs, Py_ssize_t nseg, long long budget, int depth, PyObject *missing)
{
    static const int8_t expected_wt[7] = {-1, 0, 1, 2, 0, 2, 2};
    int kind = 0;
    uint64_t ival = 0;
    double dval = 0.0;
    const uint8_t *str = NULL, *str_end = NULL;
    SegVec run; /* payloads of the current struct_value / list_value run */
    PyObject *result = NULL;
    segvec_init(&run);

    for (Py_ssize_t i = 0; i < nseg; i++) {
        const uint8_t *p = segs[i].p, *end = segs[i].end;
        while (p < end) {
            uint32_t f;
            int wt;
            p = read_tag(p, end, &f, &wt);
            if (p == NULL) {
                goto done;
            }
            if (f > 6 || wt != expected_wt[f]) {
                p = skip_field(p, end, f, wt, depth);
                if (p == NULL) {
                    goto done;
                }
                continue;
            }
            if (kind == 3) { /* a superseded string is still checked */
                PyObject *old = decode_str(str, str_end);
                if (old == NULL) {
                    goto done;
                }
                Py_DECREF(old);
            }
            else if ((kind == 5 || kind == 6) && (uint32_t)kind != f) {
                if (check_superseded(kind, &run, depth, missing) < 0) {
                    goto done;
                }
                run.n = 0;
            }
            switch (f) {
            case 1:
            case 4:
                p = read_varint(p, end, &ival);
                break;
            case 2:
                if (end - p < 8) {
                    p = malformed("truncated number_value");
                    break;
                }
                dval = read_double(p);
                p += 8;
                break;
            case 3:
                str = read_len(p, end, &str_end);
                p = str == NULL ? NULL : str_end;
                break;
            default: { /* 5, 6: a message member; same member again merges */
                const uint8_t *data_end, *data = read_len(p, end, &data_end);
                if (data == NULL || segvec_push(&run, data, data_end) < 0) {
                    p = NULL;
                    break;
                }
                p = data_end;
            }
            }
            if (p == NULL) {
                goto done;
            }
            kind = (int)f;
        }
    }

    switch (kind) {
    case 0:
        result = Py_NewRef(missing);
        break;
    case 1:
        result = Py_NewRef(Py_None);
        break;
    case 2:
        if (isfinite(dval) && floor(dval) == dval && dval > -EXACT_INT && dval < EXACT_INT) {
            result = PyLong_FromLongLong((long long)dval);
        }
        else {
            result = PyFloat_FromDouble(dval);
        }
        break;
    case 3:
        result = decode_str(str, str_end);
        break;
    case 4:
        result = PyBool_FromLong(ival != 0);
        break;
    case 5:
        result = build_struct(run.v, run.n, budget, depth, missing);
        break;
    default:
        result = build_list(run.v, run.n, budget, depth, missing);
        break;
    }
done:
    segvec_free(&run);
    return result;
}

static long long
get_budget(PyObject *obj)
{
    int overflow;
    long long budget = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow > 0) {
        return LLONG_MAX;
    }
    if (overflow < 0) {
        return LLONG_MIN;
    }
    return budget;
}

static int
get_bytes(PyObject *obj, Py_buffer *view, const uint8_t **data, Py_ssize_t *size)
{
    view->obj = NULL;
    if (PyBytes_Check(obj)) {
        *data = (const uint8_t *)PyBytes_AS_STRING(obj);
        *size = PyBytes_GET_SIZE(obj);
        return 0;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    *data = view->buf;
    *size = view->len;
    return 0;
}

PyDoc_STRVAR(value_to_py_doc,
"value_to_py(data, budget, missing, /)\n--\n\n"
"The JSON value of the serialized google.protobuf.Value in data (bytes-like).\n\n"
"An unset Value is `missing`; a number that is integral and strictly within +-2**53 is an\n"
"int. Entering a struct or list with budget <= 0 raises TooDeep (each level spends one).\n"
"Malformed data (including invalid UTF-8) raises ValueError.");

static PyObject *
value_to_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "value_to_py() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    long long budget = get_budget(args[1]);
    if (budget == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    Seg seg;
    Py_ssize_t size;
    if (get_bytes(args[0], &view, &seg.p, &size) < 0) {
        return NULL;
    }
    seg.end = seg.p + size;
    PyObject *result = parse_value(&seg, 1, budget, 0, args[2]);
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return result;
}

/* One EventParam (1 name string, 2 value Value) as a (name, value) tuple. */
static PyObject *
parse_param(const uint8_t *p, const uint8_t *end, long long budget, PyObject *missing)
{
    const uint8_t *name, *name_end;
    int unknown; /* a param keeps its value whatever else it carries */
    PyObject *result = NULL;
    SegVec values;
    segvec_init(&values);
    if (read_named_value(p, end, 0, &name, &name_end, &values, &unknown) < 0) {
        goto done;
    }
    PyObject *n = name != NULL ? decode_key(name, name_end) : PyUnicode_New(0, 0);
    if (n == NULL) {
        goto done;
    }
    PyObject *v = parse_value(values.v, values.n, budget, 0, missing);
    if (v == NULL) {
        Py_DECREF(n);
        goto done;
    }
    result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(n);
        Py_DECREF(v);
        goto done;
    }
    PyTuple_SET_ITEM(result, 0, n);
    PyTuple_SET_ITEM(result, 1, v);
done:
    segvec_free(&values);
    return result;
}

PyDoc_STRVAR(request_params_to_py_doc,
"request_params_to_py(data, budget, missing, /)\n--\n\n"
"The params of a serialized eventflow.v1.GenerateEventRequest (field 3, repeated\n"
"EventParam{1 name, 2 value}) as a list of (name, value) tuples, each value converted as\n"
"value_to_py(value, budget, missing) does; a param without a value gets `missing`.\n"
"Other fields of the request are skipped: their wire structure is checked, not their\n"
"content.");

static PyObject *
request_params_to_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "request_params_to_py() takes 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    long long budget = get_budget(args[1]);
    if (budget == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    const uint8_t *p;
    Py_ssize_t size;
    if (get_bytes(args[0], &view, &p, &size) < 0) {
        return NULL;
    }
    const uint8_t *end = p + size;
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        goto error;
    }
    while (p < end) {
        uint32_t f;
        int wt;
        p = read_tag(p, end, &f, &wt);
        if (p == NULL) {
            goto error;
        }
        if (f == 3 && wt == 2) {
            const uint8_t *param_end, *param = read_len(p, end, &param_end);
            if (param == NULL) {
                goto error;
            }
            PyObject *item = parse_param(param, param_end, budget, args[2]);
            if (item == NULL) {
                goto error;
            }
            int rc = PyList_Append(list, item);
            Py_DECREF(item);
            if (rc < 0) {
                goto error;
            }
            p = param_end;
        }
        else {
            p = skip_field(p, end, f, wt, 0);
            if (p == NULL) {
                goto error;
            }
        }
    }
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return list;
error:
    Py_XDECREF(list);
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Encoding                                                                               */

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
    char small[1024];
} Writer;

static int
writer_grow(Writer *w, Py_ssize_t extra)
{
    if (extra > PY_SSIZE_T_MAX / 2 - w->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t cap = w->cap * 2;
    if (cap < w->len + extra) {
        cap = w->len + extra;
    }
    char *nb;
    if (w->buf == w->small) {
        nb = PyMem_Malloc((size_t)cap);
        if (nb != NULL) {
            memcpy(nb, w->small, (size_t)w->len);
        }
    }
    else {
        nb = PyMem_Realloc(w->buf, (size_t)cap);
    }
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    w->buf = nb;
    w->cap = cap;
    return 0;
}

static inline int
writer_reserve(Writer *w, Py_ssize_t extra)
{
    return w->cap - w->len >= extra ? 0 : writer_grow(w, extra);
}

static inline int
varint_size(uint64_t v)
{
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Caller has reserved 10 bytes. */
static inline void
put_varint(Writer *w, uint64_t v)
{
    while (v >= 0x80) {
        w->buf[w->len++] = (char)(v | 0x80);
        v >>= 7;
    }
    w->buf[w->len++] = (char)v;
}

/* Writes tag and a one-byte length placeholder; returns where the payload starts. */
static inline Py_ssize_t
begin_message(Writer *w, uint8_t tag)
{
    if (writer_reserve(w, 2) < 0) {
        return -1;
    }
    w->buf[w->len++] = (char)tag;
    w->buf[w->len++] = 0;
    return w->len;
}

/* Fills in the length of the payload that began at start, widening it if needed. */
static inline int
end_message(Writer *w, Py_ssize_t start)
{
    Py_ssize_t n = w->len - start;
    if (n < 0x80) {
        w->buf[start - 1] = (char)n;
        return 0;
    }
    int extra = varint_size((uint64_t)n) - 1;
    if (writer_reserve(w, extra) < 0) {
        return -1;
    }
    memmove(w->buf + start + extra, w->buf + start, (size_t)n);
    Py_ssize_t end = w->len + extra;
    w->len = start - 1;
    put_varint(w, (uint64_t)n);
    w->len = end;
    return 0;
}

static inline int
put_bytes_field(Writer *w, uint8_t tag, const char *data, Py_ssize_t n)
{
    if (writer_reserve(w, 11 + n) < 0) {
        return -1;
    }
    w->buf[w->len++] = (char)tag;
    put_varint(w, (uint64_t)n);
    memcpy(w->buf + w->len, data, (size_t)n);
    w->len += n;
    return 0;
}

static inline const char *
str_utf8(PyObject *s, Py_ssize_t *n)
{
    if (PyUnicode_IS_COMPACT_ASCII(s)) {
        *n = PyUnicode_GET_LENGTH(s);
        return (const char *)PyUnicode_1BYTE_DATA(s);
    }
    return PyUnicode_AsUTF8AndSize(s, n);
}

static int encode_value(Writer *w, PyObject *obj, int depth);

static int
encode_struct(Writer *w, PyObject *dict, int depth)
{
    Py_ssize_t start = begin_message(w, (5 << 3) | 2);
    if (start < 0) {
        return -1;
    }
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "object keys must be str, not %.200s",
                         Py_TYPE(key)->tp_name);
            return -1;
        }
        Py_ssize_t klen;
        const char *k = str_utf8(key, &klen);
        if (k == NULL) {
            return -1;
        }
        Py_ssize_t entry = begin_message(w, (1 << 3) | 2);
        if (entry < 0 || put_bytes_field(w, (1 << 3) | 2, k, klen) < 0) {
            return -1;
        }
        Py_ssize_t val = begin_message(w, (2 << 3) | 2);
        if (val < 0) {
            return -1;
        }
        Py_INCREF(value);
        int rc = encode_value(w, value, depth + 1);
        Py_DECREF(value);
        if (rc < 0 || end_message(w, val) < 0 || end_message(w, entry) < 0) {
            return -1;
        }
    }
    return end_message(w, start);
}

static int
encode_list(Writer *w, PyObject *list, int depth)
{
    Py_ssize_t start = begin_message(w, (6 << 3) | 2);
    if (start < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        Py_ssize_t val = begin_message(w, (1 << 3) | 2);
        if (val < 0) {
            return -1;
        }
        Py_INCREF(item);
        int rc = encode_value(w, item, depth + 1);
        Py_DECREF(item);
        if (rc < 0 || end_message(w, val) < 0) {
            return -1;
        }
    }
    return end_message(w, start);
}

static inline int
put_double(Writer *w, double d)
{
    if (writer_reserve(w, 9) < 0) {
        return -1;
    }
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    w->buf[w->len++] = (2 << 3) | 1;
    for (int i = 0; i < 8; i++) {
        w->buf[w->len++] = (char)(bits >> (8 * i));
    }
    return 0;
}

/* The fields of one Value (not its tag/length) for obj. */
static int
encode_value(Writer *w, PyObject *obj, int depth)
{
    if (PyUnicode_Check(obj)) {
        Py_ssize_t n;
        const char *s = str_utf8(obj, &n);
        if (s == NULL) {
            return -1;
        }
        return put_bytes_field(w, (3 << 3) | 2, s, n);
    }
    if (obj == Py_None || PyBool_Check(obj)) {
        if (writer_reserve(w, 2) < 0) {
            return -1;
        }
        w->buf[w->len++] = obj == Py_None ? (1 << 3) | 0 : (4 << 3) | 0;
        w->buf[w->len++] = obj == Py_True ? 1 : 0;
        return 0;
    }
    if (PyFloat_Check(obj)) {
        return put_double(w, PyFloat_AS_DOUBLE(obj));
    }
    if (PyLong_Check(obj)) {
        double d = PyLong_AsDouble(obj);
        if (d == -1.0 && PyErr_Occurred()) {
            return -1;
        }
        return put_double(w, d);
    }
    if (PyDict_Check(obj) || PyList_Check(obj)) {
        if (depth >= ENCODE_MAX_DEPTH) {
            PyErr_Format(PyExc_RecursionError,
                         "JSON value nested deeper than %d levels", ENCODE_MAX_DEPTH);
            return -1;
        }
        return PyDict_Check(obj) ? encode_struct(w, obj, depth) : encode_list(w, obj, depth);
    }
    PyObject *name = PyType_GetName(Py_TYPE(obj));
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError, "not a JSON value: %U", name);
        Py_DECREF(name);
    }
    return -1;
}

PyDoc_STRVAR(py_to_value_bytes_doc,
"py_to_value_bytes(obj, /)\n--\n\n"
"The serialized google.protobuf.Value of a JSON value (None, bool, int, float, str, dict\n"
"with str keys, list). Numbers become number_value (OverflowError for ints too large for\n"
"a float); anything else raises TypeError; nesting past 200 levels raises RecursionError.");

static PyObject *
py_to_value_bytes(PyObject *module, PyObject *obj)
{
    Writer w;
    w.buf = w.small;
    w.len = 0;
    w.cap = (Py_ssize_t)sizeof(w.small);
    PyObject *result = NULL;
    if (encode_value(&w, obj, 0) == 0) {
        result = PyBytes_FromStringAndSize(w.buf, w.len);
    }
    if (w.buf != w.small) {
        PyMem_Free(w.buf);
    }
    return result;
}

/* ------------------------------------------------------------------------------------ */

static PyMethodDef methods[] = {
    {"value_to_py", (PyCFunction)(void (*)(void))value_to_py, METH_FASTCALL, value_to_py_doc},
    {"request_params_to_py", (PyCFunction)(void (*)(void))request_params_to_py, METH_FASTCALL,
     request_params_to_py_doc},
    {"py_to_value_bytes", py_to_value_bytes, METH_O, py_to_value_bytes_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "server._valuecodec",
    .m_doc = "google.protobuf.Value wire bytes <-> JSON values (see server/codec/values.py).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__valuecodec(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
    if (TooDeep == NULL) {
        TooDeep = PyErr_NewExceptionWithDoc(
            "server._valuecodec.TooDeep",
            "A struct or list was entered with the depth budget spent.", NULL, NULL);
        if (TooDeep == NULL) {
            Py_DECREF(m);
            return NULL;
        }
    }
    if (PyModule_AddObjectRef(m, "TooDeep", TooDeep) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
