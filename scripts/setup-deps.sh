#!/usr/bin/env bash
# Installs every build, test and run dependency from Debian 12 packages.
# Idempotent; needs root (or sudo). Skips apt entirely when all are present.
#   scripts/setup-deps.sh [--build-only]   (--build-only: not the browser for tests)
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config git
  libzmq3-dev cppzmq-dev
  libmsgpack-cxx-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  libcli11-dev
  prometheus-cpp-dev
  libabsl-dev
  libsqlite3-dev sqlite3
  libpqxx-dev postgresql
  libxxhash-dev
  clang clang-format libclang-rt-14-dev
  curl
  libcivetweb-dev
  prometheus python3-zmq python3-msgpack python3-yaml docker-compose
  chromium
)
if [ "${1:-}" = --build-only ]; then
  # What building needs, not testing: the Dockerfile's build stage.
  PACKAGES=("${PACKAGES[@]/chromium/}")
  PACKAGES=("${PACKAGES[@]/postgresql/}")  # the tests' throwaway server
else
  # Node.js and npm for the console's browser tests (Playwright) and the
  # Kubernetes manifest check (scripts/check-manifests.sh), both from the npm
  # registry: Debian's nodejs and npm, unless a node and an npm are already
  # on the machine (a NodeSource nodejs carries its own npm, which Debian's
  # npm package would conflict with).
  command -v node >/dev/null || PACKAGES+=(nodejs)
  command -v npm >/dev/null || PACKAGES+=(npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  [ -n "$p" ] || continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-deps: run as root (missing: ${missing[*]})" >&2; exit 1; }
  SUDO="sudo"
fi
echo "setup-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
