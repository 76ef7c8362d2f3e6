// The replicated registry: what every origin node has registered, as this
// node knows it. Each origin is the only writer of its own entries.
//
// Per origin: its generation (a restart is a new life that replaces the old
// one), and per service the latest {version, instances}; empty instances is a
// tombstone. Versions count the origin's changes, one per change.
//
// Completeness: `complete` = W means this node has seen every change of the
// origin up to version W (applied, or superseded by a newer one it holds).
// An incoming entry with version <= W is therefore stale, which is what keeps
// removed things from coming back even after their tombstones are purged.
// Tombstones are purged after a TTL, and only at or below W; `purged` is the
// highest purged version, below which this node can no longer send
// increments (it sends a snapshot instead).
//
// Departed origins (dead or left) are hidden: their instances vanish, but what
// this node knew of them (versions, completeness) is kept for a TTL, so late
// gossip cannot resurrect anything and a falsely dead node that refutes comes
// back exactly as it was.
//
// Pure; not thread-safe. Every change of what a service resolves to is
// appended to the caller's `Changes` as {service, origin}.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/messages.hpp"
#include "core/time.hpp"

namespace regfs::cluster {

struct ServiceChange {
  std::string service;
  std::string origin;
  friend auto operator<=>(const ServiceChange&, const ServiceChange&) = default;
};
using Changes = std::vector<ServiceChange>;

class Store {
 public:
  struct Stored {
    std::uint64_t version = 0;
    std::vector<InstanceSpec> instances;  // empty: tombstone
    Time removed_at{};                    // for tombstones: when this node learned it
  };
  struct Origin {
    std::uint64_t generation = 0;
    std::map<std::string, Stored, std::less<>> entries;
    std::uint64_t complete = 0;
    std::uint64_t max = 0;
    std::uint64_t purged = 0;
    std::set<std::uint64_t> ahead;  // versions seen above `complete`
    bool hidden = false;            // departed: kept only to refuse stale entries
  };

  explicit Store(NodeId self) : self_(std::move(self)) {}

  // This node's own change: bumps its version and returns the entry to
  // spread. An empty `instances` removes the service (a tombstone).
  Entry set_own(std::string_view service, std::vector<InstanceSpec> instances, Time now,
                Changes& changes);
  // Every live entry this node owns (for re-announcing after a refutation).
  std::vector<Entry> own_entries() const;

  // An entry from gossip. Returns true when it was new to this node (the
  // caller spreads it further), false when stale or refused.
  bool apply(const Entry& e, Time now, Changes& changes);
  // A push-pull chunk (see OriginChunk).
  void apply(const OriginChunk& c, Time now, Changes& changes);

  // The origin left or was declared dead: hide all it holds and refuse its
  // entries up to `generation` until `until`; an older life is dropped.
  void depart(const NodeId& origin, Time until, Changes& changes);
  // A departed origin came back with a higher incarnation: show what it
  // held again and accept its entries.
  void revive(const NodeId& origin, Changes& changes);
  bool departed(const NodeId& origin) const;

  std::vector<OriginDigest> digests() const;
  // What a peer with these digests lacks, one chunk per origin.
  std::vector<OriginChunk> chunks_for(const std::vector<OriginDigest>& peer) const;
  std::uint64_t hash() const;

  // Purges tombstones learned before `before` (at or below `complete`) and
  // departure records that expired.
  void purge(Time now, Time before);

  // Lookups. `entry` returns nullptr when the origin holds nothing live there.
  const std::vector<InstanceSpec>* entry(std::string_view origin, std::string_view service) const;
  // Origins holding live instances of `service`, in name order.
  std::vector<std::string> holders(std::string_view service) const;
  std::vector<std::string> services() const;
  const std::map<std::string, Origin, std::less<>>& origins() const { return origins_; }

 private:
  Origin* origin_for(const NodeId& id, Changes& changes);  // nullptr: refused
  void erase_origin(std::map<std::string, Origin, std::less<>>::iterator it, Changes& changes);
  void put(const std::string& origin, Origin& o, const std::string& service, std::uint64_t version,
           std::vector<InstanceSpec> instances, Time now, Changes& changes);
  static void saw(Origin& o, std::uint64_t version);
  static void advance(Origin& o);
  void index(const std::string& service, const std::string& origin, bool live);

  NodeId self_;
  std::map<std::string, Origin, std::less<>> origins_;
  std::map<std::string, std::pair<std::uint64_t, Time>, std::less<>> departed_;  // gen, until
  std::map<std::string, std::set<std::string>, std::less<>> by_service_;       // live holders
};

}  // namespace regfs::cluster
