/* The ledger's native core: the per-entry hot loops of append and verify, in C.

Why it exists: a Python loop pays about a microsecond per SHA-256 call and several per
canonicality check, so the verifier ran at a tenth of what reading the rows and hashing them
costs (the benchmark's floor). This module does only what those loops need, and nothing it
cannot prove with a fallback behind it:

- `plain(value, depth)`: the type and range walk of `canonical._plain` (may the fast encoder
  write this value?). It answers True ("certainly in the accepted subset, no astral key") or
  False ("ask the exact path"), never "reject": every refusal is worded in Python.
- `envelope(seq, time, kind, actor, payload)`: the entry's canonical bytes when `plain`
  vouches for the payload (what orjson with sorted keys wrote before, byte for byte, a
  quarter of its cost), else None for the exact path.
- `event_fits(plan, payload)`: the quick check of a payload against its kind's typed event
  (reserve.events.base._Plan.fits, which stays the reference): True only when it certainly
  fits; False sends it to the Python check, which decides and words any refusal.
- `encode_batch(...)`: the append's per-item loop (entry.encode_bodies) over the items that
  `envelope` and `event_fits` vouch for; it stops at the first other one, which Python
  judges exactly as before.
- `hash_batch(prev, size, bodies, frontier, level_min)`: the hash chain, the RFC 9162 leaf
  hashes and every perfect-subtree hash (from `level_min` up) a batch of bodies completes.
- `verify_rows(...)`: the verifier's loop over stored rows: the sequence numbers, that each
  body is RFC 8785 canonical JSON of an entry envelope, the hash chain, and the Merkle
  frontier. It advances only over rows it can vouch for completely and stops at the first
  row it cannot, which the Python verifier then judges (and words the finding for).

Hashing is OpenSSL's SHA-256 (libcrypto, the library Python's own hashlib uses here); no
hash function is written by hand. The canonicality scanner is a grammar check on bytes, not
a parser: it builds no objects and says "canonical" only for a strict subset of what the
reference (json.loads, then the RFC 8785 encoder) accepts byte for byte; property tests in
tests/unit/test_native.py check it against that reference on generated and mutated input.
*/

#define PY_SSIZE_T_CLEAN
/* OpenSSL 3 marks its one-digest SHA256_* functions deprecated in favour of EVP. They run
   the same SHA-256 code (SHA-NI where the CPU has it) without EVP's per-call dispatch,
   which cost a quarter of the hashing time of a 300-byte entry here. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#define HASH_SIZE 32
#define DEPTH_MAX 32                 /* canonical.DEPTH_MAX */
#define INTEGER_DIGITS_MAX 15        /* 10**15 - 1 < 2**53 - 1: certainly in range */
#define LEVEL_SHIFT 40               /* store.LEVEL_SHIFT */
#define LEVELS_MAX 64

/* ------------------------------------------------------------------ hashing */

/* SHA-256 over up to three byte ranges into `out`, which may alias an input. */
static void sha256_parts(const void *a, size_t a_len, const void *b, size_t b_len,
                         const void *c, size_t c_len, unsigned char *out) {
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, a, a_len);
    if (b_len)
        SHA256_Update(&ctx, b, b_len);
    if (c_len)
        SHA256_Update(&ctx, c, c_len);
    SHA256_Final(out, &ctx);
}

static const unsigned char LEAF_PREFIX[1] = {0x00};
static const unsigned char NODE_PREFIX[1] = {0x01};

/* The Merkle frontier in C while a loop runs: the roots of the perfect subtrees of the tree
   so far, largest first (at most one per bit of the size). Loaded from and stored back to
   the caller's Python list of 32-byte hashes. */
typedef struct {
    unsigned char hash[LEVELS_MAX][HASH_SIZE];
    int count;
} frontier_t;

static int frontier_load(PyObject *list, frontier_t *frontier) {
    if (!PyList_CheckExact(list) || PyList_GET_SIZE(list) >= LEVELS_MAX)
        goto bad;
    frontier->count = (int)PyList_GET_SIZE(list);
    for (int i = 0; i < frontier->count; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyBytes_CheckExact(item) || PyBytes_GET_SIZE(item) != HASH_SIZE)
            goto bad;
        memcpy(frontier->hash[i], PyBytes_AS_STRING(item), HASH_SIZE);
    }
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError, "frontier must be a list of at most 63 32-byte hashes");
    return -1;
}

static int frontier_store(const frontier_t *frontier, PyObject *list) {
    PyObject *stored = PyList_New(frontier->count);
    if (stored == NULL)
        return -1;
    for (int i = 0; i < frontier->count; i++) {
        PyObject *item = PyBytes_FromStringAndSize((const char *)frontier->hash[i], HASH_SIZE);
        if (item == NULL) {
            Py_DECREF(stored);
            return -1;
        }
        PyList_SET_ITEM(stored, i, item);
    }
    int failed = PyList_SetSlice(list, 0, PyList_GET_SIZE(list), stored);
    Py_DECREF(stored);
    return failed;
}

/* Adds leaf `seq` (hash in `carry`) to the frontier, combining the perfect subtrees it
   completes; each completed node is reported to `on_node`. Requires the frontier to hold
   popcount(seq) hashes (the frontier of a tree of size seq). */
typedef int (*node_sink)(void *state, int level, long long seq, const unsigned char *hash);

static int frontier_push(frontier_t *frontier, long long seq,
                         unsigned char *carry, node_sink on_node, void *state) {
    int level = 0;
    while ((seq >> level) & 1) {
        if (frontier->count == 0) {
            PyErr_SetString(PyExc_ValueError, "frontier does not match the tree size");
            return -1;
        }
        frontier->count--;
        sha256_parts(NODE_PREFIX, 1, frontier->hash[frontier->count], HASH_SIZE,
                         carry, HASH_SIZE, carry);
        level++;
        if (on_node(state, level, seq, carry) < 0)
            return -1;
    }
    if (frontier->count >= LEVELS_MAX) {
        PyErr_SetString(PyExc_ValueError, "tree too large");
        return -1;
    }
    memcpy(frontier->hash[frontier->count++], carry, HASH_SIZE);
    return 0;
}

/* A new tuple of the given items, each reference stolen (NULL items: error, all released). */
static PyObject *tuple_of(int count, PyObject *a, PyObject *b, PyObject *c) {
    PyObject *items[3] = {a, b, c};
    PyObject *tuple = NULL;
    for (int i = 0; i < count; i++)
        if (items[i] == NULL)
            goto fail;
    tuple = PyTuple_New(count);
    if (tuple == NULL)
        goto fail;
    for (int i = 0; i < count; i++)
        PyTuple_SET_ITEM(tuple, i, items[i]);
    return tuple;
fail:
    for (int i = 0; i < count; i++)
        Py_XDECREF(items[i]);
    return NULL;
}

/* A row tuple of ints and bytes can be part of no reference cycle, so the garbage collector
   need not track it (CPython untracks such tuples itself, but only when a collection first
   looks at them); a batch of appended rows then adds nothing to the collector's work. */
static PyObject *untracked(PyObject *row) {
    if (row != NULL)
        PyObject_GC_UnTrack(row);
    return row;
}

static PyObject *hash_object(const unsigned char *hash) {
    return PyBytes_FromStringAndSize((const char *)hash, HASH_SIZE);
}

/* ------------------------------------------------------------- plain values */

/* canonical._plain: 1 when `value` (at nesting `depth`) is certainly accepted and holds no
   key outside the Basic Multilingual Plane; 0 for "ask the exact path"; -1 on error. */
static int plain_value(PyObject *value, int depth);

static int plain_scalar(PyObject *item) {
    if (PyUnicode_CheckExact(item) || PyBool_Check(item) || item == Py_None)
        return 1;
    if (PyLong_CheckExact(item)) {
        int overflow = 0;
        long long number = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (number == -1 && PyErr_Occurred())
            return -1;
        const long long limit = (1LL << 53) - 1;
        return !overflow && number >= -limit && number <= limit;
    }
    return 0;
}

static int plain_item(PyObject *item, int depth) {
    int scalar = plain_scalar(item);
    if (scalar != 0)
        return scalar;
    if (PyDict_CheckExact(item) || PyList_CheckExact(item) || PyTuple_CheckExact(item))
        return plain_value(item, depth + 1);
    return 0;
}

static int key_in_bmp(PyObject *key) {
    if (PyUnicode_READY(key) < 0)
        return -1;
    return PyUnicode_MAX_CHAR_VALUE(key) <= 0xFFFF;
}

static int plain_value(PyObject *value, int depth) {
    if (PyDict_CheckExact(value)) {
        if (depth >= DEPTH_MAX && PyDict_GET_SIZE(value) > 0)
            return 0;
        Py_ssize_t position = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &position, &key, &item)) {
            if (!PyUnicode_CheckExact(key))
                return 0;
            int ok = key_in_bmp(key);
            if (ok <= 0)
                return ok;
            ok = plain_item(item, depth);
            if (ok <= 0)
                return ok;
        }
        return 1;
    }
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        Py_ssize_t size = PySequence_Fast_GET_SIZE(value);
        if (depth >= DEPTH_MAX && size > 0)
            return 0;
        PyObject **items = PySequence_Fast_ITEMS(value);
        for (Py_ssize_t i = 0; i < size; i++) {
            int ok = plain_item(items[i], depth);
            if (ok <= 0)
                return ok;
        }
        return 1;
    }
    return plain_scalar(value);
}

static PyObject *native_plain(PyObject *self, PyObject *args) {
    PyObject *value;
    int depth;
    if (!PyArg_ParseTuple(args, "Oi:plain", &value, &depth))
        return NULL;
    if (depth < 0) {
        PyErr_SetString(PyExc_ValueError, "depth must be >= 0");
        return NULL;
    }
    int ok = plain_value(value, depth);
    if (ok < 0)
        return NULL;
    return PyBool_FromLong(ok);
}

/* --------------------------------------------------------------- envelope */

/* RFC 8785 text of a value `plain_value` vouched for, appended to a growing buffer. The
   subset makes the rules short: strings are their UTF-8 with `"`, `\` and the controls
   below 0x20 escaped as JSON.stringify does (\b \t \n \f \r, else \u00xx in lower-case
   hex); integers are within 2^53 - 1, so their decimal digits; object members sorted by
   key, and keys all in the Basic Multilingual Plane, where code point order (Python's
   str order) is RFC 8785's UTF-16 order. Returns 0, 1 for "not for this path" (a lone
   surrogate: no UTF-8), -1 on error. */
typedef struct {
    char *data;
    Py_ssize_t length, capacity;
} text_buffer;

static int text_reserve(text_buffer *buffer, Py_ssize_t more) {
    if (buffer->length + more <= buffer->capacity)
        return 0;
    Py_ssize_t capacity = buffer->capacity * 2;
    if (capacity < buffer->length + more)
        capacity = buffer->length + more + 256;
    char *data = PyMem_Realloc(buffer->data, (size_t)capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
}

static int text_add(text_buffer *buffer, const char *bytes, Py_ssize_t length) {
    if (text_reserve(buffer, length) < 0)
        return -1;
    memcpy(buffer->data + buffer->length, bytes, (size_t)length);
    buffer->length += length;
    return 0;
}

/* 1 for the bytes a JSON string must escape: `"`, `\` and the controls below 0x20 */
static unsigned char escaped_byte[256];

static int encode_string(text_buffer *buffer, PyObject *text) {
    Py_ssize_t length;
    const char *bytes = PyUnicode_AsUTF8AndSize(text, &length);
    if (bytes == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
            return -1;
        PyErr_Clear();  /* a lone surrogate: the exact path words the refusal */
        return 1;
    }
    /* at most 6 bytes out per byte in, plus the quotes */
    if (text_reserve(buffer, 6 * length + 2) < 0)
        return -1;
    char *out = buffer->data + buffer->length;
    *out++ = '"';
    static const char hex[] = "0123456789abcdef";
    Py_ssize_t i = 0;
    while (i < length) {
        Py_ssize_t run = i;
        while (run < length && !escaped_byte[(unsigned char)bytes[run]])
            run++;
        memcpy(out, bytes + i, (size_t)(run - i));
        out += run - i;
        if (run == length)
            break;
        unsigned char byte = (unsigned char)bytes[run];
        i = run + 1;
        *out++ = '\\';
        switch (byte) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\t': *out++ = 't'; break;
        case '\n': *out++ = 'n'; break;
        case '\f': *out++ = 'f'; break;
        case '\r': *out++ = 'r'; break;
        default:
            *out++ = 'u'; *out++ = '0'; *out++ = '0';
            *out++ = hex[byte >> 4]; *out++ = hex[byte & 15];
        }
    }
    *out++ = '"';
    buffer->length = out - buffer->data;
    return 0;
}

/* The decimal digits of `number` (|number| < 2^63) at the buffer's end. */
static int encode_integer(text_buffer *buffer, long long number) {
    char digits[24];
    int at = sizeof digits;
    unsigned long long magnitude = number < 0 ? 0ULL - (unsigned long long)number
                                              : (unsigned long long)number;
    do {
        digits[--at] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (number < 0)
        digits[--at] = '-';
    return text_add(buffer, digits + at, (Py_ssize_t)sizeof digits - at);
}

static int encode_value(text_buffer *buffer, PyObject *value);

#define MEMBERS_ON_STACK 16

static int encode_members(text_buffer *buffer, PyObject *object) {
    Py_ssize_t count = PyDict_GET_SIZE(object);
    if (count == 0)
        return text_add(buffer, "{}", 2);
    if (count > MEMBERS_ON_STACK) {
        /* a large object: sort a list of its keys */
        PyObject *keys = PyDict_Keys(object);
        if (keys == NULL)
            return -1;
        int status = PyList_Sort(keys);
        if (status == 0)
            status = text_add(buffer, "{", 1);
        for (Py_ssize_t i = 0; status == 0 && i < PyList_GET_SIZE(keys); i++) {
            PyObject *key = PyList_GET_ITEM(keys, i);
            if (i > 0)
                status = text_add(buffer, ",", 1);
            if (status == 0)
                status = encode_string(buffer, key);
            if (status == 0)
                status = text_add(buffer, ":", 1);
            if (status == 0) {
                PyObject *item = PyDict_GetItemWithError(object, key);  /* borrowed */
                status = item != NULL ? encode_value(buffer, item) : -1;
            }
        }
        if (status == 0)
            status = text_add(buffer, "}", 1);
        Py_DECREF(keys);
        return status;
    }
    /* Borrowed keys and values, insertion-sorted by key (code point order, as str's <).
       They stay alive: nothing below runs Python code that could change `object` (its
       keys and values are exact str, int, bool, None, list, tuple and dict: plain). */
    PyObject *keys[MEMBERS_ON_STACK], *values[MEMBERS_ON_STACK];
    Py_ssize_t position = 0, n = 0;
    PyObject *key, *value;
    while (PyDict_Next(object, &position, &key, &value)) {
        Py_ssize_t at = n++;
        while (at > 0) {
            int before = PyUnicode_Compare(key, keys[at - 1]);
            if (before == -1 && PyErr_Occurred())
                return -1;
            if (before >= 0)
                break;
            keys[at] = keys[at - 1];
            values[at] = values[at - 1];
            at--;
        }
        keys[at] = key;
        values[at] = value;
    }
    int status = text_add(buffer, "{", 1);
    for (Py_ssize_t i = 0; status == 0 && i < n; i++) {
        if (i > 0)
            status = text_add(buffer, ",", 1);
        if (status == 0)
            status = encode_string(buffer, keys[i]);
        if (status == 0)
            status = text_add(buffer, ":", 1);
        if (status == 0)
            status = encode_value(buffer, values[i]);
    }
    return status == 0 ? text_add(buffer, "}", 1) : status;
}

static int encode_value(text_buffer *buffer, PyObject *value) {
    if (PyUnicode_CheckExact(value))
        return encode_string(buffer, value);
    if (value == Py_True)
        return text_add(buffer, "true", 4);
    if (value == Py_False)
        return text_add(buffer, "false", 5);
    if (value == Py_None)
        return text_add(buffer, "null", 4);
    if (PyLong_CheckExact(value)) {
        long long number = PyLong_AsLongLong(value);
        if (number == -1 && PyErr_Occurred())
            return -1;
        return encode_integer(buffer, number);
    }
    if (PyDict_CheckExact(value))
        return encode_members(buffer, value);
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        Py_ssize_t size = PySequence_Fast_GET_SIZE(value);
        PyObject **items = PySequence_Fast_ITEMS(value);
        int status = text_add(buffer, "[", 1);
        for (Py_ssize_t i = 0; status == 0 && i < size; i++) {
            if (i > 0)
                status = text_add(buffer, ",", 1);
            if (status == 0)
                status = encode_value(buffer, items[i]);
        }
        return status == 0 ? text_add(buffer, "]", 1) : status;
    }
    return 1;  /* plain_value vouched for nothing else */
}

/* envelope(seq, time, kind, actor, payload): the canonical bytes of the entry, or None
   for "ask the exact path" (a payload outside the plain subset, a lone surrogate). */
static PyObject *envelope_of(long long seq, PyObject *time, PyObject *kind, PyObject *actor,
                             PyObject *payload) {
    if (seq < 0 || seq > (1LL << 53) - 1 || !PyDict_CheckExact(payload)
            || !PyUnicode_CheckExact(time) || !PyUnicode_CheckExact(kind)
            || !PyUnicode_CheckExact(actor))
        Py_RETURN_NONE;
    int ok = plain_value(payload, 1);
    if (ok <= 0) {
        if (ok < 0)
            return NULL;
        Py_RETURN_NONE;
    }
    text_buffer buffer = {NULL, 0, 0};
    int status = text_reserve(&buffer, 512);
    if (status == 0)
        status = text_add(&buffer, "{\"actor\":", 9);
    if (status == 0)
        status = encode_string(&buffer, actor);
    if (status == 0)
        status = text_add(&buffer, ",\"kind\":", 8);
    if (status == 0)
        status = encode_string(&buffer, kind);
    if (status == 0)
        status = text_add(&buffer, ",\"payload\":", 11);
    if (status == 0)
        status = encode_members(&buffer, payload);
    if (status == 0)
        status = text_add(&buffer, ",\"seq\":", 7);
    if (status == 0)
        status = encode_integer(&buffer, seq);
    if (status == 0)
        status = text_add(&buffer, ",\"time\":", 8);
    if (status == 0)
        status = encode_string(&buffer, time);
    if (status == 0)
        status = text_add(&buffer, "}", 1);
    PyObject *result = NULL;
    if (status == 0)
        result = PyBytes_FromStringAndSize(buffer.data, buffer.length);
    else if (status > 0)
        result = Py_NewRef(Py_None);
    PyMem_Free(buffer.data);
    return result;
}

static PyObject *native_envelope(PyObject *self, PyObject *args) {
    long long seq;
    PyObject *time, *kind, *actor, *payload;
    if (!PyArg_ParseTuple(args, "LUUUO:envelope", &seq, &time, &kind, &actor, &payload))
        return NULL;
    return envelope_of(seq, time, kind, actor, payload);
}

/* ------------------------------------------------------------ event_fits */

/* The codes of a field in an event plan (reserve.ledger.entry.native_plan builds them from
   reserve.events.base's quick plan): the codec in the low bits, then two flags. */
#define FIELD_JSON 0
#define FIELD_STR 1
#define FIELD_INT 2
#define FIELD_HEX 3
#define FIELD_BOOL 4
#define FIELD_WEI 5
#define FIELD_CODEC 7
#define FIELD_NULLABLE 8
#define FIELD_REQUIRED 16

static unsigned char hex_digit[256];

/* `(0x)?[0-9a-fA-F]*` (hex) or `-?[0-9]+` (decimal), matched whole, as re.fullmatch on an
   exact str: both patterns are ASCII, so any other character fails them. */
static int text_matches(PyObject *value, int hex) {
    if (!PyUnicode_CheckExact(value))
        return 0;
    if (PyUnicode_READY(value) < 0)
        return -1;
    if (!PyUnicode_IS_ASCII(value))
        return 0;
    const unsigned char *text = PyUnicode_1BYTE_DATA(value);
    Py_ssize_t length = PyUnicode_GET_LENGTH(value), at = 0;
    if (hex) {
        if (length >= 2 && text[0] == '0' && text[1] == 'x')
            at = 2;
        for (; at < length; at++)
            if (!hex_digit[text[at]])
                return 0;
        return 1;
    }
    if (length > 0 && text[0] == '-')
        at = 1;
    if (at == length)
        return 0;
    for (; at < length; at++)
        if (text[at] < '0' || text[at] > '9')
            return 0;
    return 1;
}

/* event_fits(plan, payload) -> bool: reserve.events.base._Plan.fits in C. `plan` is a
   tuple of (wire key, code) pairs, the keys distinct. True only when every key of the
   payload is a field of the plan, every required field is present, and each present value
   has its field's exact type (None where nullable); False otherwise, and then the Python
   check decides and words any refusal. */
static int fits_plan(PyObject *plan, PyObject *payload) {
    if (!PyDict_CheckExact(payload))
        return 0;
    Py_ssize_t fields = PyTuple_GET_SIZE(plan), found = 0;
    for (Py_ssize_t i = 0; i < fields; i++) {
        PyObject *field = PyTuple_GET_ITEM(plan, i);
        if (!PyTuple_CheckExact(field) || PyTuple_GET_SIZE(field) != 2
                || !PyLong_CheckExact(PyTuple_GET_ITEM(field, 1))) {
            PyErr_SetString(PyExc_TypeError, "event_fits: a plan is (key, code) pairs");
            return -1;
        }
        long code = PyLong_AsLong(PyTuple_GET_ITEM(field, 1));
        if (code == -1 && PyErr_Occurred())
            return -1;
        PyObject *value = PyDict_GetItemWithError(payload, PyTuple_GET_ITEM(field, 0));
        if (value == NULL) {
            if (PyErr_Occurred())
                return -1;
            if (code & FIELD_REQUIRED)
                return 0;
            continue;
        }
        found++;
        int ok;
        if (value == Py_None) {
            ok = (code & FIELD_NULLABLE) != 0;
        } else {
            switch (code & FIELD_CODEC) {
            case FIELD_JSON: ok = 1; break;
            case FIELD_STR: ok = PyUnicode_CheckExact(value); break;
            case FIELD_INT: ok = PyLong_CheckExact(value); break;
            case FIELD_BOOL: ok = PyBool_Check(value); break;
            case FIELD_HEX: ok = text_matches(value, 1); break;
            case FIELD_WEI: ok = text_matches(value, 0); break;
            default: ok = 0;
            }
        }
        if (ok < 0)
            return -1;
        if (!ok)
            return 0;
    }
    /* Each of the `found` plan keys is a distinct key of the payload: every payload key is
       known exactly when they are all of them (frozenset.issuperset in Python). */
    return found == PyDict_GET_SIZE(payload);
}

static PyObject *native_event_fits(PyObject *self, PyObject *args) {
    PyObject *plan, *payload;
    if (!PyArg_ParseTuple(args, "O!O:event_fits", &PyTuple_Type, &plan, &payload))
        return NULL;
    int ok = fits_plan(plan, payload);
    if (ok < 0)
        return NULL;
    return PyBool_FromLong(ok);
}

/* encode_batch(items, index, start, time, limit, actor_max, kinds, plans, bodies) -> int

   The append loop of entry.encode_bodies for the items it can vouch for: from items[index]
   on, while an item is a (kind, actor, payload) tuple with a kind in `kinds`, an actor of 1
   to `actor_max` characters, a payload `envelope` encodes within `limit` bytes and that
   `event_fits` its kind's plan in `plans` (kind -> plan), its body (at sequence number
   start + its index) is appended to `bodies`. Returns the index of the first item it did
   not vouch for (len(items) when none): the caller judges that one exactly as before. */
static PyObject *native_encode_batch(PyObject *self, PyObject *args) {
    PyObject *items, *time, *kinds, *plans, *bodies;
    Py_ssize_t index, limit, actor_max;
    long long start;
    if (!PyArg_ParseTuple(args, "O!nLUnnOO!O!:encode_batch", &PyList_Type, &items, &index,
                          &start, &time, &limit, &actor_max, &kinds, &PyDict_Type, &plans,
                          &PyList_Type, &bodies))
        return NULL;
    if (!PyAnySet_Check(kinds) || index < 0 || start < 0) {
        PyErr_SetString(PyExc_ValueError, "encode_batch: bad arguments");
        return NULL;
    }
    for (; index < PyList_GET_SIZE(items); index++) {
        PyObject *item = PyList_GET_ITEM(items, index);
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 3)
            break;
        PyObject *kind = PyTuple_GET_ITEM(item, 0), *actor = PyTuple_GET_ITEM(item, 1);
        PyObject *payload = PyTuple_GET_ITEM(item, 2);
        if (!PyUnicode_CheckExact(kind) || !PyUnicode_CheckExact(actor)
            || !PyDict_CheckExact(payload) || PyUnicode_READY(actor) < 0
            || PyUnicode_GET_LENGTH(actor) < 1 || PyUnicode_GET_LENGTH(actor) > actor_max) {
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        int known = PySet_Contains(kinds, kind);
        if (known < 0)
            return NULL;
        PyObject *plan = known ? PyDict_GetItemWithError(plans, kind) : NULL;
        if (plan == NULL) {
            if (PyErr_Occurred())
                return NULL;
            break;
        }
        if (!PyTuple_CheckExact(plan)) {
            PyErr_SetString(PyExc_TypeError, "encode_batch: plans hold tuples");
            return NULL;
        }
        Py_INCREF(item);                       /* held while judged (see verify_rows) */
        int fits = fits_plan(plan, payload);
        PyObject *body = fits == 1 ? envelope_of(start + index, time, kind, actor, payload) : NULL;
        Py_DECREF(item);
        if (fits < 0 || (fits == 1 && body == NULL))
            return NULL;
        if (fits == 0 || body == Py_None || PyBytes_GET_SIZE(body) > limit) {
            Py_XDECREF(body);
            break;
        }
        int failed = PyList_Append(bodies, body);
        Py_DECREF(body);
        if (failed < 0)
            return NULL;
    }
    return PyLong_FromSsize_t(index);
}

/* ------------------------------------------------------------- hash_batch */

typedef struct {
    PyObject *node_rows;
    int level_min;
} batch_state;

static int batch_node(void *state, int level, long long seq, const unsigned char *hash) {
    batch_state *batch = (batch_state *)state;
    if (level < batch->level_min)
        return 0;                              /* not stored: hashed from bodies on demand */
    long long key = ((long long)level << LEVEL_SHIFT) | (seq >> level);
    PyObject *row = untracked(tuple_of(2, PyLong_FromLongLong(key), hash_object(hash), NULL));
    if (row == NULL)
        return -1;
    int failed = PyList_Append(batch->node_rows, row);
    Py_DECREF(row);
    return failed;
}

static PyObject *native_hash_batch(PyObject *self, PyObject *args) {
    Py_buffer prev;
    long long size;
    int level_min;
    PyObject *bodies, *frontier_list;
    if (!PyArg_ParseTuple(args, "y*LO!Oi:hash_batch", &prev, &size, &PyList_Type, &bodies,
                          &frontier_list, &level_min))
        return NULL;
    PyObject *entry_rows = NULL, *node_rows = NULL, *result = NULL;
    unsigned char chain[HASH_SIZE];
    frontier_t frontier;
    Py_ssize_t count = PyList_GET_SIZE(bodies);
    if (prev.len != HASH_SIZE || size < 0) {
        PyErr_SetString(PyExc_ValueError, "prev must be 32 bytes and size >= 0");
        goto done;
    }
    if (frontier_load(frontier_list, &frontier) < 0)
        goto done;
    memcpy(chain, prev.buf, HASH_SIZE);
    entry_rows = PyList_New(count);
    node_rows = PyList_New(0);
    if (entry_rows == NULL || node_rows == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++)     /* every slot filled before any error exit */
        PyList_SET_ITEM(entry_rows, i, Py_NewRef(Py_None));
    batch_state state = {node_rows, level_min};
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyList_GET_SIZE(bodies) != count) {  /* changed by a finalizer during a step */
            PyErr_SetString(PyExc_RuntimeError, "bodies changed during hash_batch");
            goto done;
        }
        PyObject *body = PyList_GET_ITEM(bodies, i);
        if (!PyBytes_CheckExact(body)) {
            PyErr_SetString(PyExc_TypeError, "bodies must be a list of bytes");
            goto done;
        }
        const char *data = PyBytes_AS_STRING(body);
        Py_ssize_t length = PyBytes_GET_SIZE(body);
        unsigned char carry[HASH_SIZE];
        sha256_parts(chain, HASH_SIZE, data, length, NULL, 0, chain);
        sha256_parts(LEAF_PREFIX, 1, data, length, NULL, 0, carry);
        /* Both hashes are taken and `body` is held before anything is allocated (an
           allocation may run a finalizer, and Python code there could change `bodies`). */
        Py_INCREF(body);
        PyObject *row = untracked(tuple_of(3, PyLong_FromLongLong(size + i), body,
                                           hash_object(chain)));
        if (row == NULL)
            goto done;
        PyList_SetItem(entry_rows, i, row);   /* releases the placeholder */
        if (frontier_push(&frontier, size + i, carry, batch_node, &state) < 0)
            goto done;
    }
    if (frontier_store(&frontier, frontier_list) < 0)
        goto done;
    result = tuple_of(3, Py_NewRef(entry_rows), Py_NewRef(node_rows), hash_object(chain));
done:
    Py_XDECREF(entry_rows);
    Py_XDECREF(node_rows);
    PyBuffer_Release(&prev);
    return result;
}

/* ------------------------------------------------------- copy_entry_rows */

static unsigned char *put_be32(unsigned char *at, uint32_t value) {
    at[0] = value >> 24; at[1] = value >> 16; at[2] = value >> 8; at[3] = value;
    return at + 4;
}

/* copy_entry_rows(rows, items) -> bytes: store._copy_entry_rows in C, the tuples of
   PostgreSQL's binary COPY for entry rows (seq, body, entry_hash) with each item's kind
   (UTF-8) as a fourth column: per row the field count 4, then each field's length (int32)
   and bytes, the seq as an int8, all big-endian. */
static PyObject *native_copy_entry_rows(PyObject *self, PyObject *args) {
    PyObject *rows, *items_arg;
    if (!PyArg_ParseTuple(args, "O!O:copy_entry_rows", &PyList_Type, &rows, &items_arg))
        return NULL;
    PyObject *items = PySequence_Fast(items_arg, "copy_entry_rows: items must be a sequence");
    if (items == NULL)
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = PyList_GET_SIZE(rows), total = 0;
    if (PySequence_Fast_GET_SIZE(items) != count) {
        PyErr_SetString(PyExc_ValueError, "copy_entry_rows: one item per row");
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i), *item = PySequence_Fast_GET_ITEM(items, i);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 3
            || !PyLong_CheckExact(PyTuple_GET_ITEM(row, 0))
            || !PyBytes_CheckExact(PyTuple_GET_ITEM(row, 1))
            || !PyBytes_CheckExact(PyTuple_GET_ITEM(row, 2))
            || !PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) < 1
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(item, 0))) {
            PyErr_SetString(PyExc_TypeError,
                            "copy_entry_rows: rows are (int, bytes, bytes), items (str, ...)");
            goto done;
        }
        Py_ssize_t kind_length;
        if (PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 0), &kind_length) == NULL)
            goto done;
        Py_ssize_t body_length = PyBytes_GET_SIZE(PyTuple_GET_ITEM(row, 1));
        Py_ssize_t hash_length = PyBytes_GET_SIZE(PyTuple_GET_ITEM(row, 2));
        if (body_length > INT32_MAX || hash_length > INT32_MAX || kind_length > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "copy_entry_rows: a field over 2 GiB");
            goto done;
        }
        total += 2 + 4 + 8 + 4 + body_length + 4 + hash_length + 4 + kind_length;
    }
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL)
        goto done;
    unsigned char *at = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i), *item = PySequence_Fast_GET_ITEM(items, i);
        int overflow = 0;
        long long seq = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(row, 0), &overflow);
        if (overflow || (seq == -1 && PyErr_Occurred())) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_OverflowError, "copy_entry_rows: seq out of range");
            Py_CLEAR(result);
            goto done;
        }
        Py_ssize_t kind_length;
        const char *kind = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 0), &kind_length);
        PyObject *body = PyTuple_GET_ITEM(row, 1), *hash = PyTuple_GET_ITEM(row, 2);
        at[0] = 0; at[1] = 4; at += 2;
        at = put_be32(at, 8);
        at = put_be32(at, (uint32_t)((unsigned long long)seq >> 32));
        at = put_be32(at, (uint32_t)((unsigned long long)seq & 0xFFFFFFFFu));
        at = put_be32(at, (uint32_t)PyBytes_GET_SIZE(body));
        memcpy(at, PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body));
        at += PyBytes_GET_SIZE(body);
        at = put_be32(at, (uint32_t)PyBytes_GET_SIZE(hash));
        memcpy(at, PyBytes_AS_STRING(hash), PyBytes_GET_SIZE(hash));
        at += PyBytes_GET_SIZE(hash);
        at = put_be32(at, (uint32_t)kind_length);
        memcpy(at, kind, kind_length);
        at += kind_length;
    }
done:
    Py_DECREF(items);
    return result;
}

/* entry_params(rows, items) -> list

   The parameters of a multi-row SQLite INSERT of entry rows (seq, body, entry_hash) with
   each item's kind (item[0]) as the fourth column, flat: [seq0, body0, hash0, kind0, seq1,
   ...]. One list instead of a tuple per row; SQLite then binds them in one statement per
   chunk of rows instead of one executemany step per row. */
static PyObject *native_entry_params(PyObject *self, PyObject *args) {
    PyObject *rows, *items_arg;
    if (!PyArg_ParseTuple(args, "O!O:entry_params", &PyList_Type, &rows, &items_arg))
        return NULL;
    PyObject *items = PySequence_Fast(items_arg, "entry_params: items must be a sequence");
    if (items == NULL)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(rows);
    PyObject *result = NULL;
    if (PySequence_Fast_GET_SIZE(items) != count) {
        PyErr_SetString(PyExc_ValueError, "entry_params: one item per row");
        goto done;
    }
    result = PyList_New(4 * count);
    if (result == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count; i++) {
        /* the kind first: item[0] may run Python code, which could change `rows` */
        PyObject *kind = PySequence_GetItem(PySequence_Fast_GET_ITEM(items, i), 0);
        if (kind == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyObject *row = i < PyList_GET_SIZE(rows) ? PyList_GET_ITEM(rows, i) : NULL;
        if (row == NULL || !PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 3) {
            PyErr_SetString(PyExc_TypeError, "entry_params: rows are (seq, body, entry_hash)");
            Py_DECREF(kind);
            Py_CLEAR(result);
            goto done;
        }
        for (int column = 0; column < 3; column++)
            PyList_SET_ITEM(result, 4 * i + column, Py_NewRef(PyTuple_GET_ITEM(row, column)));
        PyList_SET_ITEM(result, 4 * i + 3, kind);
    }
done:
    Py_DECREF(items);
    return result;
}

/* ---------------------------------------------------------------- entries */

/* entries(entry_type, names, rows, items, time) -> list

   The appended entries as `entry_type` instances: for each entry row (seq, body,
   entry_hash) and item (kind, actor, payload), an object whose attributes `names` (seq,
   time, kind, actor, payload, body, entry_hash) are set as object.__setattr__ sets them,
   which is all a frozen dataclass's __init__ does (Entry.of_fields in Python). */
static PyObject *native_entries(PyObject *self, PyObject *args) {
    PyTypeObject *type;
    PyObject *names, *rows, *items, *time;
    if (!PyArg_ParseTuple(args, "O!O!O!O!U:entries", &PyType_Type, &type, &PyTuple_Type,
                          &names, &PyList_Type, &rows, &PyList_Type, &items, &time))
        return NULL;
    if (PyTuple_GET_SIZE(names) != 7 || PyList_GET_SIZE(rows) != PyList_GET_SIZE(items)) {
        PyErr_SetString(PyExc_ValueError, "entries: 7 names and one row per item");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(rows);
    PyObject *result = PyList_New(count);
    if (result == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++)
        PyList_SET_ITEM(result, i, Py_NewRef(Py_None));
    for (Py_ssize_t i = 0; i < count && i < PyList_GET_SIZE(rows)
                           && i < PyList_GET_SIZE(items); i++) {
        PyObject *row = Py_NewRef(PyList_GET_ITEM(rows, i));
        PyObject *item = PySequence_Fast(PyList_GET_ITEM(items, i), "an item is (kind, actor, payload)");
        PyObject *entry = NULL;
        if (item == NULL || !PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 3
            || PySequence_Fast_GET_SIZE(item) != 3) {
            if (item != NULL)
                PyErr_SetString(PyExc_TypeError, "rows are (seq, body, hash), items triples");
            goto fail;
        }
        PyObject *values[7] = {PyTuple_GET_ITEM(row, 0), time, PySequence_Fast_GET_ITEM(item, 0),
                               PySequence_Fast_GET_ITEM(item, 1), PySequence_Fast_GET_ITEM(item, 2),
                               PyTuple_GET_ITEM(row, 1), PyTuple_GET_ITEM(row, 2)};
        entry = type->tp_alloc(type, 0);
        if (entry == NULL)
            goto fail;
        for (int field = 0; field < 7; field++)
            if (PyObject_GenericSetAttr(entry, PyTuple_GET_ITEM(names, field), values[field]) < 0)
                goto fail;
        PyList_SetItem(result, i, entry);      /* releases the placeholder */
        Py_DECREF(item);
        Py_DECREF(row);
        continue;
    fail:
        Py_XDECREF(entry);
        Py_XDECREF(item);
        Py_DECREF(row);
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* ------------------------------------------------------ canonical scanner */

/* A cursor over a body. Every scan_* function returns 1 when the bytes at the cursor are
   certainly canonical (and advances past them), 0 for "undecided". */
typedef struct {
    const unsigned char *at;
    const unsigned char *end;
} cursor;

/* A JSON string in canonical form: only the escapes RFC 8785 (ECMAScript) writes, every
   other character literal, UTF-8 well formed and within the BMP (astral characters are
   left to the exact path). Sets *escaped when the string holds any escape. */
/* 1 for the bytes a canonical string holds literally and alone: printable ASCII and DEL,
   but not '"' or '\\'. Filled in at import. */
static unsigned char literal_ascii[256];

/* The first byte at or after `at` that is not literal printable ASCII: eight bytes a step
   while none of them is a control character, '"', '\\' or >= 0x80 (the usual bit tricks
   on a 64-bit word: a byte is zero after XOR with the byte sought; below 0x20 when
   subtracting 0x20 borrows), then one byte a step with the table. */
static const unsigned char *skip_literal(const unsigned char *at, const unsigned char *end) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - at >= 8) {
        uint64_t word;
        memcpy(&word, at, 8);
        uint64_t quote = word ^ (ones * '"'), backslash = word ^ (ones * '\\');
        uint64_t special = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)
                           | (word - ones * 0x20) | word;
        if (special & highs)
            break;
        at += 8;
    }
    while (at < end && literal_ascii[*at])
        at++;
    return at;
}

static int scan_string(cursor *c, int *escaped) {
    if (c->at >= c->end || *c->at != '"')
        return 0;
    c->at++;
    *escaped = 0;
    while (c->at < c->end) {
        c->at = skip_literal(c->at, c->end);
        if (c->at >= c->end)
            return 0;
        unsigned char byte = *c->at;
        if (byte == '"') {
            c->at++;
            return 1;
        }
        if (byte < 0x20)
            return 0;                          /* raw control character: not JSON */
        if (byte == '\\') {
            *escaped = 1;
            if (c->end - c->at < 2)
                return 0;
            unsigned char kind = c->at[1];
            if (kind == '"' || kind == '\\' || kind == 'b' || kind == 'f' || kind == 'n'
                || kind == 'r' || kind == 't') {
                c->at += 2;
                continue;
            }
            /* \u00XX, lowercase hex, only for control characters without a short form */
            if (kind != 'u' || c->end - c->at < 6 || c->at[2] != '0' || c->at[3] != '0'
                || (c->at[4] != '0' && c->at[4] != '1'))
                return 0;
            unsigned char low = c->at[5];
            int value;
            if (low >= '0' && low <= '9')
                value = low - '0';
            else if (low >= 'a' && low <= 'f')
                value = low - 'a' + 10;
            else
                return 0;
            value += (c->at[4] - '0') * 16;
            if (value == 0x08 || value == 0x09 || value == 0x0a || value == 0x0c
                || value == 0x0d)
                return 0;                      /* these have short escapes */
            c->at += 6;
            continue;
        }
        if (byte < 0x80) {
            c->at++;
            continue;
        }
        /* UTF-8, two or three bytes (U+0080..U+FFFF, no surrogates, no overlong forms) */
        if (byte >= 0xC2 && byte <= 0xDF) {
            if (c->end - c->at < 2 || (c->at[1] & 0xC0) != 0x80)
                return 0;
            c->at += 2;
            continue;
        }
        if (byte >= 0xE0 && byte <= 0xEF) {
            if (c->end - c->at < 3 || (c->at[1] & 0xC0) != 0x80 || (c->at[2] & 0xC0) != 0x80)
                return 0;
            if (byte == 0xE0 && c->at[1] < 0xA0)
                return 0;                      /* overlong */
            if (byte == 0xED && c->at[1] >= 0xA0)
                return 0;                      /* UTF-16 surrogate */
            c->at += 3;
            continue;
        }
        return 0;                              /* astral (F0-F4) or not UTF-8 */
    }
    return 0;
}

/* An integer as RFC 8785 writes it: `0` or an optional minus and digits without a leading
   zero; at most INTEGER_DIGITS_MAX digits, so certainly within +-(2**53 - 1). A fraction or
   an exponent (a float) is undecided: the byte after the digits must be a delimiter. */
static int scan_integer(cursor *c) {
    const unsigned char *start = c->at;
    if (c->at < c->end && *c->at == '-')
        c->at++;
    const unsigned char *digits = c->at;
    while (c->at < c->end && *c->at >= '0' && *c->at <= '9')
        c->at++;
    Py_ssize_t count = c->at - digits;
    if (count == 0 || count > INTEGER_DIGITS_MAX)
        return 0;
    if (*digits == '0' && (count > 1 || digits != start))
        return 0;                              /* leading zero, or -0 */
    return 1;
}

static int scan_literal(cursor *c, const char *word, size_t length) {
    if ((size_t)(c->end - c->at) < length || memcmp(c->at, word, length) != 0)
        return 0;
    c->at += length;
    return 1;
}

static int scan_value(cursor *c, int depth);

/* Object keys must be strictly increasing: byte order of UTF-8 is code-point order, which
   is RFC 8785's UTF-16 order for BMP characters; equal keys (duplicates) are undecided. */
static int scan_object(cursor *c, int depth) {
    c->at++;                                   /* '{' */
    if (c->at < c->end && *c->at == '}') {
        c->at++;
        return 1;
    }
    const unsigned char *last_key = NULL;
    Py_ssize_t last_length = 0;
    for (;;) {
        const unsigned char *key = c->at + 1;
        int escaped;
        if (!scan_string(c, &escaped) || escaped)
            return 0;
        Py_ssize_t length = c->at - 1 - key;
        if (last_key != NULL) {
            Py_ssize_t shorter = length < last_length ? length : last_length;
            int order = memcmp(last_key, key, (size_t)shorter);
            if (order > 0 || (order == 0 && last_length >= length))
                return 0;
        }
        last_key = key;
        last_length = length;
        if (c->at >= c->end || *c->at != ':')
            return 0;
        c->at++;
        if (!scan_value(c, depth + 1))
            return 0;
        if (c->at >= c->end)
            return 0;
        if (*c->at == '}') {
            c->at++;
            return 1;
        }
        if (*c->at != ',')
            return 0;
        c->at++;
    }
}

static int scan_array(cursor *c, int depth) {
    c->at++;                                   /* '[' */
    if (c->at < c->end && *c->at == ']') {
        c->at++;
        return 1;
    }
    for (;;) {
        if (!scan_value(c, depth + 1) || c->at >= c->end)
            return 0;
        if (*c->at == ']') {
            c->at++;
            return 1;
        }
        if (*c->at != ',')
            return 0;
        c->at++;
    }
}

/* A value at nesting `depth` (the entry envelope is depth 0). A value deeper than
   DEPTH_MAX is undecided, as `canonical._plain` leaves it to `_check`, which refuses it;
   the bound also bounds this recursion. */
static int scan_value(cursor *c, int depth) {
    if (depth > DEPTH_MAX || c->at >= c->end)
        return 0;
    int escaped;
    switch (*c->at) {
    case '{':
        return scan_object(c, depth);
    case '[':
        return scan_array(c, depth);
    case '"':
        return scan_string(c, &escaped);
    case 't':
        return scan_literal(c, "true", 4);
    case 'f':
        return scan_literal(c, "false", 5);
    case 'n':
        return scan_literal(c, "null", 4);
    default:
        return scan_integer(c);
    }
}

static PyObject *native_is_canonical(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:is_canonical", &data))
        return NULL;
    cursor c = {(const unsigned char *)data.buf, (const unsigned char *)data.buf + data.len};
    int ok = scan_value(&c, 0) && c.at == c.end;
    PyBuffer_Release(&data);
    return PyBool_FromLong(ok);
}

/* The entry envelope: an object of exactly the members actor, kind, payload, seq and time
   (RFC 8785 order), every value canonical, `seq` equal to `expected` and `kind` a string
   without escapes. Returns 1 and sets kind and kind_length on success, 0 for undecided. */
static int scan_envelope(const unsigned char *data, Py_ssize_t length, long long expected,
                         const unsigned char **kind, Py_ssize_t *kind_length) {
    static const char *const names[5] = {"actor", "kind", "payload", "seq", "time"};
    cursor c = {data, data + length};
    if (c.at >= c.end || *c.at != '{')
        return 0;
    c.at++;
    for (int member = 0; member < 5; member++) {
        size_t name_length = strlen(names[member]);
        if ((size_t)(c.end - c.at) < name_length + 3 || c.at[0] != '"'
            || memcmp(c.at + 1, names[member], name_length) != 0
            || c.at[1 + name_length] != '"' || c.at[2 + name_length] != ':')
            return 0;
        c.at += name_length + 3;
        const unsigned char *value = c.at;
        if (member == 1) {                     /* kind */
            int escaped;
            if (!scan_string(&c, &escaped) || escaped)
                return 0;
            *kind = value + 1;
            *kind_length = c.at - value - 2;
        } else if (member == 3) {              /* seq */
            if (!scan_integer(&c) || *value == '-')
                return 0;
            long long seq = 0;
            for (const unsigned char *digit = value; digit < c.at; digit++)
                seq = seq * 10 + (*digit - '0');
            if (seq != expected)
                return 0;
        } else if (!scan_value(&c, 1)) {
            return 0;
        }
        if (c.at >= c.end || *c.at != (member == 4 ? '}' : ','))
            return 0;
        c.at++;
    }
    return c.at == c.end;
}

/* ------------------------------------------------------------- verify_rows */

#define KIND_CACHE 64                /* more than the ledger's kinds */
#define KIND_CACHE_LENGTH 64

typedef struct {
    PyObject *levels;
    int level_min;
    /* kinds already found in `kinds` during this call, as their UTF-8 bytes: a ledger has
       a few dozen kinds, and looking each row's up in the set cost a str per row */
    int known_count;
    Py_ssize_t known_length[KIND_CACHE];
    unsigned char known[KIND_CACHE][KIND_CACHE_LENGTH];
} verify_state;

static int kind_known(verify_state *state, PyObject *kinds, const unsigned char *kind,
                      Py_ssize_t length) {
    for (int i = 0; i < state->known_count; i++)
        if (state->known_length[i] == length && memcmp(state->known[i], kind, length) == 0)
            return 1;
    PyObject *text = PyUnicode_DecodeUTF8((const char *)kind, length, "strict");
    if (text == NULL)
        return -1;
    int known = PySet_Contains(kinds, text);
    Py_DECREF(text);
    if (known == 1 && state->known_count < KIND_CACHE && length <= KIND_CACHE_LENGTH) {
        memcpy(state->known[state->known_count], kind, length);
        state->known_length[state->known_count++] = length;
    }
    return known;
}

static int verify_node(void *state, int level, long long seq, const unsigned char *hash) {
    PyObject *levels = ((verify_state *)state)->levels;
    if (level < ((verify_state *)state)->level_min)
        return 0;                              /* not kept: nothing stored to compare */
    PyObject *node = hash_object(hash);
    if (node == NULL)
        return -1;
    int failed = PyList_Append(PyList_GET_ITEM(levels, level), node);
    Py_DECREF(node);
    return failed;
}

/* One row of verify_rows: 1 when it holds and was added (chain and frontier advanced), 0 when
   the core cannot vouch for it (nothing changed), -1 on a Python error. */
static int verify_one(PyObject *row, long long expected, unsigned char *chain,
                      frontier_t *frontier, PyObject *kinds, verify_state *state) {
    if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 3)
        return 0;
    PyObject *seq = PyTuple_GET_ITEM(row, 0), *body = PyTuple_GET_ITEM(row, 1);
    PyObject *stored = PyTuple_GET_ITEM(row, 2);
    if (!PyLong_CheckExact(seq) || !PyBytes_CheckExact(body) || !PyBytes_CheckExact(stored)
        || PyBytes_GET_SIZE(stored) != HASH_SIZE)
        return 0;
    int overflow = 0;
    if (PyLong_AsLongLongAndOverflow(seq, &overflow) != expected || overflow)
        return 0;
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(body);
    Py_ssize_t length = PyBytes_GET_SIZE(body);
    const unsigned char *kind;
    Py_ssize_t kind_length;
    if (!scan_envelope(data, length, expected, &kind, &kind_length))
        return 0;
    int known = kind_known(state, kinds, kind, kind_length);
    if (known <= 0)
        return known;
    unsigned char next[HASH_SIZE], carry[HASH_SIZE];
    sha256_parts(chain, HASH_SIZE, data, length, NULL, 0, next);
    if (memcmp(next, PyBytes_AS_STRING(stored), HASH_SIZE) != 0)
        return 0;
    sha256_parts(LEAF_PREFIX, 1, data, length, NULL, 0, carry);
    if (frontier_push(frontier, expected, carry, verify_node, state) < 0)
        return -1;
    memcpy(chain, next, HASH_SIZE);
    return 1;
}

/* The GIL-free part of verify_rows: the rows' bodies and stored hashes as C pointers
   (their tuples held by the caller), the nodes the walk completes kept in C until the GIL
   is taken again to hand them to Python. */
typedef struct {
    const unsigned char *body;
    Py_ssize_t length;
    const unsigned char *stored;
} row_view;

typedef struct {
    int level;
    unsigned char hash[HASH_SIZE];
} node_view;

enum { WALK_DONE, WALK_UNDECIDED, WALK_KIND_MISS, WALK_BAD_FRONTIER };

/* Walks views[0:count] from `expected` on, without the GIL: for each row the envelope
   scan, the kind against the kinds found so far (`state`, read only), the chain and the
   leaf, the frontier; completed nodes at level_min and above go to `nodes` (room for
   count + LEVELS_MAX). Sets *walked to the rows it vouched for and returns why it
   stopped: WALK_DONE (all of them), WALK_UNDECIDED (the next row is for Python to judge),
   WALK_KIND_MISS (the next row's kind is not among those found yet: `kind`/`kind_length`
   point at it) or WALK_BAD_FRONTIER (the frontier does not match the tree size). */
static int walk_views(const row_view *views, Py_ssize_t count, long long expected,
                      unsigned char *chain, frontier_t *frontier, const verify_state *state,
                      node_view *nodes, Py_ssize_t *node_count, Py_ssize_t *walked,
                      const unsigned char **kind, Py_ssize_t *kind_length) {
    for (Py_ssize_t i = 0; i < count; i++, expected++) {
        *walked = i;
        const row_view *row = &views[i];
        if (!scan_envelope(row->body, row->length, expected, kind, kind_length))
            return WALK_UNDECIDED;
        int known = 0;
        for (int k = 0; k < state->known_count && !known; k++)
            known = state->known_length[k] == *kind_length
                    && memcmp(state->known[k], *kind, *kind_length) == 0;
        if (!known)
            return WALK_KIND_MISS;
        unsigned char next[HASH_SIZE], carry[HASH_SIZE];
        sha256_parts(chain, HASH_SIZE, row->body, row->length, NULL, 0, next);
        if (memcmp(next, row->stored, HASH_SIZE) != 0)
            return WALK_UNDECIDED;
        sha256_parts(LEAF_PREFIX, 1, row->body, row->length, NULL, 0, carry);
        /* frontier_push without Python: the same combining, nodes into `nodes` */
        int level = 0;
        while ((expected >> level) & 1) {
            if (frontier->count == 0)
                return WALK_BAD_FRONTIER;
            frontier->count--;
            sha256_parts(NODE_PREFIX, 1, frontier->hash[frontier->count], HASH_SIZE,
                         carry, HASH_SIZE, carry);
            level++;
            if (level >= state->level_min) {
                nodes[*node_count].level = level;
                memcpy(nodes[*node_count].hash, carry, HASH_SIZE);
                (*node_count)++;
            }
        }
        if (frontier->count >= LEVELS_MAX)
            return WALK_BAD_FRONTIER;
        memcpy(frontier->hash[frontier->count++], carry, HASH_SIZE);
        memcpy(chain, next, HASH_SIZE);
    }
    *walked = count;
    return WALK_DONE;
}

/* verify_rows(rows, start, expected, prev, frontier, levels, kinds, stop, level_min)
     -> (next_index, next_expected, prev)

   Walks rows[start:], each (seq, body, stored entry hash), while every check holds:
   seq == expected, the body is a canonical entry envelope carrying that seq and a kind in
   `kinds`, and SHA-256(prev || body) equals the stored hash. For each row it updates the
   chain (`prev`), the Merkle `frontier` and `levels` (node hashes per level, appended in
   index order; only levels >= level_min, the ones a ledger stores), exactly as the Python
   loop in verify._Walk._step does. It stops at the
   end of the rows, when `expected` reaches `stop` (a checkpoint size: the caller computes
   the root there), or before the first row it cannot vouch for: the caller judges that
   row with the exact path. Requires len(levels) == 64 lists and a frontier that matches
   `expected`.

   The scanning and hashing run with the GIL released (on the rows' own bytes, each row's
   tuple held meanwhile), so another thread, such as the verifier reading the next rows
   from the database, runs alongside. */
static PyObject *native_verify_rows(PyObject *self, PyObject *args) {
    PyObject *rows, *frontier_list, *levels, *kinds;
    Py_ssize_t start;
    long long expected, stop;
    int level_min;
    Py_buffer prev;
    if (!PyArg_ParseTuple(args, "O!nLy*O!O!OLi:verify_rows", &PyList_Type, &rows, &start,
                          &expected, &prev, &PyList_Type, &frontier_list, &PyList_Type, &levels,
                          &kinds, &stop, &level_min))
        return NULL;
    PyObject *result = NULL;
    unsigned char chain[HASH_SIZE];
    frontier_t frontier;
    Py_ssize_t index = start, held = 0;
    PyObject **holds = NULL;
    row_view *views = NULL;
    node_view *nodes = NULL;
    if (prev.len != HASH_SIZE || start < 0 || expected < 0 || PyList_GET_SIZE(levels) != LEVELS_MAX
        || !PyAnySet_Check(kinds)) {
        PyErr_SetString(PyExc_ValueError, "verify_rows: bad arguments");
        goto done;
    }
    for (Py_ssize_t i = 0; i < LEVELS_MAX; i++) {
        if (!PyList_CheckExact(PyList_GET_ITEM(levels, i))) {
            PyErr_SetString(PyExc_TypeError, "levels must be a list of lists");
            goto done;
        }
    }
    if (frontier_load(frontier_list, &frontier) < 0)
        goto done;
    memcpy(chain, prev.buf, HASH_SIZE);
    verify_state state = {levels, level_min, 0, {0}, {{0}}};
    Py_ssize_t room = PyList_GET_SIZE(rows) - start;
    if (room < 0)
        room = 0;
    holds = PyMem_Malloc(sizeof(PyObject *) * (size_t)(room + 1));
    views = PyMem_Malloc(sizeof(row_view) * (size_t)(room + 1));
    nodes = PyMem_Malloc(sizeof(node_view) * (size_t)(room + LEVELS_MAX));
    if (holds == NULL || views == NULL || nodes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (;;) {
        /* With the GIL: the rows whose types and sequence numbers hold, up to `stop`,
           each tuple held so that its bytes outlive any change to `rows`. */
        for (; held > 0; held--)
            Py_DECREF(holds[held - 1]);
        Py_ssize_t count = 0;
        long long seq_at = expected;
        while (count < room && index + count < PyList_GET_SIZE(rows) && seq_at != stop) {
            PyObject *row = PyList_GET_ITEM(rows, index + count);
            if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 3)
                break;
            PyObject *seq = PyTuple_GET_ITEM(row, 0), *body = PyTuple_GET_ITEM(row, 1);
            PyObject *stored = PyTuple_GET_ITEM(row, 2);
            if (!PyLong_CheckExact(seq) || !PyBytes_CheckExact(body)
                || !PyBytes_CheckExact(stored) || PyBytes_GET_SIZE(stored) != HASH_SIZE)
                break;
            int overflow = 0;
            if (PyLong_AsLongLongAndOverflow(seq, &overflow) != seq_at || overflow)
                break;
            holds[held++] = Py_NewRef(row);
            views[count].body = (const unsigned char *)PyBytes_AS_STRING(body);
            views[count].length = PyBytes_GET_SIZE(body);
            views[count].stored = (const unsigned char *)PyBytes_AS_STRING(stored);
            count++;
            seq_at++;
        }
        Py_ssize_t walked = 0, node_count = 0, kind_length = 0;
        const unsigned char *kind = NULL;
        int why;
        Py_BEGIN_ALLOW_THREADS
        why = walk_views(views, count, expected, chain, &frontier, &state, nodes, &node_count,
                         &walked, &kind, &kind_length);
        Py_END_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < node_count; i++) {
            if (verify_node(&state, nodes[i].level, 0, nodes[i].hash) < 0)
                goto done;
        }
        index += walked;
        expected += walked;
        if (why == WALK_BAD_FRONTIER) {
            PyErr_SetString(PyExc_ValueError, "frontier does not match the tree size");
            goto done;
        }
        if (why == WALK_KIND_MISS) {
            /* Look the kind up in `kinds` (its bytes are in a row still held) and walk on
               if it is known; an unknown one stops the walk for Python to judge. */
            int known = kind_known(&state, kinds, kind, kind_length);
            if (known < 0)
                goto done;
            if (known == 1 && state.known_count > 0
                && state.known_length[state.known_count - 1] == kind_length
                && memcmp(state.known[state.known_count - 1], kind, kind_length) == 0)
                continue;  /* now among the kinds found: on from this row */
            if (known == 1) {
                /* known but not cacheable (the cache is full or the kind too long): this
                   row alone the way the loop used to take it */
                PyObject *row = holds[walked];
                int advanced = verify_one(row, expected, chain, &frontier, kinds, &state);
                if (advanced < 0)
                    goto done;
                if (advanced == 1) {
                    index++;
                    expected++;
                    continue;
                }
            }
        }
        if (why != WALK_DONE || count == 0 || walked < count)
            break;
    }
    if (frontier_store(&frontier, frontier_list) < 0)
        goto done;
    result = tuple_of(3, PyLong_FromSsize_t(index), PyLong_FromLongLong(expected),
                      hash_object(chain));
done:
    for (Py_ssize_t i = 0; i < held; i++)
        Py_DECREF(holds[i]);
    PyMem_Free(holds);
    PyMem_Free(views);
    PyMem_Free(nodes);
    PyBuffer_Release(&prev);
    return result;
}

/* hashes_match(rows, computed, offset) -> bool

   True when rows[i] == (computed[offset + i],) for every row: stored subtree hashes of one
   level, read as one-column rows in index order, against the recomputed ones. */
static PyObject *native_hashes_match(PyObject *self, PyObject *args) {
    PyObject *rows, *computed;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "O!O!n:hashes_match", &PyList_Type, &rows, &PyList_Type,
                          &computed, &offset))
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(rows);
    if (offset < 0 || offset > PyList_GET_SIZE(computed) - count)
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 1)
            Py_RETURN_FALSE;
        PyObject *stored = PyTuple_GET_ITEM(row, 0);
        PyObject *expected = PyList_GET_ITEM(computed, offset + i);
        if (!PyBytes_CheckExact(stored) || PyBytes_GET_SIZE(stored) != HASH_SIZE
            || !PyBytes_CheckExact(expected) || PyBytes_GET_SIZE(expected) != HASH_SIZE
            || memcmp(PyBytes_AS_STRING(stored), PyBytes_AS_STRING(expected), HASH_SIZE) != 0)
            Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* ------------------------------------------------------------------ module */

static PyMethodDef native_methods[] = {
    {"plain", native_plain, METH_VARARGS,
     "plain(value, depth) -> bool: canonical._plain in C (True: certainly accepted)."},
    {"envelope", native_envelope, METH_VARARGS,
     "envelope(seq, time, kind, actor, payload) -> bytes or None: the entry's RFC 8785 "
     "bytes when the payload is plain, else None (ask the exact path)."},
    {"event_fits", native_event_fits, METH_VARARGS,
     "event_fits(plan, payload) -> bool: the typed event's quick check (events.base._Plan.fits)."},
    {"encode_batch", native_encode_batch, METH_VARARGS,
     "encode_batch(items, index, start, time, limit, actor_max, kinds, plans, bodies) -> int:"
     " encode_bodies' loop over the items it vouches for."},
    {"copy_entry_rows", native_copy_entry_rows, METH_VARARGS,
     "copy_entry_rows(rows, items) -> bytes: binary COPY tuples of entry rows and kinds."},
    {"entry_params", native_entry_params, METH_VARARGS,
     "entry_params(rows, items) -> list: [seq, body, entry_hash, kind, ...] of a multi-row INSERT."},
    {"hash_batch", native_hash_batch, METH_VARARGS,
     "hash_batch(prev, size, bodies, frontier, level_min) -> (entry_rows, node_rows, prev)."},
    {"entries", native_entries, METH_VARARGS,
     "entries(entry_type, names, rows, items, time) -> list of entry_type instances."},
    {"is_canonical", native_is_canonical, METH_VARARGS,
     "is_canonical(data) -> bool: True only if data is certainly RFC 8785 canonical."},
    {"verify_rows", native_verify_rows, METH_VARARGS,
     "verify_rows(rows, start, expected, prev, frontier, levels, kinds, stop, level_min)"
     " -> (next_index, next_expected, prev)."},
    {"hashes_match", native_hashes_match, METH_VARARGS,
     "hashes_match(rows, computed, offset) -> bool: rows[i] == (computed[offset + i],)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "reserve.ledger._native",
    "The ledger's native core: hash chain, Merkle frontier and canonicality scan in C.", -1,
    native_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    for (int byte = 0x20; byte < 0x80; byte++)
        literal_ascii[byte] = byte != '"' && byte != '\\';
    for (int byte = 0; byte < 256; byte++)
        hex_digit[byte] = (byte >= '0' && byte <= '9') || (byte >= 'a' && byte <= 'f')
                          || (byte >= 'A' && byte <= 'F');
    for (int byte = 0; byte < 256; byte++)
        escaped_byte[byte] = byte < 0x20 || byte == '"' || byte == '\\';
    return PyModule_Create(&native_module);
}
