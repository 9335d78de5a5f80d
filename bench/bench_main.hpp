#pragma once
// main() for the Google Benchmark binaries: BENCHMARK_MAIN plus `--version`,
// which every executable of the project answers.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>

#include "rmon/version.hpp"

#define RMON_BENCHMARK_MAIN(name)                                       \
  int main(int argc, char** argv) {                                     \
    for (int i = 1; i < argc; ++i) {                                    \
      if (std::strcmp(argv[i], "--version") == 0) {                     \
        std::printf("%s %s\n", name, RMON_VERSION);                     \
        return 0;                                                       \
      }                                                                 \
    }                                                                   \
    ::benchmark::Initialize(&argc, argv);                               \
    if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    ::benchmark::RunSpecifiedBenchmarks();                              \
    ::benchmark::Shutdown();                                            \
    return 0;                                                           \
  }
