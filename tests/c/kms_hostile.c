/* Hostile callers of the kms provider and storage_reencrypt, driven by
 * tests/kms_hostile.rs (which plants hostile values in etcd and tells the test
 * KMS plugin to fail or rotate): `kms_hostile CASE ARGS...`. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver_storage.h"

#include "check.h"

/* corrupt CONFIG KEYS NEEDLES FORBIDDEN: a read of each of KEYS (one a
 * line) is CORRUPT_OBJ naming the key, its message holds its line of NEEDLES
 * and not FORBIDDEN (when not empty), short, within 30 s (valgrind, a loaded
 * machine). */
static void case_corrupt(char **argv) {
  storage *s = must_create(argv[0]);
  char *keys = strdup(argv[1]), *needles = strdup(argv[2]);
  char *ks = NULL, *ns = NULL;
  for (char *key = strtok_r(keys, "\n", &ks), *needle = strtok_r(needles, "\n", &ns); key != NULL && needle != NULL;
       key = strtok_r(NULL, "\n", &ks), needle = strtok_r(NULL, "\n", &ns)) {
    storage_bytes obj = {NULL, 0};
    storage_error *err = NULL;
    double t0 = now_s();
    storage_code rc = storage_get(s, key, NULL, false, &obj, &err);
    double took = now_s() - t0;
    CHECK(rc == STORAGE_ERR_CORRUPT_OBJ, "get %s: %d %s", key, rc, storage_error_message(err));
    if (err != NULL) {
      const char *msg = storage_error_message(err);
      CHECK(strstr(msg, needle) != NULL, "%s: no %s in: %s", key, needle, msg);
      CHECK(argv[3][0] == 0 || strstr(msg, argv[3]) == NULL, "%s: %s in: %s", key, argv[3], msg);
      CHECK(strstr(storage_error_key(err), "/registry") != NULL, "%s: the error names the key: %s", key, msg);
      CHECK(strlen(msg) < 4096, "%s: a %zu-byte message", key, strlen(msg));
    }
    CHECK(took < 30, "%s took %.2fs", key, took);
    printf("%s: CORRUPT_OBJ in %.3fs\n", key, took);
    storage_error_free(err);
    storage_bytes_free(obj);
  }
  free(keys);
  free(needles);
  storage_destroy(s);
}

struct worker {
  storage *s;
  int id;
  int rounds;
  int ok;
  int bad;
  char last_error[512];
};

static void *work(void *arg) {
  struct worker *w = arg;
  for (int r = 0; r < w->rounds; r++) {
    char key[64], value[256], needle[64];
    snprintf(key, sizeof key, "/secrets/t%d/r%d", w->id, r);
    snprintf(needle, sizeof needle, "\"v-%d-%d\"", w->id, r);
    snprintf(value, sizeof value,
             "{\"kind\":\"Secret\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"r%d\",\"namespace\":\"t%d\"},"
             "\"data\":{\"n\":\"v-%d-%d\"}}",
             r, w->id, w->id, r);
    storage_error *err = NULL;
    storage_code rc = storage_create_object(w->s, key, (const uint8_t *)value, strlen(value), 0, NULL, &err);
    if (rc != STORAGE_OK) {
      w->bad++;
      snprintf(w->last_error, sizeof w->last_error, "create %s: %d %s", key, rc, storage_error_message(err));
      storage_error_free(err);
      continue;
    }
    storage_bytes obj = {NULL, 0};
    rc = storage_get(w->s, key, NULL, false, &obj, &err);
    if (rc == STORAGE_OK && contains(&obj, needle)) {
      w->ok++;
    } else {
      w->bad++;
      snprintf(w->last_error, sizeof w->last_error, "get %s: %d %s", key, rc, storage_error_message(err));
    }
    storage_error_free(err);
    storage_bytes_free(obj);
  }
  return NULL;
}

/* threads CONFIG THREADS ROUNDS: THREADS threads each create and read back
 * ROUNDS objects through one handle; every one succeeds. Prints "ok N". */
static void case_threads(char **argv) {
  storage *s = must_create(argv[0]);
  int n = atoi(argv[1]);
  struct worker w[64];
  pthread_t t[64];
  CHECK(n > 0 && n <= 64, "threads %d", n);
  for (int i = 0; i < n; i++) {
    memset(&w[i], 0, sizeof w[i]);
    w[i].s = s;
    w[i].id = i;
    w[i].rounds = atoi(argv[2]);
    pthread_create(&t[i], NULL, work, &w[i]);
  }
  int ok = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    ok += w[i].ok;
    CHECK(w[i].bad == 0, "thread %d: %d failed, last: %s", i, w[i].bad, w[i].last_error);
  }
  printf("ok %d\n", ok);
  storage_destroy(s);
}

struct odd {
  storage *s;
  int mode; /* 0: return `code`; 1: call back into the library */
  storage_code code;
  int calls;
  int failures;
  int nested_ok;
  int non_utf8_failures;
};

static storage_code odd_progress(void *user_data, const storage_reencrypt_counts *counts,
                                     const storage_error *failure) {
  struct odd *o = user_data;
  o->calls++;
  CHECK(counts != NULL && counts->seen >= 0, "counts");
  if (failure != NULL) {
    o->failures++;
    if (strstr(storage_error_message(failure), "not UTF-8") != NULL) o->non_utf8_failures++;
  }
  if (o->mode == 0) return o->code;
  if (o->calls == 1) {
    /* The same handle, from inside its own walk: a read and a whole walk. */
    storage_bytes obj = {NULL, 0};
    storage_error *err = NULL;
    storage_code rc = storage_get(o->s, "/secrets/ns/a", NULL, true, &obj, &err);
    CHECK(rc == STORAGE_OK, "nested get: %d %s", rc, storage_error_message(err));
    storage_error_free(err);
    storage_bytes_free(obj);
    storage_reencrypt_counts inner = {-1, -1, -1};
    rc = storage_reencrypt(o->s, "/secrets/ns", NULL, NULL, &inner, &err);
    CHECK(rc == STORAGE_OK, "nested reencrypt: %d %s", rc, storage_error_message(err));
    storage_error_free(err);
    if (rc == STORAGE_OK) o->nested_ok++;
  }
  return STORAGE_OK;
}

/* reencrypt_odd CONFIG: progress functions that return odd codes stop the
 * walk with INVALID_ARGUMENT (an unknown code) or their code; one that calls
 * back into the library, even storage_reencrypt on the same handle, works;
 * odd keys are refused or walk nothing. */
static void case_reencrypt_odd(char **argv) {
  storage *s = must_create(argv[0]);
  storage_reencrypt_counts counts = {-1, -1, -1};
  storage_error *err = NULL;
  storage_code odd_codes[] = {-1, 42, 1000000, STORAGE_ERR_TIMEOUT};
  storage_code want[] = {STORAGE_ERR_INVALID_ARGUMENT, STORAGE_ERR_INVALID_ARGUMENT, STORAGE_ERR_INVALID_ARGUMENT,
                         STORAGE_ERR_TIMEOUT};
  for (int i = 0; i < 4; i++) {
    struct odd o = {s, 0, odd_codes[i], 0, 0, 0, 0};
    storage_code rc = storage_reencrypt(s, "/secrets", odd_progress, &o, &counts, &err);
    CHECK(rc == want[i], "progress returning %d: %d %s", odd_codes[i], rc, storage_error_message(err));
    CHECK(o.calls == 1, "progress returning %d called %d times", odd_codes[i], o.calls);
    storage_error_free(err);
    err = NULL;
  }
  struct odd nested = {s, 1, 0, 0, 0, 0, 0};
  storage_code rc = storage_reencrypt(s, "/secrets", odd_progress, &nested, &counts, &err);
  CHECK(rc == STORAGE_OK && nested.nested_ok == 1, "reentrant walk: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  err = NULL;
  /* Keys: empty, NULL (the whole prefix), dot segments, not a directory. */
  const char *keys[] = {"", "/", "/../..", "/secrets/../../etc", "\x01", "/no/such/dir"};
  for (int i = 0; i < 6; i++) {
    storage_reencrypt_counts c = {-1, -1, -1};
    rc = storage_reencrypt(s, keys[i], NULL, NULL, &c, &err);
    CHECK(rc == STORAGE_OK || rc == STORAGE_ERR_INVALID_ARGUMENT, "key %d: %d %s", i, rc,
          storage_error_message(err));
    if (rc == STORAGE_OK) CHECK(c.seen >= 0 && c.failed >= 0 && c.rewritten >= 0, "key %d counts", i);
    printf("key %d: rc %d seen %lld\n", i, rc, (long long)c.seen);
    storage_error_free(err);
    err = NULL;
  }
  storage_reencrypt_counts c = {-1, -1, -1};
  rc = storage_reencrypt(s, NULL, NULL, NULL, &c, &err);
  CHECK(rc == STORAGE_OK || rc == STORAGE_ERR_INVALID_ARGUMENT, "NULL key: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  storage_destroy(s);
}

/* walk CONFIG KEY SEEN REWRITTEN FAILED NON_UTF8: storage_reencrypt of KEY
 * gives these counts; NON_UTF8 of the failures say the key is not UTF-8;
 * prints the number of progress calls. */
static void case_walk(char **argv) {
  storage *s = must_create(argv[0]);
  struct odd o = {s, 0, STORAGE_OK, 0, 0, 0, 0};
  storage_reencrypt_counts counts = {-1, -1, -1};
  storage_error *err = NULL;
  storage_code rc = storage_reencrypt(s, argv[1], odd_progress, &o, &counts, &err);
  CHECK(rc == STORAGE_OK, "reencrypt: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  CHECK(counts.seen == atoll(argv[2]) && counts.rewritten == atoll(argv[3]) && counts.failed == atoll(argv[4]),
        "counts seen %lld rewritten %lld failed %lld, want %s %s %s", (long long)counts.seen,
        (long long)counts.rewritten, (long long)counts.failed, argv[2], argv[3], argv[4]);
  CHECK(o.failures == atoi(argv[4]) && o.non_utf8_failures == atoi(argv[5]), "%d failures, %d not UTF-8",
        o.failures, o.non_utf8_failures);
  printf("calls %d\n", o.calls);
  storage_destroy(s);
}

int main(int argc, char **argv) {
  static const struct test_case cases[] = {
      {"corrupt", 4, case_corrupt},
      {"threads", 3, case_threads},
      {"reencrypt_odd", 1, case_reencrypt_odd},
      {"walk", 6, case_walk},
  };
  return run_case(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
