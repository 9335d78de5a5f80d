#!/usr/bin/env bash
# Checks what `cmake --install` delivers: installs a build into a temporary
# prefix, runs every installed executable with --version, then configures,
# builds and runs a small consumer project that uses
# find_package(runner_monitor) and links rmon::common and rmon::runner.
#   scripts/check-install.sh [build-dir]
# The build directory defaults to build-install/ (configured Release, without
# tests, when it does not exist yet); CI passes its Release build.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${1:-build-install}"
command -v cmake >/dev/null || bash scripts/setup-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
fi
cmake --build "$dir" -j"$jobs"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
cmake --install "$dir" --prefix "$prefix" >/dev/null
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$dir/CMakeCache.txt")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$dir/CMakeCache.txt")
fail() {
  echo "check-install: $*" >&2
  exit 1
}

echo "== installed into $prefix"
(cd "$prefix" && find . -type f | sort | sed 's/^/   /')
[ -f "$prefix/$libdir/cmake/runner_monitor/runner_monitorConfig.cmake" ] || fail "no package config"
[ -f "$prefix/include/rmon/version.hpp" ] || fail "no rmon/version.hpp"

echo "== every installed executable answers --version"
n=0
for exe in "$prefix"/bin/*; do
  out=$("$exe" --version) || fail "$exe --version exited with $?"
  [ "$out" = "$(basename "$exe") $version" ] || fail "$exe --version printed '$out'"
  echo "   $out"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no executables installed"

echo "== a consumer project: find_package(runner_monitor), rmon::common, rmon::runner"
mkdir "$tmp/consumer"
cat >"$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(rmon_consumer LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 20)
find_package(runner_monitor $version EXACT REQUIRED)
add_executable(consumer main.cpp)
target_link_libraries(consumer PRIVATE rmon::common)
add_executable(runner_consumer runner.cpp)
target_link_libraries(runner_consumer PRIVATE rmon::runner)
CMAKE
cat >"$tmp/consumer/main.cpp" <<'CPP'
// Uses the installed headers and library: settings (--version), the codec.
#include <iostream>

#include "rmon/config.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/version.hpp"

int main(int argc, char** argv) {
  rmon::Settings settings("consumer", "Checks an installed runner-monitor.");
  if (auto code = settings.parse(argc, argv)) return *code;
  rmon::protocol::Heartbeat hb;
  hb.runner.runner_id = "runner-1";
  hb.runner.task_id = "task-1";
  hb.runner.pool = "pool-a";
  hb.seq = 7;
  auto back = rmon::protocol::decode_heartbeat(rmon::protocol::heartbeat_topic("runner-1"),
                                               rmon::protocol::encode_heartbeat(hb));
  if (!back || !(back.value() == hb)) {
    std::cerr << "heartbeat round trip failed\n";
    return 1;
  }
  std::cout << "consumer: heartbeat round trip through runner_monitor " << RMON_VERSION << "\n";
  return 0;
}
CPP
cat >"$tmp/consumer/runner.cpp" <<'CPP'
// Uses the installed runner library: a heartbeat publisher starts and stops.
#include <iostream>

#include "rmon/runner/heartbeat_publisher.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  zmq::context_t ctx;
  rmon::runner::HeartbeatOptions opts;
  opts.endpoint = argv[1];
  opts.runner.runner_id = "runner-1";
  opts.runner.task_id = "task-1";
  opts.runner.pool = "pool-a";
  rmon::runner::HeartbeatPublisher publisher(ctx, opts);
  publisher.abandon();
  std::cout << "runner_consumer: a heartbeat publisher started and stopped\n";
  return 0;
}
CPP
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/consumer/build" -j"$jobs" >/dev/null
"$tmp/consumer/build/consumer"
[ "$("$tmp/consumer/build/consumer" --version)" = "consumer $version" ] || fail "consumer --version"
"$tmp/consumer/build/runner_consumer" "ipc://$tmp/heartbeats"
echo "check-install: ok"
