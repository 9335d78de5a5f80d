# The tools: rmon-ctl (its JSON converter, and the real executable as a child
# process against the real services in-process) and rmon-event-sink (the
# real executable against a monitor in-process).
rmon_add_test(ctl_test
  ${CMAKE_CURRENT_LIST_DIR}/ctl_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/ctl_io_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/json_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/event_sink_test.cpp
  ${CMAKE_SOURCE_DIR}/tools/ctl/json.cpp)
target_include_directories(ctl_test PRIVATE ${CMAKE_SOURCE_DIR}/tools)
target_link_libraries(ctl_test PRIVATE rmon::runner rmon::task rmon::pool rmon::monitor rmon::msgpack)
target_compile_definitions(ctl_test PRIVATE RMON_CTL_EXE="$<TARGET_FILE:rmon-ctl>"
                                            RMON_EVENT_SINK_EXE="$<TARGET_FILE:rmon-event-sink>")
add_dependencies(ctl_test rmon-ctl rmon-event-sink)
