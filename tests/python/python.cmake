# The Python client package (clients/python, importable as `rmon`): its unit
# tests and its integration tests against the real runner-monitor, task-queue
# and pool-manager executables of this build, run with Debian's interpreter
# (python3-zmq, python3-msgpack). Skipped with a warning where those are missing.

set(RMON_PYTHON /usr/bin/python3)
set(RMON_PYTHON_DIR ${PROJECT_SOURCE_DIR}/clients/python)

execute_process(
  COMMAND ${RMON_PYTHON} -c "import zmq, msgpack"
  RESULT_VARIABLE rmon_python_check
  OUTPUT_QUIET ERROR_QUIET)

if(NOT rmon_python_check EQUAL 0)
  message(WARNING
    "python_client_test skipped: ${RMON_PYTHON} cannot import zmq and msgpack "
    "(apt-get install python3 python3-zmq python3-msgpack)")
else()
  add_test(NAME python_client_test
    COMMAND ${RMON_PYTHON} -m unittest discover -s ${RMON_PYTHON_DIR}/tests -t ${RMON_PYTHON_DIR})
  set_tests_properties(python_client_test PROPERTIES
    TIMEOUT 180
    ENVIRONMENT
      "RMON_MONITOR_BIN=$<TARGET_FILE:runner-monitor>;RMON_TASK_QUEUE_BIN=$<TARGET_FILE:task-queue>;RMON_POOL_MANAGER_BIN=$<TARGET_FILE:pool-manager>;RMON_KEYGEN_BIN=$<TARGET_FILE:rmon-keygen>;PYTHONPATH=${RMON_PYTHON_DIR};PYTHONDONTWRITEBYTECODE=1")
endif()
