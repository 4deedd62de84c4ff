#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, the library instrumented for coverage: the
# "fuzz" preset's configuration in build-fuzz/) and runs each for SECONDS (default 20) from its
# seeds (fuzz/seeds/<target>) and dictionary (fuzz/<target>.dict), keeping new inputs in
# build-fuzz/corpus/<target>. Each target's last coverage line goes to build-fuzz/fuzz-summary.txt.
# Stops at the first crash, leak or sanitizer report (the reproducer is left in build-fuzz/).
#   scripts/fuzz.sh            # 20 s each, as scripts/test.sh runs them
#   scripts/fuzz.sh 600        # 10 minutes each
#   scripts/fuzz.sh 60 fuzz_npy fuzz_audio   # some targets only
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
jobs=$(nproc)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DASDCAP_FUZZ=ON -DASDCAP_SANITIZE=ON -DASDCAP_BENCH=OFF >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi
cmake --build build-fuzz -j "$jobs" --target "${targets[@]}"
summary=build-fuzz/fuzz-summary.txt
: >"$summary"
for name in "${targets[@]}"; do
  echo "== $name, ${seconds}s"
  corpus="build-fuzz/corpus/$name"
  mkdir -p "$corpus"
  dict=()
  [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
  log="build-fuzz/$name.log"
  "./build-fuzz/fuzz/$name" -max_total_time="$seconds" -rss_limit_mb=4096 -artifact_prefix=build-fuzz/ \
    "${dict[@]}" "$corpus" "fuzz/seeds/$name" 2>"$log" || {
    tail -n 60 "$log"
    exit 1
  }
  line=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  echo "$name: $line" | tee -a "$summary"
done
