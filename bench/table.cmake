# The runner table's benchmarks; included from bench/CMakeLists.txt.
#   table_bench  Google Benchmark: heartbeat updates, idle sweep and expiry,
#                each against a one-mutex, full-scan baseline from the same run.
#   scale_bench  plain program: memory per runner and idle dispatch CPU at
#                1,000,000 runners, against the targets.
#   persist_bench plain program: saving the table (a join storm's rewrite, a
#                large incremental save) against bare SQLite.
# Paths are relative to this file so that it can be included from anywhere.

add_executable(table_bench ${CMAKE_CURRENT_LIST_DIR}/table_bench.cpp)
target_link_libraries(table_bench PRIVATE rmon::monitor_core benchmark::benchmark)
rmon_target_defaults(table_bench)

add_executable(scale_bench ${CMAKE_CURRENT_LIST_DIR}/scale_bench.cpp)
target_link_libraries(scale_bench PRIVATE rmon::monitor rmon::fleet)
rmon_target_defaults(scale_bench)

add_executable(persist_bench ${CMAKE_CURRENT_LIST_DIR}/persist_bench.cpp)
target_link_libraries(persist_bench PRIVATE rmon::monitor rmon::fleet)
rmon_target_defaults(persist_bench)

# Part of the `bench` aggregate target when it is already defined.
if(TARGET bench)
  add_dependencies(bench table_bench scale_bench persist_bench)
endif()
