/* Regression tests for defects found by hostile callers, driven by
 * tests/c_regressions.rs: `regressions CASE ARGS...`. */
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

static void expect_absent(storage *s, const char *key, const char *what) {
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_get(s, key, NULL, false, &obj, &err);
  CHECK(rc == STORAGE_ERR_KEY_NOT_FOUND, "%s: %s is there (%d %s)", what, key, rc, storage_error_message(err));
  storage_error_free(err);
  storage_bytes_free(obj);
}

static storage_bytes must_get(storage *s, const char *key, const char *what) {
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_get(s, key, NULL, false, &obj, &err);
  CHECK(rc == STORAGE_OK, "%s: get %s: %d %s", what, key, rc, storage_error_message(err));
  storage_error_free(err);
  return obj;
}

static void must_put(storage *s, const char *key, const char *object) {
  storage_error *err = NULL;
  storage_code rc = storage_create_object(s, key, (const uint8_t *)object, strlen(object), 0, NULL, &err);
  CHECK(rc == STORAGE_OK, "create %s: %d %s", key, rc, storage_error_message(err));
  storage_error_free(err);
}

/* What the callbacks below do, passed as user_data. */
struct callback {
  int32_t code;          /* returned by `returns` */
  storage *other;        /* read by `reenters` */
  storage *self;         /* read by `reenters` */
  const char *config;    /* a handle `reenters` creates and destroys */
  const char *object;    /* the new object */
  int calls;
  int failed;
};

/* Returns an arbitrary integer: the C compiler lets a storage_code hold any value. */
static storage_code returns(void *user_data, const uint8_t *current, size_t current_len, const uint8_t **out_new,
                            size_t *out_new_len) {
  struct callback *cb = user_data;
  (void)current, (void)current_len;
  cb->calls++;
  *out_new = (const uint8_t *)cb->object;
  *out_new_len = strlen(cb->object);
  return (storage_code)cb->code;
}

/* Claims an object of SIZE_MAX bytes: a length no object can have. */
static storage_code claims_too_much(void *user_data, const uint8_t *current, size_t current_len,
                                    const uint8_t **out_new, size_t *out_new_len) {
  struct callback *cb = user_data;
  (void)current, (void)current_len;
  cb->calls++;
  *out_new = (const uint8_t *)cb->object;
  *out_new_len = SIZE_MAX;
  return STORAGE_OK;
}

/* Calls into the library from inside the update: another handle, this one,
 * and a handle made and destroyed on the spot. */
static storage_code reenters(void *user_data, const uint8_t *current, size_t current_len, const uint8_t **out_new,
                             size_t *out_new_len) {
  struct callback *cb = user_data;
  (void)current, (void)current_len;
  cb->calls++;
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  if (storage_get(cb->other, "/cb/other", NULL, false, &obj, &err) != STORAGE_OK) {
    fprintf(stderr, "get on another handle: %s\n", storage_error_message(err));
    cb->failed++;
  }
  storage_error_free(err);
  storage_bytes_free(obj);
  err = NULL;
  int64_t n = -1;
  if (storage_count(cb->self, "/cb", &n, &err) != STORAGE_OK || n < 1) {
    fprintf(stderr, "count on the same handle: %lld %s\n", (long long)n, storage_error_message(err));
    cb->failed++;
  }
  storage_error_free(err);
  err = NULL;
  storage *third = NULL;
  if (storage_create(cb->config, &third, &err) != STORAGE_OK ||
      storage_health(third, NULL) != STORAGE_OK) {
    fprintf(stderr, "a third handle: %s\n", storage_error_message(err));
    cb->failed++;
  }
  storage_error_free(err);
  storage_destroy(third);
  *out_new = (const uint8_t *)cb->object;
  *out_new_len = strlen(cb->object);
  return STORAGE_OK;
}

/* callbacks CONFIG: a callback's return value is read as an integer, and a
 * callback may call into the library. */
static void case_callbacks(char **argv) {
  storage *s = must_create(argv[0]), *other = must_create(argv[0]);
  must_put(s, "/cb/obj", "{\"metadata\":{\"name\":\"obj\"},\"n\":0}");
  must_put(s, "/cb/other", "{\"metadata\":{\"name\":\"other\"}}");
  storage_bytes before = must_get(s, "/cb/obj", "before");

  static const int32_t unknown[] = {-1, 9, 42, 99, 105, 1000, INT32_MIN, INT32_MAX};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    struct callback cb = {.code = unknown[i], .object = "{\"metadata\":{\"name\":\"obj\"},\"n\":1}"};
    storage_error *err = NULL;
    char number[32], what[64];
    snprintf(number, sizeof number, "returned %d,", unknown[i]);
    snprintf(what, sizeof what, "callback returning %d", unknown[i]);
    storage_code rc = storage_guaranteed_update(s, "/cb/obj", false, NULL, returns, &cb, NULL, &err);
    expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, number, what);
    CHECK(cb.calls == 1, "%s: called %d times", what, cb.calls);
  }
  static const storage_code known[] = {STORAGE_ERR_KEY_NOT_FOUND, STORAGE_ERR_EXPIRED, STORAGE_ERR_INVALID_CONFIG,
                                       STORAGE_ERR_INTERNAL, STORAGE_ERR_PERMISSION_DENIED};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    struct callback cb = {.code = known[i], .object = "{\"metadata\":{\"name\":\"obj\"},\"n\":1}"};
    storage_error *err = NULL;
    storage_code rc = storage_guaranteed_update(s, "/cb/obj", false, NULL, returns, &cb, NULL, &err);
    expect_error(rc, err, known[i], "aborted by try_update", "callback returning a known code");
  }
  /* Lengths no object can have are refused before anything is read. */
  const char *small = "{\"metadata\":{\"name\":\"obj\"}}";
  const size_t impossible[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1};
  for (size_t i = 0; i < 2; i++) {
    storage_error *err = NULL;
    storage_code rc = storage_create_object(s, "/cb/huge", (const uint8_t *)small, impossible[i], 0, NULL, &err);
    expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "is not possible", "an impossible object length");
  }
  expect_absent(s, "/cb/huge", "after impossible lengths");
  struct callback huge = {.object = small};
  storage_error *huge_err = NULL;
  storage_code huge_rc = storage_guaranteed_update(s, "/cb/obj", false, NULL, claims_too_much, &huge, NULL, &huge_err);
  expect_error(huge_rc, huge_err, STORAGE_ERR_INVALID_ARGUMENT, "is not possible", "a callback's impossible length");

  storage_bytes after = must_get(s, "/cb/obj", "after aborted updates");
  CHECK(after.len == before.len && memcmp(after.data, before.data, after.len) == 0,
        "aborted updates changed the object: %.*s", (int)after.len, (char *)after.data);
  storage_bytes_free(after);
  storage_bytes_free(before);

  struct callback cb = {.other = other,
                        .self = s,
                        .config = argv[0],
                        .object = "{\"metadata\":{\"name\":\"obj\"},\"n\":2}"};
  storage_bytes out = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_guaranteed_update(s, "/cb/obj", false, NULL, reenters, &cb, &out, &err);
  CHECK(rc == STORAGE_OK, "update calling into the library: %d %s", rc, storage_error_message(err));
  CHECK(cb.failed == 0 && cb.calls >= 1, "%d of %d callbacks failed", cb.failed, cb.calls);
  CHECK(contains(&out, "\"n\":2"), "updated object: %.*s", (int)out.len, (char *)out.data);
  storage_error_free(err);
  storage_bytes_free(out);

  /* The other handle may also be destroyed from inside a callback. */
  struct callback last = {.other = other, .self = s, .config = argv[0], .object = "{\"n\":3}"};
  rc = storage_guaranteed_update(s, "/cb/obj", false, NULL, reenters, &last, NULL, NULL);
  CHECK(rc == STORAGE_OK, "second update: %d", rc);
  storage_destroy(other);
  storage_destroy(s);
}

/* ttl CONFIG MAX_TTL LONGEST: out-of-range TTLs are refused before anything
 * is stored; LONGEST, the backend's largest (MAX_TTL, or less for etcd2,
 * whose expiries end in 2262), is kept, also beside a lease already in use. */
static void case_ttl(char **argv) {
  storage *s = must_create(argv[0]);
  long long max = atoll(argv[1]), longest = atoll(argv[2]);
  CHECK(max == STORAGE_MAX_TTL_SECONDS, "the header's STORAGE_MAX_TTL_SECONDS is %lld, the library's %lld",
        (long long)STORAGE_MAX_TTL_SECONDS, max);
  const char *obj = "{\"metadata\":{\"name\":\"t\"}}";
  const int64_t bad[] = {INT64_MAX, INT64_MIN, -1, max + 1, INT64_MAX - 1, longest < max ? max : max + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    storage_error *err = NULL;
    char what[64];
    snprintf(what, sizeof what, "ttl %lld", (long long)bad[i]);
    storage_code rc = storage_create_object(s, "/ttl/bad", (const uint8_t *)obj, strlen(obj), bad[i], NULL, &err);
    expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "out of range", what);
    expect_absent(s, "/ttl/bad", what);
  }
  /* A short lease first, then the longest TTL beside it. */
  storage_error *err = NULL;
  storage_code rc = storage_create_object(s, "/ttl/short", (const uint8_t *)obj, strlen(obj), 30, NULL, &err);
  CHECK(rc == STORAGE_OK, "ttl 30: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  err = NULL;
  rc = storage_create_object(s, "/ttl/long", (const uint8_t *)obj, strlen(obj), (int64_t)longest, NULL, &err);
  CHECK(rc == STORAGE_OK, "ttl %lld: %d %s", longest, rc, storage_error_message(err));
  storage_error_free(err);
  /* etcd's shortest lease is a few seconds: a TTL that wrapped would be gone. */
  sleep(7);
  storage_bytes_free(must_get(s, "/ttl/long", "the longest TTL after 7 s"));
  storage_bytes_free(must_get(s, "/ttl/short", "ttl 30 after 7 s"));
  storage_destroy(s);
}

/* null_metadata CONFIG: `"metadata": null` reads as empty metadata, as in Go. */
static void case_null_metadata(char **argv) {
  storage *s = must_create(argv[0]);
  const char *obj = "{\"kind\":\"ConfigMap\",\"metadata\":null,\"data\":{\"a\":\"b\"}}";
  storage_bytes out = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_create_object(s, "/nm/a", (const uint8_t *)obj, strlen(obj), 0, &out, &err);
  CHECK(rc == STORAGE_OK, "create: %d %s", rc, storage_error_message(err));
  CHECK(contains(&out, "\"metadata\":{\"resourceVersion\":\""), "created: %.*s", (int)out.len, (char *)out.data);
  storage_bytes_free(out);
  storage_error_free(err);
  out = must_get(s, "/nm/a", "get");
  CHECK(contains(&out, "\"metadata\":{\"resourceVersion\":\"") && contains(&out, "\"data\":{\"a\":\"b\"}"),
        "read back: %.*s", (int)out.len, (char *)out.data);
  storage_bytes_free(out);
  struct callback cb = {.code = STORAGE_OK, .object = "{\"metadata\":null,\"n\":1}"};
  err = NULL;
  rc = storage_guaranteed_update(s, "/nm/a", false, NULL, returns, &cb, NULL, &err);
  CHECK(rc == STORAGE_OK, "update: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  out = must_get(s, "/nm/a", "get after update");
  CHECK(contains(&out, "\"n\":1"), "updated: %.*s", (int)out.len, (char *)out.data);
  storage_bytes_free(out);
  err = NULL;
  rc = storage_list(s, "/nm", NULL, 0, NULL, &out, &err);
  CHECK(rc == STORAGE_OK && contains(&out, "\"n\":1"), "list: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  storage_bytes_free(out);
  storage_destroy(s);
}

/* absent_preconditions CONFIG: preconditions are checked against the empty
 * object an absent key stands for; nothing is written when they fail. */
static void case_absent_preconditions(char **argv) {
  storage *s = must_create(argv[0]);
  const storage_preconditions wrong[] = {{"some-uid", NULL}, {NULL, "5"}, {"some-uid", "5"}};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    struct callback cb = {.code = STORAGE_OK, .object = "{\"metadata\":{\"name\":\"p\"}}"};
    storage_error *err = NULL;
    storage_code rc = storage_guaranteed_update(s, "/pre/p", true, &wrong[i], returns, &cb, NULL, &err);
    expect_error(rc, err, STORAGE_ERR_INVALID_OBJ, "Precondition failed", "precondition on an absent key");
    CHECK(cb.calls == 0, "try_update called %d times", cb.calls);
    expect_absent(s, "/pre/p", "after a failed precondition");
  }
  /* Empty preconditions match the empty object, as in Go. */
  const storage_preconditions empty = {"", ""};
  struct callback cb = {.code = STORAGE_OK, .object = "{\"metadata\":{\"name\":\"p\"}}"};
  storage_error *err = NULL;
  storage_code rc = storage_guaranteed_update(s, "/pre/p", true, &empty, returns, &cb, NULL, &err);
  CHECK(rc == STORAGE_OK, "empty preconditions: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  storage_bytes_free(must_get(s, "/pre/p", "created"));
  storage_destroy(s);
}

/* list_rv CONFIG BACKEND: a list checks its resourceVersion as a get does, paged
 * or not; a watch refuses one no revision can follow. */
static void case_list_rv(char **argv) {
  storage *s = must_create(argv[0]);
  must_put(s, "/lrv/a", "{\"metadata\":{\"name\":\"a\"}}");
  const int64_t limits[] = {0, 2};
  for (size_t i = 0; i < 2; i++) {
    const char *malformed[] = {"abc", "-1", " 1", "1.5", "99999999999999999999"};
    for (size_t j = 0; j < sizeof malformed / sizeof malformed[0]; j++) {
      storage_bytes out = {NULL, 0};
      storage_error *err = NULL;
      storage_code rc = storage_list(s, "/lrv", malformed[j], limits[i], NULL, &out, &err);
      expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "resourceVersion", malformed[j]);
      CHECK(out.data == NULL, "out-parameter written on failure");
    }
    storage_bytes out = {NULL, 0};
    storage_error *err = NULL;
    storage_code rc = storage_list(s, "/lrv", "999999999", limits[i], NULL, &out, &err);
    expect_error(rc, err, STORAGE_ERR_TIMEOUT, "Too large resource version: 999999999, current: ",
                 "a future resourceVersion");
    err = NULL;
    /* Unpaged, "1" is a minimum: the latest list. Paged, it is the exact
     * revision 1, before anything was written (etcd2 does not page). */
    rc = storage_list(s, "/lrv", "1", limits[i], NULL, &out, &err);
    int exact = limits[i] > 0 && strcmp(argv[1], "etcd3") == 0;
    CHECK(rc == STORAGE_OK && contains(&out, exact ? "\"items\":[]" : "\"name\":\"a\""), "rv 1, limit %lld: %d %s",
          (long long)limits[i], rc, storage_error_message(err));
    storage_error_free(err);
    storage_bytes_free(out);
  }
  /* No revision follows the largest one: a watch after it is refused. */
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create(s, "/lrv", "9223372036854775807", true, &w, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "no revision can follow it", "a watch after the last revision");
  CHECK(w == NULL, "out-parameter written on failure");
  storage_destroy(s);
}

/* plaintext RAW_ENCRYPTED_CONFIG JSON_ENCRYPTED_CONFIG: a stored value that
 * decrypts to something that is no object is reported without quoting it. */
static void case_plaintext(char **argv) {
  storage *raw = must_create(argv[0]), *s = must_create(argv[1]);
  const char *secret = "\"db-password=hunter2\"";
  must_put(raw, "/pt/secret", secret);
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create(s, "/pt", "1", true, &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  storage_error_free(err);

  storage_bytes out = {NULL, 0};
  err = NULL;
  rc = storage_get(s, "/pt/secret", NULL, false, &out, &err);
  CHECK(rc == STORAGE_ERR_CORRUPT_OBJ, "get: %d", rc);
  CHECK(strstr(storage_error_message(err), "hunter2") == NULL, "get quotes it: %s", storage_error_message(err));
  storage_error_free(err);
  err = NULL;
  rc = storage_list(s, "/pt", NULL, 0, NULL, &out, &err);
  CHECK(rc == STORAGE_ERR_CORRUPT_OBJ, "list: %d", rc);
  CHECK(strstr(storage_error_message(err), "hunter2") == NULL, "list quotes it: %s", storage_error_message(err));
  storage_error_free(err);

  storage_watch_event *e = NULL;
  err = NULL;
  for (int i = 0; i < 100 && (rc = storage_watch_next(w, 200, &e, &err)) == STORAGE_ERR_TIMEOUT; i++) {
    storage_error_free(err);
    err = NULL;
  }
  CHECK(rc == STORAGE_ERR_CORRUPT_OBJ, "watch: %d %s", rc, storage_error_message(err));
  CHECK(strstr(storage_error_message(err), "hunter2") == NULL, "watch quotes it: %s", storage_error_message(err));
  storage_error_free(err);
  storage_watch_event_free(e);
  storage_watch_destroy(w);
  storage_destroy(s);
  storage_destroy(raw);
}

/* unknown_fields PROTOBUF_CONFIG KEY FIELD: an object holding a field the
 * schema does not know is flagged on read, and an update refuses to drop it. */
static void case_unknown_fields(char **argv) {
  storage *s = must_create(argv[0]);
  storage_bytes obj = {NULL, 0};
  storage_object_info info = {false, -1, false, false};
  storage_error *err = NULL;
  storage_code rc = storage_get_with_info(s, argv[1], NULL, false, &obj, &info, &err);
  CHECK(rc == STORAGE_OK, "get: %d %s", rc, storage_error_message(err));
  CHECK(info.found && info.unknown_fields, "found %d, unknown_fields %d", info.found, info.unknown_fields);
  storage_error_free(err);
  storage_bytes_free(obj);
  struct callback cb = {.code = STORAGE_OK, .object = "{}"};
  err = NULL;
  rc = storage_guaranteed_update(s, argv[1], false, NULL, returns, &cb, NULL, &err);
  expect_error(rc, err, STORAGE_ERR_UNSUPPORTED, argv[2], "update of an object with an unknown field");
  CHECK(cb.calls == 0, "try_update called %d times", cb.calls);
  storage_destroy(s);
}

int main(int argc, char **argv) {
  static const struct test_case cases[] = {
      {"callbacks", 1, case_callbacks},   {"ttl", 3, case_ttl},     {"null_metadata", 1, case_null_metadata},
      {"absent_preconditions", 1, case_absent_preconditions}, {"list_rv", 2, case_list_rv},
      {"plaintext", 2, case_plaintext},   {"unknown_fields", 3, case_unknown_fields},
  };
  return run_case(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
