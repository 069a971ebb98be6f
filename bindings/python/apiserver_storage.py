"""Python bindings for apiserver-storage over ctypes (no compiled extension).

    with Storage({"server_list": ["http://127.0.0.1:2379"]}) as s:
        s.health()
        obj = s.get("/configmaps/default/settings")     # bytes, or None when ignored
        created = s.create("/configmaps/default/new", {"kind": "ConfigMap", "metadata": {"name": "new"}})
        for page in s.list("/configmaps", limit=500): ...
        with s.watch("/configmaps", resource_version="0", recursive=True) as w:
            event = w.next(timeout_ms=1000)
        s.guaranteed_update("/configmaps/default/settings", try_update)   # try_update(bytes or None) -> bytes
        text = s.metrics()                                # Prometheus text format

Errors raise StorageError subclasses chosen by code (KeyNotFoundError, ...).
ctypes releases the GIL during every call into the library. The library is
found through APISERVER_STORAGE_LIB, or as libapiserver_storage.so on the
loader's path.
"""
import collections
import ctypes
import json
import os

__all__ = [
    "Storage", "Watch", "Event", "Preconditions", "StorageError", "KeyNotFoundError", "KeyExistsError",
    "ConflictError", "InvalidObjectError", "UnreachableError", "TimeoutError_", "CorruptObjectError",
    "ExpiredError", "InvalidArgumentError", "InvalidConfigError", "UnsupportedError", "InternalError",
    "PermissionDeniedError", "version",
]


class StorageError(Exception):
    """A failed call: `code` is the storage_code, `key` the etcd key involved."""

    code = None

    def __init__(self, code, message, key="", resource_version=0):
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key
        self.resource_version = resource_version


def _error_class(name, code):
    return type(name, (StorageError,), {"code": code})


KeyNotFoundError = _error_class("KeyNotFoundError", 1)
KeyExistsError = _error_class("KeyExistsError", 2)
ConflictError = _error_class("ConflictError", 3)
InvalidObjectError = _error_class("InvalidObjectError", 4)
UnreachableError = _error_class("UnreachableError", 5)
TimeoutError_ = _error_class("TimeoutError_", 6)
CorruptObjectError = _error_class("CorruptObjectError", 7)
ExpiredError = _error_class("ExpiredError", 8)
InvalidArgumentError = _error_class("InvalidArgumentError", 100)
InvalidConfigError = _error_class("InvalidConfigError", 101)
UnsupportedError = _error_class("UnsupportedError", 102)
InternalError = _error_class("InternalError", 103)
PermissionDeniedError = _error_class("PermissionDeniedError", 104)
_BY_CODE = {cls.code: cls for cls in StorageError.__subclasses__()}


class _Bytes(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


class _Info(ctypes.Structure):
    _fields_ = [("found", ctypes.c_bool), ("resource_version", ctypes.c_int64), ("stale", ctypes.c_bool),
                ("unknown_fields", ctypes.c_bool)]


class _Preconditions(ctypes.Structure):
    _fields_ = [("uid", ctypes.c_char_p), ("resource_version", ctypes.c_char_p)]


Preconditions = collections.namedtuple("Preconditions", ["uid", "resource_version"], defaults=[None, None])
Preconditions.__doc__ = """Checked against the current object before a write; None fields are not checked.
A mismatch raises InvalidObjectError."""

_P = ctypes.c_void_p
_S = ctypes.c_char_p
_U8P = ctypes.POINTER(ctypes.c_uint8)
# storage_update_fn
_UPDATE_FN = ctypes.CFUNCTYPE(ctypes.c_int, _P, _U8P, ctypes.c_size_t, ctypes.POINTER(_U8P),
                              ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_int64))


class _Counts(ctypes.Structure):
    _fields_ = [("seen", ctypes.c_int64), ("rewritten", ctypes.c_int64), ("failed", ctypes.c_int64)]


_REENCRYPT_FN = ctypes.CFUNCTYPE(ctypes.c_int, _P, ctypes.POINTER(_Counts), _P)
# What the trampoline tells the library when try_update raised; the caller gets the exception instead.
_ABORT = 103  # STORAGE_ERR_INTERNAL


def _load():
    lib = ctypes.CDLL(os.environ.get("APISERVER_STORAGE_LIB", "libapiserver_storage.so"))
    sigs = {
        "storage_version": (_S, []),
        "storage_create": (ctypes.c_int, [_S, ctypes.POINTER(_P), ctypes.POINTER(_P)]),
        "storage_destroy": (None, [_P]),
        "storage_health": (ctypes.c_int, [_P, ctypes.POINTER(_P)]),
        "storage_get_with_info": (ctypes.c_int, [_P, _S, _S, ctypes.c_bool, ctypes.POINTER(_Bytes),
                                                 ctypes.POINTER(_Info), ctypes.POINTER(_P)]),
        "storage_create_object": (ctypes.c_int, [_P, _S, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64,
                                                 ctypes.POINTER(_Bytes), ctypes.POINTER(_P)]),
        "storage_delete": (ctypes.c_int, [_P, _S, _P, ctypes.POINTER(_Bytes), ctypes.POINTER(_P)]),
        "storage_guaranteed_update_ttl": (ctypes.c_int, [_P, _S, ctypes.c_bool, ctypes.POINTER(_Preconditions),
                                                         _UPDATE_FN, _P, ctypes.POINTER(_Bytes), ctypes.POINTER(_P)]),
        "storage_compact_revision": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(_P)]),
        "storage_reencrypt": (ctypes.c_int, [_P, _S, _REENCRYPT_FN, _P, ctypes.POINTER(_Counts), ctypes.POINTER(_P)]),
        "storage_metrics": (ctypes.c_int, [_P, ctypes.POINTER(_P), ctypes.POINTER(_P)]),
        "storage_string_free": (None, [_P]),
        "storage_list": (ctypes.c_int, [_P, _S, _S, ctypes.c_int64, _S, ctypes.POINTER(_Bytes),
                                        ctypes.POINTER(_P)]),
        "storage_count": (ctypes.c_int, [_P, _S, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(_P)]),
        "storage_watch_create_with_flags": (ctypes.c_int, [_P, _S, _S, ctypes.c_uint32, ctypes.POINTER(_P),
                                                           ctypes.POINTER(_P)]),
        "storage_watch_request_progress": (ctypes.c_int, [_P, ctypes.POINTER(_P)]),
        "storage_watch_next": (ctypes.c_int, [_P, ctypes.c_uint32, ctypes.POINTER(_P), ctypes.POINTER(_P)]),
        "storage_watch_destroy": (None, [_P]),
        "storage_watch_event_get_type": (ctypes.c_int, [_P]),
        "storage_watch_event_key": (_S, [_P]),
        "storage_watch_event_resource_version": (ctypes.c_int64, [_P]),
        "storage_watch_event_object": (ctypes.POINTER(ctypes.c_uint8), [_P, ctypes.POINTER(ctypes.c_size_t)]),
        "storage_watch_event_prev_object": (ctypes.POINTER(ctypes.c_uint8),
                                            [_P, ctypes.POINTER(ctypes.c_size_t)]),
        "storage_watch_event_free": (None, [_P]),
        "storage_error_code": (ctypes.c_int, [_P]),
        "storage_error_message": (_S, [_P]),
        "storage_error_key": (_S, [_P]),
        "storage_error_resource_version": (ctypes.c_int64, [_P]),
        "storage_error_free": (None, [_P]),
        "storage_bytes_free": (None, [_Bytes]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


_lib = _load()


def version():
    """The library's version string."""
    return _lib.storage_version().decode()


def _check(code, err):
    if code == 0:
        return
    e = err.value
    message = _lib.storage_error_message(e).decode(errors="replace")
    key = _lib.storage_error_key(e).decode(errors="replace")
    rv = _lib.storage_error_resource_version(e)
    _lib.storage_error_free(e)
    raise _BY_CODE.get(code, StorageError)(code, message, key, rv)


def _take(b):
    """Copies library-owned bytes into Python and frees them."""
    data = ctypes.string_at(b.data, b.len) if b.data else None
    _lib.storage_bytes_free(b)
    return data


def _enc(s):
    return None if s is None else s.encode()


def _body(obj):
    return obj if isinstance(obj, (bytes, bytearray)) else json.dumps(obj).encode()


class Storage:
    """A store built from a config (dict or JSON text); a context manager."""

    def __init__(self, config):
        self._h = None  # so that __del__ after a failed create has nothing to close
        text = config if isinstance(config, str) else json.dumps(config)
        handle, err = _P(), _P()
        _check(_lib.storage_create(text.encode(), ctypes.byref(handle), ctypes.byref(err)), err)
        self._h = handle

    def close(self):
        """Go's DestroyFunc. Idempotent."""
        if self._h:
            _lib.storage_destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def health(self):
        err = _P()
        _check(_lib.storage_health(self._h, ctypes.byref(err)), err)

    def get_with_info(self, key, resource_version=None, ignore_not_found=False):
        """(object bytes or None, resource_version, stale)."""
        out, info, err = _Bytes(), _Info(), _P()
        _check(_lib.storage_get_with_info(self._h, _enc(key), _enc(resource_version), ignore_not_found,
                                          ctypes.byref(out), ctypes.byref(info), ctypes.byref(err)), err)
        return _take(out), info.resource_version, info.stale

    def get(self, key, resource_version=None, ignore_not_found=False):
        return self.get_with_info(key, resource_version, ignore_not_found)[0]

    def create(self, key, obj, ttl_seconds=0):
        """Stores `obj` (a dict, or bytes) if `key` is absent; returns the stored object's bytes."""
        data = _body(obj)
        out, err = _Bytes(), _P()
        _check(_lib.storage_create_object(self._h, _enc(key), data, len(data), ttl_seconds,
                                          ctypes.byref(out), ctypes.byref(err)), err)
        return _take(out)

    def delete(self, key):
        out, err = _Bytes(), _P()
        _check(_lib.storage_delete(self._h, _enc(key), None, ctypes.byref(out), ctypes.byref(err)), err)
        return _take(out)

    def guaranteed_update(self, key, try_update, ignore_not_found=False, preconditions=None):
        """Go's GuaranteedUpdate: calls try_update(current) with the stored object's bytes (None when
        absent and ignore_not_found) and writes what it returns (bytes, or a dict) only if the key is
        unchanged since the read, calling it again otherwise. Returns the stored object's bytes.
        try_update may also return a pair (object, ttl_seconds), as Go's tryUpdate returns a TTL:
        0 for none, N for an N-second TTL; a plain object gives none (etcd3 writes it without a
        lease, etcd2 keeps the key's TTL).

        try_update runs on the calling thread, possibly several times; it may call any Storage,
        this one included. An exception it raises aborts the update and is raised here unchanged."""
        state = _UpdateState(try_update)
        callback = _UPDATE_FN(state.trampoline)  # alive until the call returns
        pre = None
        if preconditions is not None:
            pre = ctypes.byref(_Preconditions(_enc(preconditions.uid), _enc(preconditions.resource_version)))
        out, err = _Bytes(), _P()
        code = _lib.storage_guaranteed_update_ttl(self._h, _enc(key), ignore_not_found, pre, callback, None,
                                                  ctypes.byref(out), ctypes.byref(err))
        state.result = None
        if state.error is not None:
            _lib.storage_error_free(err.value)
            error, state.error = state.error, None  # no cycle through the traceback's frames
            raise error
        _check(code, err)
        return _take(out)

    def metrics(self):
        """The store's metrics in the Prometheus text format (0.0.4); this handle's own counts."""
        text, err = _P(), _P()
        _check(_lib.storage_metrics(self._h, ctypes.byref(text), ctypes.byref(err)), err)
        try:
            return ctypes.string_at(text.value).decode()
        finally:
            _lib.storage_string_free(text)

    def list(self, key, limit=0, resource_version=None):
        """Yields the items of every page, following continue tokens."""
        token = None
        while True:
            out, err = _Bytes(), _P()
            _check(_lib.storage_list(self._h, _enc(key), _enc(resource_version), limit, _enc(token),
                                     ctypes.byref(out), ctypes.byref(err)), err)
            page = json.loads(_take(out))
            yield from page["items"]
            token = page["metadata"].get("continue")
            if not token:
                return

    def count(self, key):
        n, err = ctypes.c_int64(), _P()
        _check(_lib.storage_count(self._h, _enc(key), ctypes.byref(n), ctypes.byref(err)), err)
        return n.value

    def compact_revision(self):
        """Go's CompactRevision: the revision etcd was last compacted to, as recorded under
        compact_rev_key (0 when none is)."""
        rev, err = ctypes.c_int64(), _P()
        _check(_lib.storage_compact_revision(self._h, ctypes.byref(rev), ctypes.byref(err)), err)
        return rev.value

    def reencrypt(self, key="/", progress=None):
        """Rewrites every stale object under key (a directory) under the current encryption key, as
        operators do after a key rotation; returns (seen, rewritten, failed). progress(counts, failure)
        is called after each page (failure None) and each object that could not be rewritten (failure
        a StorageError naming its key); an exception it raises stops the walk and is raised here."""
        raised = []

        def trampoline(_user_data, counts, failure):
            try:
                if progress is not None:
                    c = counts.contents
                    error = None
                    if failure:
                        code = _lib.storage_error_code(failure)
                        error = _BY_CODE.get(code, StorageError)(
                            code, _lib.storage_error_message(failure).decode(errors="replace"),
                            _lib.storage_error_key(failure).decode(errors="replace"),
                            _lib.storage_error_resource_version(failure))
                    progress((c.seen, c.rewritten, c.failed), error)
                return 0
            except BaseException as e:  # raised again once C has returned
                raised.append(e)
                return _ABORT

        callback = _REENCRYPT_FN(trampoline)  # alive until the call returns
        out, err = _Counts(), _P()
        code = _lib.storage_reencrypt(self._h, _enc(key), callback, None, ctypes.byref(out), ctypes.byref(err))
        if raised:
            _lib.storage_error_free(err.value)
            raise raised.pop()
        _check(code, err)
        return out.seen, out.rewritten, out.failed

    def watch(self, key, resource_version=None, recursive=False, progress_notify=False):
        """A Watch; progress_notify asks etcd for BOOKMARK events while the watch is idle."""
        return Watch(self, key, resource_version, recursive, progress_notify)


class _UpdateState:
    """One guaranteed_update's callback: its last result must outlive the callback (the library reads
    it after the callback returns), and an exception must not unwind through C."""

    def __init__(self, try_update):
        self.try_update = try_update
        self.result = None
        self.error = None

    def trampoline(self, _user_data, current, current_len, out_new, out_new_len, out_ttl):
        try:
            new = self.try_update(ctypes.string_at(current, current_len) if current else None)
            if isinstance(new, tuple):
                new, ttl = new
                if not isinstance(ttl, int) or not 0 <= ttl < 2**63:
                    raise ValueError(f"ttl_seconds must be an int from 0 to 2**63-1, not {ttl!r}")
                out_ttl[0] = ttl
            new = _body(new)
            self.result = ctypes.create_string_buffer(bytes(new), len(new))
            out_new[0] = ctypes.cast(self.result, _U8P)
            out_new_len[0] = len(new)
            return 0
        except BaseException as e:  # KeyboardInterrupt too: raised again once C has returned
            self.error = e
            return _ABORT


class Event:
    TYPES = {0: "ADDED", 1: "MODIFIED", 2: "DELETED", 3: "BOOKMARK"}

    def __init__(self, type_, key, resource_version, obj, prev):
        self.type, self.key, self.resource_version, self.object, self.prev_object = (
            type_, key, resource_version, obj, prev)


class Watch:
    """A pull-style watch (next() per event); a context manager."""

    def __init__(self, storage, key, resource_version, recursive, progress_notify):
        self._h = None
        handle, err = _P(), _P()
        flags = (1 if recursive else 0) | (2 if progress_notify else 0)  # STORAGE_WATCH_RECURSIVE, _PROGRESS_NOTIFY
        _check(_lib.storage_watch_create_with_flags(storage._h, _enc(key), _enc(resource_version), flags,
                                                    ctypes.byref(handle), ctypes.byref(err)), err)
        self._h = handle

    def request_progress(self):
        """Go's RequestWatchProgress: a BOOKMARK event (no key, empty object) follows every event up
        to etcd's revision. UnsupportedError before etcd 3.4.31/3.5.13 and on etcd2."""
        err = _P()
        _check(_lib.storage_watch_request_progress(self._h, ctypes.byref(err)), err)

    def next(self, timeout_ms=1000):
        """The next Event, or None when none came within the timeout."""
        ev, err = _P(), _P()
        code = _lib.storage_watch_next(self._h, timeout_ms, ctypes.byref(ev), ctypes.byref(err))
        if code == 6:  # STORAGE_ERR_TIMEOUT: nothing yet
            _lib.storage_error_free(err.value)
            return None
        _check(code, err)

        def obj(getter):
            n = ctypes.c_size_t()
            p = getter(ev, ctypes.byref(n))
            return ctypes.string_at(p, n.value) if p else None

        event = Event(Event.TYPES[_lib.storage_watch_event_get_type(ev)],
                      _lib.storage_watch_event_key(ev).decode(),
                      _lib.storage_watch_event_resource_version(ev),
                      obj(_lib.storage_watch_event_object), obj(_lib.storage_watch_event_prev_object))
        _lib.storage_watch_event_free(ev)
        return event

    def close(self):
        if self._h:
            _lib.storage_watch_destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()
