# Real formats checked with real tools: every service's /metrics, the alert
# rules (and their unit tests) and the Prometheus config with promtool, the
# Grafana dashboard's queries against real scrapes, and the compose file with
# docker-compose (Debian packages prometheus, python3-yaml and docker-compose;
# scripts/setup-deps.sh installs them).
find_program(PROMTOOL promtool)
if(PROMTOOL)
  add_test(NAME observability_promtool
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/check-observability.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(observability_promtool PROPERTIES TIMEOUT 120)
else()
  message(WARNING "promtool not found: /metrics is not checked (apt-get install prometheus)")
endif()
find_program(DOCKER_COMPOSE docker-compose)
if(DOCKER_COMPOSE)
  add_test(NAME compose_config
           COMMAND ${DOCKER_COMPOSE} -f ${CMAKE_SOURCE_DIR}/docker-compose.yml config -q)
else()
  message(WARNING "docker-compose not found: docker-compose.yml is not checked")
endif()

# deploy/kubernetes/ against the Kubernetes API's schemas, offline (npm
# packages; scripts/check-manifests.sh says why not kubectl). Once, in the
# default build.
find_program(NODE node)
find_program(NPM npm)
if(RMON_SANITIZE OR RMON_TSAN)
  # kubernetes_manifests runs in the default build only.
elseif(NODE AND NPM)
  add_test(NAME kubernetes_manifests COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/check-manifests.sh)
  set_tests_properties(kubernetes_manifests PROPERTIES TIMEOUT 300)
else()
  message(WARNING "node or npm not found: deploy/kubernetes is not checked "
                  "(scripts/setup-deps.sh installs them)")
endif()

# The whole stack as processes: tasks go in, runners crash, every task still
# finishes once and every slot comes back (scripts/e2e.sh).
add_test(NAME e2e_stack COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/e2e.sh ${CMAKE_BINARY_DIR} 300 40)
# Alone (RUN_SERIAL): the runners' heartbeats must keep time, and under a
# sanitizer with other tests beside them they did not.
set_tests_properties(e2e_stack PROPERTIES TIMEOUT 180 RUN_SERIAL TRUE)

# The same run with --security curve on every socket: the services, the
# runners (a runner key scoped to "sim-"), the operator (admin) and the
# services as clients of the monitor, keys written by rmon-keygen init.
add_test(NAME e2e_stack_secure
         COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/e2e.sh --secure ${CMAKE_BINARY_DIR} 300 40)
set_tests_properties(e2e_stack_secure PROPERTIES TIMEOUT 180 RUN_SERIAL TRUE)

# scripts/run-stack.sh --ha: a throwaway PostgreSQL, a monitor pair and two
# replicas of each consumer; kill -9 of one monitor, one task-queue and one
# pool-manager replica and a PostgreSQL restart mid-run, then the monitor
# started again; the run fails unless every task ended once, no slot is held
# and nothing is pending. The contract's fixed ports (and 20 above for the
# second monitor): alone.
if(NOT (RMON_SANITIZE OR RMON_TSAN))
  add_test(NAME run_stack_ha
           COMMAND ${CMAKE_COMMAND} -E env RMON_BIN=${CMAKE_BINARY_DIR}
                   RMON_RUN_DIR=${CMAKE_BINARY_DIR}/run-stack-ha
                   bash ${CMAKE_SOURCE_DIR}/scripts/run-stack.sh --ha --tasks 500 --runners 30)
  set_tests_properties(run_stack_ha PROPERTIES TIMEOUT 240 RUN_SERIAL TRUE)
endif()

# rmon-console in a real browser: Playwright (npm, tests/console) driving
# Debian's chromium against the stack with a workload, then with --security
# curve (scripts/console-test.sh; screenshots in the build folder's
# console-screenshots/). Not in the sanitizer builds: its bounds are time
# (2 s to show a crash, 3 s to paint), and the console's C++ is covered there
# by console_test.
find_program(CHROMIUM chromium)
if(RMON_SANITIZE OR RMON_TSAN)
  # console_browser runs in the default build only.
elseif(CHROMIUM AND NPM)
  add_test(NAME console_browser
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/console-test.sh ${CMAKE_BINARY_DIR})
  set_tests_properties(console_browser PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
else()
  message(WARNING "chromium or npm not found: the console's browser tests do not run "
                  "(scripts/setup-deps.sh installs them)")
endif()
