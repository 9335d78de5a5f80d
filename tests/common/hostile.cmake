# Hostile-input tests of the protocol decoders. Included from
# tests/CMakeLists.txt; paths are relative to this file so the include site
# does not matter.
#
# The test interposes malloc (or installs sanitizer allocation hooks) to count
# what a decode allocates, so it is a binary of its own: nothing else should
# run under that allocator.
add_executable(hostile_input_test
  ${CMAKE_CURRENT_LIST_DIR}/alloc_meter.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hostile_structure_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/hostile_limits_test.cpp)
target_link_libraries(hostile_input_test PRIVATE rmon::common GTest::gtest_main rmon::msgpack)
rmon_target_defaults(hostile_input_test)
gtest_discover_tests(hostile_input_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)
