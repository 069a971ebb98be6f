// storage_get in C++17, through the header-only wrapper apiserver_storage.hpp:
// read one Kubernetes object from etcd the way kube-apiserver does,
// decrypting it when the config names an EncryptionConfiguration.
//
//   storage_get CONFIG KEY
//
// CONFIG is the config JSON itself (starting with '{') or a file holding it;
// KEY is relative to the config's prefix, e.g. /secrets/default/db-password.
// Prints the resourceVersion, then the object; on failure prints the error
// and exits with its storage code.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "apiserver_storage.hpp"

int main(int argc, char **argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " CONFIG_JSON|CONFIG_FILE KEY\n";
    return 2;
  }
  std::string config = argv[1];
  if (config.empty() || config[0] != '{') {
    std::ifstream file(config);
    if (!file) {
      std::cerr << "cannot read " << config << "\n";
      return 2;
    }
    std::ostringstream text;
    text << file.rdbuf();
    config = text.str();
  }
  try {
    apiserver_storage::Storage s(config);
    s.health();
    auto object = s.get(argv[2]);  // throws when absent: no ignore_not_found
    std::cout << "resourceVersion: " << object->resource_version
              << (object->stale ? " (stale: rewrite to re-encrypt)" : "") << "\n"
              << object->data << "\n";
  } catch (const apiserver_storage::Error &e) {
    std::cerr << "storage_get: " << e.what() << "\n";
    return static_cast<int>(e.code());
  }
  return 0;
}
