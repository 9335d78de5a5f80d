# The fault suite (issue #9): the real executables as child processes, each
# fault staged under load and its effects counted. Included from
# tests/CMakeLists.txt; paths are relative to this file.
#
# ctest runs it at the CI scale (label `fault`; RMON_FAULT_RUNNERS unset:
# 1000 runners). scripts/fault-suite.sh runs the same binary at full scale
# (RMON_FAULT_RUNNERS=10000) and prints every fault's report.
add_executable(fault_suite
  ${CMAKE_CURRENT_LIST_DIR}/fault_support.cpp
  ${CMAKE_CURRENT_LIST_DIR}/fault_fleet.cpp
  ${CMAKE_CURRENT_LIST_DIR}/consumer_fixture.cpp
  ${CMAKE_CURRENT_LIST_DIR}/consumer_faults_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/monitor_faults_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hostile_garbage.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hostile_faults_test.cpp)
target_link_libraries(fault_suite PRIVATE rmon::fleet rmon::common rmon::msgpack GTest::gtest_main)
target_compile_definitions(fault_suite PRIVATE
  RMON_MONITOR_BIN="$<TARGET_FILE:runner-monitor>"
  RMON_TASK_QUEUE_BIN="$<TARGET_FILE:task-queue>"
  RMON_POOL_MANAGER_BIN="$<TARGET_FILE:pool-manager>")
add_dependencies(fault_suite runner-monitor task-queue pool-manager)
rmon_target_defaults(fault_suite)
gtest_discover_tests(fault_suite DISCOVERY_TIMEOUT 60
  PROPERTIES TIMEOUT 300 LABELS fault)
