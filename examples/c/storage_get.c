/* storage_get: read one Kubernetes object from etcd the way kube-apiserver does,
 * decrypting it when the config names an EncryptionConfiguration.
 *
 *   storage_get CONFIG KEY
 *
 * CONFIG is the config JSON itself (starting with '{') or a file holding it;
 * KEY is relative to the config's prefix, e.g. /secrets/default/db-password.
 * Prints the object and its resourceVersion; on failure prints the error code
 * and message and exits with the code. */
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

static int fail(const char *what, storage_code code, storage_error *err) {
  fprintf(stderr, "%s failed: code %d: %s\n", what, (int)code, storage_error_message(err));
  storage_error_free(err);
  return (int)code;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s CONFIG_JSON|CONFIG_FILE KEY\n", argv[0]);
    return 2;
  }
  char *config = argv[1][0] == '{' ? strdup(argv[1]) : read_file(argv[1]);
  if (config == NULL) {
    perror(argv[1]);
    return 2;
  }
  printf("apiserver-storage %s\n", storage_version());

  storage *s = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_create(config, &s, &err);
  free(config);
  if (rc != STORAGE_OK) return fail("storage_create", rc, err);

  rc = storage_health(s, &err);
  if (rc != STORAGE_OK) {
    storage_destroy(s);
    return fail("storage_health", rc, err);
  }
  printf("etcd is healthy\n");

  storage_bytes object = {NULL, 0};
  storage_object_info info;
  rc = storage_get_with_info(s, argv[2], NULL, false, &object, &info, &err);
  if (rc != STORAGE_OK) {
    storage_destroy(s);
    return fail("storage_get", rc, err);
  }
  printf("resourceVersion: %lld%s\n", (long long)info.resource_version, info.stale ? " (stale: rewrite to re-encrypt)" : "");
  fwrite(object.data, 1, object.len, stdout);
  printf("\n");
  storage_bytes_free(object);
  storage_destroy(s);
  return 0;
}
