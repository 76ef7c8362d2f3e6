// Random and mutated bytes into the decoder, a fixed number of runs from a
// fixed seed, so it does the same work on every machine in the default suite
// (and under ASan+UBSan there). The coverage-guided campaigns are in
// tests/fuzz (docs/FUZZING.md). Decoding must never crash,
// read out of bounds or allocate without bound; whatever decodes must encode
// back to a frame that decodes to the same messages. The same frames then go
// into a core, which must stay within what it accepts (docs/SECURITY.md).
#include <catch2/catch.hpp>

#include <limits>
#include <random>

#include "cluster/codec.hpp"
#include "cluster/core.hpp"

using namespace regfs;
using namespace regfs::cluster;

namespace {

// Every message type, with values at their ends now and then (the last
// incarnation, generation and version: what the core's screening refuses).
std::uint64_t edge(std::mt19937_64& rng, std::uint64_t small, std::uint64_t last) {
  switch (rng() % 8) {
    case 0: return last;
    case 1: return last - 1;
    default: return rng() % small;
  }
}

std::vector<std::uint8_t> seed_frame(std::mt19937_64& rng) {
  constexpr auto kInc = std::numeric_limits<std::uint32_t>::max();
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  const NodeId a{rng() % 2 ? "fuzz" : "core", edge(rng, 1000, kMax)};
  const auto inc = static_cast<std::uint32_t>(edge(rng, 8, kInc));
  const std::uint64_t v = edge(rng, 16, kMax);
  std::vector<Message> ms;
  switch (rng() % 7) {
    case 0: ms = {Ping{1, a}, Alive{a, inc, {"x:1"}, v}}; break;
    case 1: ms = {Entry{a, "svc", v, {InstanceSpec{Endpoint{"h", 80}, Check{Check::Kind::http, "/h"}}}}}; break;
    case 2: ms = {SyncState{1, {{a, inc, MemberState::dead, {"y:2"}, v}}, {{a, v, v}}}}; break;
    case 3: ms = {Suspect{a, inc, "f"}, Dead{a, inc, "f", rng() % 2 == 0}}; break;
    case 4: ms = {PingReq{2, a, {"z:3"}}, Ack{2, rng()}, Nack{3}}; break;
    case 5: ms = {SyncState{2, {{a, inc, MemberState::alive, {"y:2"}, v}}, {{a, v, v}}}}; break;
    default: {
      OriginChunk c{a, edge(rng, 4, kMax), v, rng() % 2 == 0, {}};
      c.items.push_back({"s", edge(rng, 8, kMax), {}});
      ms = {SyncHello{1, 2}, c};
    }
  }
  return encode_frame(rng() % 2 ? Channel::stream : Channel::packet, a, ms);
}

void mutate(std::vector<std::uint8_t>& b, std::mt19937_64& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    switch (rng() % 4) {
      case 0: if (!b.empty()) b[rng() % b.size()] = static_cast<std::uint8_t>(rng()); break;
      case 1: if (!b.empty()) b.resize(rng() % b.size()); break;
      case 2: b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng() % (b.size() + 1)),
                       static_cast<std::uint8_t>(rng())); break;
      default: if (!b.empty()) b[rng() % b.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
    }
  }
}

}  // namespace

TEST_CASE("the decoder survives hostile bytes", "[codec][fuzz]") {
  std::mt19937_64 rng(20240601);
  std::uint64_t runs = 0, decoded = 0;
  WireLimits limits;
  while (runs < 200000) {
    std::vector<std::uint8_t> b;
    if (rng() % 4 == 0) {
      b.resize(rng() % 256);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      if (b.size() > 2 && rng() % 2) { b[0] = 'R'; b[1] = 'G'; b[2] = kWireVersion; }
    } else {
      b = seed_frame(rng);
      mutate(b, rng);
    }
    ++runs;
    auto d = decode_frame(b, limits);
    if (!d.ok()) continue;
    ++decoded;
    const Frame& f = d.value();
    auto again = encode_frame(f.channel, f.sender, f.messages);
    auto d2 = decode_frame(again, WireLimits{limits.max_stream, limits.max_stream});
    REQUIRE(d2.ok());
    REQUIRE(d2.value().messages.size() == f.messages.size());
    REQUIRE(encode_frame(f.channel, f.sender, d2.value().messages) == again);
  }
  INFO("runs " << runs << ", decoded " << decoded);
  CHECK(decoded > 0);
}

TEST_CASE("a core fed hostile frames stays within what it accepts", "[node][fuzz]") {
  std::mt19937_64 rng(20261202);
  const std::uint64_t gen = 500;
  Config cfg;
  Core node(cfg, NodeId{"core", gen}, PeerAddr{"c:1"}, 1, Time{});
  REQUIRE(node.set_service(Time{}, "web", {InstanceSpec{Endpoint{"h", 80}, Check{}}}).ok());
  Time now{};
  std::uint64_t runs = 0;
  while (runs < 100000) {
    auto b = seed_frame(rng);
    if (rng() % 2) mutate(b, rng);
    node.handle(now, PeerAddr{"f:1"}, b);
    if (++runs % 64 == 0) {
      now = now + milliseconds(10);
      node.tick(now);
    }
    (void)node.take_outgoing();
    (void)node.take_events();
  }
  INFO("runs " << runs << ", refused " << node.stats().refused << ", new lives " << node.stats().new_lives);
  CHECK(node.stats().refused > 0);
  // No generation beyond the clock bound was taken in, by this node or of others.
  const auto ahead = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now.since_epoch + cfg.generation_ahead).count());
  CHECK(node.self().generation <= gen + ahead + node.stats().new_lives);
  for (const auto& m : node.members()) CHECK(m.id.generation <= gen + ahead + 1);
  for (const auto& [name, o] : node.store().origins()) CHECK(o.generation <= gen + ahead);
  // This node still serves its own registration, under whatever life it is in.
  CHECK(node.instances("core", "web") != nullptr);
}
