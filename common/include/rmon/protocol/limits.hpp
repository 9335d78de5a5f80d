#pragma once
// Size limits of protocol version 1 (see docs/PROTOCOL.md).

#include <cstddef>
#include <cstdint>

namespace rmon::protocol {

inline constexpr uint64_t kVersion = 1;
inline constexpr std::size_t kMaxHeartbeatFrame = 8 * 1024;
inline constexpr std::size_t kMaxProgressBytes = 4 * 1024;  // encoded
inline constexpr std::size_t kMaxIdBytes = 128;             // runner_id, task_id, pool
inline constexpr std::size_t kMaxShortString = 256;         // container_id, job_name, group, ...
inline constexpr std::size_t kMaxTopicBytes = 3 + kMaxIdBytes;
// Event, ack and request frames (the monitor's control requests: below).
// Replies to clients may be larger.
inline constexpr std::size_t kMaxFrame = 64 * 1024;
// The monitor's control requests: a `lookup` of kMaxLookupIds ids of kMaxIdBytes
// bytes takes ~131 KB encoded, so they get room for that and a margin.
inline constexpr std::size_t kMaxControlRequestFrame = 160 * 1024;
inline constexpr std::size_t kMaxLookupIds = 1000;  // runner ids in one `lookup`
inline constexpr std::size_t kMaxReplyFrame = 64 * 1024 * 1024;
// A `list` reply stops short of this many bytes (encoded) and says `more`.
inline constexpr std::size_t kMaxListReplyBytes = 16 * 1024 * 1024;
inline constexpr std::size_t kMaxDepth = 32;  // nesting of maps and arrays

inline constexpr char kTopicPrefix[] = "hb/";
inline constexpr char kTimeoutType[] = "runner_timeout";
inline constexpr char kAckType[] = "ack";

}  // namespace rmon::protocol
