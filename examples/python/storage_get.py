#!/usr/bin/env python3
"""storage_get in Python, through the ctypes bindings (bindings/python): read one
Kubernetes object from etcd the way kube-apiserver does, decrypting it when the
config names an EncryptionConfiguration.

    storage_get.py CONFIG KEY

CONFIG is the config JSON itself (starting with '{') or a file holding it; KEY is
relative to the config's prefix, e.g. /secrets/default/db-password. Prints the
resourceVersion, then the object; on failure prints the error and exits with
its storage code. The bindings are found next to this repository's checkout
(or on PYTHONPATH), the library through APISERVER_STORAGE_LIB or the loader's path.
"""
import os
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
import apiserver_storage  # noqa: E402


def main():
    if len(sys.argv) != 3:
        print("usage: storage_get.py CONFIG_JSON|CONFIG_FILE KEY", file=sys.stderr)
        return 2
    config, key = sys.argv[1:]
    if not config.lstrip().startswith("{"):
        with open(config) as f:
            config = f.read()
    try:
        with apiserver_storage.Storage(config) as s:
            s.health()
            data, resource_version, stale = s.get_with_info(key)
    except apiserver_storage.StorageError as e:
        print(f"storage_get: {e}", file=sys.stderr)
        return e.code
    print(f"resourceVersion: {resource_version}" + (" (stale: rewrite to re-encrypt)" if stale else ""))
    print(data.decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
