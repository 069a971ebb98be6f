/* The kms provider through the C ABI, driven by tests/kms.rs (which runs the
 * test KMS plugin and tells it to fail, hang or rotate): `kms_test CASE ARGS...`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver_storage.h"

#include "check.h"

/* put CONFIG KEY VALUE: creates KEY with the JSON object VALUE. */
static void case_put(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  storage_code rc = storage_create_object(s, argv[1], (const uint8_t *)argv[2], strlen(argv[2]), 0, NULL, &err);
  CHECK(rc == STORAGE_OK, "create: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  storage_destroy(s);
}

/* reads CONFIG KEY NEEDLE N: N reads of KEY, each holding NEEDLE. */
static void case_reads(char **argv) {
  storage *s = must_create(argv[0]);
  int n = atoi(argv[3]);
  for (int i = 0; i < n; i++) {
    storage_bytes obj = {NULL, 0};
    storage_error *err = NULL;
    storage_code rc = storage_get(s, argv[1], NULL, false, &obj, &err);
    CHECK(rc == STORAGE_OK && contains(&obj, argv[2]), "read %d: %d %s", i, rc, storage_error_message(err));
    storage_error_free(err);
    storage_bytes_free(obj);
    if (rc != STORAGE_OK) break;
  }
  storage_destroy(s);
}

/* get_fails CONFIG KEY CODE NEEDLE SECONDS: a read of KEY fails with CODE, a
 * message holding NEEDLE, within SECONDS. */
static void case_get_fails(char **argv) {
  storage *s = must_create(argv[0]);
  storage_bytes obj = {(uint8_t *)&failures, 0};
  storage_error *err = NULL;
  double t0 = now_s();
  storage_code rc = storage_get(s, argv[1], NULL, false, &obj, &err);
  double took = now_s() - t0;
  CHECK(obj.data == (uint8_t *)&failures, "out_object written on failure");
  CHECK(strcmp(storage_error_key(err), "") != 0, "the error names the key");
  expect_error(rc, err, (storage_code)atoi(argv[2]), argv[3], "get");
  CHECK(took < atof(argv[4]) + SLACK, "failed after %.2fs, over %ss", took, argv[4]);
  storage_destroy(s);
}

/* health CONFIG CODE NEEDLE: storage_health gives CODE (0: healthy), with
 * NEEDLE in the message. */
static void case_health(char **argv) {
  storage *s = must_create(argv[0]);
  storage_error *err = NULL;
  storage_code rc = storage_health(s, &err);
  if (atoi(argv[1]) == 0) {
    CHECK(rc == STORAGE_OK, "health: %d %s", rc, storage_error_message(err));
    storage_error_free(err);
  } else {
    expect_error(rc, err, (storage_code)atoi(argv[1]), argv[2], "health");
  }
  storage_destroy(s);
}

struct progress {
  int pages;
  int failures;
  int64_t last_seen;
  int abort_after_page;
};

static storage_code on_progress(void *user_data, const storage_reencrypt_counts *counts,
                                const storage_error *failure) {
  struct progress *p = user_data;
  CHECK(counts->seen >= p->last_seen, "counts go backwards");
  p->last_seen = counts->seen;
  if (failure != NULL) {
    p->failures++;
    CHECK(strlen(storage_error_key(failure)) > 0, "a failure names its key");
    return STORAGE_OK;
  }
  p->pages++;
  return p->abort_after_page ? STORAGE_ERR_RESOURCE_VERSION_CONFLICTS : STORAGE_OK;
}

/* reencrypt CONFIG KEY SEEN REWRITTEN FAILED: storage_reencrypt of KEY gives
 * these counts, reporting each failure and each page; a progress function
 * that stops the walk stops it with its code. */
static void case_reencrypt(char **argv) {
  storage *s = must_create(argv[0]);
  struct progress p = {0, 0, 0, 0};
  storage_reencrypt_counts counts = {-1, -1, -1};
  storage_error *err = NULL;
  storage_code rc = storage_reencrypt(s, argv[1], on_progress, &p, &counts, &err);
  CHECK(rc == STORAGE_OK, "reencrypt: %d %s", rc, storage_error_message(err));
  storage_error_free(err);
  CHECK(counts.seen == atoll(argv[2]) && counts.rewritten == atoll(argv[3]) && counts.failed == atoll(argv[4]),
        "counts seen %lld rewritten %lld failed %lld, want %s %s %s", (long long)counts.seen,
        (long long)counts.rewritten, (long long)counts.failed, argv[2], argv[3], argv[4]);
  CHECK(p.pages >= 1 && p.failures == atoi(argv[4]), "progress: %d pages, %d failures", p.pages, p.failures);
  printf("seen %lld rewritten %lld failed %lld\n", (long long)counts.seen, (long long)counts.rewritten,
         (long long)counts.failed);
  /* Stopped by its progress function: that code, counts untouched. */
  struct progress stop = {0, 0, 0, 1};
  storage_reencrypt_counts untouched = {-1, -1, -1};
  EXPECT_ERR(storage_reencrypt(s, argv[1], on_progress, &stop, &untouched, &err),
             STORAGE_ERR_RESOURCE_VERSION_CONFLICTS, "aborted by progress", "stopped walk");
  CHECK(untouched.seen == -1, "out_counts written on failure");
  EXPECT_ERR(storage_reencrypt(s, argv[1], NULL, NULL, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT, "out_counts",
             "NULL out_counts");
  EXPECT_ERR(storage_reencrypt(NULL, argv[1], NULL, NULL, &untouched, &err), STORAGE_ERR_INVALID_ARGUMENT, "storage",
             "NULL storage");
  /* Nothing is stale any more: a second walk rewrites nothing. */
  CHECK(storage_reencrypt(s, argv[1], NULL, NULL, &counts, NULL) == STORAGE_OK && counts.rewritten == 0,
        "second walk rewrote %lld", (long long)counts.rewritten);
  storage_destroy(s);
}

int main(int argc, char **argv) {
  static const struct test_case cases[] = {
      {"put", 3, case_put},       {"reads", 4, case_reads},         {"get_fails", 5, case_get_fails},
      {"health", 3, case_health}, {"reencrypt", 5, case_reencrypt},
  };
  return run_case(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
