# task-queue tests: the store and API on a fake clock, and the service over
# real sockets with the real runner-monitor in-process and as child processes.
rmon_add_test(task_unit_test task/task_store_test.cpp task/task_api_test.cpp)
target_link_libraries(task_unit_test PRIVATE rmon::task)

rmon_add_test(task_service_test task/task_service_test.cpp task/reconcile_test.cpp
              task/task_replicas_test.cpp
              task/commit_pipeline_test.cpp task/pg_syncer_test.cpp)
target_link_libraries(task_service_test PRIVATE rmon::task rmon::pool rmon::monitor)

rmon_add_test(task_restart_test task/task_restart_test.cpp task/replica_kill_test.cpp)
target_link_libraries(task_restart_test PRIVATE rmon::common rmon::runner)
target_compile_definitions(task_restart_test PRIVATE TASK_QUEUE_BIN="$<TARGET_FILE:task-queue>")
add_dependencies(task_restart_test task-queue)
