/* reencrypt: after rotating an encryption key (a new first aescbc/aesgcm key,
 * a new first provider, or a KMS plugin's new key ID), rewrite every object
 * still encrypted the old way, as kube-apiserver would on an update — without
 * an API server, and safely beside a running one.
 *
 *   reencrypt CONFIG [KEY]
 *
 * CONFIG is the config JSON itself (starting with '{') or a file holding it;
 * KEY is the directory to walk, relative to the config's prefix (default "/",
 * everything), e.g. /secrets. Prints progress and each object that could not
 * be rewritten on stderr, the counts on stdout; exits 0 when every object is
 * now current, 1 when some failed, or with the error code of a failed walk. */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver_storage.h"

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len - 1 == 0) {
      char *bigger = realloc(buf, cap *= 2);
      if (bigger == NULL) free(buf);
      buf = bigger;
    }
  }
  fclose(f);
  if (buf != NULL) buf[len] = '\0';
  return buf;
}

/* Called after each page and each object that could not be rewritten. */
static storage_code progress(void *user_data, const storage_reencrypt_counts *counts, const storage_error *failure) {
  (void)user_data;
  if (failure != NULL) {
    fprintf(stderr, "could not rewrite %s: code %d: %s\n", storage_error_key(failure),
            (int)storage_error_code(failure), storage_error_message(failure));
  } else {
    fprintf(stderr, "%lld objects seen, %lld rewritten\n", (long long)counts->seen, (long long)counts->rewritten);
  }
  return STORAGE_OK;
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 3) {
    fprintf(stderr, "usage: %s CONFIG_JSON|CONFIG_FILE [KEY]\n", argv[0]);
    return 2;
  }
  char *config = argv[1][0] == '{' ? strdup(argv[1]) : read_file(argv[1]);
  if (config == NULL) {
    perror(argv[1]);
    return 2;
  }
  storage *s = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_create(config, &s, &err);
  free(config);
  if (rc != STORAGE_OK) {
    fprintf(stderr, "storage_create failed: code %d: %s\n", (int)rc, storage_error_message(err));
    storage_error_free(err);
    return (int)rc;
  }
  storage_reencrypt_counts counts;
  rc = storage_reencrypt(s, argc == 3 ? argv[2] : "/", progress, NULL, &counts, &err);
  if (rc != STORAGE_OK) {
    fprintf(stderr, "storage_reencrypt failed: code %d: %s\n", (int)rc, storage_error_message(err));
    storage_error_free(err);
    storage_destroy(s);
    return (int)rc;
  }
  printf("seen %lld rewritten %lld failed %lld\n", (long long)counts.seen, (long long)counts.rewritten,
         (long long)counts.failed);
  storage_destroy(s);
  return counts.failed == 0 ? 0 : 1;
}
