// Hostile input, limits: huge declared lengths (measured allocation), deep
// nesting, frames at and over the size limits, random bytes and mutations of
// valid frames; whatever is accepted survives its own re-encoding.

#include "hostile_support.hpp"

namespace rmon::protocol::hostile {
namespace {

// --- Huge declared lengths ----------------------------------------------------

struct HugeHeader {
  const char* what;
  Bytes header;
};
std::vector<HugeHeader> huge_headers() {
  return {
      {"array16", bytes({0xdc, 0xff, 0xff})},
      {"array32", bytes({0xdd, 0xff, 0xff, 0xff, 0xff})},
      {"map16", bytes({0xde, 0xff, 0xff})},
      {"map32", bytes({0xdf, 0xff, 0xff, 0xff, 0xff})},
      {"str16", bytes({0xda, 0xff, 0xff})},
      {"str32", bytes({0xdb, 0xff, 0xff, 0xff, 0xff})},
      {"bin16", bytes({0xc5, 0xff, 0xff})},
      {"bin32", bytes({0xc6, 0xff, 0xff, 0xff, 0xff})},
      {"ext16", bytes({0xc8, 0xff, 0xff, 0x01})},
      {"ext32", bytes({0xc9, 0xff, 0xff, 0xff, 0xff, 0x01})},
      {"ext32 without type", bytes({0xc9, 0xff, 0xff, 0xff, 0xff})},
  };
}

// Frames that embed `header` where each decoder would descend into it.
std::vector<Bytes> placements(const Bytes& header) {
  const Bytes tail(16, '\0');
  return {
      header,
      header + tail,
      heartbeat_fields().set("progress", header + tail).build(),
      heartbeat_fields().set("unknown", header).build(),
      bytes({0x81}) + header + tail,  // as a key
      event_fields().set("progress", header).build(),
      ack_fields().set("event_id", header + tail).build(),
      Fields().set("v", mp(1u)).set("op", mp_str("add")).set("runner", header).build(),
      Fields().set("ok", mp(true)).set("runners", header + tail).build(),
      bytes({0x91, 0x91, 0x91}) + header + tail,  // nested in arrays
  };
}

TEST(HostileInput, AllocationMeterSeesTheDecodersScratchZone) {
  SKIP_WITHOUT_ALLOC_METER();
  // A legitimate 4000-element array needs 4000 unpacked objects: if the meter
  // missed this, every "does not allocate" assertion below would be vacuous.
  const Bytes big = bytes({0xdc, 0x0f, 0xa0}) + Bytes(4000, '\0');
  Status s;
  const std::size_t used = bytes_allocated_by([&] { s = validate_progress(big); });
  ASSERT_TRUE(s.ok()) << s.error().to_string();
  EXPECT_GE(used, 4000 * sizeof(msgpack::object));
}

TEST(HostileInput, HugeDeclaredLengthsAreRejectedWithoutAllocating) {
  SKIP_WITHOUT_ALLOC_METER();
  constexpr std::size_t kBudget = 4096;  // far below any declared size here
  for (const Decoder& d : all_decoders()) (void)run_guarded(d, valid_samples()[0].frame);  // warm
  for (const HugeHeader& h : huge_headers()) {
    for (const Bytes& frame : placements(h.header)) {
      for (const Decoder& d : all_decoders()) {
        Verdict v;
        const std::size_t used = bytes_allocated_by([&] { v = run_guarded(d, frame); });
        ASSERT_EQ(v.problem, "") << d.name << " " << h.what;
        ASSERT_TRUE(v.rejection) << d.name << " accepted " << h.what << ": " << hex(frame);
        EXPECT_TRUE(v.rejection->reason == Reason::kMalformed ||
                    v.rejection->reason == Reason::kTooLarge)
            << d.name << " " << h.what << ": " << v.rejection->to_string();
        EXPECT_LT(used, kBudget) << d.name << " " << h.what << ": " << hex(frame);
      }
    }
  }
}

TEST(HostileInput, HugeDeclaredArrayLengthIsRejectedWithoutAllocating) {
  SKIP_WITHOUT_ALLOC_METER();
  const Bytes frame = bytes({0xdd, 0xff, 0xff, 0xff, 0xff}) + Bytes(64, '\0');
  (void)validate_progress(mp(1u));  // the scratch zone's first chunk is not the decoder's doing
  Status s;
  const std::size_t used = bytes_allocated_by([&] { s = validate_progress(frame); });
  ASSERT_FALSE(s.ok());
  // A count the frame cannot hold is a lie or a cut, not a size over a limit.
  EXPECT_EQ(reason_name(s.error().reason), "malformed");
  EXPECT_LT(used, 1024u);
}

// Each container may declare up to frame-size elements, and the zone reserves
// count * sizeof(object) as soon as a header is read. Nesting kMaxDepth such
// headers once made an 8 KiB heartbeat allocate ~8 MiB. The decoders now check
// the total of declared elements against the frame first.
TEST(HostileInput, NestedNearLimitCountsDoNotMultiplyAllocation) {
  SKIP_WITHOUT_ALLOC_METER();
  for (const Decoder& d : all_decoders()) {
    const std::size_t n = d.name == std::string_view("heartbeat")  ? kMaxHeartbeatFrame
                          : d.name == std::string_view("progress") ? kMaxProgressBytes
                                                                   : kMaxFrame;
    Bytes frame;
    const auto count = static_cast<uint32_t>(n - 8);  // within the frame-size guard
    while (frame.size() + 5 <= n) {
      frame += bytes({0xdd, static_cast<int>(count >> 24), static_cast<int>((count >> 16) & 0xff),
                      static_cast<int>((count >> 8) & 0xff), static_cast<int>(count & 0xff)});
    }
    Verdict v;
    const std::size_t used = bytes_allocated_by([&] { v = run_guarded(d, frame); });
    ASSERT_TRUE(v.rejection) << d.name;
    EXPECT_LE(used, 32 * n) << d.name << ": " << used << " bytes for a " << n << "-byte frame";
  }
}

// decode_control_reply once resized `runners` to the declared count (312 bytes
// per RunnerView) before validating any element: ~330 bytes of memory per byte
// received. Now only the object tree is built first: sizeof(msgpack::object)
// (24 bytes) per element, in zone chunks that grow by doubling, so at most
// ~48 bytes per byte.
TEST(HostileInput, ControlReplyRunnersAreValidatedBeforeBeingAllocated) {
  SKIP_WITHOUT_ALLOC_METER();
  constexpr uint32_t kCount = 60000;
  const Bytes frame = Fields()
                          .set("ok", mp(true))
                          .set("runners", bytes({0xdc, kCount >> 8, kCount & 0xff}) +
                                              Bytes(kCount, static_cast<char>(0x80)))
                          .build();
  Verdict v;
  const std::size_t used =
      bytes_allocated_by([&] { v = run_guarded(decoder("control_reply"), frame); });
  ASSERT_TRUE(v.rejection);
  EXPECT_EQ(reason_of(v.rejection), "missing_field");
  EXPECT_LE(used, 48 * frame.size()) << used << " bytes for a " << frame.size() << "-byte frame";
}

// --- Deep nesting -------------------------------------------------------------

Bytes nested_arrays(std::size_t depth) { return Bytes(depth, static_cast<char>(0x91)) + kNil; }
Bytes nested_maps(std::size_t depth) {
  Bytes out;
  for (std::size_t i = 0; i < depth; ++i) out += bytes({0x81, 0xa1, 'a'});
  return out + kNil;
}

TEST(HostileInput, ThousandNestedArraysOrMapsAreTooLargeWhereverTheyAppear) {
  for (const Bytes& deep : {nested_arrays(1000), nested_maps(1000)}) {
    const std::vector<std::pair<const char*, Bytes>> cases = {
        {"heartbeat", heartbeat_fields().set("progress", deep).build()},
        {"heartbeat", heartbeat_fields().set("unknown", deep).build()},
        {"timeout_event", event_fields().set("progress", deep).build()},
        {"ack", ack_fields().set("unknown", deep).build()},
        {"control_request", Fields()
                                .set("v", mp(1u))
                                .set("op", mp_str("add"))
                                .set("runner", add_runner_fields().set("progress", deep).build())
                                .build()},
        {"control_reply",
         Fields().set("ok", mp(true)).set("runners", bytes({0x91}) + deep).build()},
        {"progress", deep},
    };
    for (const auto& [name, frame] : cases) {
      const Verdict v = run_guarded(decoder(name), frame);
      ASSERT_EQ(v.problem, "") << name;
      ASSERT_TRUE(v.rejection) << name;
      EXPECT_EQ(reason_of(v.rejection), "too_large") << name;
    }
  }
}

TEST(HostileInput, NestingUpToTheDepthLimitIsAcceptedAndOneMoreIsTooLarge) {
  EXPECT_TRUE(validate_progress(nested_arrays(kMaxDepth)).ok());
  EXPECT_TRUE(validate_progress(nested_maps(kMaxDepth)).ok());
  const Status arrays = validate_progress(nested_arrays(kMaxDepth + 1));
  ASSERT_FALSE(arrays.ok());
  EXPECT_EQ(reason_name(arrays.error().reason), "too_large");
  const Status maps = validate_progress(nested_maps(kMaxDepth + 1));
  ASSERT_FALSE(maps.ok());
  EXPECT_EQ(reason_name(maps.error().reason), "too_large");
}

// --- Size limits --------------------------------------------------------------

// `fields` padded with an unknown key so that the whole map is `size` bytes.
Bytes padded_to(Fields fields, std::size_t size) {
  // An empty pad is a 1-byte fixstr; a pad of 256 to 65535 bytes is a str16,
  // whose header is 2 bytes longer, a longer one a str32 (4 bytes longer).
  const std::size_t base = fields.set("pad", mp_str("")).build().size();
  const std::size_t longer = size - base >= 65536 + 4 ? 4 : 2;
  return fields.set("pad", mp_str(Bytes(size - base - longer, 'p'))).build();
}

TEST(HostileInput, FramesExactlyAtTheSizeLimitAreAccepted) {
  const Bytes hb = padded_to(heartbeat_fields(), kMaxHeartbeatFrame);
  ASSERT_EQ(hb.size(), kMaxHeartbeatFrame);
  EXPECT_FALSE(run_guarded(decoder("heartbeat"), hb).rejection);
  const Bytes ack = padded_to(ack_fields(), kMaxFrame);
  ASSERT_EQ(ack.size(), kMaxFrame);
  EXPECT_FALSE(run_guarded(decoder("ack"), ack).rejection);
  const Bytes request = padded_to(request_fields(), kMaxControlRequestFrame);
  ASSERT_EQ(request.size(), kMaxControlRequestFrame);
  EXPECT_FALSE(run_guarded(decoder("control_request"), request).rejection);
}

TEST(HostileInput, FramesOverTheSizeLimitAreTooLargeAndNeverParsed) {
  SKIP_WITHOUT_ALLOC_METER();
  // A nesting bomb one byte over each limit: if it were parsed at all the
  // meter would see the zone reserve megabytes.
  const auto bomb = [](std::size_t n) {
    const auto count = static_cast<int>(n / 2);  // within the codec's per-container guard
    Bytes out;
    while (out.size() < n) {
      out += bytes({0xdd, 0, (count >> 16) & 0xff, (count >> 8) & 0xff, count & 0xff});
    }
    out.resize(n, '\0');
    return out;
  };
  const Bytes hb = bomb(kMaxHeartbeatFrame + 1);
  const Bytes frame = bomb(kMaxFrame + 1);
  const Bytes request = bomb(kMaxControlRequestFrame + 1);  // room for a full `lookup`
  const Bytes progress = bomb(kMaxProgressBytes + 1);
  const std::vector<std::pair<const char*, const Bytes*>> cases = {{"heartbeat", &hb},
                                                                   {"timeout_event", &frame},
                                                                   {"ack", &frame},
                                                                   {"control_request", &request},
                                                                   {"progress", &progress}};
  std::vector<std::pair<const char*, Outcome>> outcomes;
  outcomes.reserve(cases.size());
  const std::size_t used = bytes_allocated_by([&] {
    for (const auto& [name, f] : cases) {
      outcomes.emplace_back(name, run_guarded(decoder(name), *f).rejection);
    }
  });
  for (const auto& [name, o] : outcomes) {
    ASSERT_TRUE(o) << name;
    EXPECT_EQ(reason_of(o), "too_large") << name;
  }
  EXPECT_LT(used, 4096u);

  auto reply = decode_control_reply(frame, kMaxFrame);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reason_name(reply.error().reason), "too_large");
  const Bytes over_default(kMaxReplyFrame + 1, static_cast<char>(0x80));
  reply = decode_control_reply(over_default);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reason_name(reply.error().reason), "too_large");
}

TEST(HostileInput, ProgressThatReencodesOverItsLimitIsTooLarge) {
  const Bytes big = mp(std::vector<std::string>{Bytes(2100, 'a'), Bytes(2100, 'b')});
  const Verdict v =
      run_guarded(decoder("heartbeat"), heartbeat_fields().set("progress", big).build());
  ASSERT_TRUE(v.rejection);
  EXPECT_EQ(reason_of(v.rejection), "too_large");
  EXPECT_EQ(v.rejection->field, "progress");
}

TEST(HostileInput, TopicsOverTheLimitOrWithoutThePrefixAreRejected) {
  const Bytes payload = heartbeat_fields().build();
  auto d = decode_heartbeat("hb/" + Bytes(1 << 20, 'r'), payload);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(reason_name(d.error().reason), "too_large");
  EXPECT_EQ(d.error().field, "topic");
  for (const Bytes& topic : {Bytes("hb"), Bytes("hb/r-1\0", 7), Bytes("\0hb/r-1", 7), Bytes()}) {
    d = decode_heartbeat(topic, payload);
    ASSERT_FALSE(d.ok()) << hex(topic);
    EXPECT_EQ(reason_name(d.error().reason), "topic_mismatch") << hex(topic);
  }
}

// --- Random bytes and mutations -----------------------------------------------

class Mutator {
 public:
  explicit Mutator(uint32_t seed) : rng_(seed) {}

  Bytes random_frame() {
    Bytes out(pick(pick(4) == 0 ? 2048 : 48), '\0');
    for (char& c : out) c = random_byte();
    // Half of them start like a map so decoders get past the root check.
    if (!out.empty() && pick(2) == 0) out[0] = static_cast<char>(0x80 | pick(16));
    return out;
  }

  Bytes mutate(Bytes f) {
    const std::size_t ops = 1 + pick(4);
    for (std::size_t i = 0; i < ops; ++i) mutate_once(f);
    return f;
  }

 private:
  std::size_t pick(std::size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }
  char random_byte() { return static_cast<char>(pick(256)); }
  char interesting_byte() {
    static constexpr unsigned char kBytes[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                               0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc6, 0xc7, 0xc9, 0xca,
                                               0xcb, 0xcc, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8, 0xd9, 0xdb,
                                               0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
    return static_cast<char>(kBytes[pick(sizeof kBytes)]);
  }

  void mutate_once(Bytes& f) {
    const std::size_t at = pick(f.size() + 1);
    switch (pick(9)) {
      case 0:
        if (at < f.size()) f[at] = static_cast<char>(f[at] ^ (1 << pick(8)));
        break;
      case 1:
        if (at < f.size()) f[at] = random_byte();
        break;
      case 2:
        if (at < f.size()) f[at] = interesting_byte();
        break;
      case 3:
        f.insert(at, 1, pick(2) ? interesting_byte() : random_byte());
        break;
      case 4:
        f.erase(at, 1 + pick(4));
        break;
      case 5:
        f.resize(at);
        break;
      case 6:  // a length header that claims far more than the frame holds
        f.insert(at, pick(2) ? bytes({0xdd, 0xff, 0xff, 0xff, 0xff})
                             : bytes({0xdf, 0x00, 0x00, 0xff, 0xff}));
        break;
      case 7:
        if (!f.empty()) {  // copy a slice elsewhere
          const std::size_t from = pick(f.size());
          const Bytes slice = f.substr(from, 1 + pick(16));
          f.insert(pick(f.size() + 1), slice);
        }
        break;
      default:  // boundary values over a 1, 2 or 4-byte field
        for (std::size_t k = 0, n = std::size_t{1} << pick(3); k < n && at + k < f.size(); ++k) {
          f[at + k] = pick(2) ? '\xff' : '\0';
        }
        break;
    }
  }

  std::mt19937 rng_;
};

// Feeds `frame` to every decoder; returns how many accepted it.
int check_everywhere(std::string_view frame, const char* origin) {
  int accepted = 0;
  for (const Decoder& d : all_decoders()) {
    const Verdict v = run_guarded(d, frame);
    EXPECT_EQ(v.problem, "") << d.name << " on " << origin << ": " << hex(frame, 4096);
    if (v.rejection) {
      EXPECT_TRUE(known_reason(*v.rejection)) << d.name << ": " << hex(frame);
      EXPECT_FALSE(reason_name(v.rejection->reason).empty());
    } else {
      ++accepted;
    }
  }
  return accepted;
}

TEST(HostileInput, RandomBytesNeverThrowAndAreRejectedWithAKnownReason) {
  Mutator m(20240601);
  int accepted = 0;
  for (int i = 0; i < 20000 && !::testing::Test::HasFailure(); ++i) {
    accepted += check_everywhere(m.random_frame(), "random bytes");
  }
  EXPECT_GT(accepted, 0);  // validate_progress takes any single value
}

TEST(HostileInput, MutatedValidFramesNeverThrowAndWhatIsAcceptedReencodesStably) {
  Mutator m(7);
  const std::vector<Sample> samples = valid_samples();
  int accepted = 0;
  int accepted_messages = 0;
  for (int round = 0; round < 1500 && !::testing::Test::HasFailure(); ++round) {
    for (const Sample& s : samples) {
      const Bytes mutant = m.mutate(s.frame);
      accepted += check_everywhere(mutant, s.decoder);
      const Verdict own = run_guarded(decoder(s.decoder), mutant);
      if (!own.rejection && s.decoder != std::string_view("progress")) ++accepted_messages;
    }
  }
  // Some mutations land in values and keys the decoders tolerate: the
  // re-encoding property above was exercised, not vacuous.
  EXPECT_GT(accepted_messages, 100);
  EXPECT_GT(accepted, accepted_messages);
}

}  // namespace
}  // namespace rmon::protocol::hostile
