# The C++ runner library against the real services in-process.
rmon_add_test(runner_client_test runner/runner_client_test.cpp)
target_link_libraries(runner_client_test PRIVATE rmon::runner rmon::task rmon::pool rmon::monitor)

# Several monitors: an availability pair and partitions by prefix (contract
# amendment "Several monitors").
rmon_add_test(monitor_pair_test runner/monitor_pair_test.cpp)
target_link_libraries(monitor_pair_test PRIVATE rmon::runner rmon::task rmon::pool rmon::monitor)
