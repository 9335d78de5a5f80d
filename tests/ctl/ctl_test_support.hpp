#pragma once
// rmon-ctl tests: run the real executable as a child process against the
// real services in-process (tests/support/stack.hpp), and read its output.

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "../support/child_process.hpp"
#include "../support/heartbeats.hpp"
#include "../support/stack.hpp"
#include "ctl/json.hpp"
#include "rmon/protocol/codec.hpp"
#include "rmon/protocol/msgmap.hpp"
#include "rmon/runner/pool_manager_client.hpp"
#include "rmon/runner/task_queue_client.hpp"
#include "rmon/version.hpp"
#include "rmon/zmq_util.hpp"

namespace rmon::ctl {

using protocol::MapBuilder;
using protocol::MapReader;

// rmon-ctl's exit code, stdout, stderr and run time (printable with <<).
using Exec = rmon::testing::Completed;

// Runs rmon-ctl with `args` and an environment without any RMON_CTL_* or
// RMON_CONTROL_ENDPOINT of ours, plus `env`. Killed after 15 s.
inline Exec run_ctl(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env = {}) {
  return rmon::testing::run_to_completion(
      RMON_CTL_EXE, args, {{"RMON_CTL_", "RMON_CONTROL_ENDPOINT="}, env}, std::chrono::seconds(15));
}

inline std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

inline std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Some line of `text` has exactly these words.
inline bool has_line(const std::string& text, const std::vector<std::string>& w) {
  for (const auto& l : lines(text)) {
    if (words(l) == w) return true;
  }
  return false;
}

// `--json` output parsed back: JSON -> MessagePack -> a MapReader. The
// encoded map is kept in `bytes` (MapReader refers to it).
struct Parsed {
  std::string bytes;
  std::optional<MapReader> map;
};
inline Parsed parse_json(const std::string& text) {
  Parsed p;
  p.bytes = json_to_msgpack(text);
  auto m = MapReader::parse(p.bytes, protocol::kMaxReplyFrame);
  if (m) p.map = m.value();
  return p;
}

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack.pools.pools = {"local=local-process:2", "gpu=kubernetes:1"};
    stack.start();
  }
  std::vector<std::string> endpoints() const {
    return {"--monitor",           stack.monitor_endpoint(), "--task-queue",
            stack.task_endpoint(), "--pool-manager",         stack.pool_endpoint()};
  }
  // rmon-ctl with the stack's endpoints as flags.
  Exec ctl(std::vector<std::string> args) {
    auto all = endpoints();
    all.insert(all.end(), args.begin(), args.end());
    return run_ctl(all);
  }
  std::string nowhere(const std::string& name) const {
    return "ipc://" + (stack.dir.path() / (name + ".sock")).string();
  }
  std::string write_file(const std::string& name, const std::string& data) {
    const auto path = stack.dir.path() / name;
    std::ofstream(path, std::ios::binary) << data;
    return path.string();
  }
  void heartbeat_until_known(zmq::socket_t& pub, const protocol::Heartbeat& hb) {
    ASSERT_TRUE(rmon::testing::heartbeat_until_known(pub, *stack.monitor_svc, hb));
  }

  rmon::testing::Stack stack;
  zmq::context_t ctx;
};

inline std::string submit_ok(const Exec& r) {
  EXPECT_EQ(r.code, 0) << r;
  EXPECT_EQ(lines(r.out).size(), 1u) << r;
  return r.out.empty() ? "" : r.out.substr(0, r.out.size() - 1);
}

}  // namespace rmon::ctl
