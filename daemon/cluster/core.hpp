// One daemon's cluster core: SWIM membership with Lifeguard, and replication
// of the registry (push on change, gossip, push-pull anti-entropy).
//
// Pure: no sockets, no clock, no threads. The caller (the daemon's transport,
// or the simulator) passes the current time into every call, delivers what
// arrives with `handle`, calls `tick` when `next_deadline()` has come, and
// after each call drains `take_outgoing()` (frames to send) and
// `take_events()` (what changed). All randomness comes from `seed`.
//
// Not thread-safe: one thread (the daemon's event loop) owns a Core.
// Errors: `set_service` refuses bad input with a Status and changes nothing;
// `handle` drops frames it cannot decode (counted in stats()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/broadcasts.hpp"
#include "cluster/config.hpp"
#include "cluster/lifeguard.hpp"
#include "cluster/member_table.hpp"
#include "cluster/messages.hpp"
#include "cluster/store.hpp"
#include "core/result.hpp"

namespace regfs::cluster {

struct Outgoing {
  PeerAddr to;
  Channel channel = Channel::packet;  // packet: one datagram; stream: one TCP frame
  std::vector<std::uint8_t> bytes;    // plaintext frame; the transport seals it
};

struct Events {
  Changes services;                 // {service, origin}: re-read with instances()
  std::vector<MemberInfo> members;  // members whose state, life or address changed
  // Non-zero: this node started a new life at this generation (it learned of
  // a life of its name at least as high, or was accused beyond what it can
  // refute). The daemon records it, so that its next start goes higher still.
  std::uint64_t generation = 0;
};

struct Stats {
  std::uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  std::uint64_t bad_frames = 0, probes = 0, probe_failures = 0, refutations = 0;
  std::uint64_t syncs_started = 0, syncs_full = 0;
  // Claims refused as impossible (a generation beyond the clock, a jump of
  // incarnation or version), and new lives this node started.
  std::uint64_t refused = 0, new_lives = 0;
};

class Core {
 public:
  Core(Config config, NodeId self, PeerAddr addr, std::uint64_t seed, Time now);

  // --- the daemon's side ---
  // Replaces this node's instances of `service`; empty removes them.
  Status set_service(Time now, std::string_view service, std::vector<InstanceSpec> instances);
  // Contacts `seeds` now and again every rejoin_interval, so that halves
  // started apart merge; while alone, retries them after rejoin_alone,
  // doubling up to rejoin_alone_max, so a node started before its seeds (or
  // cut off from them before it met anyone) joins soon after they come. Addresses equal to this node's own are ignored.
  void join(Time now, std::vector<PeerAddr> seeds);
  // Says goodbye: peers drop this node's instances at once. Keep delivering
  // and ticking for a few gossip intervals, then stop.
  void leave(Time now);

  // --- the transport's side ---
  void handle(Time now, const PeerAddr& from, std::span<const std::uint8_t> frame);
  void tick(Time now);
  // When `tick` is due next; a time in the past means at once.
  Time next_deadline() const;
  std::vector<Outgoing> take_outgoing();
  Events take_events();

  // --- look-ups (valid until the next non-const call) ---
  // Origins with live instances of `service`, in name order; instances of one.
  std::vector<std::string> holders(std::string_view service) const { return store_.holders(service); }
  const std::vector<InstanceSpec>* instances(std::string_view origin, std::string_view service) const {
    return store_.entry(origin, service);
  }
  std::vector<std::string> services() const { return store_.services(); }
  std::vector<MemberInfo> members() const;  // in name order
  const NodeId& self() const { return self_; }
  std::uint32_t incarnation() const { return me().incarnation; }
  int awareness() const { return awareness_.score(); }
  const Stats& stats() const { return stats_; }
  const Store& store() const { return store_; }
  std::size_t live_members() const;  // alive or suspect, this node included

 private:
  using Member = MemberTable::Member;
  struct Probe {
    bool active = false;
    bool indirect = false;
    std::uint32_t seq = 0;
    NodeId target;
    Time direct_deadline{}, end{};
    int expected_nacks = 0, nacks = 0;
  };
  struct Relay {
    PeerAddr requester;
    std::uint32_t requester_seq = 0;
    Time deadline{};
  };

  // core.cpp: plumbing
  Member& me() { return *members_.find(self_.name); }  // never erased
  const Member& me() const { return *members_.find(self_.name); }
  std::uint64_t random(std::uint64_t below);
  std::vector<const Member*> pick(std::size_t k, const std::string& exclude, bool with_dead);
  void refresh_peers();
  void send(const PeerAddr& to, Channel ch, std::vector<std::uint8_t> bytes);
  void send_packet(const PeerAddr& to, const Message& m);
  void send_stream(const PeerAddr& to, std::vector<Message> ms);
  // Queues a rumor for gossip; `urgent` pushes it to change_fanout peers at
  // the next tick instead of waiting for the next gossip round.
  void queue_rumor(std::string key, const Message& m, bool urgent = true);
  void gossip(Time now, int fanout);
  int retransmit_limit();
  // Reports m's change. `was_live`: whether m was alive or suspect before;
  // `fresh`: m was just added. Keeps peers_ exact without rebuilding it
  // when it can (a join appends; alive <-> suspect changes nothing).
  void member_event(const Member& m, bool was_live, bool fresh = false);
  void drop_orphans(Time now);

  // core_probe.cpp: failure detection
  void probe_tick(Time now);
  void start_probe(Time now);
  void send_probe(Time now, const Member& m);
  void on_ping(Time now, const PeerAddr& from, const Ping& m);
  void on_ping_req(Time now, const PeerAddr& from, const PingReq& m);
  void on_ack(Time now, const PeerAddr& from, const Ack& a);
  void on_nack(std::uint32_t seq);

  // core_members.cpp: rumors
  // `rumor`: gossip it on when it is news (not for records merged from a
  // state exchange: the peer that sent them holds them already).
  void on_alive(Time now, const Alive& m, bool rumor = true);
  void on_suspect(Time now, const Suspect& m);
  void revived(Time now, const Alive& a);
  void on_dead(Time now, const Dead& m);
  void refute(Time now, std::uint32_t accused, bool was_dead);
  // Starts a life of this node's name above generation `above`: a new
  // NodeId, incarnation 0, every live entry registered again under it.
  void new_life(Time now, std::uint64_t above);
  // Announces this node's version again (a new incarnation), so that what
  // members were told stays within version_jump_max of what it issues.
  void announce(Time now);
  // A claim about this node's own current life that it never made (an
  // incarnation or a version it has not reached): a member forged it, and
  // only a new life makes every receiver drop what it believed of this one.
  bool own_life_forged(const NodeId& id, std::uint64_t version) const;
  Alive self_alive() const;
  void suspicion_tick(Time now);
  void depart(Time now, Member& m);
  Duration suspicion_min() const;

  // core_sync.cpp: registry and push-pull
  // Drops from `f` what no honest member sends (docs/SECURITY.md): lives
  // beyond the clock, versions far beyond what this node holds; returns false
  // when the whole frame goes (its sender is such a life).
  bool screen(Time now, Frame& f);
  std::uint64_t generation_limit(Time now) const;
  // The highest version of `origin`'s life accepted now.
  std::uint64_t version_limit(const NodeId& origin) const;
  // A push-pull chunk, unless it carries or claims versions beyond version_limit.
  void apply_chunk(Time now, const OriginChunk& c);
  void on_entry(Time now, const Entry& e);
  void on_sync_hello(Time now, const PeerAddr& from, const SyncHello& m);
  void on_sync_state(Time now, const PeerAddr& from, const SyncState& m,
                     std::vector<OriginDigest>& reply_to);
  void merge(Time now, const std::string& sender, const std::vector<MemberRecord>& records);
  void start_sync(Time now, const PeerAddr& to);
  // After a heal: ping a dead (or departed) member now and then, sync with
  // one that answers.
  void reconnect_tick(Time now);
  void on_reconnect_ack(Time now);
  // Push-pull with revived members until this node holds what they announced.
  void catch_up_tick(Time now);
  // A probed peer holds another registry: push-pull with it, unless one such
  // sync was started within mismatch_backoff_ (doubling while mismatches
  // persist, back to mismatch_sync_interval once a probe finds them equal).
  void compare_registry(Time now, const PeerAddr& peer, std::uint64_t hash);
  SyncState state(std::uint8_t stage) const;
  std::uint64_t members_hash() const;
  // `own`: this node's change, sent straight to up to broadcast_max peers.
  void spread_entry(Time now, const Entry& e, bool own);
  Duration push_pull_interval() const;

  Config cfg_;
  NodeId self_;
  std::uint64_t clock_generation_ = 0;  // a generation the clock gave at started_
  Time started_{};
  std::mt19937_64 rng_;
  // Pointers into members_: peers_ and recent_dead_ are rebuilt when dirty,
  // and all three are dropped when a purge erases a member.
  MemberTable members_;
  std::vector<const Member*> peers_;        // alive or suspect, not self (sampling)
  std::vector<const Member*> recent_dead_;  // dead within gossip_to_dead (sampling)
  std::vector<const Member*> gone_;         // dead or left (reconnect pings)
  bool peers_dirty_ = true;
  std::vector<const Member*> probe_order_;
  std::size_t probe_pos_ = 0;
  Probe probe_;
  bool suspect_turn_ = false;
  Time next_probe_{};
  bool probe_idle_ = false;  // the last probe found nobody to probe (alone): no probe timer
  std::uint32_t next_seq_ = 1;
  std::map<std::uint32_t, Relay> relays_;
  std::map<std::string, Suspicion, std::less<>> suspicions_;
  Awareness awareness_;
  Broadcasts broadcasts_;
  bool urgent_ = false;
  Time gossip_next_{};
  // The last gossip round found nobody to tell (a node alone): no more rounds
  // until the membership changes, or a lone node would wake every
  // gossip_interval for as long as its rumors wait for a listener.
  bool gossip_stalled_ = false;
  Time push_pull_next_{};
  Time rejoin_next_{};
  Duration alone_retry_{};  // the next wait between rejoins while alone
  Time purge_next_{};
  Time reconnect_next_{};
  std::uint32_t reconnect_seq_ = 0;  // the ping to a dead member in flight, 0: none
  NodeId reconnect_to_;
  Time mismatch_sync_next_{};
  Duration mismatch_backoff_{};
  bool catching_up_ = false;  // some revived member announced changes this node lacks
  Time catch_up_next_{};
  std::vector<PeerAddr> seeds_;
  std::map<std::string, Time, std::less<>> orphans_;  // origins without a member record
  bool leaving_ = false;
  Store store_;
  std::vector<Outgoing> outbox_;
  Events events_;
  Stats stats_;
};

}  // namespace regfs::cluster
