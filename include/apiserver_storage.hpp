// apiserver_storage.hpp: a header-only C++17 wrapper over apiserver_storage.h.
//
//   apiserver_storage::Storage s(R"({"server_list":["http://127.0.0.1:2379"]})");
//   std::optional<std::string> obj = s.get("/configmaps/default/settings");
//
// Handles are RAII and move-only; failures throw apiserver_storage::Error,
// which carries the storage_code, the message and the etcd key.
#ifndef APISERVER_STORAGE_HPP
#define APISERVER_STORAGE_HPP

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "apiserver_storage.h"

namespace apiserver_storage {

/// A failed call: code(), what() (the message), key() (the etcd key involved).
class Error : public std::runtime_error {
 public:
  Error(storage_code code, std::string message, std::string key)
      : std::runtime_error(std::move(message)), code_(code), key_(std::move(key)) {}
  storage_code code() const noexcept { return code_; }
  const std::string &key() const noexcept { return key_; }
  bool not_found() const noexcept { return code_ == STORAGE_ERR_KEY_NOT_FOUND; }
  bool conflict() const noexcept { return code_ == STORAGE_ERR_KEY_EXISTS || code_ == STORAGE_ERR_RESOURCE_VERSION_CONFLICTS; }

 private:
  storage_code code_;
  std::string key_;
};

namespace detail {
// `err` by reference: it is read only after the call that fills it has run.
inline void check(storage_code rc, storage_error *&err) {
  if (rc == STORAGE_OK) return;
  Error e(rc, storage_error_message(err), storage_error_key(err));
  storage_error_free(err);
  throw e;
}

// Copies library-owned bytes into a std::string and frees them.
inline std::optional<std::string> take(storage_bytes b) {
  if (b.data == nullptr) return std::nullopt;
  std::string out(reinterpret_cast<const char *>(b.data), b.len);
  storage_bytes_free(b);
  return out;
}

// The C API takes NUL-terminated strings.
inline std::string z(std::string_view s) { return std::string(s); }
}  // namespace detail

/// An object with what storage_get_with_info reports about it.
struct Object {
  std::string data;
  int64_t resource_version;
  bool stale;
};

/// A store built from a config (Go's factory.Create); destroyed with the object.
class Storage {
 public:
  explicit Storage(std::string_view config_json) {
    storage_error *err = nullptr;
    detail::check(storage_create(detail::z(config_json).c_str(), &s_, &err), err);
  }
  Storage(Storage &&other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  Storage &operator=(Storage &&other) noexcept {
    if (this != &other) {
      storage_destroy(s_);
      s_ = std::exchange(other.s_, nullptr);
    }
    return *this;
  }
  Storage(const Storage &) = delete;
  Storage &operator=(const Storage &) = delete;
  ~Storage() { storage_destroy(s_); }

  void health() const {
    storage_error *err = nullptr;
    detail::check(storage_health(s_, &err), err);
  }

  /// The object at `key`, or std::nullopt when it is absent and `ignore_not_found`.
  std::optional<Object> get(std::string_view key, std::string_view resource_version = "",
                            bool ignore_not_found = false) const {
    storage_bytes b{nullptr, 0};
    storage_object_info info{};
    storage_error *err = nullptr;
    detail::check(storage_get_with_info(s_, detail::z(key).c_str(), detail::z(resource_version).c_str(),
                                        ignore_not_found, &b, &info, &err),
                  err);
    if (!info.found) return std::nullopt;
    return Object{detail::take(b).value_or(std::string()), info.resource_version, info.stale};
  }

  /// Stores `object` at `key` if absent; returns the stored object.
  std::string create(std::string_view key, std::string_view object, int64_t ttl_seconds = 0) const {
    storage_bytes b{nullptr, 0};
    storage_error *err = nullptr;
    detail::check(storage_create_object(s_, detail::z(key).c_str(), reinterpret_cast<const uint8_t *>(object.data()),
                                        object.size(), ttl_seconds, &b, &err),
                  err);
    return detail::take(b).value_or(std::string());
  }

  /// Deletes `key`; returns the deleted object.
  std::string remove(std::string_view key) const {
    storage_bytes b{nullptr, 0};
    storage_error *err = nullptr;
    detail::check(storage_delete(s_, detail::z(key).c_str(), nullptr, &b, &err), err);
    return detail::take(b).value_or(std::string());
  }

  /// One page of the list under `key` (a JSON List object with metadata.continue).
  std::string list(std::string_view key, int64_t limit = 0, std::string_view continue_token = "") const {
    storage_bytes b{nullptr, 0};
    storage_error *err = nullptr;
    detail::check(storage_list(s_, detail::z(key).c_str(), nullptr, limit, detail::z(continue_token).c_str(), &b, &err),
                  err);
    return detail::take(b).value_or(std::string());
  }

  int64_t count(std::string_view key) const {
    int64_t n = 0;
    storage_error *err = nullptr;
    detail::check(storage_count(s_, detail::z(key).c_str(), &n, &err), err);
    return n;
  }

  /// Rewrites every stale object under `key` under the current encryption key
  /// (after a key rotation); see storage_reencrypt. Failed objects are counted.
  storage_reencrypt_counts reencrypt(std::string_view key = "/") const {
    storage_reencrypt_counts counts{};
    storage_error *err = nullptr;
    detail::check(storage_reencrypt(s_, detail::z(key).c_str(), nullptr, nullptr, &counts, &err), err);
    return counts;
  }

  const storage *handle() const noexcept { return s_; }

 private:
  storage *s_ = nullptr;
};

}  // namespace apiserver_storage

#endif  // APISERVER_STORAGE_HPP
