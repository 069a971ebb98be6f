/* Checks shared by the C test programs: each program counts failed checks in
 * `failures` and exits non-zero when there were any. */
#ifndef STORAGE_TEST_CHECK_H
#define STORAGE_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apiserver_storage.h"

static int failures = 0;

/* Slack on every time bound: valgrind on a loaded 2-core machine is slow, but
 * a hang (a 20 s dial, a 60 s request) still fails. */
#define SLACK 3.0

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                        \
      fprintf(stderr, "\n");                                               \
      failures++;                                                          \
    }                                                                      \
  } while (0)

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The offset of `needle` in `b` (which is not NUL-terminated), or -1. */
static inline long find(const storage_bytes *b, const char *needle) {
  size_t n = strlen(needle);
  if (b->data == NULL || b->len < n) return -1;
  for (size_t i = 0; i + n <= b->len; i++)
    if (memcmp(b->data + i, needle, n) == 0) return (long)i;
  return -1;
}

static inline int contains(const storage_bytes *b, const char *needle) { return find(b, needle) >= 0; }

/* Calls expected to fail: checks the code, that the message mentions `needle`,
 * and frees the error. */
static inline void expect_error(storage_code got, storage_error *err, storage_code want, const char *needle,
                         const char *what) {
  CHECK(got == want, "%s: code %d, want %d (%s)", what, got, want, storage_error_message(err));
  CHECK(err != NULL, "%s: no error object", what);
  CHECK(storage_error_code(err) == want, "%s: error object code %d", what, storage_error_code(err));
  if (needle != NULL)
    CHECK(strstr(storage_error_message(err), needle) != NULL, "%s: message %s lacks %s", what,
          storage_error_message(err), needle);
  storage_error_free(err);
}

/* `call` must store its error in the enclosing scope's `err`. */
#define EXPECT_ERR(call, want, needle, what) \
  do {                                       \
    storage_code rc_ = (call);               \
    expect_error(rc_, err, want, needle, what); \
    err = NULL;                              \
  } while (0)

static inline storage *must_create(const char *config) {
  storage *s = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_create(config, &s, &err);
  if (rc != STORAGE_OK) {
    fprintf(stderr, "storage_create: %d %s\n", rc, storage_error_message(err));
    exit(2);
  }
  return s;
}

/* One case of a test program: its name, how many arguments it takes, and its body. */
struct test_case {
  const char *name;
  int nargs;
  void (*run)(char **);
};

/* The main of a test program: `PROGRAM CASE ARGS...` runs one case. */
static inline int run_case(int argc, char **argv, const struct test_case *cases, size_t n) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CASE ARGS...\n", argv[0]);
    return 2;
  }
  for (size_t i = 0; i < n; i++) {
    if (strcmp(argv[1], cases[i].name) == 0) {
      if (argc - 2 != cases[i].nargs) {
        fprintf(stderr, "%s takes %d arguments\n", cases[i].name, cases[i].nargs);
        return 2;
      }
      cases[i].run(argv + 2);
      if (failures) fprintf(stderr, "%d checks failed\n", failures);
      return failures ? 1 : 0;
    }
  }
  fprintf(stderr, "unknown case %s\n", argv[1]);
  return 2;
}

#endif
