// Node names of 63 characters (the DNS label limit, common for container
// host names and pod names): the frame header grows with the sender's name,
// and a node's own sends and its rumors must still fit a datagram.
#include <catch2/catch.hpp>

#include "cluster/codec.hpp"
#include "cluster/core.hpp"

using namespace regfs;
using namespace regfs::cluster;

namespace {

// Instances whose Entry from `origin` encodes to exactly `size` bytes.
std::vector<InstanceSpec> entry_of_size(const NodeId& origin, std::size_t size) {
  std::vector<InstanceSpec> v;
  auto encoded = [&] { return encode_message(Entry{origin, "svc", 1, v}).size(); };
  while (encoded() + 60 < size) {
    v.push_back(InstanceSpec{Endpoint{std::string(50, 'h') + std::to_string(v.size()) + ".example", 80}, Check{}});
  }
  v.push_back(InstanceSpec{Endpoint{"h.example", 81}, Check{}});
  while (encoded() < size) v.back().endpoint.host.insert(0, "h");
  REQUIRE(encoded() == size);
  return v;
}

}  // namespace

TEST_CASE("63-character names: a node's own sends fit a datagram and its rumors retire", "[node]") {
  const Config cfg;
  // Generations are wall-clock microseconds in the daemon: 8-byte varints.
  const std::uint64_t gen = 1'700'000'000'000'000;
  const NodeId ida{std::string(63, 'a'), gen}, idb{std::string(63, 'b'), gen};
  const PeerAddr pa{"10.0.0.1:7946"}, pb{"10.0.0.2:7946"};
  Time now{};
  Core a(cfg, ida, pa, 1, now), b(cfg, idb, pb, 2, now);
  b.join(now, {pa});

  std::size_t oversized = 0;
  int wakes_a = 0;
  auto run = [&](Duration d) {
    const Time end = now + d;
    for (; now < end; now = now + milliseconds(1)) {
      if (now >= a.next_deadline()) {
        a.tick(now);
        ++wakes_a;
      }
      if (now >= b.next_deadline()) b.tick(now);
      for (int round = 0; round < 4; ++round) {
        for (auto& o : a.take_outgoing()) {
          if (o.channel == Channel::packet && o.bytes.size() > cfg.wire.max_packet) ++oversized;
          b.handle(now, pa, o.bytes);
        }
        for (auto& o : b.take_outgoing()) a.handle(now, pb, o.bytes);
      }
    }
  };
  run(seconds(2));
  REQUIRE(a.live_members() == 2);
  REQUIRE(b.live_members() == 2);

  // The largest entry a node's rumor budget ever allowed with a short name.
  const auto specs = entry_of_size(ida, cfg.wire.max_packet - 64);
  REQUIRE(a.set_service(now, "svc", specs).ok());
  run(milliseconds(100));
  CHECK(oversized == 0);
  CHECK(b.stats().bad_frames == 0);
  const auto* got = b.instances(ida.name, "svc");
  CHECK(got != nullptr);
  if (got != nullptr) CHECK(*got == specs);

  // Its rumors retire: a wakes for probes (every 200 ms), not for a gossip
  // round every 20 ms.
  run(seconds(3));
  wakes_a = 0;
  run(seconds(2));
  CHECK(wakes_a < 40);
  CHECK(oversized == 0);
  CHECK(b.stats().bad_frames == 0);
}
