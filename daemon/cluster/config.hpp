// Tuning of the cluster core. Defaults are a LAN profile: faster than
// memberlist's LAN defaults (1 s probes) because regfs promises that a dead
// owner's instances vanish within seconds; see docs/PROTOCOL.md for the
// reasoning and docs/BENCHMARKS.md for what they measure to.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cluster/codec.hpp"
#include "cluster/faults.hpp"
#include "core/instance.hpp"
#include "core/time.hpp"

namespace regfs::cluster {

struct Config {
  // Failure detection (SWIM + Lifeguard).
  Duration probe_interval = milliseconds(200);  // one probe per interval, round robin
  Duration probe_timeout = milliseconds(100);   // direct ack wait before indirect probes
  int indirect_checks = 3;                      // k members asked to probe for us
  int suspicion_mult = 4;                       // min suspicion = mult * max(1, log10 n) * interval
  int suspicion_max_mult = 6;                   // max suspicion = max_mult * min
  int awareness_max = 8;                        // Lifeguard local health multiplier bound

  // Dissemination.
  Duration gossip_interval = milliseconds(20);  // retransmission rounds while rumors remain
  int gossip_fanout = 3;                        // peers per round
  int change_fanout = 4;                        // peers a fresh rumor is pushed to at once
  // A node's own registration change goes straight to this many live peers
  // (all of them in a cluster up to this size: one hop, no relay). Only in a
  // larger cluster do receivers push it on at once; otherwise they just
  // retransmit it in gossip rounds, in case a datagram was lost.
  std::size_t broadcast_max = 128;
  // In such a cluster every peer got the change from its origin, so the
  // receivers' retransmissions (for a datagram lost on the way) wait this
  // long: they would only compete for the CPU with the readers being woken.
  Duration relay_delay = milliseconds(100);
  int retransmit_mult = 4;                      // a rumor goes out mult * ceil(log10(n+1)) times
  Duration gossip_to_dead = seconds(30);        // dead members still get gossip this long

  // Anti-entropy.
  Duration push_pull_interval = seconds(30);    // scaled up beyond 32 members, as memberlist does
  Duration rejoin_interval = seconds(30);       // seeds are contacted again this often
  Duration rejoin_alone = seconds(1);           // alone, seeds are retried after this, doubling
  Duration rejoin_alone_max = seconds(4);       // ... up to this: alone, there is nothing to lose
  // Healing: while members are dead, one of them, at random, is pinged this
  // often; one that answers was only cut off, and a push-pull with it merges
  // the two sides at once. One datagram per interval, whatever the cluster size.
  Duration reconnect_interval = seconds(1);
  // A member that came back announced changes this node lacks: a push-pull
  // with it (or another such member) at most this often until none is behind.
  Duration catch_up_interval = milliseconds(200);
  // A probe's ack carries the peer's registry hash; on a difference, a
  // push-pull with it, at most this often (doubling while differences
  // persist, up to push_pull_interval). This is what merges a partition too
  // short for anyone to be declared dead.
  Duration mismatch_sync_interval = seconds(1);

  // Memory of what is gone.
  Duration tombstone_ttl = std::chrono::minutes(5);         // removed services and dead members' records
  // How long a death is remembered after its member record is gone: that
  // life is refused (its entries, and its Alive unless it refutes) and what
  // was known of its registrations kept, so that a node cut off for longer
  // than tombstone_ttl comes back only by refuting, with its entries
  // registered again, and a returning node cannot bring long-dead members
  // back as alive.
  Duration departure_ttl = std::chrono::hours(1);
  Duration purge_interval = seconds(5);
  Duration orphan_grace = seconds(10);          // entries of an origin that is no member

  // What a member may claim (docs/SECURITY.md). A generation is a start time
  // in wall-clock microseconds: one more than generation_ahead beyond this
  // node's clock (`clock_generation`, the daemon's wall clock when it built
  // the core; 0: this node's own generation) cannot be a real start and is
  // refused, so nobody can take a name out of the cluster with a generation
  // its owner could never pass. An incarnation rises by one per refutation
  // and a version by one per change: a known member's incarnation, or what a
  // node holds of an origin's life, never jumps further than these at once.
  // A node never makes such a jump itself: accused beyond half of it, it
  // starts a new life instead, and it announces its version again (a new
  // incarnation) every half of version_jump_max changes.
  Duration generation_ahead = std::chrono::hours(24);
  std::uint64_t clock_generation = 0;
  std::uint32_t incarnation_jump_max = 1u << 20;
  std::uint64_t version_jump_max = 1u << 20;

  // Instances this node keeps of one remote origin (a tombstone counts one):
  // what one member holding the key can make every other member store. A
  // node registers at most Limits::max_services_per_node services of up to
  // Limits::max_instances_per_service each, but a task's daemon registers a
  // handful; beyond this an origin's new registrations are refused here
  // (docs/SECURITY.md).
  std::size_t max_instances_per_origin = 65536;

  WireLimits wire;
  Limits limits;
  Faults faults;  // test-only defects (cluster/faults.hpp); all off
};

}  // namespace regfs::cluster
