#pragma once
// The one batch policy of the consumer services (task-queue, pool-manager):
//   - one transaction per batch, one savepoint per item, in this order:
//     events, then verdicts, then requests (a slot or task an event frees is
//     free for the requests of the same batch);
//   - requests are parsed here (version, op), checked against the sender's
//     role (--security curve) and handed to the domain by op;
//   - replies, acks and the domain's log lines only once the commit is
//     durable: apply() fills them in, release() (after the log's fsync, see
//     store::WalSyncer) writes the log lines, the skeleton sends the rest;
//   - where savepoints are not cheap (PostgreSQL: a round trip each), a
//     batch is first applied without them; if an item fails, the batch is
//     rolled back and applied again with them, item by item;
//   - a storage error in an item rolls that item back (a request answers
//     `unavailable`, an event stays unacknowledged, a verdict is retried next
//     round), the domain reloads its in-memory state inside the transaction,
//     and the rest go on; a failed commit answers every request
//     `unavailable`, acknowledges nothing and reloads. While a reload fails,
//     every batch is answered `unavailable` (the monitor redelivers events).
//   - maintenance (retention) in its own transactions, under the same rule.
//
// Not thread-safe: runs on the service's loop thread.

#include <prometheus/histogram.h>

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_set>
#include <vector>

#include "rmon/clock.hpp"
#include "rmon/logging.hpp"
#include "rmon/service/domain.hpp"
#include "rmon/service/event_consumer.hpp"
#include "rmon/service/router.hpp"
#include "rmon/service/server_security.hpp"

namespace rmon {

struct Batch {
  std::vector<ConsumedEvent> events;
  std::vector<Judged> verdicts;
  std::vector<Request> requests;
  // Filled by apply(), used by release():
  Notes notes;                         // log lines of the committed batch
  std::vector<std::size_t> took_back;  // events (indexes) that took something back
  uint64_t ticket = 0;                 // its commit's (store::CommitSyncer::commit())
  bool committed = false;              // apply() committed it (else: answered unavailable)
  bool empty() const { return events.empty() && verdicts.empty() && requests.empty(); }
  void clear() {
    events.clear();
    verdicts.clear();
    requests.clear();
    notes.clear();
    took_back.clear();
    ticket = 0;
    committed = false;
  }
};

// The lost attempts (runner, task, attempt) that timeout events took back
// lately, so that another monitor's copy of the same loss, or a redelivery,
// is counted as a duplicate. Bounded: the oldest key goes first.
class RecentLosses {
 public:
  explicit RecentLosses(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}
  static constexpr std::size_t kDefaultCapacity = 65'536;
  void add(const protocol::RunnerInfo& r);
  bool contains(const protocol::RunnerInfo& r) const;
  std::size_t size() const { return order_.size(); }

 private:
  static std::string key(const protocol::RunnerInfo& r);
  std::size_t capacity_;
  std::unordered_set<std::string> keys_;
  std::deque<const std::string*> order_;  // into keys_ (its nodes never move), oldest first
};

class BatchPolicy {
 public:
  // `batch_size` may be null (no histogram). With a `gate` (--security
  // curve), each request's sender must be allowed its op and scope
  // (ServiceDomain::request_scope()), or it is answered `forbidden`.
  BatchPolicy(ServiceDomain& domain, ServiceStats& stats, const Clock& clock,
              prometheus::Histogram* batch_size = nullptr, MessageGate* gate = nullptr);

  // Fills every request's reply and marks the events to acknowledge.
  void apply(Batch& b);
  // Once the batch's commit is durable, before its replies and acks leave:
  // its log lines, and the domain's on_event_committed().
  void release(Batch& b);
  // Instead of release() when the batch's commit was settled lost (its
  // flush failed: it may be gone): every request answered `unavailable`,
  // no event acknowledged, no log line; the domain's in-memory state is
  // read again before the next batch. (Its requests stay counted under the
  // outcome apply() gave them.)
  void lost(Batch& b);
  // Answers every request `unavailable` (`detail`) without applying
  // anything (the store cannot make commits durable now); counted per op.
  void refuse(Batch& b, std::string_view detail);
  void maintain();

 private:
  template <class Fn>
  bool item(const char* what, Fn&& fn);
  // One try at applying and committing the batch; false when it rolled back.
  bool attempt(Batch& b);
  // Clears what an attempt fills in.
  void reset(Batch& b);
  // Whether the gate (if any) lets the sender of `r` do `op`.
  bool allowed(const Request& r, std::size_t op_index, std::string_view op,
               const protocol::MapReader& m);
  void answer_unavailable(Batch& b, std::string_view detail);
  bool reload();
  void count_verdicts(const std::vector<Judged>& verdicts);
  // After the commit: events that changed nothing for a loss taken back.
  void count_duplicates(const Batch& b);
  void storage_error(const char* what, const std::exception& e);

  ServiceDomain& domain_;
  ServiceStats& stats_;
  const Clock& clock_;
  prometheus::Histogram* const batch_size_;
  MessageGate* const gate_;
  Notes notes_;
  bool needs_reload_ = false;
  bool optimistic_ = false;               // this attempt takes no savepoints
  bool item_failed_ = false;              // an item of the optimistic attempt threw
  std::vector<std::size_t> ops_;          // per request: op index (kMaxOps: none)
  std::vector<std::string_view> errors_;  // per request: its reply's error code
  RecentLosses recent_losses_;
  LogRateLimiter warn_limit_{5, std::chrono::seconds(10)};
};

}  // namespace rmon
