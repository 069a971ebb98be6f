/* storage_bench: throughput and client CPU of the C ABI.
 *
 *   storage_bench get  CONFIG KEY CLIENTS N
 *   storage_bench list CONFIG KEY CLIENTS N LIMIT     (N lists, each paged by LIMIT)
 *   storage_bench seed CONFIG KEY BYTES COUNT         (COUNT objects of ~BYTES at KEY, or KEY-i)
 *
 * Prints one JSON line: ops, secs, ops_per_s, cpu_us_per_op, max_rss_kb, and
 * rss_kb_warm / rss_kb_end: the resident set once a tenth of the operations
 * are done and after the last one, whose difference is the growth under load. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "apiserver_storage.h"

static storage *s;
static const char *key;
static long per_client, limit;
static int list_mode;
static long total_ops, done_ops, rss_warm_kb;

static void die(const char *what, storage_code rc, storage_error *err) {
  fprintf(stderr, "%s: code %d: %s\n", what, (int)rc, storage_error_message(err));
  exit(1);
}

static void one(void) {
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc;
  if (!list_mode) {
    rc = storage_get(s, key, NULL, false, &obj, &err);
    if (rc != STORAGE_OK) die("storage_get", rc, err);
    storage_bytes_free(obj);
    return;
  }
  char token[1024] = "";
  for (;;) {
    rc = storage_list(s, key, NULL, limit, token, &obj, &err);
    if (rc != STORAGE_OK) die("storage_list", rc, err);
    /* the token, if any, follows "continue":" in the metadata at the end */
    const char *needle = "\"continue\":\"";
    size_t n = strlen(needle);
    token[0] = '\0';
    for (size_t i = obj.len > 2048 ? obj.len - 2048 : 0; i + n <= obj.len; i++) {
      if (memcmp(obj.data + i, needle, n) == 0) {
        size_t j = 0;
        while (i + n + j < obj.len && obj.data[i + n + j] != '"' && j + 1 < sizeof token) {
          token[j] = (char)obj.data[i + n + j];
          j++;
        }
        token[j] = '\0';
        break;
      }
    }
    storage_bytes_free(obj);
    if (token[0] == '\0') return;
  }
}

/* A field of /proc/self/status in kB: VmHWM, the peak resident set of this
 * process image (unlike ru_maxrss, not inherited across exec), or VmRSS. */
static long status_kb(const char *field) {
  char line[256], format[64];
  long kb = -1;
  snprintf(format, sizeof format, "%s: %%ld kB", field);
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, format, &kb) == 1) break;
  fclose(f);
  return kb;
}

static void *worker(void *unused) {
  (void)unused;
  for (long i = 0; i < per_client; i++) {
    one();
    if (__atomic_add_fetch(&done_ops, 1, __ATOMIC_RELAXED) == total_ops / 10)
      __atomic_store_n(&rss_warm_kb, status_kb("VmRSS"), __ATOMIC_RELAXED);
  }
  return NULL;
}

static double tv(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec / 1e6; }

static void seed(const char *config, const char *base, long bytes, long count) {
  storage_error *err = NULL;
  storage_code rc = storage_create(config, &s, &err);
  if (rc != STORAGE_OK) die("storage_create", rc, err);
  char *body = malloc((size_t)bytes + 256);
  for (long i = 0; i < count; i++) {
    char k[512];
    if (count == 1)
      snprintf(k, sizeof k, "%s", base);
    else
      snprintf(k, sizeof k, "%s/obj-%06ld", base, i);
    int h = snprintf(body, 256, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"obj-%06ld\","
                                "\"namespace\":\"default\"},\"data\":{\"payload\":\"", i);
    long pad = bytes > h + 4 ? bytes - h - 4 : 1;
    memset(body + h, 'x', (size_t)pad);
    strcpy(body + h + pad, "\"}}");
    storage_delete(s, k, NULL, NULL, NULL);
    rc = storage_create_object(s, k, (const uint8_t *)body, strlen(body), 0, NULL, &err);
    if (rc != STORAGE_OK) die("storage_create_object", rc, err);
  }
  free(body);
  storage_destroy(s);
}

int main(int argc, char **argv) {
  if (argc == 6 && strcmp(argv[1], "seed") == 0) {
    seed(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
    return 0;
  }
  if (argc < 6 || (strcmp(argv[1], "get") != 0 && strcmp(argv[1], "list") != 0)) {
    fprintf(stderr, "usage: storage_bench get|list CONFIG KEY CLIENTS N [LIMIT] | seed CONFIG KEY BYTES COUNT\n");
    return 2;
  }
  list_mode = strcmp(argv[1], "list") == 0;
  key = argv[3];
  int clients = atoi(argv[4]);
  long n = atol(argv[5]);
  limit = argc > 6 ? atol(argv[6]) : 0;
  per_client = n / clients;
  total_ops = per_client * clients;
  storage_error *err = NULL;
  storage_code rc = storage_create(argv[2], &s, &err);
  if (rc != STORAGE_OK) die("storage_create", rc, err);
  one(); /* connect and warm up */

  struct rusage r0, r1;
  struct timespec t0, t1;
  getrusage(RUSAGE_SELF, &r0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t *threads = malloc(sizeof(pthread_t) * (size_t)clients);
  for (int i = 0; i < clients; i++) pthread_create(&threads[i], NULL, worker, NULL);
  for (int i = 0; i < clients; i++) pthread_join(threads[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  getrusage(RUSAGE_SELF, &r1);
  free(threads);
  long rss = status_kb("VmHWM"), rss_end = status_kb("VmRSS");
  storage_destroy(s);

  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  double cpu = tv(r1.ru_utime) + tv(r1.ru_stime) - tv(r0.ru_utime) - tv(r0.ru_stime);
  long ops = per_client * clients;
  printf("{\"peer\":\"apiserver-storage-c\",\"mode\":\"%s\",\"clients\":%d,\"ops\":%ld,\"secs\":%.4f,"
         "\"ops_per_s\":%.1f,\"cpu_us_per_op\":%.2f,\"max_rss_kb\":%ld,\"rss_kb_warm\":%ld,\"rss_kb_end\":%ld}\n",
         argv[1], clients, ops, secs, (double)ops / secs, cpu * 1e6 / (double)ops, rss, rss_warm_kb, rss_end);
  return 0;
}
