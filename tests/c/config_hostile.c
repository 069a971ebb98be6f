/* Hostile configs through the C ABI: malformed endpoints, secrets in the wrong
 * fields, files the library must not read whole, credentials that mean none.
 * Run as `config_hostile MODE PLAIN_ENDPOINT TLS_ENDPOINT CERTS_DIR BIG_FILE`:
 * a plaintext etcd, an etcd serving mutual TLS with the certificates in
 * CERTS_DIR (ca.pem, client.pem, client-key.pem, other-client-key.pem), and a
 * file over 1 MiB. MODE `tls` runs the cases that talk TLS to etcd, `config`
 * the others. Prints one line per failure and a summary line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver_storage.h"

#define SECRET "hunter2-c2VjcmV0LWluLXRoZS13cm9uZy1wbGFjZQ"

static int passed, failed;
static char buf[8192];

/* printf into the shared buffer; aborts when it does not fit. */
static const char *fmt(const char *f, const char *a, const char *b) {
  int n = snprintf(buf, sizeof buf, f, a, b);
  if (n < 0 || (size_t)n >= sizeof buf) {
    fprintf(stderr, "config too long\n");
    exit(2);
  }
  return buf;
}

/* Checks a code, that the message contains `needle` (when not NULL) and that
 * it does not contain the secret. Frees the error. */
static void expect(const char *name, storage_code got, storage_error *err, storage_code want,
                   const char *needle) {
  const char *msg = storage_error_message(err);
  const char *why = NULL;
  if (got != want) {
    why = "wrong code";
  } else if (want != STORAGE_OK && (err == NULL || storage_error_code(err) != want)) {
    why = "no error object with that code";
  } else if (needle != NULL && (msg == NULL || strstr(msg, needle) == NULL)) {
    why = "message lacks the expected text";
  } else if (msg != NULL && (strstr(msg, SECRET) != NULL || strstr(msg, "hunter2") != NULL)) {
    why = "message quotes the secret";
  }
  if (why == NULL) {
    passed++;
  } else {
    failed++;
    printf("FAIL %s: %s: got %d want %d, needle %s (%.300s)\n", name, why, got, want,
           needle ? needle : "-", msg ? msg : "(no message)");
  }
  storage_error_free(err);
}

/* storage_create must refuse `config`. */
static void create_refused(const char *name, const char *config, storage_code want, const char *needle) {
  storage *s = NULL;
  storage_error *err = NULL;
  storage_code rc_ = storage_create(config, &s, &err);
  expect(name, rc_, err, want, needle);
  if (s != NULL) {
    failed++;
    printf("FAIL %s: out-parameter written on failure\n", name);
    storage_destroy(s);
  }
}

/* storage_create and storage_health_check_create must both refuse `config`. */
static void refused(const char *name, const char *config, storage_code want, const char *needle) {
  storage *s = NULL;
  storage_error *err = NULL;
  storage_code rc_ = storage_create(config, &s, &err);
  expect(name, rc_, err, want, needle);
  if (s != NULL) {
    failed++;
    printf("FAIL %s: out-parameter written on failure\n", name);
    storage_destroy(s);
  }
  storage_health_check *h = NULL;
  err = NULL;
  rc_ = storage_health_check_create(config, &h, &err);
  expect(name, rc_, err, want, needle);
  if (h != NULL) {
    failed++;
    printf("FAIL %s (health check): out-parameter written on failure\n", name);
    storage_health_check_destroy(h);
  }
}

/* A store from `config` answers a get of a missing key with success. */
static void works(const char *name, const char *config) {
  storage *s = NULL;
  storage_error *err = NULL;
  storage_code rc = storage_create(config, &s, &err);
  expect(name, rc, err, STORAGE_OK, NULL);
  if (rc != STORAGE_OK) return;
  storage_bytes obj = {NULL, 0};
  err = NULL;
  storage_code rc_ = storage_get(s, "/configmaps/none", NULL, true, &obj, &err);
  expect(name, rc_, err, STORAGE_OK, NULL);
  storage_bytes_free(obj);
  storage_destroy(s);
}

int main(int argc, char **argv) {
  if (argc != 6 || (strcmp(argv[1], "tls") != 0 && strcmp(argv[1], "config") != 0)) {
    fprintf(stderr, "usage: config_hostile tls|config PLAIN_ENDPOINT TLS_ENDPOINT CERTS_DIR BIG_FILE\n");
    return 2;
  }
  const char *plain = argv[2], *tls = argv[3], *certs = argv[4], *big = argv[5];
  char ca[1024], cert[1024], key[1024], other_key[1024];
  snprintf(ca, sizeof ca, "%s/ca.pem", certs);
  snprintf(cert, sizeof cert, "%s/client.pem", certs);
  snprintf(key, sizeof key, "%s/client-key.pem", certs);
  snprintf(other_key, sizeof other_key, "%s/other-client-key.pem", certs);

  char tls_config[8192];
  if (strcmp(argv[1], "tls") == 0) {
    /* HTTPS:// is https: the uppercase scheme reaches the TLS etcd. */
    char upper[512];
    snprintf(upper, sizeof upper, "HTTPS://%s", tls + strlen("https://"));
    snprintf(tls_config, sizeof tls_config,
             "{\"server_list\":[\"%s\"],\"ca_file\":\"%s\",\"cert_file\":\"%s\",\"key_file\":\"%s\","
             "\"request_timeout_ms\":20000,\"dial_timeout_ms\":20000}",
             upper, ca, cert, key);
    works("HTTPS:// endpoint", tls_config);
    /* Its TLS failures name the endpoint. */
    for (int etcd2 = 0; etcd2 < 2; etcd2++) {
      snprintf(tls_config, sizeof tls_config,
               "{\"type\":\"%s\",\"server_list\":[\"%s\"],\"ca_file\":\"%s\",\"request_timeout_ms\":20000}",
               etcd2 ? "etcd2" : "etcd3", tls, ca);
      storage *s = NULL;
      storage_error *err = NULL;
      storage_code rc = storage_create(tls_config, &s, &err);
      expect("TLS endpoint without a client certificate: create", rc, err, STORAGE_OK, NULL);
      if (rc == STORAGE_OK) {
        storage_bytes obj = {NULL, 0};
        err = NULL;
        rc = storage_get(s, "/k", NULL, true, &obj, &err);
        expect("TLS endpoint without a client certificate: get", rc, err, STORAGE_ERR_UNREACHABLE, tls);
        storage_destroy(s);
      }
    }

    printf("config_hostile: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
  }

  /* Endpoints: http, https (any case) or host:port, nothing else. */
  static const struct {
    const char *name, *endpoint;
  } bad_endpoints[] = {
      {"unix:// endpoint", "unix:///var/run/etcd.sock"},
      {"unix:// endpoint with a host", "unix://localhost:2379"},
      {"ftp:// endpoint", "ftp://127.0.0.1:2379"},
      {"leading space", " https://127.0.0.1:2379"},
      {"trailing space", "https://127.0.0.1:2379 "},
      {"space inside", "https://127.0.0.1 :2379"},
      {"a path", "https://127.0.0.1:2379/v3/kv"},
      {"empty host", "https://:2379"},
      {"no port", "https://127.0.0.1"},
      {"host:port without a port", "127.0.0.1"},
      {"port out of range", "http://127.0.0.1:70000"},
      {"port zero", "http://127.0.0.1:0"},
      {"user information", "https://root:" SECRET "@127.0.0.1:2379"},
      {"doubled scheme", "HTTPS://HTTPS://127.0.0.1:2379"},
  };
  for (size_t i = 0; i < sizeof bad_endpoints / sizeof bad_endpoints[0]; i++) {
    refused(bad_endpoints[i].name, fmt("{\"server_list\":[\"%s\"]}", bad_endpoints[i].endpoint, ""),
            STORAGE_ERR_INVALID_CONFIG, "server_list[0]");
  }
  refused("second endpoint bad", fmt("{\"server_list\":[\"%s\",\"unix:///etcd.sock\"]}", plain, ""),
          STORAGE_ERR_INVALID_CONFIG, "`server_list[1]`: \"unix:///etcd.sock\"");

  /* A certificate and a key that do not belong together. */
  snprintf(tls_config, sizeof tls_config,
           "{\"server_list\":[\"%s\"],\"ca_file\":\"%s\",\"cert_file\":\"%s\",\"key_file\":\"%s\"}", tls,
           ca, cert, other_key);
  refused("certificate and key do not match", tls_config, STORAGE_ERR_INVALID_CONFIG,
          "`cert_file`/`key_file`: the certificate and the key do not match");

  /* Secrets in the wrong place: the field is named, the value never quoted. */
  static const struct {
    const char *name, *fields, *needle;
  } secrets[] = {
      {"password in quorum", "\"quorum\":\"" SECRET "\"", "`quorum`: invalid type: expected a boolean, got a string"},
      {"password in paging", "\"paging\":[\"" SECRET "\"]", "`paging`"},
      {"password in codec", "\"codec\":\"" SECRET "\"", "`codec`: unknown value"},
      {"password in a timeout", "\"request_timeout_ms\":\"" SECRET "\"", "`request_timeout_ms`"},
      {"password as an array", "\"username\":\"u\",\"password\":[\"" SECRET "\"]", "`password`"},
      {"username an object", "\"username\":{\"u\":\"" SECRET "\"},\"password\":\"p\"", "`username`"},
      {"key as a bare string",
       "\"transformer\":{\"providers\":[{\"aesgcm\":{\"keys\":[\"" SECRET "\"]}}]}",
       "`transformer.providers[0].aesgcm.keys[0]`: invalid type: expected a key object {name, secret}, got a string"},
      {"keys as a bare string", "\"transformer\":{\"providers\":[{\"aescbc\":{\"keys\":\"" SECRET "\"}}]}",
       "`transformer.providers[0].aescbc.keys`"},
      {"provider as a bare string", "\"transformer\":{\"providers\":[{\"secretbox\":\"" SECRET "\"}]}",
       "`transformer.providers[0].secretbox`"},
      {"transformer as a bare string", "\"transformer\":\"" SECRET "\"", "`transformer`"},
      {"secret a number", "\"transformer\":{\"providers\":[{\"aesgcm\":{\"keys\":[{\"name\":\"k\",\"secret\":12345678901234}]}}]}",
       "a secret must be a string"},
  };
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
    create_refused(secrets[i].name, fmt("{\"server_list\":[\"%s\"],%s}", plain, secrets[i].fields),
            STORAGE_ERR_INVALID_CONFIG, secrets[i].needle);
  }
  refused("server_list a bare string", "{\"server_list\":\"" SECRET "\"}", STORAGE_ERR_INVALID_CONFIG,
          "`server_list`");

  /* Files: at most 1 MiB, /dev/zero included. */
  static const char *file_fields[] = {"ca_file", "cert_file", "key_file"};
  const char *files[] = {"/dev/zero", big};
  for (size_t f = 0; f < 2; f++) {
    for (size_t i = 0; i < 3; i++) {
      char config[8192], needle[1400], name[1400];
      const char *path = files[f];
      snprintf(config, sizeof config,
               "{\"server_list\":[\"%s\"],\"ca_file\":\"%s\",\"cert_file\":\"%s\",\"key_file\":\"%s\"}", tls,
               i == 0 ? path : ca, i == 1 ? path : cert, i == 2 ? path : key);
      snprintf(needle, sizeof needle, "`%s`: \"%s\": the file is larger than 1 MiB", file_fields[i], path);
      snprintf(name, sizeof name, "%s as %s", path, file_fields[i]);
      refused(name, config, STORAGE_ERR_INVALID_CONFIG, needle);
    }
    char config[8192], needle[1400];
    snprintf(config, sizeof config,
             "{\"server_list\":[\"%s\"],\"transformer\":{\"encryption_config_file\":\"%s\",\"resource\":\"secrets\"}}",
             plain, files[f]);
    snprintf(needle, sizeof needle, "`transformer.encryption_config_file`: \"%s\": the file is larger than 1 MiB",
             files[f]);
    /* The health check does not read the encryption config. */
    create_refused(files[f] == big ? "big encryption config" : "/dev/zero as encryption config", config,
            STORAGE_ERR_INVALID_CONFIG, needle);
  }

  /* Empty username and password: no credentials, on an etcd without auth. */
  works("empty username and password", fmt("{\"server_list\":[\"%s\"],\"username\":\"\",\"password\":\"\"}", plain, ""));
  works("empty username, null password", fmt("{\"server_list\":[\"%s\"],\"username\":\"\",\"password\":null}", plain, ""));
  {
    char etcd2[1024];
    snprintf(etcd2, sizeof etcd2, "{\"type\":\"etcd2\",\"server_list\":[\"%s\"],\"username\":\"\",\"password\":\"\"}",
             plain);
    storage *s = NULL;
    storage_error *err = NULL;
    storage_code rc = storage_create(etcd2, &s, &err);
    expect("etcd2 with empty username and password: create", rc, err, STORAGE_OK, NULL);
    storage_destroy(s);
  }

  printf("config_hostile: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
