/* Bookmarks, watch flags, TTLs from update callbacks and the compacted
 * revision under hostile use, through the C ABI, driven by tests/c_bookmarks_hostile.rs:
 * `bookmarks_hostile CASE ARGS...`. Each case exits 0 when every check passes. */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

static storage_error *take_err(storage_error **err) {
  storage_error *e = *err;
  *err = NULL;
  return e;
}

/* Creates `key` holding a small object; returns its resourceVersion (-1 on failure). */
static int64_t must_write(storage *s, const char *key) {
  const char *obj = "{\"metadata\":{\"name\":\"x\"}}";
  storage_error *err = NULL;
  storage_code rc = storage_create_object(s, key, (const uint8_t *)obj, strlen(obj), 0, NULL, &err);
  CHECK(rc == STORAGE_OK, "create %s: %d %s", key, rc, storage_error_message(err));
  storage_error_free(err);
  if (rc != STORAGE_OK) return -1;
  storage_bytes b = {NULL, 0};
  storage_object_info info = {0};
  rc = storage_get_with_info(s, key, NULL, false, &b, &info, NULL);
  storage_bytes_free(b);
  return rc == STORAGE_OK ? info.resource_version : -1;
}

/* What a watch delivered, in order. */
struct seen {
  int64_t *rv;
  int *bookmark;
  size_t n, cap;
};

static void seen_add(struct seen *x, int64_t rv, int bookmark) {
  if (x->n == x->cap) {
    x->cap = x->cap ? 2 * x->cap : 1024;
    x->rv = realloc(x->rv, x->cap * sizeof *x->rv);
    x->bookmark = realloc(x->bookmark, x->cap * sizeof *x->bookmark);
    if (x->rv == NULL || x->bookmark == NULL) exit(2);
  }
  x->rv[x->n] = rv;
  x->bookmark[x->n] = bookmark;
  x->n++;
}

/* Checks one event's shape and records it; returns its type. */
static storage_watch_event_type record(struct seen *x, storage_watch_event *e) {
  storage_watch_event_type t = storage_watch_event_get_type(e);
  int64_t rv = storage_watch_event_resource_version(e);
  size_t len = 1, prev_len = 1;
  const uint8_t *obj = storage_watch_event_object(e, &len);
  const uint8_t *prev = storage_watch_event_prev_object(e, &prev_len);
  if (t == STORAGE_WATCH_BOOKMARK) {
    CHECK(obj != NULL && len == 0, "a bookmark's object is empty and not NULL (%p, %zu)", (const void *)obj, len);
    CHECK(prev == NULL && prev_len == 0, "a bookmark has no previous object");
    CHECK(strcmp(storage_watch_event_key(e), "") == 0, "a bookmark's key is %s", storage_watch_event_key(e));
  } else {
    CHECK(t == STORAGE_WATCH_ADDED, "event type %d", t);
    CHECK(obj != NULL && len > 0, "an event without its object");
  }
  seen_add(x, rv, t == STORAGE_WATCH_BOOKMARK);
  return t;
}

/* Checks what a watch delivered against the revisions written under its key
 * (`writes`, in order): every write exactly once, in order; bookmarks never
 * go back and never come ahead of an event they cover. Returns the number
 * of bookmarks. */
static size_t check_order(const struct seen *x, const int64_t *writes, size_t nwrites, const char *what) {
  int64_t last_event = 0, last_bookmark = 0;
  size_t next_write = 0, bookmarks = 0;
  for (size_t i = 0; i < x->n; i++) {
    int64_t rv = x->rv[i];
    if (x->bookmark[i]) {
      bookmarks++;
      CHECK(rv >= last_event, "%s: a bookmark at %lld after an event at %lld", what, (long long)rv,
            (long long)last_event);
      CHECK(rv >= last_bookmark, "%s: a bookmark at %lld after one at %lld", what, (long long)rv,
            (long long)last_bookmark);
      /* Every write up to the bookmark came before it. */
      CHECK(next_write >= nwrites || writes[next_write] > rv,
            "%s: a bookmark at %lld came before the write at %lld", what, (long long)rv,
            (long long)writes[next_write]);
      if (rv > last_bookmark) last_bookmark = rv;
    } else {
      CHECK(rv > last_event, "%s: an event at %lld after one at %lld", what, (long long)rv, (long long)last_event);
      CHECK(rv > last_bookmark, "%s: an event at %lld after a bookmark at %lld", what, (long long)rv,
            (long long)last_bookmark);
      CHECK(next_write < nwrites && writes[next_write] == rv, "%s: an event at %lld, want the write at %lld", what,
            (long long)rv, next_write < nwrites ? (long long)writes[next_write] : -1LL);
      if (next_write < nwrites && writes[next_write] == rv) next_write++;
      last_event = rv;
    }
  }
  CHECK(next_write == nwrites, "%s: %zu of %zu writes delivered", what, next_write, nwrites);
  return bookmarks;
}

struct writer {
  storage *s;
  size_t n;
  int64_t *revs; /* of the writes under /bm */
  int done;
  pthread_mutex_t mu;
};

static void *write_loop(void *p) {
  struct writer *x = p;
  for (size_t i = 0; i < x->n; i++) {
    char key[64];
    snprintf(key, sizeof key, "/bm/%zu", i);
    x->revs[i] = must_write(x->s, key);
    /* Writes elsewhere move etcd's revision past the watch's last event. */
    snprintf(key, sizeof key, "/elsewhere/%zu", i);
    must_write(x->s, key);
    struct timespec pause = {0, 2 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  pthread_mutex_lock(&x->mu);
  x->done = 1;
  pthread_mutex_unlock(&x->mu);
  return NULL;
}

struct requester {
  const storage_watch *w;
  long n;
  long failed;
};

static void *request_loop(void *p) {
  struct requester *x = p;
  for (long i = 0; i < x->n; i++) {
    storage_error *err = NULL;
    storage_code rc = storage_watch_request_progress(x->w, &err);
    if (rc != STORAGE_OK) {
      if (x->failed++ == 0) fprintf(stderr, "request %ld: %d %s\n", i, rc, storage_error_message(err));
    }
    storage_error_free(err);
  }
  return NULL;
}

/* order CONFIG FLAGS WRITES REQUESTS THREADS: a watch of /bm after etcd's
 * revision, created with FLAGS, while a thread writes WRITES objects under
 * /bm (and as many elsewhere) and THREADS threads request REQUESTS bookmarks
 * in all, as this thread waits in storage_watch_next. Every write comes once,
 * in order, and every bookmark comes after the events it covers, never going
 * back; a last request (with REQUESTS 0, a progress notification) brings a
 * bookmark at the last write or later. */
static void case_order(char **argv) {
  storage *s = must_create(argv[0]);
  uint32_t flags = (uint32_t)atoi(argv[1]);
  size_t writes = (size_t)atol(argv[2]);
  long requests = atol(argv[3]);
  int threads = atoi(argv[4]);
  char rv[32];
  snprintf(rv, sizeof rv, "%lld", (long long)must_write(s, "/elsewhere/start"));
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create_with_flags(s, "/bm", rv, flags, &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  if (rc != STORAGE_OK) exit(1);

  struct writer wr = {s, writes, calloc(writes + 1, sizeof(int64_t)), 0, PTHREAD_MUTEX_INITIALIZER};
  pthread_t wt, rt[16];
  struct requester rq[16];
  if (threads > 16) threads = 16;
  if (pthread_create(&wt, NULL, write_loop, &wr) != 0) exit(2);
  for (int i = 0; i < threads; i++) {
    rq[i] = (struct requester){w, requests / threads, 0};
    if (pthread_create(&rt[i], NULL, request_loop, &rq[i]) != 0) exit(2);
  }
  struct seen x = {0};
  double deadline = now_s() + 60 * SLACK;
  int writer_done = 0;
  while (!writer_done && now_s() < deadline) {
    storage_watch_event *e = NULL;
    rc = storage_watch_next(w, 200, &e, &err);
    if (rc == STORAGE_OK) {
      record(&x, e);
      storage_watch_event_free(e);
    } else {
      CHECK(rc == STORAGE_ERR_TIMEOUT, "next: %d %s", rc, storage_error_message(err));
      if (rc != STORAGE_ERR_TIMEOUT) break;
    }
    storage_error_free(take_err(&err));
    pthread_mutex_lock(&wr.mu);
    writer_done = wr.done;
    pthread_mutex_unlock(&wr.mu);
  }
  for (int i = 0; i < threads; i++) {
    pthread_join(rt[i], NULL);
    CHECK(rq[i].failed == 0, "%ld of %ld requests failed", rq[i].failed, rq[i].n);
  }
  pthread_join(wt, NULL);
  int64_t last = writes > 0 ? wr.revs[writes - 1] : 0;
  /* A last request (or, without requests, etcd's next progress
   * notification): its bookmark comes after every write. */
  if (requests > 0) {
    rc = storage_watch_request_progress(w, &err);
    CHECK(rc == STORAGE_OK, "last request: %d %s", rc, storage_error_message(err));
    storage_error_free(take_err(&err));
  }
  int64_t final_bookmark = -1;
  while (final_bookmark < last && now_s() < deadline) {
    storage_watch_event *e = NULL;
    rc = storage_watch_next(w, 10000, &e, &err);
    CHECK(rc == STORAGE_OK, "waiting for the last bookmark: %d %s", rc, storage_error_message(err));
    storage_error_free(take_err(&err));
    if (rc != STORAGE_OK) break;
    if (record(&x, e) == STORAGE_WATCH_BOOKMARK) final_bookmark = storage_watch_event_resource_version(e);
    storage_watch_event_free(e);
  }
  CHECK(final_bookmark >= last, "no bookmark at %lld or later", (long long)last);
  size_t bookmarks = check_order(&x, wr.revs, writes, "order");
  printf("%zu events, %zu bookmarks\n", x.n - bookmarks, bookmarks);
  free(x.rv);
  free(x.bookmark);
  free(wr.revs);
  storage_watch_destroy(w);
  storage_destroy(s);
}


/* Reads a line of the driver's from stdin (without its newline). */
static void read_line(char *buf, size_t n) {
  if (fgets(buf, (int)n, stdin) == NULL) {
    fprintf(stderr, "the driver hung up\n");
    exit(2);
  }
  buf[strcspn(buf, "\n")] = '\0';
}

static void tell(const char *what) {
  printf("%s\n", what);
  fflush(stdout);
}

struct spammer {
  const storage_watch *w;
  long sent, failed;
  int stop;
  pthread_mutex_t mu;
};

/* Requests bookmarks every millisecond until told to stop. */
static void *spam_loop(void *p) {
  struct spammer *x = p;
  for (;;) {
    pthread_mutex_lock(&x->mu);
    int stop = x->stop;
    pthread_mutex_unlock(&x->mu);
    if (stop) return NULL;
    storage_error *err = NULL;
    storage_code rc = storage_watch_request_progress(x->w, &err);
    if (rc != STORAGE_OK && x->failed++ == 0)
      fprintf(stderr, "request during a restart: %d %s\n", rc, storage_error_message(err));
    storage_error_free(err);
    x->sent++;
    struct timespec pause = {0, 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

/* Reads events into `x` for `secs` seconds, or until a bookmark at `until` or later
 * (when `until` > 0); returns the last bookmark's revision. */
static int64_t read_for(storage_watch *w, struct seen *x, double secs, int64_t until) {
  double deadline = now_s() + secs;
  int64_t bookmark = -1;
  while (now_s() < deadline && (until <= 0 || bookmark < until)) {
    storage_watch_event *e = NULL;
    storage_error *err = NULL;
    storage_code rc = storage_watch_next(w, 100, &e, &err);
    if (rc == STORAGE_OK) {
      if (record(x, e) == STORAGE_WATCH_BOOKMARK) bookmark = storage_watch_event_resource_version(e);
      storage_watch_event_free(e);
    } else {
      CHECK(rc == STORAGE_ERR_TIMEOUT, "next: %d %s", rc, storage_error_message(err));
      if (rc != STORAGE_ERR_TIMEOUT) {
        storage_error_free(err);
        break;
      }
    }
    storage_error_free(err);
  }
  return bookmark;
}

/* restart CONFIG FLAGS REQUESTS: a watch of /bm with FLAGS through an etcd
 * restart; with REQUESTS 1, a thread requests a bookmark every millisecond
 * (with 0, etcd's progress notifications bring them). The driver kills
 * etcd when the program says "kill" and answers once it has, starts it
 * again when it says "start" and answers once it is ready. Requests keep
 * succeeding (they only wake the watch), and across it all every write
 * comes once, in order, with no bookmark ahead of an event. */
static void case_restart(char **argv) {
  storage *s = must_create(argv[0]);
  uint32_t flags = (uint32_t)atoi(argv[1]);
  int requests = atoi(argv[2]);
  char rv[32], line[64];
  snprintf(rv, sizeof rv, "%lld", (long long)must_write(s, "/elsewhere/start"));
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create_with_flags(s, "/bm", rv, flags, &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  if (rc != STORAGE_OK) exit(1);
  struct spammer sp = {w, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
  pthread_t st;
  if (requests) {
    /* The first request asks etcd its version; the rest only wake the watch. */
    rc = storage_watch_request_progress(w, &err);
    CHECK(rc == STORAGE_OK, "first request: %d %s", rc, storage_error_message(err));
    storage_error_free(take_err(&err));
    if (pthread_create(&st, NULL, spam_loop, &sp) != 0) exit(2);
  }
  int64_t revs[40];
  size_t n = 0;
  struct seen x = {0};
  for (int i = 0; i < 20; i++) {
    char key[32];
    snprintf(key, sizeof key, "/bm/a%d", i);
    revs[n++] = must_write(s, key);
  }
  CHECK(read_for(w, &x, 20 * SLACK, revs[n - 1]) >= revs[n - 1], "no bookmark at %lld before the restart",
        (long long)revs[n - 1]);
  tell("kill");
  read_line(line, sizeof line);
  /* etcd is down: nothing comes, and surely no bookmark past what etcd had. */
  read_for(w, &x, 1.5, 0);
  tell("start");
  read_line(line, sizeof line);
  for (int i = 0; i < 20; i++) {
    char key[32];
    snprintf(key, sizeof key, "/bm/b%d", i);
    revs[n++] = must_write(s, key);
  }
  CHECK(read_for(w, &x, 30 * SLACK, revs[n - 1]) >= revs[n - 1], "no bookmark at %lld after the restart",
        (long long)revs[n - 1]);
  pthread_mutex_lock(&sp.mu);
  sp.stop = 1;
  pthread_mutex_unlock(&sp.mu);
  if (requests) pthread_join(st, NULL);
  CHECK(sp.failed == 0, "%ld of %ld requests failed across the restart", sp.failed, sp.sent);
  size_t bookmarks = check_order(&x, revs, n, "restart");
  printf("%zu events, %zu bookmarks, %ld requests\n", x.n - bookmarks, bookmarks, sp.sent);
  free(x.rv);
  free(x.bookmark);
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* ended CONFIG RV: a watch after RV, which etcd compacted away, ends with
 * STORAGE_ERR_EXPIRED; a request on it then fails with that error rather
 * than promising a bookmark that cannot come. */
static void case_ended(char **argv) {
  storage *s = must_create(argv[0]);
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc =
      storage_watch_create_with_flags(s, "/bm", argv[1], STORAGE_WATCH_RECURSIVE | STORAGE_WATCH_PROGRESS_NOTIFY, &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  if (rc != STORAGE_OK) exit(1);
  storage_watch_event *e = NULL;
  EXPECT_ERR(storage_watch_next(w, 30000, &e, &err), STORAGE_ERR_EXPIRED, "too old", "a compacted watch");
  EXPECT_ERR(storage_watch_request_progress(w, &err), STORAGE_ERR_EXPIRED, "too old", "a request on an ended watch");
  CHECK(storage_watch_request_progress(w, NULL) == STORAGE_ERR_EXPIRED, "without out_error");
  EXPECT_ERR(storage_watch_next(w, 0, &e, &err), STORAGE_ERR_EXPIRED, "too old", "the watch after the request");
  CHECK(e == NULL, "out_event written on failure");
  storage_watch_destroy(w);
  storage_destroy(s);
}


/* TTLs from update callbacks. */

/* What `give` returns, passed as user_data. */
struct give_ttl {
  const char *object; /* the new object (NULL: NULL, with `len`) */
  size_t len;         /* its length; 0: strlen(object) */
  int64_t ttl;        /* left in *out_ttl_seconds; -1 leaves it alone */
  int32_t code;       /* returned */
  int calls;
  int64_t ttl_seen; /* *out_ttl_seconds on entry */
};

static storage_code give(void *user_data, const uint8_t *current, size_t current_len, const uint8_t **out_new,
                         size_t *out_new_len, int64_t *out_ttl_seconds) {
  struct give_ttl *g = user_data;
  (void)current, (void)current_len;
  g->calls++;
  g->ttl_seen = *out_ttl_seconds;
  *out_new = (const uint8_t *)g->object;
  *out_new_len = g->len ? g->len : strlen(g->object);
  if (g->ttl != -1) *out_ttl_seconds = g->ttl;
  return (storage_code)g->code;
}

/* The resourceVersion of `key`; 0 when absent. */
static int64_t rv_of(storage *s, const char *key) {
  storage_bytes b = {NULL, 0};
  storage_object_info info = {0};
  storage_code rc = storage_get_with_info(s, key, NULL, true, &b, &info, NULL);
  storage_bytes_free(b);
  CHECK(rc == STORAGE_OK, "get %s: %d", key, rc);
  return info.found ? info.resource_version : 0;
}

static void update_ok(storage *s, const char *key, const char *object, int64_t ttl, const char *what) {
  struct give_ttl g = {object, 0, ttl, STORAGE_OK, 0, 0};
  storage_bytes out = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_guaranteed_update_ttl(s, key, true, NULL, give, &g, &out, &err);
  CHECK(rc == STORAGE_OK, "%s: %d %s", what, rc, storage_error_message(err));
  CHECK(g.ttl_seen == -1, "%s: the callback found %lld in *out_ttl_seconds", what, (long long)g.ttl_seen);
  CHECK(out.len > 0, "%s: no object returned", what);
  storage_error_free(err);
  storage_bytes_free(out);
}

/* Expects `g` to abort the update of `key` with `want` (message holding
 * `needle`), leaving etcd as it was. */
static void update_refused(storage *s, const char *key, struct give_ttl g, storage_code want, const char *needle,
                           const char *what) {
  int64_t before = rv_of(s, key);
  storage_bytes out = {(uint8_t *)&failures, 7};
  storage_error *err = NULL;
  storage_code rc = storage_guaranteed_update_ttl(s, key, true, NULL, give, &g, &out, &err);
  expect_error(rc, err, want, needle, what);
  CHECK(g.calls == 1, "%s: called %d times", what, g.calls);
  CHECK(out.data == (uint8_t *)&failures && out.len == 7, "%s: out_object written on failure", what);
  CHECK(rv_of(s, key) == before, "%s: %s changed", what, key);
}

/* ttl CONFIG BACKEND: TTLs at and past the bounds, keeping, clearing and
 * unchanged objects, callbacks that set a TTL and fail, impossible objects.
 * Leaves for the driver to check: /ttl/long (7e9 s), /ttl/max (etcd3: the
 * longest TTL; etcd2 refuses it: its expiry would be past 2262, where etcd2
 * silently keeps none), /ttl/keep (given -1 after 300: etcd3 has no lease,
 * etcd2 keeps 300), /ttl/clear (0 after 300: none), /ttl/same (300, then the
 * same object with 600: still 300), /ttl/bad (there) and /ttl/absent
 * (absent), /ttl/one (1 s, gone by the end). */
static void case_ttl(char **argv) {
  storage *s = must_create(argv[0]);
  int etcd2 = strcmp(argv[1], "etcd2") == 0;
  const char *o1 = "{\"metadata\":{\"name\":\"t\"},\"n\":1}", *o2 = "{\"metadata\":{\"name\":\"t\"},\"n\":2}";
  double t_one = now_s();
  update_ok(s, "/ttl/one", o1, 1, "ttl 1");
  update_ok(s, "/ttl/long", o1, 7000000000LL, "ttl 7e9");
  if (etcd2)
    update_refused(s, "/ttl/max", (struct give_ttl){o1, 0, STORAGE_MAX_TTL_SECONDS, STORAGE_OK, 0, 0},
                   STORAGE_ERR_INVALID_ARGUMENT, "2262", "etcd2: the longest etcd3 ttl");
  else
    update_ok(s, "/ttl/max", o1, STORAGE_MAX_TTL_SECONDS, "the longest ttl");
  update_ok(s, "/ttl/keep", o1, 300, "keep: ttl 300");
  update_ok(s, "/ttl/keep", o2, -1, "keep: no ttl given");
  update_ok(s, "/ttl/clear", o1, 300, "clear: ttl 300");
  update_ok(s, "/ttl/clear", o2, 0, "clear: ttl 0");
  update_ok(s, "/ttl/same", o1, 300, "same: ttl 300");
  int64_t same_rv = rv_of(s, "/ttl/same");
  update_ok(s, "/ttl/same", o1, 600, "same: the same object with ttl 600");
  CHECK(rv_of(s, "/ttl/same") == same_rv, "an unchanged object was written for a new TTL");
  update_ok(s, "/ttl/bad", o1, 0, "bad: no ttl");

  const int64_t refused[] = {-2, -100, INT64_MIN, INT64_MIN + 1, STORAGE_MAX_TTL_SECONDS + 1, 9000000000LL,
                             INT64_MAX};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    char needle[48], what[64];
    snprintf(needle, sizeof needle, "TTL of %lld seconds", (long long)refused[i]);
    snprintf(what, sizeof what, "ttl %lld", (long long)refused[i]);
    update_refused(s, "/ttl/bad", (struct give_ttl){o2, 0, refused[i], STORAGE_OK, 0, 0}, STORAGE_ERR_INVALID_ARGUMENT,
                   needle, what);
    update_refused(s, "/ttl/absent", (struct give_ttl){o2, 0, refused[i], STORAGE_OK, 0, 0},
                   STORAGE_ERR_INVALID_ARGUMENT, needle, what);
  }
  /* The callback's code comes first: a TTL set before failing is not looked at. */
  update_refused(s, "/ttl/bad", (struct give_ttl){o2, 0, 300, STORAGE_ERR_KEY_EXISTS, 0, 0}, STORAGE_ERR_KEY_EXISTS,
                 "aborted by try_update", "a valid ttl, then an error");
  update_refused(s, "/ttl/bad", (struct give_ttl){o2, 0, INT64_MIN, STORAGE_ERR_CORRUPT_OBJ, 0, 0},
                 STORAGE_ERR_CORRUPT_OBJ, "aborted by try_update", "a refused ttl, then an error");
  update_refused(s, "/ttl/bad", (struct give_ttl){o2, 0, 300, 42, 0, 0}, STORAGE_ERR_INVALID_ARGUMENT, "returned 42",
                 "a valid ttl, then 42");
  update_refused(s, "/ttl/bad", (struct give_ttl){o2, 0, 300, -1, 0, 0}, STORAGE_ERR_INVALID_ARGUMENT, "returned -1",
                 "a valid ttl, then -1");
  update_refused(s, "/ttl/bad", (struct give_ttl){o2, 0, -5, INT32_MIN, 0, 0}, STORAGE_ERR_INVALID_ARGUMENT,
                 "which is not a storage_code", "a refused ttl, then INT32_MIN");
  /* NULL with a length, and lengths no object can have. */
  update_refused(s, "/ttl/bad", (struct give_ttl){NULL, 5, 300, STORAGE_OK, 0, 0}, STORAGE_ERR_INVALID_ARGUMENT,
                 "is NULL", "a NULL object of 5 bytes");
  update_refused(s, "/ttl/bad", (struct give_ttl){o2, SIZE_MAX, 300, STORAGE_OK, 0, 0}, STORAGE_ERR_INVALID_ARGUMENT,
                 "is not possible", "an object of SIZE_MAX bytes");
  update_refused(s, "/ttl/absent", (struct give_ttl){NULL, 5, 300, STORAGE_OK, 0, 0}, STORAGE_ERR_INVALID_ARGUMENT,
                 "is NULL", "a NULL object of 5 bytes, absent key");
  storage_error *err = NULL;
  EXPECT_ERR(storage_guaranteed_update_ttl(s, "/ttl/bad", false, NULL, NULL, NULL, NULL, &err),
             STORAGE_ERR_INVALID_ARGUMENT, "try_update is NULL", "a NULL callback");

  /* etcd's shortest lease is a few seconds. */
  for (;;) {
    storage_bytes b = {NULL, 0};
    storage_object_info info = {0};
    storage_code rc = storage_get_with_info(s, "/ttl/one", NULL, true, &b, &info, NULL);
    storage_bytes_free(b);
    if (rc != STORAGE_OK || !info.found) break;
    if (now_s() - t_one > 15 * SLACK) {
      CHECK(0, "/ttl/one with a TTL of 1 s is still there after %.0f s", now_s() - t_one);
      break;
    }
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  storage_destroy(s);
}

/* What `reenter` does, passed as user_data: one per level of nesting. */
struct reentry {
  storage *s;
  const char *key;
  int level; /* 0: the innermost update */
  int calls;
  int failed;
  int backend_etcd2;
};

static storage_code reenter(void *user_data, const uint8_t *current, size_t current_len, const uint8_t **out_new,
                            size_t *out_new_len, int64_t *out_ttl_seconds) {
  static const char *objects[] = {"{\"metadata\":{\"name\":\"r\"},\"by\":0}", "{\"metadata\":{\"name\":\"r\"},\"by\":1}",
                                  "{\"metadata\":{\"name\":\"r\"},\"by\":2}", "{\"metadata\":{\"name\":\"r\"},\"by\":3}"};
  struct reentry *r = user_data;
  (void)current, (void)current_len;
  if (r->calls++ == 0 && r->level > 0) {
    /* Once per level: an update of the same key on the same handle, which
     * makes this one conflict and call this again. */
    struct reentry inner = {r->s, r->key, r->level - 1, 0, 0, r->backend_etcd2};
    storage_error *err = NULL;
    storage_code rc = storage_guaranteed_update_ttl(r->s, r->key, true, NULL, reenter, &inner, NULL, &err);
    if (rc != STORAGE_OK) {
      fprintf(stderr, "nested update: %d %s\n", rc, storage_error_message(err));
      r->failed++;
    }
    r->failed += inner.failed;
    if (inner.calls != (inner.level > 0 ? 2 : 1)) {
      fprintf(stderr, "level %d was called %d times\n", inner.level, inner.calls);
      r->failed++;
    }
    storage_error_free(err);
    err = NULL;
    int64_t rev = -5;
    rc = storage_compact_revision(r->s, &rev, &err);
    if (rc != (r->backend_etcd2 ? STORAGE_ERR_UNSUPPORTED : STORAGE_OK)) {
      fprintf(stderr, "compact revision in a callback: %d %s\n", rc, storage_error_message(err));
      r->failed++;
    }
    storage_error_free(err);
    err = NULL;
    storage_watch *w = NULL;
    rc = storage_watch_create_with_flags(r->s, r->key, NULL, 0, &w, &err);
    if (rc == STORAGE_OK) {
      storage_code req = storage_watch_request_progress(w, NULL);
      if (req != STORAGE_OK && req != STORAGE_ERR_UNSUPPORTED) r->failed++;
      storage_watch_event *e = NULL;
      if (storage_watch_next(w, 10000, &e, NULL) != STORAGE_OK) r->failed++;
      storage_watch_event_free(e);
      storage_watch_destroy(w);
    } else {
      fprintf(stderr, "watch in a callback: %d %s\n", rc, storage_error_message(err));
      r->failed++;
    }
    storage_error_free(err);
  }
  /* Inner levels give shorter TTLs; the outermost one's is 400 s. */
  *out_new = (const uint8_t *)objects[r->level];
  *out_new_len = strlen(objects[r->level]);
  *out_ttl_seconds = 100 + 100 * r->level;
  return STORAGE_OK;
}

/* reenter CONFIG BACKEND: a callback that runs nested updates of its own key
 * on the same handle (3 levels), reads the compacted revision and watches
 * the key: every level writes, the outer one last (it conflicts and is
 * called again), with its TTL (400 s: the driver checks /ttl/re). */
static void case_reenter(char **argv) {
  storage *s = must_create(argv[0]);
  struct reentry r = {s, "/ttl/re", 3, 0, 0, strcmp(argv[1], "etcd2") == 0};
  storage_bytes out = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_guaranteed_update_ttl(s, "/ttl/re", true, NULL, reenter, &r, &out, &err);
  CHECK(rc == STORAGE_OK, "reentrant update: %d %s", rc, storage_error_message(err));
  CHECK(r.failed == 0, "%d calls from the callbacks failed", r.failed);
  /* Called again after its nested update made it conflict. */
  CHECK(r.calls == 2, "the outermost callback ran %d times", r.calls);
  CHECK(contains(&out, "\"by\":3"), "the outermost update's object: %.*s", (int)out.len, (const char *)out.data);
  storage_error_free(err);
  storage_bytes_free(out);
  storage_destroy(s);
}


/* compact_values CONFIG: for each line the driver sends after putting a
 * value under compact_rev_key, checks storage_compact_revision: a number is
 * the revision it must read; "corrupt" means it must fail with
 * STORAGE_ERR_CORRUPT_OBJ naming compact_rev_key, with a short message (not
 * quoting the value) and *out_revision untouched. Answers "done" to each;
 * "end" ends. */
static void case_compact_values(char **argv) {
  storage *s = must_create(argv[0]);
  char line[64];
  for (;;) {
    read_line(line, sizeof line);
    if (strcmp(line, "end") == 0) break;
    int64_t rev = -12345;
    storage_error *err = NULL;
    storage_code rc = storage_compact_revision(s, &rev, &err);
    if (strcmp(line, "corrupt") == 0) {
      CHECK(rc == STORAGE_ERR_CORRUPT_OBJ, "a malformed value read as %lld (%d)", (long long)rev, rc);
      CHECK(rev == -12345, "out_revision written on failure: %lld", (long long)rev);
      CHECK(err != NULL && strcmp(storage_error_key(err), "compact_rev_key") == 0, "the error's key is %s",
            storage_error_key(err));
      CHECK(strlen(storage_error_message(err)) < 300, "a message of %zu bytes", strlen(storage_error_message(err)));
    } else {
      CHECK(rc == STORAGE_OK && rev == atoll(line), "read %lld (%d %s), want %s", (long long)rev, rc,
            storage_error_message(err), line);
    }
    storage_error_free(err);
    tell("done");
  }
  storage_destroy(s);
}

/* flags CONFIG BACKEND: flags with unknown bits are refused, whatever else
 * is set, before anything is written to *out_watch; etcd2 has no progress
 * notifications or requests; a refused request leaves the watch working. */
static void case_flags(char **argv) {
  storage *s = must_create(argv[0]);
  int etcd2 = strcmp(argv[1], "etcd2") == 0;
  storage_watch *sentinel = (storage_watch *)&failures, *w = sentinel;
  storage_error *err = NULL;
  const uint32_t unknown[] = {4, 8 | STORAGE_WATCH_RECURSIVE, 0x80000000u | STORAGE_WATCH_PROGRESS_NOTIFY, 0xfffffffcu,
                              0xffffffffu};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    char needle[48];
    snprintf(needle, sizeof needle, "unknown bits %#x", unknown[i] & ~3u);
    EXPECT_ERR(storage_watch_create_with_flags(s, "/bm", NULL, unknown[i], &w, &err), STORAGE_ERR_INVALID_ARGUMENT,
               needle, "unknown flags");
    CHECK(w == sentinel, "out_watch written on failure");
  }
  EXPECT_ERR(storage_watch_create_with_flags(s, NULL, NULL, STORAGE_WATCH_RECURSIVE, &w, &err),
             STORAGE_ERR_INVALID_ARGUMENT, "key", "NULL key");
  EXPECT_ERR(storage_watch_create_with_flags(s, "/bm", "-1", STORAGE_WATCH_RECURSIVE, &w, &err),
             STORAGE_ERR_INVALID_ARGUMENT, NULL, "a malformed resource version");
  EXPECT_ERR(storage_watch_create_with_flags(s, "/bm", NULL, 0, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_watch",
             "NULL out_watch");
  CHECK(w == sentinel, "out_watch written on failure");
  for (uint32_t flags = 0; flags <= 3; flags++) {
    storage_code rc = storage_watch_create_with_flags(s, "/bm", NULL, flags, &w, &err);
    if (etcd2 && (flags & STORAGE_WATCH_PROGRESS_NOTIFY)) {
      expect_error(rc, err, STORAGE_ERR_UNSUPPORTED, "progress", "etcd2 with PROGRESS_NOTIFY");
      err = NULL;
      CHECK(w == sentinel, "out_watch written on failure");
      continue;
    }
    CHECK(rc == STORAGE_OK, "flags %u: %d %s", flags, rc, storage_error_message(err));
    storage_error_free(take_err(&err));
    if (rc != STORAGE_OK) continue;
    if (etcd2) {
      /* Refused, and the watch goes on. */
      EXPECT_ERR(storage_watch_request_progress(w, &err), STORAGE_ERR_UNSUPPORTED, "etcd2", "an etcd2 request");
      const char *obj = "{\"metadata\":{\"name\":\"x\"}}";
      const char *key = flags & STORAGE_WATCH_RECURSIVE ? "/bm/x" : "/bm";
      storage_code put = storage_create_object(s, key, (const uint8_t *)obj, strlen(obj), 0, NULL, NULL);
      CHECK(put == STORAGE_OK, "create %s: %d", key, put);
      storage_watch_event *e = NULL;
      storage_code next = storage_watch_next(w, 10000, &e, &err);
      CHECK(next == STORAGE_OK && storage_watch_event_get_type(e) == STORAGE_WATCH_ADDED,
            "flags %u: the watch after a refused request: %d %s", flags, next, storage_error_message(err));
      storage_error_free(take_err(&err));
      storage_watch_event_free(e);
      if (put == STORAGE_OK && !(flags & STORAGE_WATCH_RECURSIVE))
        CHECK(storage_delete(s, "/bm", NULL, NULL, NULL) == STORAGE_OK, "delete /bm");
    }
    storage_watch_destroy(w);
    w = sentinel;
  }
  EXPECT_ERR(storage_watch_request_progress(NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "watch", "a NULL watch");
  CHECK(storage_watch_request_progress(NULL, NULL) == STORAGE_ERR_INVALID_ARGUMENT, "a NULL watch, no out_error");
  storage_destroy(s);
}

/* old_etcd CONFIG VERSION: etcd VERSION cannot answer requests correctly:
 * each request is refused naming it, quickly once known, and the watch,
 * with PROGRESS_NOTIFY, goes on delivering events and bookmarks. */
static void case_old_etcd(char **argv) {
  storage *s = must_create(argv[0]);
  char rv[32];
  int64_t start = must_write(s, "/elsewhere/start");
  snprintf(rv, sizeof rv, "%lld", (long long)start);
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create_with_flags(s, "/bm", rv, STORAGE_WATCH_RECURSIVE | STORAGE_WATCH_PROGRESS_NOTIFY,
                                                    &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  if (rc != STORAGE_OK) exit(1);
  EXPECT_ERR(storage_watch_request_progress(w, &err), STORAGE_ERR_UNSUPPORTED, argv[1], "the first request");
  double t0 = now_s();
  for (int i = 0; i < 1000; i++) {
    rc = storage_watch_request_progress(w, NULL);
    if (rc != STORAGE_ERR_UNSUPPORTED) {
      CHECK(0, "request %d: %d", i, rc);
      break;
    }
  }
  CHECK(now_s() - t0 < 5 * SLACK, "1000 refused requests took %.2f s", now_s() - t0);
  int64_t revs[1];
  revs[0] = must_write(s, "/bm/a");
  struct seen x = {0};
  CHECK(read_for(w, &x, 20 * SLACK, revs[0]) >= revs[0], "no progress notification at %lld or later",
        (long long)revs[0]);
  check_order(&x, revs, 1, "old etcd");
  free(x.rv);
  free(x.bookmark);
  storage_watch_destroy(w);
  storage_destroy(s);
}


/* steady CONFIG: one request, on a watch of /steady created at etcd's
 * revision; then (after "ready") the driver writes under /steady every 20 ms
 * for 3 s, and last /steady/end. The bookmark must come before that last
 * event: etcd drops a request until the watch has caught up with it, so the
 * library repeats it, and a steady stream of events must not hold the
 * repetition back. */
static void case_steady(char **argv) {
  storage *s = must_create(argv[0]);
  char rv[32];
  snprintf(rv, sizeof rv, "%lld", (long long)must_write(s, "/elsewhere/steady"));
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create_with_flags(s, "/steady", rv, STORAGE_WATCH_RECURSIVE, &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  if (rc != STORAGE_OK) exit(1);
  rc = storage_watch_request_progress(w, &err);
  CHECK(rc == STORAGE_OK, "request: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  tell("ready");
  int64_t last_event = 0, bookmark = -1;
  size_t events = 0;
  double deadline = now_s() + 30 * SLACK;
  for (;;) {
    storage_watch_event *e = NULL;
    rc = storage_watch_next(w, 1000, &e, &err);
    if (rc != STORAGE_OK) {
      CHECK(rc == STORAGE_ERR_TIMEOUT && now_s() < deadline, "next: %d %s", rc, storage_error_message(err));
      storage_error_free(take_err(&err));
      if (now_s() >= deadline) break;
      continue;
    }
    int64_t erv = storage_watch_event_resource_version(e);
    if (storage_watch_event_get_type(e) == STORAGE_WATCH_BOOKMARK) {
      CHECK(erv >= last_event, "a bookmark at %lld after an event at %lld", (long long)erv, (long long)last_event);
      if (bookmark < 0) bookmark = erv;
    } else {
      CHECK(erv > last_event && erv > bookmark, "an event at %lld after %lld and a bookmark at %lld", (long long)erv,
            (long long)last_event, (long long)bookmark);
      last_event = erv;
      events++;
      int end = strcmp(storage_watch_event_key(e), "/registry/steady/end") == 0;
      if (end) {
        storage_watch_event_free(e);
        break;
      }
    }
    storage_watch_event_free(e);
  }
  CHECK(bookmark >= 0, "no bookmark answered the request while events kept coming (%zu events)", events);
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* unread CONFIG SECONDS: a thread requests a bookmark every millisecond for
 * SECONDS while nobody reads the watch (which has no events): etcd answers
 * each, but bookmarks are progress, not events, and must not fill the
 * watch's buffer until it ends as a consumer too slow. Afterwards the watch
 * goes on: a write comes as an event, and a request brings a bookmark after it. */
static void case_unread(char **argv) {
  storage *s = must_create(argv[0]);
  double secs = atof(argv[1]);
  char rv[32];
  snprintf(rv, sizeof rv, "%lld", (long long)must_write(s, "/elsewhere/unread"));
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create_with_flags(s, "/unread", rv, STORAGE_WATCH_RECURSIVE, &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  if (rc != STORAGE_OK) exit(1);
  /* etcd answers once its revision has passed the watch's start. */
  must_write(s, "/elsewhere/unread2");
  struct spammer sp = {w, 0, 0, 0, PTHREAD_MUTEX_INITIALIZER};
  pthread_t st;
  if (pthread_create(&st, NULL, spam_loop, &sp) != 0) exit(2);
  struct timespec pause = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
  nanosleep(&pause, NULL);
  pthread_mutex_lock(&sp.mu);
  sp.stop = 1;
  pthread_mutex_unlock(&sp.mu);
  pthread_join(st, NULL);
  CHECK(sp.failed == 0, "%ld of %ld requests failed", sp.failed, sp.sent);
  int64_t revs[1];
  revs[0] = must_write(s, "/unread/a");
  rc = storage_watch_request_progress(w, &err);
  CHECK(rc == STORAGE_OK, "a request after the storm: %d %s", rc, storage_error_message(err));
  storage_error_free(take_err(&err));
  struct seen x = {0};
  CHECK(read_for(w, &x, 30 * SLACK, revs[0]) >= revs[0], "no bookmark at %lld after %ld unread requests",
        (long long)revs[0], sp.sent);
  size_t bookmarks = check_order(&x, revs, 1, "unread");
  printf("%ld requests, %zu bookmarks\n", sp.sent, bookmarks);
  free(x.rv);
  free(x.bookmark);
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* per_backend CONFIG BACKEND: ttl, reenter and flags in one process. */
static void case_per_backend(char **argv) {
  case_ttl(argv);
  case_reenter(argv);
  case_flags(argv);
}

int main(int argc, char **argv) {
  static const struct test_case cases[] = {
      {"order", 5, case_order},
      {"steady", 1, case_steady},
      {"restart", 3, case_restart},
      {"ended", 2, case_ended},
      {"ttl", 2, case_ttl},
      {"reenter", 2, case_reenter},
      {"compact_values", 1, case_compact_values},
      {"flags", 2, case_flags},
      {"old_etcd", 2, case_old_etcd},
      {"per_backend", 2, case_per_backend},
      {"unread", 2, case_unread},
  };
  return run_case(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
