#!/bin/sh
# Checks the vector restatements of C library functions (src/nn/libm_vector.cpp: GPT-2's GELU with
# tanhf, expf) against the scalar loops on all 2^32 floats, bit for bit. Compiled with the library's
# flags: libm_vector.cpp without contraction (as src/nn/CMakeLists.txt builds it), the scalar
# reference with the default. Usage: scripts/dev/libm_exhaustive.sh   (about a minute on 2 cores)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags="-O3 -std=c++20 -march=x86-64-v3 -mtune=generic -I$root/src"
c++ $flags -ffp-contract=off -c "$root/src/nn/libm_vector.cpp" -o "$tmp/libm_vector.o"
c++ $flags -fopenmp "$root/scripts/dev/libm_exhaustive.cpp" "$tmp/libm_vector.o" -o "$tmp/libm_exhaustive"
"$tmp/libm_exhaustive"
