// Hostile input, structure: valid samples, every truncation, wrong types,
// non-map roots and non-string keys, invalid UTF-8. Decoders never throw or
// crash and reject with the documented reason.

#include "hostile_support.hpp"

namespace rmon::protocol::hostile {
namespace {

TEST(HostileInput, EveryValidSampleIsAccepted) {
  for (const Sample& s : valid_samples()) {
    const Verdict v = run_guarded(decoder(s.decoder), s.frame);
    EXPECT_FALSE(v.rejection) << s.decoder << " " << v.rejection->to_string() << " "
                              << hex(s.frame);
    EXPECT_EQ(v.problem, "") << s.decoder;
  }
}

// --- Truncation ---------------------------------------------------------------

TEST(HostileInput, EveryTruncationOfAValidFrameIsRejected) {
  for (const Sample& s : valid_samples()) {
    for (std::size_t len = 0; len < s.frame.size(); ++len) {
      const Verdict v = run_guarded(decoder(s.decoder), std::string_view(s.frame).substr(0, len));
      ASSERT_EQ(v.problem, "") << s.decoder << " prefix " << len;
      ASSERT_TRUE(v.rejection) << s.decoder << " accepted a prefix of " << len;
      EXPECT_TRUE(v.rejection->reason == Reason::kMalformed)
          << s.decoder << " prefix " << len << ": " << v.rejection->to_string();
    }
  }
}

// A truncated frame was once reported as too_large whenever the cut fell
// before the root map had as many bytes as it declares pairs. A cut frame is
// not over any limit: the metric label must be malformed.
TEST(HostileInput, EveryTruncationOfAValidFrameIsMalformedNotTooLarge) {
  for (const Sample& s : valid_samples()) {
    std::vector<std::size_t> too_large;  // prefix lengths reported as too_large
    for (std::size_t len = 0; len < s.frame.size(); ++len) {
      const Verdict v = run_guarded(decoder(s.decoder), std::string_view(s.frame).substr(0, len));
      ASSERT_TRUE(v.rejection);
      if (reason_of(v.rejection) != "malformed") too_large.push_back(len);
    }
    EXPECT_TRUE(too_large.empty())
        << s.decoder << ": " << too_large.size() << " prefixes (lengths " << too_large.front()
        << " to " << too_large.back() << ") of " << hex(s.frame) << " are not malformed";
  }
}

// --- Wrong types --------------------------------------------------------------

// kRunners: the `runners` of a reply, an array of runner maps (`list`) or an
// unsigned counter (`stats`). kArray: an array (an empty one is no wrong type).
enum class Kind { kUint, kInt, kStr, kBool, kMap, kRunners, kArray };

// Values of every MessagePack family that `kind` does not accept.
std::vector<Bytes> wrong_values(Kind kind) {
  std::vector<Bytes> out = {kNil, mp(1.5), mp(1.5f), bytes({0xc4, 0x01, 'a'}),
                            bytes({0xd4, 0x01, 0x00})};
  if (kind != Kind::kUint && kind != Kind::kInt && kind != Kind::kRunners) out.push_back(mp(7u));
  if (kind != Kind::kInt) out.push_back(mp(-1));
  if (kind != Kind::kStr) out.push_back(mp_str("7"));
  if (kind != Kind::kBool) out.push_back(mp(true));
  if (kind != Kind::kRunners && kind != Kind::kArray) out.push_back(bytes({0x90}));
  if (kind != Kind::kMap) out.push_back(bytes({0x80}));
  return out;
}

struct Schema {
  const char* name;
  Fields valid;
  std::vector<std::pair<const char*, Kind>> typed;
  std::function<Verdict(const Bytes&)> decode;  // decodes a map of `valid`'s shape
};

std::vector<std::pair<const char*, Kind>> runner_kinds() {
  return {{"runner_id", Kind::kStr},    {"task_id", Kind::kStr},   {"attempt", Kind::kUint},
          {"pool", Kind::kStr},         {"pool_type", Kind::kStr}, {"pid", Kind::kUint},
          {"container_id", Kind::kStr}, {"job_name", Kind::kStr}};
}
template <class... More>
std::vector<std::pair<const char*, Kind>> with_runner(More... more) {
  auto out = runner_kinds();
  (out.emplace_back(more), ...);
  return out;
}
using K = std::pair<const char*, Kind>;

std::vector<Schema> schemas() {
  const auto frame_decoder = [](const char* name) {
    return [name](const Bytes& b) { return run_guarded(decoder(name), b); };
  };
  return {
      {"heartbeat", heartbeat_fields(),
       with_runner(K{"v", Kind::kUint}, K{"state", Kind::kStr}, K{"seq", Kind::kUint},
                   K{"timeout_ms", Kind::kUint}, K{"interval_ms", Kind::kUint},
                   K{"sent_at_ms", Kind::kInt}),
       frame_decoder("heartbeat")},
      {"timeout_event", event_fields(),
       with_runner(K{"v", Kind::kUint}, K{"type", Kind::kStr}, K{"event_id", Kind::kStr},
                   K{"last_seq", Kind::kUint}, K{"last_heartbeat_ms", Kind::kInt},
                   K{"detected_at_ms", Kind::kInt}, K{"timeout_ms", Kind::kUint},
                   K{"delivery", Kind::kUint}),
       frame_decoder("timeout_event")},
      {"ack",
       ack_fields(),
       {{"v", Kind::kUint}, {"type", Kind::kStr}, {"group", Kind::kStr}, {"event_id", Kind::kStr}},
       frame_decoder("ack")},
      {"control_request",
       request_fields(),
       {{"v", Kind::kUint},
        {"op", Kind::kStr},
        {"runner_id", Kind::kStr},
        {"state", Kind::kStr},
        {"pool", Kind::kStr},
        {"limit", Kind::kUint},
        {"runner", Kind::kMap}},
       frame_decoder("control_request")},
      {"control_request.lookup",
       Fields()
           .set("v", mp(1u))
           .set("op", mp_str("lookup"))
           .set("runner_ids", mp(std::vector<std::string>{"r-1", "r-2"})),
       {{"runner_ids", Kind::kArray}},
       frame_decoder("control_request")},
      {"lookup_reply",
       lookup_reply_fields(),
       {{"ok", Kind::kBool},
        {"v", Kind::kUint},
        {"error", Kind::kStr},
        {"detail", Kind::kStr},
        {"runners", Kind::kArray},
        {"uptime_ms", Kind::kUint}},
       frame_decoder("lookup_reply")},
      {"lookup_reply.entry",
       lookup_entry_fields(),
       {{"task_id", Kind::kStr},
        {"attempt", Kind::kUint},
        {"state", Kind::kStr},
        {"timed_out", Kind::kBool},
        {"state_for_ms", Kind::kUint}},
       [](const Bytes& entry) {
         const Bytes reply =
             Fields().set("ok", mp(true)).set("runners", bytes({0x91}) + entry).build();
         return run_guarded(decoder("lookup_reply"), reply);
       }},
      {"control_request.runner", add_runner_fields(),
       with_runner(K{"state", Kind::kStr}, K{"timeout_ms", Kind::kUint},
                   K{"interval_ms", Kind::kUint}, K{"sent_at_ms", Kind::kInt}),
       [](const Bytes& runner) {
         const Bytes req =
             Fields().set("v", mp(1u)).set("op", mp_str("add")).set("runner", runner).build();
         return run_guarded(decoder("control_request"), req);
       }},
      {"control_reply",
       reply_fields(),
       {{"ok", Kind::kBool},
        {"v", Kind::kUint},
        {"error", Kind::kStr},
        {"detail", Kind::kStr},
        {"version", Kind::kUint},
        {"count", Kind::kUint},
        {"removed", Kind::kBool},
        {"runner", Kind::kMap},
        {"runners", Kind::kRunners}},
       frame_decoder("control_reply")},
      {"control_reply.runner", view_fields(),
       with_runner(K{"state", Kind::kStr}, K{"last_seq", Kind::kUint},
                   K{"last_heartbeat_ms", Kind::kInt}, K{"silence_ms", Kind::kUint},
                   K{"timeout_ms", Kind::kUint}, K{"added_at_ms", Kind::kInt},
                   K{"interval_ms", Kind::kUint}),
       [](const Bytes& view) {
         const Bytes reply = Fields().set("ok", mp(true)).set("runner", view).build();
         return run_guarded(decoder("control_reply"), reply);
       }},
  };
}

TEST(HostileInput, WrongTypesAreRejectedAndNameTheKey) {
  for (const Schema& schema : schemas()) {
    const Verdict valid = schema.decode(schema.valid.build());
    ASSERT_FALSE(valid.rejection) << schema.name << ": " << valid.rejection->to_string();
    for (const auto& [key, kind] : schema.typed) {
      for (const Bytes& wrong : wrong_values(kind)) {
        Fields f = schema.valid;
        const Verdict v = schema.decode(f.set(key, wrong).build());
        ASSERT_EQ(v.problem, "") << schema.name << "." << key;
        ASSERT_TRUE(v.rejection) << schema.name << "." << key << " accepted " << hex(wrong);
        EXPECT_EQ(reason_of(v.rejection), "wrong_type")
            << schema.name << "." << key << "=" << hex(wrong);
        EXPECT_EQ(v.rejection->field, key) << schema.name << "=" << hex(wrong);
      }
    }
  }
}

TEST(HostileInput, RunnersArrayWithANonMapElementIsAWrongType) {
  for (const Bytes& element : {kNil, mp(1u), mp_str("r-1"), bytes({0x90})}) {
    const Bytes reply = Fields()
                            .set("ok", mp(true))
                            .set("runners", bytes({0x92}) + view_fields().build() + element)
                            .build();
    const Verdict v = run_guarded(decoder("control_reply"), reply);
    ASSERT_TRUE(v.rejection) << hex(element);
    EXPECT_EQ(reason_of(v.rejection), "wrong_type");
    EXPECT_EQ(v.rejection->field, "runners");
  }
}

TEST(HostileInput, NonMapRootsAndNonStringKeysAreMalformed) {
  const std::vector<Bytes> frames = {
      kNil,
      mp(true),
      mp(1u),
      mp(-1),
      mp(2.5),
      mp_str("hello"),
      bytes({0xc4, 0x01, 'x'}),
      bytes({0xd4, 0x01, 0x00}),
      mp(std::vector<int>{1, 2}),
      bytes({0x81, 0x01, 0x02}),             // {1: 2}
      bytes({0x81, 0xc4, 0x01, 'v', 0x01}),  // {bin "v": 1}
      bytes({0x81, 0x90, 0x01}),             // {[]: 1}
      bytes({0xc1}),                         // the one byte MessagePack never uses
      bytes({0x80, 0x80}),                   // trailing bytes after a map
  };
  for (const Decoder& d : all_decoders()) {
    if (d.name == std::string_view("progress")) continue;  // any single value is progress
    for (const Bytes& f : frames) {
      const Verdict v = run_guarded(d, f);
      ASSERT_EQ(v.problem, "") << d.name;
      ASSERT_TRUE(v.rejection) << d.name << " accepted " << hex(f);
      EXPECT_EQ(reason_of(v.rejection), "malformed") << d.name << " " << hex(f);
    }
  }
  EXPECT_EQ(reason_of(run_guarded(decoder("progress"), bytes({0xc1})).rejection), "malformed");
  EXPECT_EQ(reason_of(run_guarded(decoder("progress"), bytes({0x80, 0x80})).rejection),
            "malformed");
}

TEST(HostileInput, InvalidUtf8InIdentifiersIsABadValue) {
  for (const char* bad : {"\xc0\x80",          // overlong NUL
                          "\xed\xa0\x80",      // surrogate
                          "\xf4\x90\x80\x80",  // past U+10FFFF
                          "r\xe2\x82",         // cut sequence
                          "\x80", "\xff"}) {
    const Verdict v =
        run_guarded(decoder("heartbeat"), heartbeat_fields().set("task_id", mp_str(bad)).build());
    ASSERT_TRUE(v.rejection) << hex(bad);
    EXPECT_EQ(reason_of(v.rejection), "bad_value") << hex(bad);
    EXPECT_EQ(v.rejection->field, "task_id");
  }
}

}  // namespace
}  // namespace rmon::protocol::hostile
