#!/usr/bin/env bash
# Configures and builds tdx into ./build (the build tree mirrors an install: build/bin/tdx).
set -euo pipefail
cd "$(dirname "$0")/.."
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
[ -f build/CMakeCache.txt ] || cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPython_EXECUTABLE=/usr/bin/python3
cmake --build build --parallel "$(nproc)"
