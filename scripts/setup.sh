#!/usr/bin/env bash
# Installs every Debian package asdcap needs to build, test and run. Idempotent.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  libsndfile1-dev libopenblas-dev libfftw3-dev zlib1g-dev libpcre2-dev
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libssl-dev libsqlite3-dev
  postgresql libpq-dev
  libasound2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  pybind11-dev python3-dev python3-numpy python3-pytest
  clang libclang-rt-14-dev libomp-14-dev
  chromium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: installed ${missing[*]}"
