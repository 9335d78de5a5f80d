# CurveZMQ security (rmon::security, rmon-keygen): certificates (and those of
# Debian's python3-zmq, skipped with a message without it), the keyring and
# its watcher, the role rules, ZAP over real sockets on 127.0.0.1, the
# handshake monitor, and the keygen tool as a child process.

if(NOT DEFINED RMON_PYTHON)
  set(RMON_PYTHON /usr/bin/python3)
endif()

rmon_add_test(security_test
  ${CMAKE_CURRENT_LIST_DIR}/certificate_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/pyzmq_compat_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/keyring_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/rules_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/zap_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/curve_socket_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/keygen_test.cpp)
target_link_libraries(security_test PRIVATE rmon::security rmon_keygen)
target_compile_definitions(security_test PRIVATE RMON_PYTHON3="${RMON_PYTHON}"
                                                 RMON_KEYGEN_EXE="$<TARGET_FILE:rmon-keygen>")
add_dependencies(security_test rmon-keygen)

# --security on the services: the protected defaults of all three (settings,
# and the real executables as child processes), and the runner-monitor with
# CURVE in process (handshakes per socket, per-message checks, counters), and
# the task-queue and pool-manager with CURVE beside it (roles per request, the
# complete/fail fence, CURVE events, a client enrolled late).
rmon_add_test(service_security_test
  ${CMAKE_CURRENT_LIST_DIR}/protected_defaults_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/monitor_curve_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/consumer_curve_test.cpp)
target_link_libraries(service_security_test PRIVATE rmon::monitor rmon::task rmon::pool rmon::runner
                                                    rmon_keygen)
target_compile_definitions(service_security_test PRIVATE
  RMON_MONITOR_BIN="$<TARGET_FILE:runner-monitor>"
  RMON_TASK_QUEUE_BIN="$<TARGET_FILE:task-queue>"
  RMON_POOL_MANAGER_BIN="$<TARGET_FILE:pool-manager>")
add_dependencies(service_security_test runner-monitor task-queue pool-manager)
