# pool-manager's tests. Included from tests/CMakeLists.txt; paths are relative
# to this file so the include site does not matter.

rmon_add_test(pool_unit_test
  ${CMAKE_CURRENT_LIST_DIR}/pool_store_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pool_api_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pool_config_test.cpp)
target_link_libraries(pool_unit_test PRIVATE rmon::pool)

rmon_add_test(pool_service_test
  ${CMAKE_CURRENT_LIST_DIR}/pool_service_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pool_monitor_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pool_replicas_test.cpp)
target_link_libraries(pool_service_test PRIVATE rmon::pool rmon::monitor)

# The real executable as a child process: SIGTERM, kill -9 mid-stream, and
# start-up failures.
rmon_add_test(pool_restart_test ${CMAKE_CURRENT_LIST_DIR}/pool_restart_test.cpp)
target_link_libraries(pool_restart_test PRIVATE rmon::common)
target_compile_definitions(pool_restart_test PRIVATE POOL_MANAGER_BIN="$<TARGET_FILE:pool-manager>")
add_dependencies(pool_restart_test pool-manager)
