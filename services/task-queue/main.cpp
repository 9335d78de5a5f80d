// task-queue: durable task queue that hands tasks to runners and takes them
// back when the runner-monitor reports their runner lost. See README.md and
// docs/PROTOCOL.md ("Dispatcher services").

#include "rmon/service/main.hpp"
#include "task_service.hpp"

int main(int argc, char** argv) {
  return rmon::run_service_main<rmon::tq::TaskQueueConfig, rmon::tq::TaskQueueService>(
      argc, argv, "task-queue",
      "Durable task queue: submit, lease, complete, fail, cancel; requeues the tasks of runners "
      "the runner-monitor reports lost.");
}
