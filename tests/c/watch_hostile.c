/* Watches and error codes under hostile conditions, through the C ABI, driven
 * by tests/c_watch_hostile.rs: `watch_hostile CASE ARGS...`. Each case exits 0
 * when every check passes. */
#include <pthread.h>

#include "check.h"

static storage_watch *must_watch(storage *s, const char *key, const char *rv) {
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create(s, key, rv, true, &w, &err);
  if (rc != STORAGE_OK) {
    fprintf(stderr, "storage_watch_create: %d %s\n", rc, storage_error_message(err));
    exit(1);
  }
  return w;
}

/* A key of `n` bytes under /hostile/, NUL-terminated; free it. */
static char *long_key(size_t n) {
  char *key = malloc(n + 1);
  if (key == NULL) exit(1);
  memcpy(key, "/hostile/", 9);
  memset(key + 9, 'k', n - 9);
  key[n] = '\0';
  return key;
}

/* A ConfigMap of about `n` bytes, NUL-terminated; free it. */
static char *big_object(size_t n) {
  const char *head = "{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\"},\"data\":{\"x\":\"";
  const char *tail = "\"}}";
  size_t h = strlen(head), t = strlen(tail);
  char *obj = malloc(n + h + t + 1);
  if (obj == NULL) exit(1);
  memcpy(obj, head, h);
  memset(obj + h, 'x', n);
  memcpy(obj + h + n, tail, t + 1);
  return obj;
}

struct waiter {
  storage_watch *w;
  uint32_t timeout_ms;
  storage_code rc;
  double took;
  int done;
  pthread_mutex_t mu;
};

static void *wait_next(void *arg) {
  struct waiter *x = arg;
  storage_watch_event *e = NULL;
  double t0 = now_s();
  storage_code rc = storage_watch_next(x->w, x->timeout_ms, &e, NULL);
  pthread_mutex_lock(&x->mu);
  x->rc = rc;
  x->took = now_s() - t0;
  x->done = 1;
  pthread_mutex_unlock(&x->mu);
  storage_watch_event_free(e);
  return NULL;
}

static int finished(struct waiter *x) {
  pthread_mutex_lock(&x->mu);
  int done = x->done;
  pthread_mutex_unlock(&x->mu);
  return done;
}

/* own_timeouts CONFIG: on a quiet watch, a call waiting 5 s does not hold up
 * another thread's 100 ms call: each call returns within its own timeout. */
static void case_own_timeouts(char **argv) {
  storage *s = must_create(argv[0]);
  storage_watch *w = must_watch(s, "/quiet/nothing", NULL);
  /* Let the watch's initial (empty) list finish. */
  storage_watch_event *e = NULL;
  CHECK(storage_watch_next(w, 1000, &e, NULL) == STORAGE_ERR_TIMEOUT, "a quiet watch gave something");

  struct waiter slow = {w, 5000, STORAGE_OK, 0, 0, PTHREAD_MUTEX_INITIALIZER};
  pthread_t t;
  if (pthread_create(&t, NULL, wait_next, &slow) != 0) exit(1);
  struct timespec pause = {0, 300 * 1000 * 1000};
  nanosleep(&pause, NULL);

  storage_error *err = NULL;
  double t0 = now_s();
  storage_code rc = storage_watch_next(w, 100, &e, &err);
  double took = now_s() - t0;
  /* Serialised behind the other call, it would come back after about 4.7 s. */
  CHECK(!finished(&slow), "the 100 ms call came back only after the 5 s call (%.2f s)", took);
  /* About 0.1 s natively; valgrind on a loaded machine is slower. */
  CHECK(took < 2.5, "a 100 ms call took %.2f s while another call waited", took);
  expect_error(rc, err, STORAGE_ERR_TIMEOUT, "within 100 ms", "100 ms call");
  CHECK(e == NULL, "out_event written on failure");
  /* 0 only checks, also while the watch is busy. */
  t0 = now_s();
  CHECK(storage_watch_next(w, 0, &e, NULL) == STORAGE_ERR_TIMEOUT, "0 ms call");
  CHECK(!finished(&slow), "the 0 ms call came back only after the 5 s call");
  CHECK(now_s() - t0 < 2.5, "a 0 ms call took %.2f s", now_s() - t0);

  pthread_join(t, NULL);
  CHECK(slow.rc == STORAGE_ERR_TIMEOUT, "5 s call: %d", slow.rc);
  CHECK(slow.took > 4.5 && slow.took < 9.0, "the 5 s call took %.2f s", slow.took);
  /* The watch goes on. */
  CHECK(storage_watch_next(w, 100, &e, NULL) == STORAGE_ERR_TIMEOUT, "after both calls");
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* watch_ends CONFIG KEY_BYTES CODE NEEDLE: a watch of a KEY_BYTES-byte key
 * (or of /hostile when KEY_BYTES is 0) ends with CODE and NEEDLE in its
 * message instead of timing out, and says so again on every later call. */
static void case_watch_ends(char **argv) {
  storage *s = must_create(argv[0]);
  size_t n = (size_t)strtoul(argv[1], NULL, 10);
  storage_code want = (storage_code)atoi(argv[2]);
  char *key = n > 0 ? long_key(n) : NULL;
  storage_watch *w = must_watch(s, key != NULL ? key : "/hostile", "0");
  free(key);
  for (int i = 0; i < 2; i++) {
    storage_watch_event *e = NULL;
    storage_error *err = NULL;
    double t0 = now_s();
    storage_code rc = storage_watch_next(w, 20000, &e, &err);
    CHECK(now_s() - t0 < 15.0, "the watch took %.2f s to end", now_s() - t0);
    expect_error(rc, err, want, argv[3], "ended watch");
    CHECK(e == NULL, "out_event written on failure");
  }
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* sizes CONFIG: objects and keys over etcd's size limits are
 * INVALID_ARGUMENT naming the limit, not INTERNAL. */
static void case_sizes(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  storage_bytes out = {NULL, 0};
  char *obj = big_object(2500 * 1024);
  storage_code rc =
      storage_create_object(s, "/hostile/big", (const uint8_t *)obj, strlen(obj), 0, &out, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "2097152 bytes", "2.5 MiB object");
  free(obj);
  err = NULL;
  obj = big_object(1600 * 1024);
  rc = storage_create_object(s, "/hostile/big", (const uint8_t *)obj, strlen(obj), 0, &out, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "--max-request-bytes", "1.6 MiB object");
  free(obj);
  err = NULL;
  char *key = long_key(2500 * 1024);
  rc = storage_get(s, key, NULL, false, &out, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "2097152 bytes", "2.5 MiB key");
  err = NULL;
  int64_t count = -1;
  rc = storage_count(s, key, &count, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "2097152 bytes", "count of a 2.5 MiB key");
  free(key);
  storage_destroy(s);
}

/* wrong_peer CONFIG ENDPOINT NEEDLE: an endpoint answering HTTP/1.1 is
 * UNREACHABLE naming it, for get, count and health, and at once. */
static void case_wrong_peer(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  storage_bytes out = {NULL, 0};
  double t0 = now_s();
  storage_code rc = storage_get(s, "/configmaps/ns/a", NULL, false, &out, &err);
  CHECK(storage_error_message(err) != NULL && strstr(storage_error_message(err), argv[1]) != NULL,
        "get does not name %s: %s", argv[1], storage_error_message(err));
  expect_error(rc, err, STORAGE_ERR_UNREACHABLE, argv[2], "get");
  err = NULL;
  int64_t count = -1;
  rc = storage_count(s, "/configmaps", &count, &err);
  expect_error(rc, err, STORAGE_ERR_UNREACHABLE, argv[2], "count");
  err = NULL;
  rc = storage_health(s, &err);
  expect_error(rc, err, STORAGE_ERR_UNREACHABLE, argv[2], "health");
  CHECK(now_s() - t0 < 10.0, "a wrong peer took %.2f s", now_s() - t0);
  storage_destroy(s);
}

/* tls_failure CONFIG NEEDLE: a server failing TLS verification, or a
 * plaintext server asked over https://, is UNREACHABLE with NEEDLE for a get,
 * and ends a watch the same way; the process survives the server hanging up. */
static void case_tls_failure(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  storage_bytes out = {NULL, 0};
  double t0 = now_s();
  storage_code rc = storage_get(s, "/configmaps/ns/a", NULL, false, &out, &err);
  expect_error(rc, err, STORAGE_ERR_UNREACHABLE, argv[1], "get");
  CHECK(now_s() - t0 < 10.0, "a TLS failure took %.2f s", now_s() - t0);
  storage_watch *w = must_watch(s, "/configmaps", "0");
  for (int i = 0; i < 2; i++) {
    storage_watch_event *e = NULL;
    err = NULL;
    t0 = now_s();
    rc = storage_watch_next(w, 20000, &e, &err);
    CHECK(now_s() - t0 < 10.0, "the watch took %.2f s to end", now_s() - t0);
    expect_error(rc, err, STORAGE_ERR_UNREACHABLE, argv[1], "watch");
    CHECK(e == NULL, "out_event written on failure");
  }
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* hangups CONFIG: an endpoint that answers and hangs up at once, so the
 * library's writes meet a closed socket. The process keeps SIGPIPE's default
 * action, which would kill it: every call must come back, UNREACHABLE. */
static void case_hangups(char **argv) {
  storage *s = must_create(argv[0]);
  for (int i = 0; i < 5; i++) {
    storage_error *err = NULL;
    storage_bytes out = {NULL, 0};
    storage_code rc = storage_get(s, "/configmaps/ns/a", NULL, false, &out, &err);
    CHECK(rc == STORAGE_ERR_UNREACHABLE, "get %d: %d %s", i, rc, storage_error_message(err));
    storage_error_free(err);
    int64_t count = -1;
    err = NULL;
    rc = storage_count(s, "/configmaps", &count, &err);
    CHECK(rc == STORAGE_ERR_UNREACHABLE, "count %d: %d %s", i, rc, storage_error_message(err));
    storage_error_free(err);
  }
  storage_destroy(s);
}

int main(int argc, char **argv) {
  static const struct test_case cases[] = {
      {"own_timeouts", 1, case_own_timeouts},
      {"watch_ends", 4, case_watch_ends},
      {"sizes", 1, case_sizes},
      {"wrong_peer", 3, case_wrong_peer},
      {"tls_failure", 2, case_tls_failure},
      {"hangups", 1, case_hangups},
  };
  return run_case(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
