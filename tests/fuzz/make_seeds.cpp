// Writes the binary seed corpora, corpus/wire_frame and corpus/wire_sealed,
// from the real encoder and sealer: one frame of each message type, values
// at their ends, and the exchanges a sender makes. Committed as files; run
// again only when the wire format changes:
//   build/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
#include <cstdio>
#include <fstream>
#include <limits>
#include <string>

#include "cluster/codec.hpp"
#include "transport/keyring.hpp"

using namespace regfs;
using namespace regfs::cluster;

namespace {

void put(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::uint8_t> with_mode(std::uint8_t mode, std::vector<std::uint8_t> rest) {
  rest.insert(rest.begin(), mode);
  return rest;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds CORPUS_DIR\n");
    return 2;
  }
  const std::string frames = std::string(argv[1]) + "/wire_frame/";
  const std::string sealed = std::string(argv[1]) + "/wire_sealed/";
  constexpr auto kInc = std::numeric_limits<std::uint32_t>::max();
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  const NodeId peer{"peer", 400};
  const NodeId other{"other-node.example", 450};
  const NodeId core{"core", 500};
  const InstanceSpec web{Endpoint{"10.0.0.2", 8080}, Check{Check::Kind::http, "/health"}};
  const InstanceSpec v6{Endpoint{"fd00::2", 9000}, Check{Check::Kind::none, {}}};
  OriginChunk chunk{peer, 0, 3, true, {}};
  chunk.items.push_back({"api", 2, {web}});
  chunk.items.push_back({"gone", 3, {}});
  const std::vector<std::pair<std::string, std::vector<Message>>> packets = {
      {"ping", {Ping{1, core}}},
      {"ping-req", {PingReq{2, other, PeerAddr{"10.0.0.4:7946"}}}},
      {"ack-nack", {Ack{1, 0x1234}, Nack{2}}},
      {"alive", {Alive{other, 1, PeerAddr{"10.0.0.4:7946"}, 1}}},
      {"suspect-peer", {Suspect{peer, 1, "other-node.example"}}},
      {"suspect-core", {Suspect{core, 0, "peer"}}},
      {"dead-peer", {Dead{peer, 1, "other-node.example", false}}},
      {"left-peer", {Dead{peer, 2, "peer", true}}},
      {"entry", {Entry{peer, "api", 3, {web, v6}}}},
      {"entry-removal", {Entry{peer, "api", 3, {}}}},
      {"incarnation-last", {Alive{peer, kInc, PeerAddr{"10.0.0.9:7946"}, 2}}},
      {"generation-last", {Dead{NodeId{"core", kMax}, 0, "peer", false}}},
      {"version-last", {Entry{peer, "api", kMax, {web}}}},
      {"gossip-mix",
       {Alive{other, 1, PeerAddr{"10.0.0.4:7946"}, 0}, Entry{other, "db", 1, {v6}}, Ack{7, 0}}},
  };
  for (const auto& [name, ms] : packets)
    put(frames + name, encode_frame(Channel::packet, peer, ms));
  const std::vector<std::pair<std::string, std::vector<Message>>> streams = {
      {"sync-hello", {SyncHello{1, 2}}},
      {"sync-state",
       {SyncState{1,
                  {{peer, 1, MemberState::alive, {"10.0.0.2:7946"}, 3},
                   {other, 0, MemberState::dead, {"10.0.0.4:7946"}, 0}},
                  {{peer, 3, 3}, {core, 0, 0}}}}},
      {"sync-state-reply",
       {SyncState{2, {{peer, 1, MemberState::suspect, {"10.0.0.2:7946"}, 3}}, {{peer, 2, 3}}}}},
      {"origin-chunk", {chunk}},
      {"complete-last", {SyncState{2, {}, {{peer, kMax, kMax}}}}},
  };
  for (const auto& [name, ms] : streams)
    put(frames + name, encode_frame(Channel::stream, peer, ms));

  // wire_sealed: see tests/fuzz/wire_sealed.cpp for the modes.
  transport::Key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(i);
  const transport::Keyring ring({key});
  const auto frame = encode_frame(Channel::packet, peer, packets[0].second);
  put(sealed + "raw-datagram",
      with_mode(0, ring.seal(transport::SealKind::packet, 1'700'000'000'000, frame)));
  std::vector<std::uint8_t> stamped = {0,    0,    1, 0x8b, 0xcf,
                                       0xe5, 0x68, 0, 5};  // a time, a byte to flip
  stamped.insert(stamped.end(), frame.begin(), frame.end());
  put(sealed + "datagram", with_mode(1, stamped));
  std::vector<std::uint8_t> inner = {0, 13};
  const std::string from = "10.0.0.2:7946";
  inner.insert(inner.end(), from.begin(), from.end());
  const auto sync = encode_frame(Channel::stream, peer, streams[1].second);
  inner.insert(inner.end(), sync.begin(), sync.end());
  put(sealed + "exchange", with_mode(2, inner));
  std::vector<std::uint8_t> bare = {0, 0, 0, static_cast<std::uint8_t>(inner.size())};
  bare.insert(bare.end(), inner.begin(), inner.end());
  put(sealed + "raw-unkeyed-exchange", with_mode(0, bare));
  std::vector<std::uint8_t> v6_exchange = {0,   14,  '[', ':', ':', '1', ']', ':',
                                           '7', '9', '4', '6', 'x', 'y', 'z', 'w'};
  put(sealed + "exchange-v6-bad-tail", with_mode(2, v6_exchange));
  put(sealed + "exchange-short", with_mode(2, {0}));
  // Replay window: stream, counter (2 bytes), time offset, clock advance.
  put(sealed + "replays",
      with_mode(3, {0,  1,   0, 50, 1,  0,  1, 0, 50, 1,  0,  2, 0, 51, 0,  1,    1, 0, 50,
                    10, 2,   1, 0,  50, 10, 3, 1, 0,  50, 10, 4, 1, 0,  50, 10,   0, 1, 0,
                    50, 255, 0, 0,  4,  60, 0, 0, 1,  0,  50, 0, 5, 9,  9,  0x80, 0}));
  std::printf("seeds written under %s\n", argv[1]);
  return 0;
}
