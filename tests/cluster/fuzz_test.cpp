// Random and mutated bytes into the decoder, bounded in time so it runs in
// the default suite (and under ASan+UBSan there). Decoding must never crash,
// read out of bounds or allocate without bound; whatever decodes must encode
// back to a frame that decodes to the same messages.
#include <catch2/catch.hpp>

#include <chrono>
#include <random>

#include "cluster/codec.hpp"

using namespace regfs;
using namespace regfs::cluster;

namespace {

std::vector<std::uint8_t> seed_frame(std::mt19937_64& rng) {
  const NodeId a{"fuzz", rng() % 1000};
  std::vector<Message> ms;
  switch (rng() % 4) {
    case 0: ms = {Ping{1, a}, Alive{a, 2, {"x:1"}}}; break;
    case 1: ms = {Entry{a, "svc", 3, {InstanceSpec{Endpoint{"h", 80}, Check{Check::Kind::http, "/h"}}}}}; break;
    case 2: ms = {SyncState{1, {{a, 1, MemberState::dead, {"y:2"}}}, {{a, 1, 2}}}}; break;
    default: {
      OriginChunk c{a, 0, 4, false, {}};
      c.items.push_back({"s", 4, {}});
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
  const auto budget = std::chrono::seconds(3);
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t runs = 0, decoded = 0;
  WireLimits limits;
  while (std::chrono::steady_clock::now() - start < budget && runs < 400000) {
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
  CHECK(runs > 1000);
  CHECK(decoded > 0);
}
