"""Tests of the ctypes bindings against the etcd named by ETCD_ENDPOINT
(tests/bindings.rs starts one and runs this file)."""
import json
import os
import threading
import unittest

import apiserver_storage as st

ENDPOINT = os.environ["ETCD_ENDPOINT"]


def config(**extra):
    return {"server_list": [ENDPOINT], "prefix": "/pytest", **extra}


class BindingTest(unittest.TestCase):
    def setUp(self):
        self.s = st.Storage(config())
        for item in self.s.list("/cms"):
            self.s.delete("/cms/" + item["metadata"]["name"])

    def tearDown(self):
        self.s.close()

    def test_create_get_delete(self):
        created = json.loads(self.s.create("/cms/a", {"kind": "ConfigMap", "metadata": {"name": "a"}}))
        rv = created["metadata"]["resourceVersion"]
        obj, got_rv, stale = self.s.get_with_info("/cms/a")
        self.assertEqual(json.loads(obj)["metadata"]["resourceVersion"], rv)
        self.assertEqual(str(got_rv), rv)
        self.assertFalse(stale)
        with self.assertRaises(st.KeyExistsError):
            self.s.create("/cms/a", {"metadata": {"name": "a"}})
        self.assertEqual(json.loads(self.s.delete("/cms/a"))["metadata"]["name"], "a")
        with self.assertRaises(st.KeyNotFoundError) as caught:
            self.s.get("/cms/a")
        self.assertEqual(caught.exception.key, "/pytest/cms/a")
        self.assertIsNone(self.s.get("/cms/a", ignore_not_found=True))

    def test_errors_by_code(self):
        with self.assertRaises(st.InvalidConfigError):
            st.Storage({"server_list": [ENDPOINT], "colour": "blue"})
        with self.assertRaises(st.InvalidArgumentError):
            self.s.get("/../../etc")
        with self.assertRaises(st.InvalidObjectError):
            self.s.create("/cms/x", {"metadata": {"resourceVersion": "5"}})
        self.assertIsInstance(st.KeyNotFoundError(1, "m"), st.StorageError)

    def test_list_pages_and_count(self):
        for i in range(7):
            self.s.create(f"/cms/c{i}", {"metadata": {"name": f"c{i}"}})
        names = [item["metadata"]["name"] for item in self.s.list("/cms", limit=3)]
        self.assertEqual(names, [f"c{i}" for i in range(7)])
        self.assertEqual(self.s.count("/cms"), 7)

    def test_watch(self):
        with self.s.watch("/cms", resource_version="0", recursive=True) as w:
            self.assertIsNone(w.next(timeout_ms=50))
            self.s.create("/cms/w", {"metadata": {"name": "w"}})
            self.s.delete("/cms/w")
            added = w.next(timeout_ms=5000)
            deleted = w.next(timeout_ms=5000)
        self.assertEqual((added.type, added.key), ("ADDED", "/pytest/cms/w"))
        self.assertEqual(deleted.type, "DELETED")
        self.assertIsNotNone(deleted.object)

    def test_threads_share_a_handle(self):
        self.s.create("/cms/t", {"metadata": {"name": "t"}})
        failures = []

        def reader():
            for _ in range(50):
                if json.loads(self.s.get("/cms/t"))["metadata"]["name"] != "t":
                    failures.append(1)

        threads = [threading.Thread(target=reader) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])

    def test_context_manager_and_version(self):
        with st.Storage(config()) as s:
            s.health()
        self.assertIsNone(s._h)
        self.assertEqual(st.version().count("."), 2)


if __name__ == "__main__":
    unittest.main()
