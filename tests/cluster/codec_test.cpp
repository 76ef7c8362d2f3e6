#include <catch2/catch.hpp>

#include "cluster/codec.hpp"
#include "cluster/wire.hpp"

using namespace regfs;
using namespace regfs::cluster;

namespace {

InstanceSpec spec(std::string host, std::uint16_t port, Check::Kind kind = Check::Kind::tcp,
                  std::string path = {}) {
  return InstanceSpec{Endpoint{std::move(host), port}, Check{kind, std::move(path)}};
}

std::vector<Message> every_kind() {
  const NodeId a{"node-a", 1700000000000000ULL};
  const NodeId b{"node.b_2", 7};
  OriginChunk chunk{a, 3, 9, true, {}};
  chunk.items.push_back({"web", 4, {spec("10.0.0.5", 8080)}});
  chunk.items.push_back({"gone", 9, {}});
  SyncState state{2, {{a, 3, MemberState::suspect, {"10.0.0.1:7946"}}, {b, 0, MemberState::left, {"h:1"}}},
                  {{a, 5, 9}, {b, 0, 0}}};
  return {Ping{42, a},
          PingReq{0xffffffffu, b, {"[fe80::1]:7946"}},
          Ack{1},
          Nack{2},
          Alive{a, 3, {"10.0.0.1:7946"}},
          Suspect{b, 0, "node-a"},
          Dead{a, 9, "node-a", true},
          Entry{a, "config-server", 12,
                {spec("10.0.3.17", 8888, Check::Kind::http, "/actuator/health"),
                 spec("fe80::1", 1, Check::Kind::none), spec("db.internal", 9000)}},
          SyncHello{0x0123456789abcdefULL, ~0ULL},
          state,
          chunk};
}

template <typename T>
const T& as(const Message& m) { return std::get<T>(m); }

}  // namespace

TEST_CASE("every message survives a round trip", "[codec]") {
  const auto messages = every_kind();
  const NodeId sender{"sender", 99};
  const auto bytes = encode_frame(Channel::stream, sender, messages);
  auto decoded = decode_frame(bytes, WireLimits{});
  REQUIRE(decoded.ok());
  const Frame& f = decoded.value();
  CHECK(f.channel == Channel::stream);
  CHECK(f.sender == sender);
  REQUIRE(f.messages.size() == messages.size());
  CHECK(as<Ping>(f.messages[0]).seq == 42);
  CHECK(as<Ping>(f.messages[0]).target == as<Ping>(messages[0]).target);
  CHECK(as<PingReq>(f.messages[1]).addr.value == "[fe80::1]:7946");
  CHECK(as<PingReq>(f.messages[1]).seq == 0xffffffffu);
  CHECK(as<Nack>(f.messages[3]).seq == 2);
  CHECK(as<Alive>(f.messages[4]).incarnation == 3);
  CHECK(as<Suspect>(f.messages[5]).from == "node-a");
  CHECK(as<Dead>(f.messages[6]).left);
  const auto& e = as<Entry>(f.messages[7]);
  CHECK(e.service == "config-server");
  CHECK(e.version == 12);
  CHECK(e.instances == as<Entry>(messages[7]).instances);
  CHECK(as<SyncHello>(f.messages[8]).registry_hash == ~0ULL);
  const auto& st = as<SyncState>(f.messages[9]);
  CHECK(st.stage == 2);
  REQUIRE(st.members.size() == 2);
  CHECK(st.members[0].state == MemberState::suspect);
  CHECK(st.members[1].state == MemberState::left);
  CHECK(st.digests[0].complete == 5);
  const auto& c = as<OriginChunk>(f.messages[10]);
  CHECK(c.snapshot);
  CHECK(c.items.size() == 2);
  CHECK(c.items[1].instances.empty());
}

TEST_CASE("frames are refused on bad magic, version, channel or limits", "[codec]") {
  const NodeId sender{"s", 1};
  const std::vector<Message> one{Ack{1}};
  auto good = encode_frame(Channel::packet, sender, one);
  REQUIRE(decode_frame(good, WireLimits{}).ok());

  auto bad = good;
  bad[0] = 'X';
  CHECK_FALSE(decode_frame(bad, WireLimits{}).ok());
  bad = good;
  bad[2] = kWireVersion + 1;
  CHECK(decode_frame(bad, WireLimits{}).error() == "unsupported wire version");
  bad = good;
  bad[3] = 7;
  CHECK_FALSE(decode_frame(bad, WireLimits{}).ok());

  WireLimits tight;
  tight.max_packet = good.size() - 1;
  CHECK_FALSE(decode_frame(good, tight).ok());
  // The same bytes as a stream frame are under the stream limit.
  auto stream = encode_frame(Channel::stream, sender, one);
  CHECK(decode_frame(stream, tight).ok());
  tight.max_stream = stream.size() - 1;
  CHECK_FALSE(decode_frame(stream, tight).ok());
}

TEST_CASE("every truncation of a valid frame is refused or decodes a prefix", "[codec]") {
  const auto messages = every_kind();
  const auto bytes = encode_frame(Channel::stream, NodeId{"s", 1}, messages);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto d = decode_frame(std::span(bytes.data(), n), WireLimits{});
    if (d.ok()) CHECK(d.value().messages.size() < messages.size());
  }
}

TEST_CASE("unknown message types are skipped, bad fields are not", "[codec]") {
  auto bytes = encode_header(Channel::packet, NodeId{"s", 1});
  bytes.insert(bytes.end(), {200, 3, 'x', 'y', 'z'});  // a future message kind
  auto ack = encode_message(Ack{5});
  bytes.insert(bytes.end(), ack.begin(), ack.end());
  auto d = decode_frame(bytes, WireLimits{});
  REQUIRE(d.ok());
  REQUIRE(d.value().messages.size() == 1);
  CHECK(as<Ack>(d.value().messages[0]).seq == 5);

  // A service name outside the alphabet is refused.
  auto entry = encode_message(Entry{NodeId{"o", 1}, "bad name", 1, {}});
  auto frame = encode_header(Channel::packet, NodeId{"s", 1});
  frame.insert(frame.end(), entry.begin(), entry.end());
  CHECK_FALSE(decode_frame(frame, WireLimits{}).ok());

  // So is a check path on a tcp check, and a count larger than the bytes.
  auto odd = encode_message(Entry{NodeId{"o", 1}, "svc", 1, {spec("h", 1, Check::Kind::tcp, "/x")}});
  frame = encode_header(Channel::packet, NodeId{"s", 1});
  frame.insert(frame.end(), odd.begin(), odd.end());
  CHECK_FALSE(decode_frame(frame, WireLimits{}).ok());
}

TEST_CASE("varints refuse overlong and overflowing encodings", "[codec]") {
  const std::vector<std::uint8_t> max{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  wire::Reader ok(max);
  CHECK(ok.varint() == ~0ULL);
  CHECK(ok.ok());
  const std::vector<std::uint8_t> over{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  wire::Reader r(over);
  r.varint();
  CHECK_FALSE(r.ok());
  const std::vector<std::uint8_t> endless(20, 0x80);
  wire::Reader e(endless);
  e.varint();
  CHECK_FALSE(e.ok());
  const std::vector<std::uint8_t> big32{0x80, 0x80, 0x80, 0x80, 0x10};
  wire::Reader b(big32);
  b.varint32();
  CHECK_FALSE(b.ok());
}

TEST_CASE("one frame decodes into a bounded number of messages and elements", "[codec]") {
  const WireLimits limits;
  // An 8 MiB stream of 3-byte Acks would be 2.8 million variants; a frame
  // just past the bound is refused, one at the bound decodes.
  auto acks = [](std::size_t n) {
    auto frame = encode_header(Channel::stream, NodeId{"s", 1});
    const auto ack = encode_message(Ack{1});
    for (std::size_t i = 0; i < n; ++i) frame.insert(frame.end(), ack.begin(), ack.end());
    return frame;
  };
  CHECK(decode_frame(acks(limits.max_elements), limits).ok());
  const auto over = acks(limits.max_elements + 1);
  REQUIRE(over.size() <= limits.max_stream);
  CHECK(decode_frame(over, limits).error() == "frame over the element limit");

  // The bound holds across messages: many SyncStates, each within max_members.
  SyncState st;
  st.members.assign(limits.max_members, MemberRecord{NodeId{"m", 1}, 1, MemberState::alive, PeerAddr{"a"}});
  const auto one = encode_message(st);
  auto frame = encode_header(Channel::stream, NodeId{"s", 1});
  for (std::size_t i = 0; i * limits.max_members <= limits.max_elements; ++i) {
    frame.insert(frame.end(), one.begin(), one.end());
  }
  REQUIRE(frame.size() <= limits.max_stream);
  CHECK_FALSE(decode_frame(frame, limits).ok());
}

TEST_CASE("header_size is the size of the header", "[codec]") {
  for (const std::size_t len : {1, 63, 127, 128}) {
    for (const std::uint64_t gen : {0ULL, 127ULL, 128ULL, 1'700'000'000'000'000ULL, ~0ULL}) {
      const NodeId n{std::string(len, 'n'), gen};
      CHECK(header_size(n) == encode_header(Channel::packet, n).size());
    }
  }
}

TEST_CASE("node names and endpoint hosts outside their alphabets are refused", "[codec]") {
  auto refused = [](const Message& m, const NodeId& sender = NodeId{"s", 1}) {
    auto bytes = encode_message(m);
    auto frame = encode_header(Channel::packet, sender);
    frame.insert(frame.end(), bytes.begin(), bytes.end());
    return !decode_frame(frame, WireLimits{}).ok();
  };
  const NodeId good{"node-a", 1};
  CHECK_FALSE(refused(Entry{good, "svc", 1, {spec("10.0.0.5", 80), spec("db.internal", 81)}}));
  for (const std::string& host : std::vector<std::string>{"", "n\xff", "10.0.0.5 x", "300.1.1.1", "a_b", "-a", "[::1]",
                                 std::string("a\0b", 3)}) {
    INFO(host);
    CHECK(refused(Entry{good, "svc", 1, {spec(host, 80)}}));
  }
  for (const std::string& name : std::vector<std::string>{"", "n\xff", ".hidden", "a b", "a:1", std::string(129, 'x')}) {
    INFO(name);
    CHECK(refused(Entry{NodeId{name, 1}, "svc", 1, {}}));
    CHECK(refused(Suspect{good, 0, name}));
    CHECK(refused(Dead{good, 0, name, false}));
    CHECK(refused(Ack{1}, NodeId{name, 1}));
  }
}
