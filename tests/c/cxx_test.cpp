// The C++ wrapper against a real etcd: `cxx_test CONFIG`.
#include <cstdio>
#include <string>
#include <type_traits>

#include "apiserver_storage.hpp"

namespace as = apiserver_storage;

static_assert(!std::is_copy_constructible_v<as::Storage>, "handles are move-only");
static_assert(std::is_nothrow_move_constructible_v<as::Storage>, "handles move without throwing");

#define CHECK(c)                                                  \
  do {                                                            \
    if (!(c)) {                                                   \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      return 1;                                                   \
    }                                                             \
  } while (0)

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  as::Storage s(argv[1]);
  s.health();
  std::string created = s.create("/cxx/a", R"({"metadata":{"name":"a"}})");
  CHECK(created.find("\"resourceVersion\":\"") != std::string::npos);
  auto got = s.get("/cxx/a");
  CHECK(got && got->data.find("\"name\":\"a\"") != std::string::npos && got->resource_version > 0 && !got->stale);
  CHECK(!s.get("/cxx/missing", "", true));
  try {
    s.get("/cxx/missing");
    CHECK(false);
  } catch (const as::Error &e) {
    CHECK(e.not_found() && e.key() == "/registry/cxx/missing");
  }
  try {
    s.create("/cxx/a", "{}");
    CHECK(false);
  } catch (const as::Error &e) {
    CHECK(e.conflict());
  }
  CHECK(s.count("/cxx") == 1);
  CHECK(s.list("/cxx").find("\"kind\":\"List\"") != std::string::npos);
  storage_reencrypt_counts counts = s.reencrypt("/cxx");
  CHECK(counts.seen == 1 && counts.rewritten == 0 && counts.failed == 0);
  as::Storage moved(std::move(s));
  CHECK(moved.handle() != nullptr && s.handle() == nullptr);
  CHECK(moved.remove("/cxx/a").find("\"name\":\"a\"") != std::string::npos);
  try {
    as::Storage bad(R"({"server_list":[]})");
    CHECK(false);
  } catch (const as::Error &e) {
    CHECK(e.code() == STORAGE_ERR_INVALID_CONFIG);
  }
  std::puts("cxx wrapper: all checks passed");
  return 0;
}
