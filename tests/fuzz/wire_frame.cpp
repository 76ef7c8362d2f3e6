// A frame after the transport opened its seal: the codec's decoder
// (daemon/cluster/codec.hpp), then a cluster core that handles it
// (tests/cluster/fuzz_test.cpp does the same from random mutations).
//
// Properties: a decoded frame stays within WireLimits (its channel's size,
// the elements it may decode into) and encodes back to bytes that decode to
// the same messages; a core that met one peer and then handles the frame
// twice (a replay) and ticks keeps within what it accepts (no generation
// beyond its clock bound, its own registration still served) and sends only
// frames that decode, packets within max_packet.
#include <variant>

#include "cluster/codec.hpp"
#include "cluster/core.hpp"
#include "fuzz.hpp"

using namespace regfs;
using namespace regfs::cluster;

namespace {

std::size_t elements(const Message& m) {
  if (const auto* e = std::get_if<Entry>(&m)) return e->instances.size();
  if (const auto* s = std::get_if<SyncState>(&m)) return s->members.size() + s->digests.size();
  if (const auto* c = std::get_if<OriginChunk>(&m)) {
    std::size_t n = c->items.size();
    for (const auto& item : c->items) n += item.instances.size();
    return n;
  }
  return 0;
}

void check_decoded(std::span<const std::uint8_t> bytes, const WireLimits& limits) {
  auto d = decode_frame(bytes, limits);
  if (!d.ok()) {
    FUZZ_CHECK(!d.error().empty());
    return;
  }
  const Frame& f = d.value();
  FUZZ_CHECK(bytes.size() <=
             (f.channel == Channel::packet ? limits.max_packet : limits.max_stream));
  std::size_t n = f.messages.size();
  for (const auto& m : f.messages) {
    n += elements(m);
    if (const auto* e = std::get_if<Entry>(&m))
      FUZZ_CHECK(e->instances.size() <= limits.max_instances);
    if (const auto* s = std::get_if<SyncState>(&m))
      FUZZ_CHECK(s->members.size() <= limits.max_members);
    if (const auto* c = std::get_if<OriginChunk>(&m))
      FUZZ_CHECK(c->items.size() <= limits.max_items);
  }
  FUZZ_CHECK(n <= limits.max_elements);
  FUZZ_CHECK(n <= bytes.size());
  const auto again = encode_frame(f.channel, f.sender, f.messages);
  auto d2 = decode_frame(again, WireLimits{limits.max_stream, limits.max_stream});
  FUZZ_CHECK(d2.ok());
  FUZZ_CHECK(d2.value().sender == f.sender && d2.value().channel == f.channel);
  FUZZ_CHECK(d2.value().messages.size() == f.messages.size());
  FUZZ_CHECK(encode_frame(f.channel, f.sender, d2.value().messages) == again);
}

void check_outgoing(Core& node, const WireLimits& limits) {
  for (const Outgoing& o : node.take_outgoing()) {
    if (o.channel == Channel::packet) FUZZ_CHECK(o.bytes.size() <= limits.max_packet);
    FUZZ_CHECK(decode_frame(o.bytes, limits).ok());
  }
  (void)node.take_events();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto in = fuzz::bytes(data, size);
  const WireLimits limits;
  check_decoded(in, limits);

  // A core that knows one peer and its registration, so that the frame can
  // speak of a member and an origin it holds.
  const std::uint64_t gen = 500;
  Config cfg;
  Core node(cfg, NodeId{"core", gen}, PeerAddr{"10.0.0.1:7946"}, 1, Time{});
  FUZZ_CHECK(node.set_service(Time{}, "web", {InstanceSpec{Endpoint{"h", 80}, Check{}}}).ok());
  const NodeId peer{"peer", 400};
  const std::vector<Message> hello = {
      Alive{peer, 1, PeerAddr{"10.0.0.2:7946"}, 2},
      Entry{peer,
            "api",
            2,
            {InstanceSpec{Endpoint{"10.0.0.2", 8080}, Check{Check::Kind::http, "/h"}}}}};
  Time now{};
  node.handle(now, PeerAddr{"10.0.0.2:7946"}, encode_frame(Channel::packet, peer, hello));
  check_outgoing(node, limits);

  for (int round = 0; round < 2; ++round) {
    now = now + milliseconds(100);
    node.handle(now, PeerAddr{"10.0.0.3:7946"}, in);
    check_outgoing(node, limits);
    now = now + seconds(1);
    node.tick(now);
    check_outgoing(node, limits);
  }
  const auto ahead = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now.since_epoch + cfg.generation_ahead)
          .count());
  FUZZ_CHECK(node.self().generation <= gen + ahead + node.stats().new_lives);
  for (const auto& m : node.members()) FUZZ_CHECK(m.id.generation <= gen + ahead + 1);
  for (const auto& [name, o] : node.store().origins()) FUZZ_CHECK(o.generation <= gen + ahead);
  FUZZ_CHECK(node.instances("core", "web") != nullptr);
  return 0;
}
