// tdx_bench: the core's tree operations, one per run, for timing from outside.
//   tdx_bench hash TREE [CACHE_FILE]   tree hash (with a digest cache when CACHE_FILE is given)
//   tdx_bench restore FROM TO          restore an artifact tree the way image assembly does
#include <iostream>
#include <string>

#include <tdx/digest_cache.hpp>
#include <tdx/fsutil.hpp>
#include <tdx/hash.hpp>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: tdx_bench hash TREE [CACHE_FILE] | restore FROM TO\n";
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "hash") {
      if (argc > 3) {
        tdx::DigestCache cache(argv[3]);
        std::cout << tdx::h1_string(tdx::tree_hash(argv[2], tdx::TreeSelection::checkout, &cache)) << " hits "
                  << cache.hits() << " misses " << cache.misses() << "\n";
        cache.save();
      } else {
        std::cout << tdx::h1_string(tdx::tree_hash(argv[2])) << "\n";
      }
    } else if (cmd == "restore" && argc == 4) {
      tdx::copy_tree(argv[2], argv[3], /*hardlink=*/true);
    } else {
      std::cerr << "unknown command " << cmd << "\n";
      return 2;
    }
  } catch (const std::exception& e) {
    std::cerr << "tdx_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
