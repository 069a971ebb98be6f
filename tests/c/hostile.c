/* Hostile input through the C ABI: a table of cases, each with the code the
 * library documents for it. Run as `hostile CONFIG_JSON AESGCM_CONFIG_JSON`
 * against a live etcd; prints one line per failure and a summary line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver_storage.h"

static storage *s_json, *s_raw, *s_enc;
static int passed, failed;

static void expect(const char *name, storage_code got, storage_error *err, storage_code want) {
  if (got == want && (want == STORAGE_OK || (err != NULL && storage_error_code(err) == want))) {
    passed++;
  } else {
    failed++;
    printf("FAIL %.80s: got %d want %d (%.200s)\n", name, got, want, storage_error_message(err));
  }
  storage_error_free(err);
}

/* `call` must store its error in the `err` this macro declares. */
#define CALL(name, call, want)              \
  do {                                      \
    storage_error *err = NULL;              \
    storage_code rc_ = (call);              \
    expect(name, rc_, err, want);           \
  } while (0)

static char *repeat(char c, size_t n, const char *head, const char *tail) {
  size_t h = strlen(head), t = strlen(tail);
  char *buf = malloc(h + n + t + 1);
  memcpy(buf, head, h);
  memset(buf + h, c, n);
  memcpy(buf + h + n, tail, t + 1);
  return buf;
}

static void get_case(const char *name, storage *s, const char *key, const char *rv, storage_code want) {
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  storage_code rc = storage_get(s, key, rv, false, &obj, &err);
  expect(name, rc, err, want);
  storage_bytes_free(obj);
}

static void create_handle_case(const char *name, const char *config, storage_code want) {
  storage *s = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_create(config, &s, &err);
  expect(name, rc, err, want);
  if (want != STORAGE_OK && s != NULL) {
    failed++;
    printf("FAIL %s: out-parameter written on failure\n", name);
  }
  storage_destroy(s);
}

/* Stores `len` bytes at `key` verbatim (raw codec, identity transformer). */
static void seed(const char *key, const void *data, size_t len) {
  storage_error *err = NULL;
  storage_delete(s_raw, key, NULL, NULL, NULL);
  storage_code rc = storage_create_object(s_raw, key, data, len, 0, NULL, &err);
  if (rc != STORAGE_OK) {
    printf("seed %s: %s\n", key, storage_error_message(err));
    exit(2);
  }
  storage_error_free(err);
}

static storage *open_handle(const char *config) {
  storage *s = NULL;
  storage_error *err = NULL;
  if (storage_create(config, &s, &err) != STORAGE_OK) {
    printf("storage_create: %s\n", storage_error_message(err));
    exit(2);
  }
  return s;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: hostile JSON_CONFIG RAW_CONFIG AESGCM_CONFIG\n");
    return 2;
  }
  s_json = open_handle(argv[1]);
  s_raw = open_handle(argv[2]);
  s_enc = open_handle(argv[3]);
  storage_bytes obj = {NULL, 0};
  storage_error *err = NULL;
  storage_object_info info;
  int64_t count;
  storage_preconditions pre = {NULL, NULL};
  const uint8_t body[] = "{}";
  const char bad_utf8[] = {'/', (char)0xc3, (char)0x28, 0};
  const char overlong[] = {'/', (char)0xc0, (char)0xaf, 0};
  const char surrogate[] = {'/', (char)0xed, (char)0xa0, (char)0x80, 0};

  /* NULL for every pointer of every function */
#define NULLCASE(call) CALL(#call, call, STORAGE_ERR_INVALID_ARGUMENT)
  NULLCASE(storage_create(NULL, &s_json, &err));
  NULLCASE(storage_create(argv[1], NULL, &err));
  NULLCASE(storage_get(NULL, "/k", NULL, false, &obj, &err));
  NULLCASE(storage_get(s_json, NULL, NULL, false, &obj, &err));
  NULLCASE(storage_get(s_json, "/k", NULL, false, NULL, &err));
  NULLCASE(storage_get_with_info(NULL, "/k", NULL, false, &obj, &info, &err));
  NULLCASE(storage_get_with_info(s_json, NULL, NULL, false, &obj, &info, &err));
  NULLCASE(storage_get_with_info(s_json, "/k", NULL, false, NULL, &info, &err));
  NULLCASE(storage_get_exact(NULL, "/k", NULL, false, &obj, &info, &err));
  NULLCASE(storage_get_exact(s_json, NULL, NULL, false, &obj, &info, &err));
  NULLCASE(storage_get_exact(s_json, "/k", NULL, false, NULL, &info, &err));
  NULLCASE(storage_health(NULL, &err));
  NULLCASE(storage_health_check_create(NULL, NULL, &err));
  NULLCASE(storage_health_check_create(argv[1], NULL, &err));
  NULLCASE(storage_health_check_run(NULL, &err));
  NULLCASE(storage_create_object(NULL, "/k", body, 2, 0, NULL, &err));
  NULLCASE(storage_create_object(s_json, NULL, body, 2, 0, NULL, &err));
  NULLCASE(storage_create_object(s_json, "/k", NULL, 2, 0, NULL, &err));
  NULLCASE(storage_delete(NULL, "/k", NULL, NULL, &err));
  NULLCASE(storage_delete(s_json, NULL, NULL, NULL, &err));
  NULLCASE(storage_guaranteed_update(NULL, "/k", false, NULL, NULL, NULL, NULL, &err));
  NULLCASE(storage_guaranteed_update(s_json, NULL, false, NULL, NULL, NULL, NULL, &err));
  NULLCASE(storage_guaranteed_update(s_json, "/k", false, NULL, NULL, NULL, NULL, &err));
  NULLCASE(storage_list(NULL, "/k", NULL, 0, NULL, &obj, &err));
  NULLCASE(storage_list(s_json, NULL, NULL, 0, NULL, &obj, &err));
  NULLCASE(storage_list(s_json, "/k", NULL, 0, NULL, NULL, &err));
  NULLCASE(storage_count(NULL, "/k", &count, &err));
  NULLCASE(storage_count(s_json, NULL, &count, &err));
  NULLCASE(storage_count(s_json, "/k", NULL, &err));
  expect("storage_error_code(NULL)", storage_error_code(NULL) == STORAGE_ERR_INVALID_ARGUMENT ? STORAGE_OK : 1, NULL,
         STORAGE_OK);
  expect("storage_error_message(NULL) is \"\"", strcmp(storage_error_message(NULL), "") == 0 ? STORAGE_OK : 1, NULL,
         STORAGE_OK);
  expect("storage_error_key(NULL) is \"\"", strcmp(storage_error_key(NULL), "") == 0 ? STORAGE_OK : 1, NULL,
         STORAGE_OK);
  storage_error_free(NULL);
  storage_bytes_free((storage_bytes){NULL, 0});
  storage_destroy(NULL);
  storage_health_check_destroy(NULL);
  passed += 4; /* the four NULL frees above returned */

  /* invalid UTF-8 wherever a string goes in */
  const char *bad_strings[] = {bad_utf8, overlong, surrogate};
  for (int i = 0; i < 3; i++) {
    char name[64];
    snprintf(name, sizeof name, "invalid UTF-8 #%d as key", i);
    get_case(name, s_json, bad_strings[i], NULL, STORAGE_ERR_INVALID_ARGUMENT);
    snprintf(name, sizeof name, "invalid UTF-8 #%d as resource version", i);
    get_case(name, s_json, "/k", bad_strings[i], STORAGE_ERR_INVALID_ARGUMENT);
    snprintf(name, sizeof name, "invalid UTF-8 #%d as config", i);
    create_handle_case(name, bad_strings[i], STORAGE_ERR_INVALID_ARGUMENT);
    snprintf(name, sizeof name, "invalid UTF-8 #%d as continue token", i);
    CALL(name, storage_list(s_json, "/k", NULL, 5, bad_strings[i], &obj, &err), STORAGE_ERR_INVALID_ARGUMENT);
    snprintf(name, sizeof name, "invalid UTF-8 #%d as uid precondition", i);
    pre.uid = bad_strings[i];
    CALL(name, storage_delete(s_json, "/k", &pre, NULL, &err), STORAGE_ERR_INVALID_ARGUMENT);
    pre.uid = NULL;
  }

  /* keys: empty, huge, dot-laden, escaping */
  get_case("empty key reads the prefix itself", s_json, "", NULL, STORAGE_ERR_KEY_NOT_FOUND);
  char *huge_key = repeat('k', 1 << 20, "/", "");
  get_case("1 MiB key", s_json, huge_key, NULL, STORAGE_ERR_KEY_NOT_FOUND);
  free(huge_key);
  const char *escaping[] = {"/../../etc/passwd", "..", "../x", "/a/../../b", "/./../registry2", "/../", "a/b/../../../c"};
  for (size_t i = 0; i < sizeof escaping / sizeof *escaping; i++)
    get_case(escaping[i], s_json, escaping[i], NULL, STORAGE_ERR_INVALID_ARGUMENT);
  const char *dotted[] = {"/a/./b", "/a/b/..", "//a//b//", "/./a", "/a/../a"};
  for (size_t i = 0; i < sizeof dotted / sizeof *dotted; i++)
    get_case(dotted[i], s_json, dotted[i], NULL, STORAGE_ERR_KEY_NOT_FOUND);
  get_case("key with a NUL byte stops at it", s_json, "/k\0/../../etc", NULL, STORAGE_ERR_KEY_NOT_FOUND);

  /* resource versions */
  const char *bad_rvs[] = {"-1", "abc", "1.5", "0x10", " 1", "1 ", "18446744073709551616", "9223372036854775808", "+1"};
  for (size_t i = 0; i < sizeof bad_rvs / sizeof *bad_rvs; i++)
    get_case(bad_rvs[i], s_json, "/k", bad_rvs[i], STORAGE_ERR_INVALID_ARGUMENT);
  get_case("future resource version", s_json, "/k", "9223372036854775807", STORAGE_ERR_TIMEOUT);

  /* configs */
  struct {
    const char *name, *config;
    storage_code want;
  } configs[] = {
      {"empty string", "", STORAGE_ERR_INVALID_CONFIG},
      {"not an object", "[]", STORAGE_ERR_INVALID_CONFIG},
      {"null", "null", STORAGE_ERR_INVALID_CONFIG},
      {"truncated", "{\"server_list\":[\"http://127.0.0.1:1\"", STORAGE_ERR_INVALID_CONFIG},
      {"trailing garbage", "{\"server_list\":[\"http://127.0.0.1:1\"]} x", STORAGE_ERR_INVALID_CONFIG},
      {"no server_list", "{}", STORAGE_ERR_INVALID_CONFIG},
      {"server_list a string", "{\"server_list\":\"http://127.0.0.1:1\"}", STORAGE_ERR_INVALID_CONFIG},
      {"server_list with an empty entry", "{\"server_list\":[\"\"]}", STORAGE_ERR_INVALID_CONFIG},
      {"server_list not a URL", "{\"server_list\":[\"http://[::1\"]}", STORAGE_ERR_INVALID_CONFIG},
      {"prefix a number", "{\"server_list\":[\"a:1\"],\"prefix\":7}", STORAGE_ERR_INVALID_CONFIG},
      {"quorum a string", "{\"server_list\":[\"a:1\"],\"quorum\":\"yes\"}", STORAGE_ERR_INVALID_CONFIG},
      {"negative timeout", "{\"server_list\":[\"a:1\"],\"dial_timeout_ms\":-1}", STORAGE_ERR_INVALID_CONFIG},
      {"overflowing timeout", "{\"server_list\":[\"a:1\"],\"dial_timeout_ms\":99999999999999999999999}",
       STORAGE_ERR_INVALID_CONFIG},
      {"float timeout", "{\"server_list\":[\"a:1\"],\"request_timeout_ms\":1e30}", STORAGE_ERR_INVALID_CONFIG},
      {"zero timeout", "{\"server_list\":[\"a:1\"],\"health_timeout_ms\":0}", STORAGE_ERR_INVALID_CONFIG},
      {"unknown type", "{\"server_list\":[\"a:1\"],\"type\":\"mysql\"}", STORAGE_ERR_INVALID_CONFIG},
      {"etcd2 with a transformer",
       "{\"server_list\":[\"a:1\"],\"type\":\"etcd2\",\"transformer\":{\"providers\":[{\"identity\":{}}]}}",
       STORAGE_ERR_INVALID_CONFIG},
      {"unknown field", "{\"server_list\":[\"a:1\"],\"extra\":1}", STORAGE_ERR_INVALID_CONFIG},
      {"unknown codec", "{\"server_list\":[\"a:1\"],\"codec\":\"xml\"}", STORAGE_ERR_INVALID_CONFIG},
      {"duplicate field", "{\"server_list\":[\"a:1\"],\"server_list\":[\"b:1\"]}", STORAGE_ERR_INVALID_CONFIG},
      {"missing CA file", "{\"server_list\":[\"https://a:1\"],\"ca_file\":\"/no/such\"}", STORAGE_ERR_INVALID_CONFIG},
      {"CA file not PEM", "{\"server_list\":[\"https://a:1\"],\"ca_file\":\"/etc/passwd\"}", STORAGE_ERR_INVALID_CONFIG},
      {"cert without key", "{\"server_list\":[\"https://a:1\"],\"cert_file\":\"/etc/passwd\"}",
       STORAGE_ERR_INVALID_CONFIG},
      {"http endpoint with TLS files", "{\"server_list\":[\"http://a:1\"],\"ca_file\":\"/etc/passwd\"}",
       STORAGE_ERR_INVALID_CONFIG},
      {"transformer not an object", "{\"server_list\":[\"a:1\"],\"transformer\":5}", STORAGE_ERR_INVALID_CONFIG},
      {"transformer empty", "{\"server_list\":[\"a:1\"],\"transformer\":{}}", STORAGE_ERR_INVALID_CONFIG},
      {"transformer empty providers", "{\"server_list\":[\"a:1\"],\"transformer\":{\"providers\":[]}}",
       STORAGE_ERR_INVALID_CONFIG},
      {"aesgcm bad base64",
       "{\"server_list\":[\"a:1\"],\"transformer\":{\"providers\":[{\"aesgcm\":{\"keys\":[{\"name\":\"k\",\"secret\":\"!!\"}]}}]}}",
       STORAGE_ERR_INVALID_CONFIG},
      {"aesgcm 5-byte key",
       "{\"server_list\":[\"a:1\"],\"transformer\":{\"providers\":[{\"aesgcm\":{\"keys\":[{\"name\":\"k\",\"secret\":\"AAAAAAA=\"}]}}]}}",
       STORAGE_ERR_INVALID_CONFIG},
      {"kms provider over tcp",
       "{\"server_list\":[\"a:1\"],\"transformer\":{\"providers\":[{\"kms\":{\"name\":\"k\",\"endpoint\":\"tcp://k:1\"}}]}}",
       STORAGE_ERR_INVALID_CONFIG},
      {"kms provider with a huge timeout",
       "{\"server_list\":[\"a:1\"],\"transformer\":{\"providers\":[{\"kms\":{\"name\":\"k\",\"endpoint\":\"unix:///k\",\"timeout\":\"1e300h\"}}]}}",
       STORAGE_ERR_INVALID_CONFIG},
      {"missing encryption config file",
       "{\"server_list\":[\"a:1\"],\"transformer\":{\"encryption_config_file\":\"/no/such.yaml\",\"resource\":\"secrets\"}}",
       STORAGE_ERR_INVALID_CONFIG},
      {"encryption config not YAML",
       "{\"server_list\":[\"a:1\"],\"transformer\":{\"encryption_config_file\":\"/etc/passwd\",\"resource\":\"secrets\"}}",
       STORAGE_ERR_INVALID_CONFIG},
  };
  for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
    create_handle_case(configs[i].name, configs[i].config, configs[i].want);
  char *deep = repeat('[', 100000, "", "");
  create_handle_case("config nested 100,000 deep", deep, STORAGE_ERR_INVALID_CONFIG);
  free(deep);
  char *huge = repeat(' ', 8 << 20, "{\"server_list\":[\"a:1\"],\"prefix\":\"", "\",\"x\":1}");
  create_handle_case("8 MiB config with an unknown field", huge, STORAGE_ERR_INVALID_CONFIG);
  free(huge);

  /* stored values */
  struct {
    const char *name;
    const char *bytes;
    storage *reader;
    storage_code want;
  } stored[] = {
      {"truncated JSON", "{\"kind\":\"Pod\",\"metadata\":{", s_json, STORAGE_ERR_CORRUPT_OBJ},
      {"JSON array", "[1,2,3]", s_json, STORAGE_ERR_CORRUPT_OBJ},
      {"JSON string", "\"x\"", s_json, STORAGE_ERR_CORRUPT_OBJ},
      {"metadata a number", "{\"metadata\":1}", s_json, STORAGE_ERR_CORRUPT_OBJ},
      {"random bytes", "\x8f\x01\xfe\x00zz", s_json, STORAGE_ERR_CORRUPT_OBJ},
      {"encrypted value read without keys", "k8s:enc:aesgcm:v1:key1:0123456789abcdef0123456789", s_json,
       STORAGE_ERR_CORRUPT_OBJ},
      {"truncated ciphertext", "k8s:enc:aesgcm:v1:key1:0123", s_enc, STORAGE_ERR_CORRUPT_OBJ},
      {"prefix only", "k8s:enc:aesgcm:v1:key1:", s_enc, STORAGE_ERR_CORRUPT_OBJ},
      {"garbage ciphertext", "k8s:enc:aesgcm:v1:key1:0123456789abcdef0123456789abcdef", s_enc,
       STORAGE_ERR_CORRUPT_OBJ},
      {"unknown key name", "k8s:enc:aesgcm:v1:nokey:0123456789abcdef0123456789abcdef", s_enc,
       STORAGE_ERR_CORRUPT_OBJ},
      {"unknown provider", "k8s:enc:rot13:v1:key1:abc", s_enc, STORAGE_ERR_CORRUPT_OBJ},
      {"plaintext under aesgcm-only config", "{\"a\":1}", s_enc, STORAGE_ERR_CORRUPT_OBJ},
      {"empty value", "", s_json, STORAGE_ERR_CORRUPT_OBJ},
  };
  for (size_t i = 0; i < sizeof stored / sizeof *stored; i++) {
    char key[64];
    snprintf(key, sizeof key, "/hostile/%zu", i);
    size_t len = strlen(stored[i].bytes);
    if (strcmp(stored[i].name, "random bytes") == 0) len = 6;
    seed(key, stored[i].bytes, len);
    get_case(stored[i].name, stored[i].reader, key, NULL, stored[i].want);
  }
  /* a 1.5 MiB object is over etcd's default request limit; 1.4 MiB reads back whole */
  char *big = repeat('x', 3 << 19, "{\"metadata\":{\"name\":\"big\"},\"data\":\"", "\"}");
  CALL("1.5 MiB object", storage_create_object(s_json, "/hostile/big", (const uint8_t *)big, strlen(big), 0, NULL, &err),
       STORAGE_ERR_INVALID_ARGUMENT);
  big[1400 * 1024] = '\0';
  strcat(big, "\"}");
  seed("/hostile/big", big, strlen(big));
  obj.data = NULL;
  storage_code rc = storage_get(s_json, "/hostile/big", NULL, false, &obj, &err);
  expect("1.4 MiB object", rc == STORAGE_OK && obj.len > 1400u * 1024 ? STORAGE_OK : STORAGE_ERR_INTERNAL, err,
         STORAGE_OK);
  storage_bytes_free(obj);
  free(big);
  /* JSON nested 100,000 deep: refused by the decoder's depth limit, no stack overflow */
  char *nested = repeat('[', 100000, "{\"a\":", "");
  seed("/hostile/nested", nested, strlen(nested));
  get_case("stored JSON nested 100,000 deep", s_json, "/hostile/nested", NULL, STORAGE_ERR_CORRUPT_OBJ);
  free(nested);
  /* writes of hostile objects */
  const char *bad_objects[] = {"", "[", "[]", "null", "{\"metadata\":\"x\"}", "{\"metadata\":{\"resourceVersion\":\"7\"}}"};
  storage_code bad_object_codes[] = {STORAGE_ERR_INVALID_OBJ, STORAGE_ERR_INVALID_OBJ, STORAGE_ERR_INVALID_OBJ,
                                     STORAGE_ERR_INVALID_OBJ, STORAGE_ERR_INVALID_OBJ, STORAGE_ERR_INVALID_OBJ};
  for (size_t i = 0; i < sizeof bad_objects / sizeof *bad_objects; i++)
    CALL(bad_objects[i],
         storage_create_object(s_json, "/hostile/new", (const uint8_t *)bad_objects[i], strlen(bad_objects[i]), 0,
                               NULL, &err),
         bad_object_codes[i]);
  /* continue tokens */
  const char *tokens[] = {"x", "eyJ9", "e30", "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MSwic3RhcnQiOiIuLi9hIn0",
                          "eyJ2IjoieCIsInJ2IjoxLCJzdGFydCI6ImEifQ"};
  for (size_t i = 0; i < sizeof tokens / sizeof *tokens; i++)
    CALL(tokens[i], storage_list(s_json, "/hostile", NULL, 5, tokens[i], &obj, &err), STORAGE_ERR_INVALID_ARGUMENT);

  storage_destroy(s_json);
  storage_destroy(s_raw);
  storage_destroy(s_enc);
  printf("hostile: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
