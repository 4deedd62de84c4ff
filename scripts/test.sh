#!/usr/bin/env bash
# Builds asdcap and runs every test: the release build (C++ tests, then the Python package's
# pytest suite), the ASan+UBSan build, and each libFuzzer target for a bounded time. Exits non-zero
# on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
fuzz_seconds=${ASDCAP_FUZZ_SECONDS:-30}

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
  echo "== libFuzzer targets, ${fuzz_seconds}s each"
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DASDCAP_FUZZ=ON -DASDCAP_SANITIZE=ON -DASDCAP_BENCH=OFF >/dev/null
  for src in fuzz/fuzz_*.cpp; do
    name=$(basename "$src" .cpp)
    cmake --build build-fuzz -j "$jobs" --target "$name"
    corpus="build-fuzz/corpus/$name"
    mkdir -p "$corpus"
    [ -d "fuzz/seeds/$name" ] && cp -n fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null || true
    "./build-fuzz/fuzz/$name" -max_total_time="$fuzz_seconds" -rss_limit_mb=4096 "$corpus"
  done
fi
echo "== all tests passed"
