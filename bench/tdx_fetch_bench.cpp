// tdx_fetch_bench URL SHA256: one fetch() into the cache named by TDX_CACHE_DIR, for timing
// from outside (bench/fetch_bench.py).
#include <iostream>

#include <tdx/fetch.hpp>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tdx_fetch_bench URL SHA256\n";
    return 2;
  }
  try {
    tdx::FetchOptions options;
    options.progress = false;
    std::cout << tdx::fetch(argv[1], argv[2], options).path.string() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "tdx_fetch_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
