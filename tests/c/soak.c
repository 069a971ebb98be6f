/* soak CONFIG SECONDS: 64 threads x mixed operations on one handle for
 * SECONDS, with a watch open on the same keys. Fails on any unexpected code,
 * on a deadlock (the driver's timeout) or on memory growth. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apiserver_storage.h"

#ifdef __SANITIZE_ADDRESS__
/* AddressSanitizer holds freed memory in quarantine: growth means nothing there. */
#define RSS_GROWTH_LIMIT_KB (1L << 40)
#else
#define RSS_GROWTH_LIMIT_KB (32L * 1024)
#endif

#define THREADS 64

static storage *s;
static double deadline;
static long ops[THREADS], unexpected[THREADS];
static long watch_events, watch_errors;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Resident set size in KiB, from /proc/self/statm. */
static long rss_kb(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident * 4;
}

static storage_code bump(void *user_data, const uint8_t *cur, size_t len, const uint8_t **out, size_t *out_len) {
  (void)cur, (void)len;
  *out = user_data;
  *out_len = strlen(user_data);
  return STORAGE_OK;
}

static void *worker(void *arg) {
  long id = (long)arg;
  char key[64], body[128];
  unsigned seed = (unsigned)id;
  while (now_s() < deadline) {
    snprintf(key, sizeof key, "/soak/k%ld", (long)(rand_r(&seed) % 16));
    snprintf(body, sizeof body, "{\"metadata\":{\"name\":\"k\"},\"n\":%d}", rand_r(&seed));
    storage_bytes obj = {NULL, 0};
    storage_error *err = NULL;
    storage_code rc, ok2 = STORAGE_OK;
    int64_t count;
    switch (rand_r(&seed) % 6) {
      case 0: rc = storage_get(s, key, NULL, true, &obj, &err); break;
      case 1:
        rc = storage_create_object(s, key, (const uint8_t *)body, strlen(body), 0, &obj, &err);
        ok2 = STORAGE_ERR_KEY_EXISTS;
        break;
      case 2:
        rc = storage_guaranteed_update(s, key, true, NULL, bump, body, &obj, &err);
        break;
      case 3:
        rc = storage_delete(s, key, NULL, &obj, &err);
        ok2 = STORAGE_ERR_KEY_NOT_FOUND;
        break;
      case 4: rc = storage_list(s, "/soak", NULL, 5, NULL, &obj, &err); break;
      default: rc = storage_count(s, "/soak", &count, &err); break;
    }
    if (rc != STORAGE_OK && rc != ok2) {
      if (unexpected[id]++ == 0) fprintf(stderr, "thread %ld: %d %s\n", id, rc, storage_error_message(err));
    }
    storage_error_free(err);
    storage_bytes_free(obj);
    ops[id]++;
  }
  return NULL;
}

/* Follows every change under /soak while the workers run. */
static void *watcher(void *unused) {
  (void)unused;
  storage_watch *w = NULL;
  storage_error *err = NULL;
  if (storage_watch_create(s, "/soak", "0", true, &w, &err) != STORAGE_OK) {
    fprintf(stderr, "watch: %s\n", storage_error_message(err));
    storage_error_free(err);
    watch_errors++;
    return NULL;
  }
  while (now_s() < deadline) {
    storage_watch_event *e = NULL;
    storage_code rc = storage_watch_next(w, 100, &e, &err);
    if (rc == STORAGE_OK) {
      size_t len = 0;
      if (storage_watch_event_get_type(e) == STORAGE_WATCH_INVALID ||
          (storage_watch_event_object(e, &len) == NULL && len != 0))
        watch_errors++;
      storage_watch_event_free(e);
      watch_events++;
    } else if (rc == STORAGE_ERR_TIMEOUT) {
      storage_error_free(err);
      err = NULL;
    } else {
      fprintf(stderr, "watch next: %d %s\n", rc, storage_error_message(err));
      storage_error_free(err);
      err = NULL;
      watch_errors++;
      break;
    }
  }
  storage_watch_destroy(w);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: soak CONFIG SECONDS\n");
    return 2;
  }
  storage_error *err = NULL;
  if (storage_create(argv[1], &s, &err) != STORAGE_OK) {
    fprintf(stderr, "create: %s\n", storage_error_message(err));
    return 2;
  }
  double seconds = atof(argv[2]);
  deadline = now_s() + seconds;
  pthread_t t[THREADS], w;
  pthread_create(&w, NULL, watcher, NULL);
  for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
  /* RSS once warmed up, and at the end */
  struct timespec quarter = {(time_t)(seconds / 4), 0};
  nanosleep(&quarter, NULL);
  long rss_early = rss_kb();
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  pthread_join(w, NULL);
  long rss_late = rss_kb();
  long total = 0, bad = 0;
  for (int i = 0; i < THREADS; i++) total += ops[i], bad += unexpected[i];
  storage_destroy(s);
  printf("soak: %ld operations, %ld unexpected, %ld watch events, %ld watch errors, rss %ld KiB after %.0f s, "
         "%ld KiB at the end\n",
         total, bad, watch_events, watch_errors, rss_early, seconds / 4, rss_late);
  return bad == 0 && watch_errors == 0 && watch_events > 0 && rss_late - rss_early < RSS_GROWTH_LIMIT_KB ? 0 : 1;
}
