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

    def test_ttls_bookmarks_and_compact_revision(self):
        created = json.loads(self.s.guaranteed_update(
            "/cms/t", lambda cur: ({"metadata": {"name": "t"}}, 1), ignore_not_found=True))
        with self.assertRaises(ValueError):
            self.s.guaranteed_update("/cms/t", lambda cur: ({"metadata": {"name": "t"}, "n": 1}, -1))
        with self.s.watch("/cms", created["metadata"]["resourceVersion"], recursive=True) as w:
            event = None
            for _ in range(30):
                event = w.next()
                if event is not None:
                    break
            self.assertEqual((event.type, event.key), ("DELETED", "/pytest/cms/t"), "the 1 s lease expired")
            if os.environ.get("ETCD_ANSWERS_PROGRESS") == "1":
                w.request_progress()
                bookmark = w.next(30000)
                self.assertEqual((bookmark.type, bookmark.key, bookmark.object), ("BOOKMARK", "", b""))
                self.assertGreaterEqual(bookmark.resource_version, event.resource_version)
            else:
                with self.assertRaises(st.UnsupportedError):
                    w.request_progress()
        self.assertEqual(self.s.compact_revision(), 0)

    def test_reencrypt_after_a_key_rotation(self):
        k1 = {"name": "k1", "secret": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
        k2 = {"name": "k2", "secret": "HxwdHh8AAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRo="}

        def encrypted(*keys):
            return st.Storage(config(prefix="/pyreencrypt",
                                     transformer={"providers": [{"aesgcm": {"keys": list(keys)}}]}))

        with encrypted(k1) as old:
            old.create("/secrets/a", {"kind": "Secret", "metadata": {"name": "a"}})
        with encrypted(k2, k1) as rotated:
            pages = []
            self.assertEqual(rotated.reencrypt("/secrets", lambda counts, failure: pages.append((counts, failure))),
                             (1, 1, 0))
            self.assertEqual(pages, [((1, 1, 0), None)])
            self.assertFalse(rotated.get_with_info("/secrets/a")[2])

            def stop(counts, failure):
                raise KeyboardInterrupt
            with self.assertRaises(KeyboardInterrupt):
                rotated.reencrypt("/secrets", stop)

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

    def test_guaranteed_update_from_many_threads(self):
        threads_, increments = 8, 25

        def increment(current):
            obj = json.loads(current) if current else {"metadata": {"name": "n"}, "count": 0}
            obj["count"] += 1
            return json.dumps(obj).encode()

        failures = []

        def worker():
            try:
                for _ in range(increments):
                    self.s.guaranteed_update("/cms/n", increment, ignore_not_found=True)
            except Exception as e:  # reported by the assertion below
                failures.append(e)

        threads = [threading.Thread(target=worker) for _ in range(threads_)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        self.assertEqual(json.loads(self.s.get("/cms/n"))["count"], threads_ * increments)

    def test_guaranteed_update_preconditions(self):
        created = json.loads(self.s.create("/cms/p", {"metadata": {"name": "p", "uid": "u1"}, "v": 1}))
        rv = created["metadata"]["resourceVersion"]
        calls = []

        def bump(current):
            calls.append(current)
            obj = json.loads(current)
            obj["v"] += 1
            return obj

        with self.assertRaises(st.InvalidObjectError) as caught:
            self.s.guaranteed_update("/cms/p", bump, preconditions=st.Preconditions(uid="u2"))
        self.assertIn("u2", caught.exception.message)
        with self.assertRaises(st.InvalidObjectError):
            self.s.guaranteed_update("/cms/p", bump, preconditions=st.Preconditions(resource_version="1"))
        self.assertEqual(json.loads(self.s.get("/cms/p"))["v"], 1)
        updated = json.loads(self.s.guaranteed_update(
            "/cms/p", bump, preconditions=st.Preconditions(uid="u1", resource_version=rv)))
        self.assertEqual(updated["v"], 2)
        self.assertGreater(int(updated["metadata"]["resourceVersion"]), int(rv))
        with self.assertRaises(st.KeyNotFoundError):
            self.s.guaranteed_update("/cms/absent", bump)
        self.assertIsNone(self.s.get("/cms/absent", ignore_not_found=True))

    def test_try_update_may_call_the_library(self):
        self.s.create("/cms/src", {"metadata": {"name": "src"}, "v": 7})
        self.s.create("/cms/dst", {"metadata": {"name": "dst"}, "v": 0})
        with st.Storage(config()) as other:
            def copy(current):
                obj = json.loads(current)
                obj["v"] = json.loads(other.get("/cms/src"))["v"] + self.s.count("/cms")
                return obj

            updated = json.loads(self.s.guaranteed_update("/cms/dst", copy))
        self.assertEqual(updated["v"], 9)

    def test_guaranteed_update_exception_aborts(self):
        self.s.create("/cms/e", {"metadata": {"name": "e"}, "v": 1})
        before = self.s.get_with_info("/cms/e")

        class Refused(Exception):
            pass

        refusal = Refused("no")
        calls = []

        def refuse(current):
            calls.append(json.loads(current)["v"])
            raise refusal

        with self.assertRaises(Refused) as caught:
            self.s.guaranteed_update("/cms/e", refuse)
        self.assertIs(caught.exception, refusal)
        self.assertEqual(calls, [1])  # aborted, not retried
        self.assertEqual(self.s.get_with_info("/cms/e"), before)
        def interrupted(current):
            raise KeyboardInterrupt

        with self.assertRaises(KeyboardInterrupt):
            self.s.guaranteed_update("/cms/e", interrupted)
        with self.assertRaises(TypeError):  # not JSON-serialisable: raised by the binding in the callback
            self.s.guaranteed_update("/cms/e", lambda current: {"v": object()})
        self.assertEqual(self.s.get_with_info("/cms/e"), before)
        # The handle still works after aborted updates.
        updated = self.s.guaranteed_update("/cms/e", lambda current: {**json.loads(current), "v": 3})
        self.assertEqual(json.loads(updated)["v"], 3)

    def test_metrics_count_this_handles_reads(self):
        self.s.create("/cms/m", {"metadata": {"name": "m"}})
        gets = 9
        with st.Storage(config()) as s:
            for _ in range(gets):
                s.get("/cms/m")
            text = s.metrics()
        range_ok = ('grpc_client_handled_total{grpc_code="OK",grpc_method="Range",'
                    'grpc_service="etcdserverpb.KV",grpc_type="unary"}')
        self.assertIn(f"\n{range_ok} {gets}\n", text)
        self.assertIn("# TYPE grpc_client_handled_total counter\n", text)
        with self.assertRaises(st.InvalidArgumentError):
            s.metrics()

    def test_context_manager_and_version(self):
        with st.Storage(config()) as s:
            s.health()
        self.assertIsNone(s._h)
        self.assertEqual(st.version().count("."), 2)


if __name__ == "__main__":
    unittest.main()
