#pragma once
// Acknowledgements on their way from the ack thread, which commits them to
// the outbox's store (AckWriter), to the dispatch thread, which applies them
// to the events it holds in memory (Outbox::take_acks): the one piece of
// outbox state the two threads share.
//
// The writer calls begin() before a transaction and post() once it has
// committed (abandon() when it rolled back). settled() says that every
// acknowledgement committed so far has been taken: until then the store may
// already lack pending rows the Outbox still counts, and the Outbox must not
// take the disk's word over its own count (Outbox::refill).
//
// Thread-safe.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "annotated_mutex.hpp"

namespace rmon::monitor {

// A group's acknowledgement of one event, committed to the store.
struct AckedEvent {
  std::size_t group = 0;
  std::string event_id;
};

class AckMailbox {
 public:
  // A transaction that may acknowledge events begins.
  void begin() {
    MutexLock lock(mu_);
    ++in_flight_;
  }
  // It committed `acked` (taken from the caller).
  void post(std::vector<AckedEvent>& acked) {
    MutexLock lock(mu_);
    --in_flight_;
    for (AckedEvent& a : acked) done_.push_back(std::move(a));
    acked.clear();
  }
  // It rolled back: nothing to post.
  void abandon() {
    MutexLock lock(mu_);
    --in_flight_;
  }
  // Moves what was posted into `out` (cleared first).
  void take(std::vector<AckedEvent>& out) {
    out.clear();
    MutexLock lock(mu_);
    out.swap(done_);
  }
  // No transaction under way and nothing posted left to take.
  bool settled() {
    MutexLock lock(mu_);
    return in_flight_ == 0 && done_.empty();
  }

 private:
  Mutex mu_;
  std::size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<AckedEvent> done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rmon::monitor
