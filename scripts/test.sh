#!/usr/bin/env bash
# Runs every test: the C++ unit tests (ctest) and the integration tests (pytest driving
# the real tdx binary, mkosi and bubblewrap). Extra arguments go to pytest (e.g. -k plugins).
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
ctest --test-dir build --output-on-failure || status=1
# The Python that the bindings were built for; the same one embedded in the CLI.
/usr/bin/python3 -m pytest tests/integration -ra "$@" || status=1
exit $status
