#!/usr/bin/env bash
# Builds asdcap and runs every test: the release build (C++ tests, then the Python package's
# pytest suite), the ASan+UBSan build, and each libFuzzer target for a bounded time. Exits non-zero
# on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# Seconds each libFuzzer target runs (10 targets: about 3.5 minutes in all). A long run, e.g. 10
# minutes each: ASDCAP_FUZZ_SECONDS=600 scripts/test.sh (or scripts/fuzz.sh 600 for the fuzzers alone).
fuzz_seconds=${ASDCAP_FUZZ_SECONDS:-20}

echo "== release build and tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DASDCAP_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

if [ -f build/python/python-interpreter.txt ]; then
  echo "== Python package tests"
  python=$(cat build/python/python-interpreter.txt)
  PYTHONPATH="$PWD/build/python" "$python" -m pytest -q python/tests
fi

echo "== ASan+UBSan build and tests"
# -O1 -g1: sanitizer builds compile much faster than at -O2 -g and still give symbolised traces.
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" \
  -DCMAKE_C_FLAGS="-O1 -g1" -DASDCAP_SANITIZE=ON -DASDCAP_BENCH=OFF -DASDCAP_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs"

if compgen -G "fuzz/fuzz_*.cpp" >/dev/null; then
  scripts/fuzz.sh "$fuzz_seconds"
fi
echo "== all tests passed"
