#!/usr/bin/env bash
# Builds asdcap and runs every test: the release build (C++ tests, then the Python package's
# pytest suite), the ASan+UBSan build, and each libFuzzer target for a bounded time. Exits non-zero
# on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# Seconds each libFuzzer target runs (11 targets: about 4 minutes in all). A long run, e.g. 10
# minutes each: ASDCAP_FUZZ_SECONDS=600 scripts/test.sh (or scripts/fuzz.sh 600 for the fuzzers alone).
fuzz_seconds=${ASDCAP_FUZZ_SECONDS:-20}

# A throwaway PostgreSQL cluster for the PostgreSQL store tests (both builds), removed on exit,
# also after a failure. ASDCAP_REQUIRE_POSTGRES=1 makes those tests fail rather than skip without it.
pg_dir=""
stop_pg() { [ -z "$pg_dir" ] || scripts/pg_throwaway.sh stop "$pg_dir"; }
trap stop_pg EXIT
pg_out=$(scripts/pg_throwaway.sh start)
pg_dir=$(sed -n 1p <<<"$pg_out")
export ASDCAP_TEST_POSTGRES_URL
ASDCAP_TEST_POSTGRES_URL=$(sed -n 2p <<<"$pg_out")
export ASDCAP_REQUIRE_POSTGRES=1
echo "== PostgreSQL test cluster: $ASDCAP_TEST_POSTGRES_URL"

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
