// A shared object without the entry point: not a tdx plugin.
extern "C" __attribute__((visibility("default"))) int not_a_tdx_plugin() { return 42; }
