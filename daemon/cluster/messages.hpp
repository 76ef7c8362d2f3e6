// The messages daemons exchange, as plain values.
//
// Two channels carry them. Packets are datagram-sized (UDP): probes, acks and
// gossip, a few messages compounded up to Limits::max_packet. Streams carry
// the push-pull state exchange (TCP), one frame up to Limits::max_stream.
// The byte layout is in codec.hpp and docs/PROTOCOL.md.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "cluster/peer.hpp"
#include "core/instance.hpp"

namespace regfs::cluster {

enum class MemberState : std::uint8_t { alive = 0, suspect = 1, dead = 2, left = 3 };
const char* to_string(MemberState s);
// Alive or suspect: a member that is probed, gossiped to and counted.
inline bool is_live(MemberState s) { return s == MemberState::alive || s == MemberState::suspect; }

// --- failure detection (packet channel) ---
struct Ping {        // "are you `target`?" answered by an Ack with the same seq
  std::uint32_t seq = 0;
  NodeId target;
};
struct PingReq {     // "probe `target` at `addr` for me": Ack or Nack with seq
  std::uint32_t seq = 0;
  NodeId target;
  PeerAddr addr;
};
struct Ack {
  std::uint32_t seq = 0;
  // The responder's registry hash (0 on a relayed ack): a prober that holds
  // another one starts a push-pull, which is how a short partition that
  // declared nobody dead still merges within seconds.
  std::uint64_t registry_hash = 0;
};
struct Nack { std::uint32_t seq = 0; };

// --- membership rumors (piggybacked and gossiped) ---
struct Alive {
  NodeId node;
  std::uint32_t incarnation = 0;
  PeerAddr addr;
  // The highest registry version the node had issued when it announced this
  // incarnation (every entry it held then was registered again at or below
  // it): a receiver that holds less knows it must catch up, and one holding
  // a withdrawn entry above it knows the refutation did not cover that entry.
  std::uint64_t version = 0;
};
struct Suspect {
  NodeId node;
  std::uint32_t incarnation = 0;
  std::string from;  // the node that suspects it (a confirmation when distinct)
};
struct Dead {        // left == true: the node said goodbye itself
  NodeId node;
  std::uint32_t incarnation = 0;
  std::string from;
  bool left = false;
};

// --- registry replication ---
// One service entry of one origin; empty `instances` is a tombstone.
struct Entry {
  NodeId origin;
  std::string service;
  std::uint64_t version = 0;
  std::vector<InstanceSpec> instances;
};

// --- push-pull anti-entropy (stream channel) ---
// Opening move: hashes of the sender's membership and registry digests. A
// receiver whose hashes differ answers with SyncState{stage=1}.
struct SyncHello {
  std::uint64_t members_hash = 0;
  std::uint64_t registry_hash = 0;
};
struct MemberRecord {
  NodeId node;
  std::uint32_t incarnation = 0;
  MemberState state = MemberState::alive;
  PeerAddr addr;
  std::uint64_t version = 0;  // as in Alive: announced with this incarnation
};
// What a node holds of one origin: complete means it holds the origin's
// exact state as of version `complete` (every change up to it, applied or
// superseded); `max` is the highest version it holds at all.
struct OriginDigest {
  NodeId origin;
  std::uint64_t complete = 0;
  std::uint64_t max = 0;
};
// stage 1: the answer to a SyncHello; stage 2: the opener's own state, sent
// with the chunks the other side lacks. Stage 2 is answered by chunks only.
struct SyncState {
  std::uint8_t stage = 1;
  std::vector<MemberRecord> members;
  std::vector<OriginDigest> digests;
};
// Entries of one origin for a peer that lacks them. Without `snapshot`: all
// entries the sender holds with version > base (tombstones included); the
// receiver, if complete at >= base, becomes complete at `upto`. With
// `snapshot`: everything the sender holds; anything of that origin the
// receiver holds with version <= upto and not listed is gone.
struct OriginChunk {
  NodeId origin;
  std::uint64_t base = 0;
  std::uint64_t upto = 0;
  bool snapshot = false;
  struct Item {
    std::string service;
    std::uint64_t version = 0;
    std::vector<InstanceSpec> instances;
  };
  std::vector<Item> items;
};

using Message = std::variant<Ping, PingReq, Ack, Nack, Alive, Suspect, Dead, Entry, SyncHello,
                             SyncState, OriginChunk>;

enum class Channel : std::uint8_t { packet = 0, stream = 1 };

// A decoded frame: who sent it and what it holds, in order.
struct Frame {
  Channel channel = Channel::packet;
  NodeId sender;
  std::vector<Message> messages;
};

}  // namespace regfs::cluster
