/* C-side tests of the ABI, driven by tests/c_api.rs: `api_test CASE ARGS...`.
 * Each case exits 0 when every check passes. */
#include <pthread.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apiserver_storage.h"

#include "check.h"

/* roundtrip CONFIG KEY EXPECTED_RV NAME MISSING_FULL_KEY */
static void case_roundtrip(char **argv) {
  const char *config = argv[0], *key = argv[1], *rv = argv[2], *name = argv[3], *missing_full = argv[4];
  storage *s = must_create(config);
  storage_error *err = NULL;
  CHECK(storage_health(s, &err) == STORAGE_OK, "health: %s", storage_error_message(err));
  storage_error_free(err);
  err = NULL;

  storage_bytes obj = {NULL, 0};
  storage_code rc = storage_get(s, key, NULL, false, &obj, &err);
  CHECK(rc == STORAGE_OK, "get: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  err = NULL;
  char want_rv[64], want_name[256];
  snprintf(want_rv, sizeof want_rv, "\"resourceVersion\":\"%s\"", rv);
  snprintf(want_name, sizeof want_name, "\"name\":\"%s\"", name);
  CHECK(contains(&obj, want_rv), "object lacks %s: %.*s", want_rv, (int)obj.len, (char *)obj.data);
  CHECK(contains(&obj, want_name), "object lacks %s", want_name);
  storage_bytes_free(obj);

  /* resource versions: "0", the exact one, one past the current revision, garbage */
  for (int i = 0; i < 2; i++) {
    const char *v = i == 0 ? "0" : rv;
    obj.data = NULL;
    CHECK(storage_get(s, key, v, false, &obj, NULL) == STORAGE_OK, "get at rv %s", v);
    storage_bytes_free(obj);
  }
  storage_bytes sentinel = {(uint8_t *)&failures, 77};
  obj = sentinel;
  rc = storage_get(s, key, "999999999", false, &obj, &err);
  expect_error(rc, err, STORAGE_ERR_TIMEOUT, "Too large resource version: 999999999, current: ", "rv too large");
  CHECK(obj.data == sentinel.data && obj.len == 77, "out_object written on failure");
  rc = storage_get(s, key, "abc", false, &obj, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "resourceVersion", "rv malformed");
  rc = storage_get(s, key, "-5", false, &obj, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "resourceVersion", "rv negative");

  /* not found, both ways */
  rc = storage_get(s, "/missing/key", NULL, false, &obj, &err);
  CHECK(rc == STORAGE_ERR_KEY_NOT_FOUND, "missing: %d", rc);
  CHECK(strcmp(storage_error_key(err), missing_full) == 0, "missing key in error: %s", storage_error_key(err));
  CHECK(storage_error_resource_version(err) == 0, "rv of not found");
  storage_error_free(err);
  CHECK(storage_get(s, "/missing/key", NULL, false, &obj, NULL) == STORAGE_ERR_KEY_NOT_FOUND,
        "missing without out_error");
  CHECK(obj.data == sentinel.data, "out_object written on failure");
  rc = storage_get(s, "/missing/key", NULL, true, &obj, &err);
  CHECK(rc == STORAGE_OK, "ignore_not_found: %d", rc);
  CHECK(obj.data == NULL && obj.len == 0, "ignore_not_found gives {NULL, 0}");
  storage_bytes_free(obj);

  /* keys that leave the prefix */
  rc = storage_get(s, "/../../etc/passwd", NULL, false, &obj, &err);
  expect_error(rc, err, STORAGE_ERR_INVALID_ARGUMENT, "outside the prefix", "escaping key");
  storage_destroy(s);
}

/* raw CONFIG KEY EXPECTED_BYTES */
static void case_raw(char **argv) {
  storage *s = must_create(argv[0]);
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_get(s, argv[1], "", false, &obj, &err);
  CHECK(rc == STORAGE_OK, "get: %s", storage_error_message(err));
  CHECK(obj.len == strlen(argv[2]) && memcmp(obj.data, argv[2], obj.len) == 0, "raw bytes differ: %.*s",
        (int)obj.len, (char *)obj.data);
  storage_bytes_free(obj);
  storage_destroy(s);
}

/* corrupt CONFIG KEY FULL_KEY */
static void case_corrupt(char **argv) {
  storage *s = must_create(argv[0]);
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_get(s, argv[1], NULL, false, &obj, &err);
  CHECK(rc == STORAGE_ERR_CORRUPT_OBJ, "code %d", rc);
  CHECK(strcmp(storage_error_key(err), argv[2]) == 0, "key %s", storage_error_key(err));
  CHECK(strstr(storage_error_message(err), argv[2]) != NULL, "message names the key: %s",
        storage_error_message(err));
  storage_error_free(err);
  storage_destroy(s);
}

/* info CONFIG KEY RV NAME STALE: storage_get_with_info reports the object's state */
static void case_info(char **argv) {
  storage *s = must_create(argv[0]);
  storage_bytes obj = {NULL, 0};
  storage_object_info info = {false, -1, false, true};
  storage_error *err = NULL;
  storage_code rc = storage_get_with_info(s, argv[1], NULL, false, &obj, &info, &err);
  CHECK(rc == STORAGE_OK, "get: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  char want_name[256];
  snprintf(want_name, sizeof want_name, "\"name\":\"%s\"", argv[3]);
  CHECK(contains(&obj, want_name), "object lacks %s: %.*s", want_name, (int)obj.len, (char *)obj.data);
  CHECK(info.found, "found");
  CHECK(info.resource_version == atoll(argv[2]), "rv %lld", (long long)info.resource_version);
  CHECK(info.stale == (argv[4][0] == '1'), "stale %d", info.stale);
  CHECK(!info.unknown_fields, "a JSON object has no fields unknown to a schema");
  storage_bytes_free(obj);

  obj.data = NULL;
  rc = storage_get_with_info(s, "/no/such/key", NULL, true, &obj, &info, NULL);
  CHECK(rc == STORAGE_OK && !info.found && info.resource_version == 0 && obj.data == NULL, "missing, ignored");
  storage_destroy(s);
}

/* Increments the "n" field of {"metadata":{"name":"w"},"n":N}; user_data is
 * the thread's buffer for the new object. */
static storage_code increment(void *user_data, const uint8_t *current, size_t current_len, const uint8_t **out_new,
                              size_t *out_new_len) {
  char *buf = user_data;
  char cur[256];
  if (current == NULL || current_len >= sizeof cur) return STORAGE_ERR_INVALID_OBJ;
  memcpy(cur, current, current_len);
  cur[current_len] = '\0';
  const char *n = strstr(cur, "\"n\":");
  if (n == NULL) return STORAGE_ERR_INVALID_OBJ;
  snprintf(buf, 256, "{\"metadata\":{\"name\":\"w\"},\"n\":%d}", atoi(n + 4) + 1);
  *out_new = (const uint8_t *)buf;
  *out_new_len = strlen(buf);
  return STORAGE_OK;
}

static storage_code refuse(void *user_data, const uint8_t *current, size_t current_len, const uint8_t **out_new,
                           size_t *out_new_len) {
  (void)user_data, (void)current, (void)current_len, (void)out_new, (void)out_new_len;
  return STORAGE_ERR_RESOURCE_VERSION_CONFLICTS;
}

struct updater {
  storage *s;
  int bad;
};

static void *update_loop(void *p) {
  struct updater *u = p;
  char buf[256];
  for (int i = 0; i < 50; i++) {
    storage_error *err = NULL;
    storage_code rc = storage_guaranteed_update(u->s, "/w/counter", false, NULL, increment, buf, NULL, &err);
    if (rc != STORAGE_OK && u->bad++ == 0) fprintf(stderr, "update: %d %s\n", rc, storage_error_message(err));
    storage_error_free(err);
  }
  return NULL;
}

/* writes CONFIG PAGES BOGUS_TOKEN_CODE: create, update, delete, list, count
 * from C; a list of 5 with limit 2 takes PAGES pages (1 where the backend does
 * not page: etcd2), and a bogus continue token fails with BOGUS_TOKEN_CODE. */
static void case_writes(char **argv) {
  storage *s = must_create(argv[0]);
  int want_pages = atoi(argv[1]);
  storage_code bogus_code = (storage_code)atoi(argv[2]);
  storage_error *err = NULL;
  storage_bytes obj = {NULL, 0};
  const char *counter = "{\"metadata\":{\"name\":\"w\"},\"n\":0}";
  storage_code rc = storage_create_object(s, "/w/counter", (const uint8_t *)counter, strlen(counter), 0, &obj, &err);
  CHECK(rc == STORAGE_OK, "create: %s", storage_error_message(err));
  CHECK(contains(&obj, "\"resourceVersion\":\""), "created object carries its resourceVersion");
  storage_bytes_free(obj);
  EXPECT_ERR(storage_create_object(s, "/w/counter", (const uint8_t *)counter, strlen(counter), 0, NULL, &err),
             STORAGE_ERR_KEY_EXISTS, NULL, "create twice");
  const char *with_rv = "{\"metadata\":{\"name\":\"v\",\"resourceVersion\":\"3\"}}";
  EXPECT_ERR(storage_create_object(s, "/w/v", (const uint8_t *)with_rv, strlen(with_rv), 0, NULL, &err),
             STORAGE_ERR_INVALID_OBJ, "resourceVersion should not be set", "create with rv");

  /* 4 threads x 50 increments through the callback: no update lost */
  pthread_t t[4];
  struct updater u[4];
  for (int i = 0; i < 4; i++) {
    u[i] = (struct updater){s, 0};
    pthread_create(&t[i], NULL, update_loop, &u[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    CHECK(u[i].bad == 0, "thread %d: %d failed updates", i, u[i].bad);
  }
  obj.data = NULL;
  CHECK(storage_get(s, "/w/counter", NULL, false, &obj, NULL) == STORAGE_OK, "get counter");
  CHECK(contains(&obj, "\"n\":200"), "counter is %.*s", (int)obj.len, (char *)obj.data);
  storage_bytes_free(obj);
  EXPECT_ERR(storage_guaranteed_update(s, "/w/counter", false, NULL, refuse, NULL, NULL, &err),
             STORAGE_ERR_RESOURCE_VERSION_CONFLICTS, "aborted by try_update", "callback abort");
  EXPECT_ERR(storage_guaranteed_update(s, "/w/none", false, NULL, increment, NULL, NULL, &err),
             STORAGE_ERR_KEY_NOT_FOUND, NULL, "update missing");

  /* delete: a failed precondition, then for real */
  storage_preconditions wrong = {"no-such-uid", NULL};
  EXPECT_ERR(storage_delete(s, "/w/counter", &wrong, NULL, &err), STORAGE_ERR_INVALID_OBJ, "Precondition failed",
             "delete precondition");
  obj.data = NULL;
  CHECK(storage_delete(s, "/w/counter", NULL, &obj, NULL) == STORAGE_OK, "delete");
  CHECK(contains(&obj, "\"n\":200"), "deleted object returned");
  storage_bytes_free(obj);
  EXPECT_ERR(storage_delete(s, "/w/counter", NULL, NULL, &err), STORAGE_ERR_KEY_NOT_FOUND, NULL, "delete twice");

  /* list in pages of 2 over 5 objects, and count */
  for (int i = 0; i < 5; i++) {
    char key[32], body[64];
    snprintf(key, sizeof key, "/l/item%d", i);
    snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"item%d\"}}", i);
    CHECK(storage_create_object(s, key, (const uint8_t *)body, strlen(body), 0, NULL, NULL) == STORAGE_OK, "seed");
  }
  int64_t count = -1;
  CHECK(storage_count(s, "/l", &count, NULL) == STORAGE_OK && count == 5, "count %lld", (long long)count);
  char token[512] = "";
  int pages = 0, seen = 0;
  do {
    obj.data = NULL;
    rc = storage_list(s, "/l", NULL, 2, token, &obj, &err);
    CHECK(rc == STORAGE_OK, "list: %s", storage_error_message(err));
    if (rc != STORAGE_OK) break;
    pages++;
    for (int i = 0; i < 5; i++) {
      char name[32];
      snprintf(name, sizeof name, "\"name\":\"item%d\"", i);
      seen += contains(&obj, name);
    }
    token[0] = '\0';
    long at = find(&obj, "\"continue\":\"");
    if (at >= 0) {
      /* Copy the token up to its closing quote. */
      size_t off = (size_t)at + 12, n = 0;
      while (off + n < obj.len && obj.data[off + n] != '"' && n + 1 < sizeof token) n++;
      memcpy(token, obj.data + off, n);
      token[n] = '\0';
    }
    storage_bytes_free(obj);
  } while (token[0] != '\0' && pages < 10);
  CHECK(pages == want_pages && seen == 5, "pages %d, items %d", pages, seen);
  EXPECT_ERR(storage_list(s, "/l", NULL, 2, "bogus", &obj, &err), bogus_code, "continue", "bad token");

  /* NULL arguments */
  EXPECT_ERR(storage_create_object(NULL, "/k", NULL, 0, 0, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage", "c");
  EXPECT_ERR(storage_create_object(s, NULL, NULL, 0, 0, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "key", "c key");
  EXPECT_ERR(storage_create_object(s, "/k", NULL, 5, 0, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "object", "c obj");
  EXPECT_ERR(storage_delete(NULL, "/k", NULL, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage", "d");
  EXPECT_ERR(storage_delete(s, NULL, NULL, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "key", "d key");
  EXPECT_ERR(storage_guaranteed_update(NULL, "/k", false, NULL, increment, NULL, NULL, &err),
             STORAGE_ERR_INVALID_ARGUMENT, "storage", "u");
  EXPECT_ERR(storage_guaranteed_update(s, "/k", false, NULL, NULL, NULL, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT,
             "try_update", "u fn");
  EXPECT_ERR(storage_list(NULL, "/l", NULL, 0, NULL, &obj, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage", "l");
  EXPECT_ERR(storage_list(s, "/l", NULL, 0, NULL, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_list", "l out");
  EXPECT_ERR(storage_count(s, NULL, &count, &err), STORAGE_ERR_INVALID_ARGUMENT, "key", "n key");
  EXPECT_ERR(storage_count(s, "/l", NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_count", "n out");
  storage_destroy(s);
}

/* fork CONFIG KEY: a fork child gets a clear error from an inherited handle,
 * can build its own, and the parent's handle keeps working. */
static void case_fork(char **argv) {
  storage *s = must_create(argv[0]);
  storage_bytes obj = {NULL, 0};
  CHECK(storage_get(s, argv[1], NULL, false, &obj, NULL) == STORAGE_OK, "parent get before fork");
  storage_bytes_free(obj);
  pid_t pid = fork();
  if (pid == 0) {
    storage_error *err = NULL;
    storage_code rc = storage_get(s, argv[1], NULL, false, &obj, &err);
    int ok = rc == STORAGE_ERR_UNSUPPORTED && strstr(storage_error_message(err), "fork") != NULL;
    if (!ok) fprintf(stderr, "child: inherited handle gave %d %s\n", rc, storage_error_message(err));
    storage_error_free(err);
    storage_destroy(s); /* releases nothing: the runtime's threads are the parent's */
    storage *mine = must_create(argv[0]);
    obj.data = NULL;
    rc = storage_get(mine, argv[1], NULL, false, &obj, NULL);
    if (rc != STORAGE_OK) fprintf(stderr, "child: own handle gave %d\n", rc), ok = 0;
    storage_bytes_free(obj);
    storage_destroy(mine);
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
  obj.data = NULL;
  CHECK(storage_get(s, argv[1], NULL, false, &obj, NULL) == STORAGE_OK, "parent get after fork");
  storage_bytes_free(obj);
  storage_destroy(s);
}

/* nulls CONFIG: every NULL argument of every function */
static void case_nulls(char **argv) {
  const char *config = argv[0];
  storage *s = NULL;
  storage_health_check *hc = NULL;
  storage_error *err = NULL;
  storage_bytes obj = {NULL, 0};

  EXPECT_ERR(storage_create(NULL, &s, &err), STORAGE_ERR_INVALID_ARGUMENT, "config_json", "create NULL config");
  EXPECT_ERR(storage_create(config, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_storage", "create NULL out");
  CHECK(storage_create(NULL, &s, NULL) == STORAGE_ERR_INVALID_ARGUMENT, "create NULL, NULL error");
  CHECK(s == NULL, "out_storage written on failure");
  EXPECT_ERR(storage_health_check_create(NULL, &hc, &err), STORAGE_ERR_INVALID_ARGUMENT, "config_json",
               "check create NULL config");
  EXPECT_ERR(storage_health_check_create(config, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_check",
               "check create NULL out");
  EXPECT_ERR(storage_health_check_run(NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "check", "check run NULL");

  s = must_create(config);
  EXPECT_ERR(storage_get(NULL, "/k", NULL, false, &obj, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage",
               "get NULL storage");
  EXPECT_ERR(storage_get(s, NULL, NULL, false, &obj, &err), STORAGE_ERR_INVALID_ARGUMENT, "key",
               "get NULL key");
  EXPECT_ERR(storage_get(s, "/k", NULL, false, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_object",
               "get NULL out");
  CHECK(storage_get(s, "/k", NULL, false, NULL, NULL) == STORAGE_ERR_INVALID_ARGUMENT, "get all NULL");
  EXPECT_ERR(storage_get_with_info(NULL, "/k", NULL, false, &obj, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT,
             "storage", "get_with_info NULL storage");
  EXPECT_ERR(storage_get_with_info(s, "/k", NULL, false, NULL, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT,
             "out_object", "get_with_info NULL out");
  EXPECT_ERR(storage_health(NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage", "health NULL");
  CHECK(storage_health(NULL, NULL) == STORAGE_ERR_INVALID_ARGUMENT, "health NULL, NULL");

  /* invalid UTF-8 in the key and in the resource version */
  const char bad_utf8[] = {'/', 'a', (char)0xff, (char)0xfe, 0};
  EXPECT_ERR(storage_get(s, bad_utf8, NULL, false, &obj, &err), STORAGE_ERR_INVALID_ARGUMENT, "UTF-8",
               "invalid UTF-8 key");
  EXPECT_ERR(storage_get(s, "/k", bad_utf8, false, &obj, &err), STORAGE_ERR_INVALID_ARGUMENT, "UTF-8",
               "invalid UTF-8 rv");
  EXPECT_ERR(storage_create(bad_utf8, &s, &err), STORAGE_ERR_INVALID_ARGUMENT, "UTF-8",
               "invalid UTF-8 config");

  /* NULL-tolerant accessors and destructors */
  CHECK(storage_error_code(NULL) == STORAGE_ERR_INVALID_ARGUMENT, "error_code(NULL)");
  CHECK(strcmp(storage_error_message(NULL), "") == 0, "error_message(NULL)");
  CHECK(strcmp(storage_error_key(NULL), "") == 0, "error_key(NULL)");
  CHECK(storage_error_resource_version(NULL) == 0, "error_rv(NULL)");
  storage_error_free(NULL);
  storage_bytes_free(obj); /* {NULL, 0} */
  storage_destroy(NULL);
  storage_health_check_destroy(NULL);
  CHECK(strcmp(storage_version(), APISERVER_STORAGE_VERSION) == 0, "library %s, header %s", storage_version(),
        APISERVER_STORAGE_VERSION);
  storage_destroy(s);
}

/* configs ENDPOINT: malformed configs give INVALID_CONFIG naming the problem */
static void case_configs(char **argv) {
  const char *endpoint = argv[0];
  char buf[1024];
  struct {
    const char *fmt;
    storage_code code;
    const char *needle;
  } cases[] = {
      {"{\"server_list\":[\"%s\"]", STORAGE_ERR_INVALID_CONFIG, "invalid config"},
      {"{\"server_list\":[\"%s\"],\"colour\":\"blue\"}", STORAGE_ERR_INVALID_CONFIG, "unknown field `colour`"},
      {"{\"server_list\":[\"%s\"],\"quorum\":1}", STORAGE_ERR_INVALID_CONFIG, "`quorum`"},
      {"{\"server_list\":[\"%s\"],\"type\":\"zookeeper\"}", STORAGE_ERR_INVALID_CONFIG,
       "unknown storage type: zookeeper"},
      {"{\"server_list\":[\"%s\"],\"type\":\"etcd2\",\"transformer\":{\"providers\":[{\"identity\":{}}]}}",
       STORAGE_ERR_INVALID_CONFIG, "encryption at rest is not supported"},
      {"{\"server_list\":[],\"x\":\"%s\"}", STORAGE_ERR_INVALID_CONFIG, "unknown field `x`"},
      {"{\"server_list\":[\"%s\"],\"ca_file\":\"/nonexistent/ca.pem\"}", STORAGE_ERR_INVALID_CONFIG, "ca_file"},
      {"{\"server_list\":[\"%s\"],\"ca_file\":\"/etc/hostname\"}", STORAGE_ERR_INVALID_CONFIG, "not valid PEM"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(buf, sizeof buf, cases[i].fmt, endpoint);
    storage *s = NULL;
    storage_error *err = NULL;
    EXPECT_ERR(storage_create(buf, &s, &err), cases[i].code, cases[i].needle, buf);
    CHECK(s == NULL, "out written on failure: %s", buf);
    storage_health_check *hc = NULL;
    EXPECT_ERR(storage_health_check_create(buf, &hc, &err), cases[i].code, cases[i].needle, buf);
    CHECK(hc == NULL, "check out written on failure: %s", buf);
  }
  {
    storage *s = NULL;
    storage_error *err = NULL;
    EXPECT_ERR(storage_create("{\"server_list\":[]}", &s, &err), STORAGE_ERR_INVALID_CONFIG, "server_list",
                 "empty server_list");
  }
}

/* threads CONFIG KEY RV ITERATIONS: 16 threads x ITERATIONS gets on one handle */
struct thread_arg {
  storage *s;
  const char *key;
  const char *want;
  int iterations;
  int bad;
};

static void *reader(void *p) {
  struct thread_arg *a = p;
  for (int i = 0; i < a->iterations; i++) {
    storage_bytes obj = {NULL, 0};
    storage_error *err = NULL;
    storage_code rc = storage_get(a->s, a->key, NULL, false, &obj, &err);
    if (rc != STORAGE_OK || !contains(&obj, a->want)) {
      if (a->bad++ == 0) fprintf(stderr, "thread read failed: %d %s\n", rc, storage_error_message(err));
    }
    storage_error_free(err);
    storage_bytes_free(obj);
  }
  return NULL;
}

static void case_threads(char **argv) {
  storage *s = must_create(argv[0]);
  char want[64];
  snprintf(want, sizeof want, "\"resourceVersion\":\"%s\"", argv[2]);
  pthread_t t[16];
  struct thread_arg args[16];
  for (int i = 0; i < 16; i++) {
    args[i] = (struct thread_arg){s, argv[1], want, atoi(argv[3]), 0};
    CHECK(pthread_create(&t[i], NULL, reader, &args[i]) == 0, "pthread_create");
  }
  int bad = 0;
  for (int i = 0; i < 16; i++) {
    pthread_join(t[i], NULL);
    bad += args[i].bad;
  }
  CHECK(bad == 0, "%d of %d reads failed", bad, 16 * args[0].iterations);
  printf("%d reads checked\n", 16 * args[0].iterations);
  storage_destroy(s);
}

/* down CONFIG HEALTH_TIMEOUT_S REQUEST_TIMEOUT_S: etcd is not running */
static void case_down(char **argv) {
  double health_timeout = atof(argv[1]), request_timeout = atof(argv[2]);
  const char *health_message = argv[3];
  double t0 = now_s();
  storage *s = must_create(argv[0]);
  CHECK(now_s() - t0 < SLACK, "create took %.2fs while etcd is down", now_s() - t0);

  storage_error *err = NULL;
  t0 = now_s();
  storage_code rc = storage_health(s, &err);
  double took = now_s() - t0;
  expect_error(rc, err, STORAGE_ERR_UNREACHABLE, health_message, "health while down");
  CHECK(took < health_timeout + SLACK, "health took %.2fs", took);

  storage_health_check *hc = NULL;
  rc = storage_health_check_create(argv[0], &hc, &err);
  CHECK(rc == STORAGE_OK, "check create: %s", storage_error_message(err));
  if (rc == STORAGE_OK) {
    t0 = now_s();
    rc = storage_health_check_run(hc, &err);
    expect_error(rc, err, STORAGE_ERR_UNREACHABLE, NULL, "check while down");
    CHECK(now_s() - t0 < health_timeout + SLACK, "check took %.2fs", now_s() - t0);
    storage_health_check_destroy(hc);
  }

  storage_bytes obj = {NULL, 0};
  t0 = now_s();
  rc = storage_get(s, "/a", NULL, false, &obj, &err);
  took = now_s() - t0;
  CHECK(rc == STORAGE_ERR_UNREACHABLE || rc == STORAGE_ERR_TIMEOUT, "get while down: %d %s", rc,
        storage_error_message(err));
  storage_error_free(err);
  CHECK(took < request_timeout + SLACK, "get took %.2fs", took);

  t0 = now_s();
  storage_destroy(s);
  CHECK(now_s() - t0 < 2.0 + SLACK, "destroy took %.2fs", now_s() - t0);
}

/* check_wait CONFIG: a health check created while etcd is down turns healthy
 * once the driver starts etcd (after reading "created" from our stdout). */
static void case_check_wait(char **argv) {
  storage_health_check *hc = NULL;
  storage_error *err = NULL;
  double t0 = now_s();
  storage_code rc = storage_health_check_create(argv[0], &hc, &err);
  CHECK(rc == STORAGE_OK, "check create: %s", storage_error_message(err));
  CHECK(now_s() - t0 < SLACK, "check create blocked %.2fs", now_s() - t0);
  if (rc != STORAGE_OK) return;
  rc = storage_health_check_run(hc, &err);
  expect_error(rc, err, STORAGE_ERR_UNREACHABLE, NULL, "check before etcd starts");
  printf("created\n");
  fflush(stdout);
  t0 = now_s();
  for (;;) {
    rc = storage_health_check_run(hc, &err);
    if (rc == STORAGE_OK) break;
    storage_error_free(err);
    err = NULL;
    if (now_s() - t0 > 30) break;
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  CHECK(rc == STORAGE_OK, "check never turned healthy");
  printf("healthy after %.2fs\n", now_s() - t0);
  t0 = now_s();
  storage_health_check_destroy(hc);
  CHECK(now_s() - t0 < 2.0 + SLACK, "check destroy took %.2fs", now_s() - t0);
}

/* Watches. */

static const char *event_type_name(storage_watch_event_type t) {
  switch (t) {
    case STORAGE_WATCH_ADDED: return "ADDED";
    case STORAGE_WATCH_MODIFIED: return "MODIFIED";
    case STORAGE_WATCH_DELETED: return "DELETED";
    case STORAGE_WATCH_BOOKMARK: return "BOOKMARK";
    default: return "INVALID";
  }
}

static int bytes_contain(const uint8_t *data, size_t len, const char *needle) {
  storage_bytes b = {(uint8_t *)data, len};
  return contains(&b, needle);
}

static storage_watch *must_watch(storage *s, const char *key, const char *rv) {
  storage_watch *w = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_create(s, key, rv, true, &w, &err);
  if (rc != STORAGE_OK) {
    fprintf(stderr, "storage_watch_create: %d %s\n", rc, storage_error_message(err));
    exit(2);
  }
  return w;
}

/* Reads one event (30 s at most), checks that its object carries its
 * resourceVersion, prints `TYPE KEY RV HAS_PREV` and frees it. */
static void print_next_event(storage_watch *w) {
  storage_watch_event *e = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_next(w, 30000, &e, &err);
  CHECK(rc == STORAGE_OK, "next: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  if (rc != STORAGE_OK) return;
  long long rv = (long long)storage_watch_event_resource_version(e);
  size_t len = 0, prev_len = 0;
  const uint8_t *obj = storage_watch_event_object(e, &len);
  const uint8_t *prev = storage_watch_event_prev_object(e, &prev_len);
  char want_rv[64];
  snprintf(want_rv, sizeof want_rv, "\"resourceVersion\":\"%lld\"", rv);
  CHECK(bytes_contain(obj, len, want_rv), "object lacks %s: %.*s", want_rv, (int)len, (const char *)obj);
  CHECK((prev == NULL) == (prev_len == 0), "prev pointer and length disagree");
  CHECK(storage_watch_event_object(e, NULL) == obj, "object without out_len");
  printf("%s %s %lld %d\n", event_type_name(storage_watch_event_get_type(e)), storage_watch_event_key(e), rv,
         prev != NULL);
  fflush(stdout);
  storage_watch_event_free(e);
}

/* Expects no event within `ms`, and `*out_event` left alone. */
static void expect_no_event(storage_watch *w, uint32_t ms) {
  storage_watch_event *sentinel = (storage_watch_event *)&failures, *e = sentinel;
  storage_error *err = NULL;
  double t0 = now_s();
  storage_code rc = storage_watch_next(w, ms, &e, &err);
  double took = now_s() - t0;
  expect_error(rc, err, STORAGE_ERR_TIMEOUT, "no watch event within", "next with nothing to read");
  CHECK(e == sentinel, "out_event written on timeout");
  CHECK(took >= ms / 1000.0 - 0.01 && took < ms / 1000.0 + 2.0, "timeout of %u ms took %.3fs", ms, took);
}

/* watch CONFIG KEY LISTED COUNT: a recursive watch on KEY from resource
 * version 0: prints the LISTED current objects, waits out a timeout, prints
 * "ready", then prints COUNT events the driver causes. */
static void case_watch(char **argv) {
  storage *s = must_create(argv[0]);
  storage_watch *w = must_watch(s, argv[1], NULL);
  for (int i = 0; i < atoi(argv[2]); i++) print_next_event(w);
  expect_no_event(w, 0);
  expect_no_event(w, 300);
  printf("ready\n");
  fflush(stdout);
  for (int i = 0; i < atoi(argv[3]); i++) print_next_event(w);
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* watch_expired CONFIG KEY RV: RV was compacted away */
static void case_watch_expired(char **argv) {
  storage *s = must_create(argv[0]);
  storage_watch *w = must_watch(s, argv[1], argv[2]);
  storage_watch_event *e = NULL;
  storage_error *err = NULL;
  /* Ended watches answer with their error, every time. */
  for (int i = 0; i < 2; i++) {
    storage_code rc = storage_watch_next(w, 30000, &e, &err);
    expect_error(rc, err, STORAGE_ERR_EXPIRED, "The resourceVersion for the provided watch is too old.",
                 "compacted rv");
    err = NULL;
    CHECK(e == NULL, "out_event written on failure");
  }
  CHECK(storage_watch_next(w, 0, &e, NULL) == STORAGE_ERR_EXPIRED, "expired without out_error");
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* watch_destroy CONFIG KEY: watches outlive their storage handle, events
 * outlive their watch, and destroying a watch with unread events (the driver
 * writes several under KEY first) is quick and leak-free. */
static void case_watch_destroy(char **argv) {
  storage *s = must_create(argv[0]);
  storage_watch *read = must_watch(s, argv[1], "1");
  storage_watch *unread = must_watch(s, argv[1], "1");
  storage_watch *quiet = must_watch(s, "/nothing/here", NULL);
  storage_destroy(s);
  storage_watch_event *e = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_next(read, 30000, &e, &err);
  CHECK(rc == STORAGE_OK, "next after storage_destroy: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  double t0 = now_s();
  storage_watch_destroy(read);
  storage_watch_destroy(unread);
  storage_watch_destroy(quiet);
  CHECK(now_s() - t0 < 2.0 + SLACK, "destroying watches took %.2fs", now_s() - t0);
  size_t len = 0;
  const uint8_t *obj = storage_watch_event_object(e, &len);
  CHECK(obj != NULL && len > 0 && bytes_contain(obj, len, "\"resourceVersion\""), "event after destroy");
  storage_watch_event_free(e);
}

/* watch_nulls CONFIG: every NULL argument of every watch function */
static void case_watch_nulls(char **argv) {
  storage *s = must_create(argv[0]);
  storage_watch *w = NULL;
  storage_watch_event *e = NULL;
  storage_error *err = NULL;
  EXPECT_ERR(storage_watch_create(NULL, "/k", NULL, false, &w, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage",
             "watch NULL storage");
  EXPECT_ERR(storage_watch_create(s, NULL, NULL, false, &w, &err), STORAGE_ERR_INVALID_ARGUMENT, "key",
             "watch NULL key");
  EXPECT_ERR(storage_watch_create(s, "/k", NULL, false, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_watch",
             "watch NULL out");
  CHECK(storage_watch_create(s, "/k", NULL, false, NULL, NULL) == STORAGE_ERR_INVALID_ARGUMENT, "watch all NULL");
  const char bad_utf8[] = {'/', 'a', (char)0xff, 0};
  EXPECT_ERR(storage_watch_create(s, bad_utf8, NULL, false, &w, &err), STORAGE_ERR_INVALID_ARGUMENT, "UTF-8",
             "watch invalid UTF-8 key");
  EXPECT_ERR(storage_watch_create(s, "/k", bad_utf8, false, &w, &err), STORAGE_ERR_INVALID_ARGUMENT, "UTF-8",
             "watch invalid UTF-8 rv");
  EXPECT_ERR(storage_watch_create(s, "/k", "abc", false, &w, &err), STORAGE_ERR_INVALID_ARGUMENT,
             "resourceVersion", "watch malformed rv");
  EXPECT_ERR(storage_watch_create(s, "/../../etc", NULL, true, &w, &err), STORAGE_ERR_INVALID_ARGUMENT,
             "outside the prefix", "watch escaping key");
  CHECK(w == NULL, "out_watch written on failure");

  w = must_watch(s, "/k", NULL);
  EXPECT_ERR(storage_watch_next(NULL, 0, &e, &err), STORAGE_ERR_INVALID_ARGUMENT, "watch", "next NULL watch");
  EXPECT_ERR(storage_watch_next(w, 0, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_event", "next NULL out");
  CHECK(storage_watch_next(NULL, 0, NULL, NULL) == STORAGE_ERR_INVALID_ARGUMENT, "next all NULL");
  CHECK(e == NULL, "out_event written on failure");

  CHECK(storage_watch_event_get_type(NULL) == STORAGE_WATCH_INVALID, "type(NULL)");
  CHECK(strcmp(storage_watch_event_key(NULL), "") == 0, "key(NULL)");
  CHECK(storage_watch_event_resource_version(NULL) == 0, "rv(NULL)");
  size_t len = 77;
  CHECK(storage_watch_event_object(NULL, &len) == NULL && len == 0, "object(NULL)");
  len = 77;
  CHECK(storage_watch_event_prev_object(NULL, &len) == NULL && len == 0, "prev_object(NULL)");
  CHECK(storage_watch_event_object(NULL, NULL) == NULL, "object(NULL, NULL)");
  storage_watch_event_free(NULL);
  storage_watch_destroy(NULL);
  storage_watch_destroy(w);
  storage_destroy(s);
}

/* The value of the sample `series` (name and labels exactly as written) in a
 * scrape; -1 when absent. */
static double sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
    if (strncmp(line, series, n) == 0 && line[n] == ' ') return atof(line + n + 1);
  }
  return -1;
}

/* The sum of every sample of metric `name` whose labels contain `labels`. */
static double sum_samples(const char *text, const char *name, const char *labels) {
  double sum = 0;
  size_t n = strlen(name);
  for (const char *line = text; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    char buf[512];
    if (len >= sizeof buf || strncmp(line, name, n) != 0 || line[n] != '{') continue;
    memcpy(buf, line, len);
    buf[len] = '\0';
    char *space = strrchr(buf, ' ');
    if (space != NULL && strstr(buf, labels) != NULL) sum += atof(space + 1);
  }
  return sum;
}

static char *must_scrape(storage *s) {
  char *text = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_metrics(s, &text, &err);
  if (rc != STORAGE_OK) {
    fprintf(stderr, "storage_metrics: %d %s\n", rc, storage_error_message(err));
    exit(2);
  }
  return text;
}

#define RANGE "grpc_method=\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\""

/* metrics CONFIG KEY N M DOWN_CONFIG: N reads of KEY, M of missing keys, then
 * one read through a handle whose etcd is stopped; scraped and checked. */
static void case_metrics(char **argv) {
  const char *config = argv[0], *key = argv[1], *down_config = argv[4];
  int n = atoi(argv[2]), m = atoi(argv[3]);
  storage *s = must_create(config);
  storage_error *err = NULL;
  for (int i = 0; i < n; i++) {
    storage_bytes obj = {NULL, 0};
    CHECK(storage_get(s, key, NULL, false, &obj, &err) == STORAGE_OK, "get %s", storage_error_message(err));
    storage_bytes_free(obj);
  }
  for (int i = 0; i < m; i++) {
    char missing[64];
    snprintf(missing, sizeof missing, "/missing/%d", i);
    storage_bytes obj = {NULL, 0};
    EXPECT_ERR(storage_get(s, missing, NULL, false, &obj, &err), STORAGE_ERR_KEY_NOT_FOUND, "missing", "get missing");
  }
  char *text = must_scrape(s);
  double calls = n + m;
  CHECK(sample(text, "grpc_client_started_total{" RANGE "}") == calls, "started:\n%s", text);
  CHECK(sample(text, "grpc_client_handled_total{grpc_code=\"OK\"," RANGE "}") == calls, "handled OK");
  CHECK(sum_samples(text, "grpc_client_handled_total", RANGE) == calls, "handled, all codes");
  CHECK(sample(text, "grpc_client_msg_sent_total{" RANGE "}") == calls, "sent");
  CHECK(sample(text, "grpc_client_msg_received_total{" RANGE "}") == calls, "received");
  CHECK(sample(text, "grpc_client_handling_seconds_count{" RANGE "}") == calls, "histogram count");
  CHECK(sample(text, "grpc_client_handling_seconds_bucket{" RANGE ",le=\"10\"}") == calls, "10s bucket");
  CHECK(strstr(text, "# TYPE grpc_client_handling_seconds histogram\n") != NULL, "histogram type");
  CHECK(strstr(text, "# TYPE grpc_client_started_total counter\n") != NULL, "counter type");
  storage_string_free(text);

  storage *down = must_create(down_config);
  storage_bytes obj = {NULL, 0};
  storage_code rc = storage_get(down, key, NULL, false, &obj, &err);
  CHECK(rc == STORAGE_ERR_UNREACHABLE || rc == STORAGE_ERR_TIMEOUT, "get while down: %d", rc);
  storage_error_free(err);
  err = NULL;
  text = must_scrape(down);
  double started = sample(text, "grpc_client_started_total{" RANGE "}");
  double unavailable = sum_samples(text, "grpc_client_handled_total", "grpc_code=\"Unavailable\"," RANGE);
  double deadline = sum_samples(text, "grpc_client_handled_total", "grpc_code=\"DeadlineExceeded\"," RANGE);
  CHECK(started >= 1, "started while down:\n%s", text);
  CHECK(unavailable + deadline == started, "failed calls: %g + %g of %g:\n%s", unavailable, deadline, started, text);
  CHECK(sum_samples(text, "grpc_client_handled_total", RANGE) == started, "handled while down");
  CHECK(sample(text, "grpc_client_handling_seconds_count{" RANGE "}") == started, "histogram while down");
  CHECK(sample(text, "grpc_client_msg_received_total{" RANGE "}") == 0, "received while down");
  storage_string_free(text);
  storage_destroy(down);

  /* The other handle's failures are not counted here. */
  text = must_scrape(s);
  CHECK(sample(text, "grpc_client_started_total{" RANGE "}") == calls, "counts mixed across handles");
  storage_string_free(text);

  char *unwritten = (char *)"untouched";
  EXPECT_ERR(storage_metrics(NULL, &unwritten, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage", "metrics NULL handle");
  CHECK(strcmp(unwritten, "untouched") == 0, "out_text written on failure");
  EXPECT_ERR(storage_metrics(s, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_text", "metrics NULL out");
  storage_string_free(NULL);
  storage_destroy(s);
}

/* logs CONFIG KEY: one read and one write through a handle, for the driver to
 * check what the library logs on stderr. */
static void case_logs(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  storage_bytes obj = {NULL, 0};
  storage_code rc = storage_get(s, argv[1], NULL, false, &obj, &err);
  CHECK(rc == STORAGE_ERR_CORRUPT_OBJ, "get of a forged value: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  storage_destroy(s);
}

/* Sets the TTL in user_data (an int64_t) on the object {"metadata":{"name":"t"}}. */
static storage_code with_ttl(void *user_data, const uint8_t *current, size_t current_len, const uint8_t **out_new,
                             size_t *out_new_len, int64_t *out_ttl_seconds) {
  static const char body[] = "{\"metadata\":{\"name\":\"t\"},\"v\":1}";
  (void)current, (void)current_len;
  if (*out_ttl_seconds != -1) return STORAGE_ERR_INTERNAL; /* documented start value */
  *out_new = (const uint8_t *)body;
  *out_new_len = sizeof body - 1;
  *out_ttl_seconds = *(const int64_t *)user_data;
  return STORAGE_OK;
}

/* ttl CONFIG KEY: creates KEY through storage_guaranteed_update_ttl with a TTL
 * of 300 s (the driver checks etcd holds it), then tries TTLs that are refused. */
static void case_ttl(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  int64_t ttl = 300;
  storage_bytes obj = {NULL, 0};
  storage_code rc = storage_guaranteed_update_ttl(s, argv[1], true, NULL, with_ttl, &ttl, &obj, &err);
  CHECK(rc == STORAGE_OK, "update with a TTL: %d %s", rc, storage_error_message(err));
  CHECK(contains(&obj, "\"name\":\"t\""), "the stored object is returned");
  storage_bytes_free(obj);
  const int64_t refused[] = {-2, INT64_MIN, 9000000000LL};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    ttl = refused[i];
    char needle[32];
    snprintf(needle, sizeof needle, "%lld", (long long)ttl);
    EXPECT_ERR(storage_guaranteed_update_ttl(s, argv[1], false, NULL, with_ttl, &ttl, NULL, &err),
               STORAGE_ERR_INVALID_ARGUMENT, needle, "a refused TTL");
  }
  EXPECT_ERR(storage_guaranteed_update_ttl(s, argv[1], false, NULL, NULL, NULL, NULL, &err),
             STORAGE_ERR_INVALID_ARGUMENT, "try_update", "NULL callback");
  EXPECT_ERR(storage_guaranteed_update_ttl(NULL, argv[1], false, NULL, with_ttl, &ttl, NULL, &err),
             STORAGE_ERR_INVALID_ARGUMENT, "storage", "NULL storage");
  storage_destroy(s);
}

/* compact_revision CONFIG WANT: storage_compact_revision reads WANT, the
 * revision the driver recorded under compact_rev_key. */
static void case_compact_revision(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  int64_t rev = -1;
  storage_code rc = storage_compact_revision(s, &rev, &err);
  CHECK(rc == STORAGE_OK && rev == atoll(argv[1]), "compact revision %lld, want %s: %d %s", (long long)rev, argv[1],
        rc, storage_error_message(err));
  storage_error_free(err);
  EXPECT_ERR(storage_compact_revision(s, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_revision", "NULL out");
  EXPECT_ERR(storage_compact_revision(NULL, &rev, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage", "NULL storage");
  storage_destroy(s);
}

/* Reads the next event and checks it is a bookmark at `rv` or later. */
static void expect_bookmark(storage_watch *w, long long rv, const char *what) {
  storage_watch_event *e = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_watch_next(w, 30000, &e, &err);
  CHECK(rc == STORAGE_OK, "%s: next: %d %s", what, rc, storage_error_message(err));
  storage_error_free(err);
  if (rc != STORAGE_OK) return;
  size_t len = 1;
  const uint8_t *obj = storage_watch_event_object(e, &len);
  CHECK(storage_watch_event_get_type(e) == STORAGE_WATCH_BOOKMARK, "%s: type %d", what,
        storage_watch_event_get_type(e));
  CHECK(storage_watch_event_resource_version(e) >= rv, "%s: bookmark at %lld, want %lld or later", what,
        (long long)storage_watch_event_resource_version(e), rv);
  CHECK(obj != NULL && len == 0 && strcmp(storage_watch_event_key(e), "") == 0, "%s: a bookmark has no key or object",
        what);
  storage_watch_event_free(e);
}

/* bookmarks CONFIG KEY RV REQUESTS: watches KEY after RV, with
 * STORAGE_WATCH_PROGRESS_NOTIFY (etcd runs with a short progress interval) and
 * without. REQUESTS is "supported" (a requested bookmark comes at RV or later)
 * or etcd's version (requests are refused, naming it). */
static void case_bookmarks(char **argv) {
  storage *s = must_create(argv[0]);
  long long rv = atoll(argv[2]);
  storage_watch *w = NULL;
  storage_error *err = NULL;
  const uint32_t odd_flags[] = {4, 0x80000000u, 0xffffffffu};
  for (size_t i = 0; i < sizeof odd_flags / sizeof odd_flags[0]; i++)
    EXPECT_ERR(storage_watch_create_with_flags(s, argv[1], argv[2], odd_flags[i], &w, &err),
               STORAGE_ERR_INVALID_ARGUMENT, "unknown bits", "odd flags");
  CHECK(w == NULL, "out_watch written on failure");
  storage_code rc = storage_watch_create_with_flags(s, argv[1], argv[2],
                                                    STORAGE_WATCH_RECURSIVE | STORAGE_WATCH_PROGRESS_NOTIFY, &w, &err);
  CHECK(rc == STORAGE_OK, "watch with progress notifications: %d %s", rc, storage_error_message(err));
  if (rc == STORAGE_OK) {
    expect_bookmark(w, rv, "progress notification");
    storage_watch_destroy(w);
  }
  storage_error_free(err);
  err = NULL;
  rc = storage_watch_create_with_flags(s, argv[1], argv[2], STORAGE_WATCH_RECURSIVE, &w, &err);
  CHECK(rc == STORAGE_OK, "watch: %d %s", rc, storage_error_message(err));
  if (rc == STORAGE_OK) {
    if (strcmp(argv[3], "supported") == 0) {
      CHECK(storage_watch_request_progress(w, &err) == STORAGE_OK, "request: %s", storage_error_message(err));
      expect_bookmark(w, rv, "requested bookmark");
    } else {
      EXPECT_ERR(storage_watch_request_progress(w, &err), STORAGE_ERR_UNSUPPORTED, argv[3], "old etcd");
    }
    storage_watch_destroy(w);
  }
  EXPECT_ERR(storage_watch_request_progress(NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "watch", "NULL watch");
  storage_destroy(s);
}

int main(int argc, char **argv) {
  static const struct test_case cases[] = {
      {"roundtrip", 5, case_roundtrip}, {"raw", 3, case_raw},         {"corrupt", 3, case_corrupt}, {"info", 5, case_info}, {"writes", 3, case_writes}, {"fork", 2, case_fork},
      {"nulls", 1, case_nulls},         {"configs", 1, case_configs}, {"threads", 4, case_threads},
      {"down", 4, case_down},           {"check_wait", 1, case_check_wait},
      {"watch", 4, case_watch},         {"watch_expired", 3, case_watch_expired},
      {"watch_destroy", 2, case_watch_destroy}, {"watch_nulls", 1, case_watch_nulls},
      {"metrics", 5, case_metrics},     {"logs", 2, case_logs},
      {"ttl", 2, case_ttl},             {"compact_revision", 2, case_compact_revision},
      {"bookmarks", 4, case_bookmarks},
  };
  return run_case(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
