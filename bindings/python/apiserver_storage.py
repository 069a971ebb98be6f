"""Python bindings for apiserver-storage over ctypes (no compiled extension).

    with Storage({"server_list": ["http://127.0.0.1:2379"]}) as s:
        s.health()
        obj = s.get("/configmaps/default/settings")     # bytes, or None when ignored
        created = s.create("/configmaps/default/new", {"kind": "ConfigMap", "metadata": {"name": "new"}})
        for page in s.list("/configmaps", limit=500): ...
        with s.watch("/configmaps", resource_version="0", recursive=True) as w:
            event = w.next(timeout_ms=1000)

Errors raise StorageError subclasses chosen by code (KeyNotFoundError, ...).
ctypes releases the GIL during every call into the library. The library is
found through APISERVER_STORAGE_LIB, or as libapiserver_storage.so on the
loader's path.
"""
import ctypes
import json
import os

__all__ = [
    "Storage", "Watch", "Event", "StorageError", "KeyNotFoundError", "KeyExistsError",
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
    _fields_ = [("found", ctypes.c_bool), ("resource_version", ctypes.c_int64), ("stale", ctypes.c_bool)]


_P = ctypes.c_void_p
_S = ctypes.c_char_p


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
        "storage_list": (ctypes.c_int, [_P, _S, _S, ctypes.c_int64, _S, ctypes.POINTER(_Bytes),
                                        ctypes.POINTER(_P)]),
        "storage_count": (ctypes.c_int, [_P, _S, ctypes.POINTER(ctypes.c_int64), ctypes.POINTER(_P)]),
        "storage_watch_create": (ctypes.c_int, [_P, _S, _S, ctypes.c_bool, ctypes.POINTER(_P),
                                                ctypes.POINTER(_P)]),
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

    def watch(self, key, resource_version=None, recursive=False):
        return Watch(self, key, resource_version, recursive)


class Event:
    TYPES = {0: "ADDED", 1: "MODIFIED", 2: "DELETED"}

    def __init__(self, type_, key, resource_version, obj, prev):
        self.type, self.key, self.resource_version, self.object, self.prev_object = (
            type_, key, resource_version, obj, prev)


class Watch:
    """A pull-style watch (next() per event); a context manager."""

    def __init__(self, storage, key, resource_version, recursive):
        self._h = None
        handle, err = _P(), _P()
        _check(_lib.storage_watch_create(storage._h, _enc(key), _enc(resource_version), recursive,
                                         ctypes.byref(handle), ctypes.byref(err)), err)
        self._h = handle

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
