// Heartbeat codec on the hot path, against its baseline in the same run:
// generic msgpack::unpack of the same payload into a std::map of objects,
// then copying the string fields out, which is what a straightforward decoder
// would do.
//
// Counters per operation:
//   allocs_per_op       calls to global operator new (replaced below)
//   heap_blocks_per_op  every malloc, including operator new's and msgpack's
//                       zone chunks, which bypass operator new (glibc only)

#include <benchmark/benchmark.h>

#include <msgpack.hpp>
#include "bench_main.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <string>
#include <string_view>

#include "rmon/protocol/codec.hpp"

namespace {
std::atomic<uint64_t> g_news{0};
std::atomic<uint64_t> g_mallocs{0};
}  // namespace

// GCC inlines these replacements into their callers and then flags free() on
// memory from operator new, which is exactly the pairing intended here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define RMON_COUNT_MALLOC 1
// Forwards to glibc's allocator; only counts.
extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t count, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t size) noexcept;
void* malloc(std::size_t size) noexcept {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) noexcept {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  g_mallocs.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, size);
}
}
#endif

namespace rmon::protocol {
namespace {

// A typical heartbeat: short ids, six optional fields, a small progress map.
Heartbeat typical_heartbeat() {
  Heartbeat hb;
  hb.runner.runner_id = "runner-7f3a";
  hb.runner.task_id = "task-000042";
  hb.runner.attempt = 2;
  hb.runner.pool = "gpu-a100";
  hb.runner.pool_type = PoolType::kDocker;
  hb.runner.container_id = "c0ffee12ab34";
  msgpack::sbuffer progress;  // {"step": 120, "total": 500, "phase": "train"}
  msgpack::packer<msgpack::sbuffer> p(progress);
  p.pack_map(3);
  p.pack(std::string("step")).pack(120);
  p.pack(std::string("total")).pack(500);
  p.pack(std::string("phase")).pack(std::string("train"));
  hb.runner.progress = std::string(progress.data(), progress.size());
  hb.state = RunnerState::kRunning;
  hb.seq = 123456;
  hb.timeout_ms = 30000;
  hb.interval_ms = 5000;
  hb.sent_at_ms = 1'700'000'000'123;
  return hb;
}

// Counts allocations made inside the timed loop only.
class AllocScope {
 public:
  AllocScope() : news_(g_news.load()), mallocs_(g_mallocs.load()) {}
  void report(benchmark::State& state) const {
    const auto n = static_cast<double>(state.iterations());
    state.counters["allocs_per_op"] = static_cast<double>(g_news.load() - news_) / n;
#if defined(RMON_COUNT_MALLOC)
    state.counters["heap_blocks_per_op"] = static_cast<double>(g_mallocs.load() - mallocs_) / n;
#endif
  }

 private:
  uint64_t news_;
  uint64_t mallocs_;
};

void BM_EncodeHeartbeat(benchmark::State& state) {
  const Heartbeat hb = typical_heartbeat();
  std::string out;
  encode_heartbeat(hb, out);  // the reused buffer reaches its size once
  const AllocScope allocs;
  for (auto _ : state) {
    encode_heartbeat(hb, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  allocs.report(state);
  state.counters["frame_bytes"] = static_cast<double>(out.size());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(out.size()));
}
BENCHMARK(BM_EncodeHeartbeat);

void BM_DecodeHeartbeatInto(benchmark::State& state) {
  const Heartbeat hb = typical_heartbeat();
  const std::string topic = heartbeat_topic(hb.runner.runner_id);
  const std::string payload = encode_heartbeat(hb);
  Heartbeat out;
  if (!decode_heartbeat_into(topic, payload, out) || !(out == hb)) {
    state.SkipWithError("the typical heartbeat does not round-trip");
    return;
  }
  const AllocScope allocs;
  for (auto _ : state) {
    Status s = decode_heartbeat_into(topic, payload, out);
    benchmark::DoNotOptimize(s);
    benchmark::DoNotOptimize(out);
  }
  allocs.report(state);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload.size()));
}
BENCHMARK(BM_DecodeHeartbeatInto);

// The convenience decoder: a new Heartbeat per message.
void BM_DecodeHeartbeatFresh(benchmark::State& state) {
  const Heartbeat hb = typical_heartbeat();
  const std::string topic = heartbeat_topic(hb.runner.runner_id);
  const std::string payload = encode_heartbeat(hb);
  const AllocScope allocs;
  for (auto _ : state) {
    auto d = decode_heartbeat(topic, payload);
    benchmark::DoNotOptimize(d);
  }
  allocs.report(state);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload.size()));
}
BENCHMARK(BM_DecodeHeartbeatFresh);

// Baseline: generic unpack, convert to a map, copy the string fields. It
// checks no types, limits or UTF-8 and skips the integer fields, so it
// flatters itself: the comparison is conservative.
struct StringFields {
  std::string runner_id, task_id, pool, pool_type, state, container_id;
};

void copy_str(const std::map<std::string, msgpack::object>& m, const char* key, std::string& out) {
  auto it = m.find(key);
  if (it != m.end() && it->second.type == msgpack::type::STR) {
    out.assign(it->second.via.str.ptr, it->second.via.str.size);
  }
}

void BM_BaselineGenericUnpack(benchmark::State& state) {
  const std::string payload = encode_heartbeat(typical_heartbeat());
  StringFields out;
  const AllocScope allocs;
  for (auto _ : state) {
    msgpack::object_handle oh = msgpack::unpack(payload.data(), payload.size());
    std::map<std::string, msgpack::object> m;
    oh.get().convert(m);
    copy_str(m, "runner_id", out.runner_id);
    copy_str(m, "task_id", out.task_id);
    copy_str(m, "pool", out.pool);
    copy_str(m, "pool_type", out.pool_type);
    copy_str(m, "state", out.state);
    copy_str(m, "container_id", out.container_id);
    benchmark::DoNotOptimize(out);
  }
  allocs.report(state);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(payload.size()));
}
BENCHMARK(BM_BaselineGenericUnpack);

}  // namespace
}  // namespace rmon::protocol

RMON_BENCHMARK_MAIN("codec_bench")
