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
// gossip cannot resurrect anything.
//
// No resurrection: an entry this node stopped serving because its origin
// departed is `withdrawn` and is never served again at that version, even if
// the death is refuted. Only a newer version from the origin brings the
// service back, and a refuting origin re-registers every live entry at a new
// version for exactly that reason (cluster/core_members.cpp). While the
// origin was away it may have removed or replaced entries; this node cannot
// tell which from the copies it holds, so it serves none of them until the
// origin has spoken again. A revived origin also says which version it had
// reached (`announced`): until `complete` reaches it, this node knows it
// lacks changes and asks for them (Core's catch-up).
//
// Claims of completeness: a chunk's `upto` counts only as far as what it
// carries (its newest item or, in a snapshot, its purge mark `base`), which
// is all an honest sender's completeness can rest on. A member that forges a
// chunk claiming more than it carries makes no receiver skip the origin's
// later changes. How far beyond what this node holds a version may jump is
// Core's check (cluster/core_sync.cpp), since it also knows what members
// announced.
//
// A cap per remote origin: an entry that would make this node hold more than
// `max_per_origin` instances of one origin (a tombstone counts one) is
// refused and counted, though its version counts as seen (so it is not asked
// for again); what that origin already has here stays, and a smaller or
// removing entry is always taken. One member holding the key can so make
// the others store at most that much in its name; honest origins stay far
// below it.
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

#include "cluster/faults.hpp"
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
    bool withdrawn = false;               // held when its origin departed: never served again
  };
  struct Origin {
    std::uint64_t generation = 0;
    std::map<std::string, Stored, std::less<>> entries;
    std::uint64_t complete = 0;
    std::uint64_t max = 0;
    std::uint64_t purged = 0;
    std::set<std::uint64_t> ahead;  // versions seen above `complete`
    bool hidden = false;            // departed: kept only to refuse stale entries
    std::uint64_t announced = 0;    // the version the origin said it had reached when it came back
    std::size_t held = 0;           // instances in `entries`, a tombstone counting one
  };

  static constexpr std::size_t kUncapped = static_cast<std::size_t>(-1);
  explicit Store(NodeId self, Faults faults = {}, std::size_t max_per_origin = kUncapped)
      : self_(std::move(self)), faults_(faults), max_per_origin_(max_per_origin) {}

  // This node's own change: bumps its version and returns the entry to
  // spread. An empty `instances` removes the service (a tombstone).
  Entry set_own(std::string_view service, std::vector<InstanceSpec> instances, Time now,
                Changes& changes);
  // Every live entry this node owns, and the highest version it has issued.
  std::vector<Entry> own_entries() const;
  std::uint64_t own_version() const;

  // An entry from gossip. Returns true when it was new to this node (the
  // caller spreads it further), false when stale or refused.
  bool apply(const Entry& e, Time now, Changes& changes);
  // A push-pull chunk (see OriginChunk).
  void apply(const OriginChunk& c, Time now, Changes& changes);

  // The origin left or was declared dead: hide all it holds and refuse its
  // entries up to `generation` until `until`; an older life is dropped.
  // `incarnation` is the one the death was declared at; kOrphan when no
  // member record said it (entries of an origin nobody vouched for).
  static constexpr std::int64_t kOrphan = -1;
  void depart(const NodeId& origin, std::int64_t incarnation, Time until, Changes& changes);
  // A departed origin came back with a higher incarnation, having issued
  // versions up to `announced`: accept its entries again. What it held when
  // it departed stays withdrawn until newer versions replace it.
  void revive(const NodeId& origin, std::uint64_t announced, Changes& changes);
  // Entries of this life are refused: it departed (and has not come back).
  bool departed(const NodeId& origin) const;
  // An Alive of this life at `incarnation` is refused: it is not newer than
  // the death that was declared (an orphan's departure refuses no Alive).
  bool departed(const NodeId& origin, std::uint32_t incarnation) const;
  // The incarnation its death was recorded at (0 for an orphan).
  std::uint32_t death_incarnation(const NodeId& origin) const;
  // The life whose death is recorded under `name` (generation 0: none).
  NodeId death_of(std::string_view name) const;
  // The highest version of `origin`'s life this node holds or was announced
  // (0 when it holds nothing of that life).
  std::uint64_t seen(const NodeId& origin) const;
  // This node starts a new life as `self` (a higher generation of its name):
  // its live entries are registered again under it, from version 1; its
  // previous life's tombstones go (the new life supersedes all of it).
  void new_life(NodeId self, Time now, Changes& changes);
  // Origins that came back and whose changes up to what they announced have
  // not all arrived yet, in name order.
  std::vector<std::string> behind() const;
  bool behind(const NodeId& origin) const;
  // Whether a withdrawn entry of the origin is newer than what it announced:
  // its refutation's re-registration cannot replace it, so the origin must
  // be asked to register again.
  bool stranded(const NodeId& origin) const;

  std::vector<OriginDigest> digests() const;
  // What a peer with these digests lacks, one chunk per origin.
  std::vector<OriginChunk> chunks_for(const std::vector<OriginDigest>& peer) const;
  std::uint64_t hash() const;

  // Purges tombstones learned before `before` (at or below `complete`) and
  // departure records that expired.
  void purge(Time now, Time before);

  // Lookups. `entry` returns nullptr when this node serves nothing of the
  // origin there (nothing live, withdrawn, or the origin departed).
  const std::vector<InstanceSpec>* entry(std::string_view origin, std::string_view service) const;
  static bool serves(const Origin& o, const Stored& s) {
    return !o.hidden && !s.withdrawn && !s.instances.empty();
  }
  // Origins holding live instances of `service`, in name order.
  std::vector<std::string> holders(std::string_view service) const;
  std::vector<std::string> services() const;
  const std::map<std::string, Origin, std::less<>>& origins() const { return origins_; }
  // Entries refused because their origin was at the cap.
  std::uint64_t refused_over_cap() const { return over_cap_; }

 private:
  Origin* origin_for(const NodeId& id, Changes& changes);  // nullptr: refused
  void erase_origin(std::map<std::string, Origin, std::less<>>::iterator it, Changes& changes);
  // Stores the entry; false (nothing changed) when the origin's cap refuses it.
  bool put(const std::string& origin, Origin& o, const std::string& service, std::uint64_t version,
           std::vector<InstanceSpec> instances, Time now, Changes& changes);
  static std::size_t weight(const std::vector<InstanceSpec>& instances) {
    return instances.empty() ? 1 : instances.size();
  }
  void changed(Changes& changes, const std::string& service, const std::string& origin) const;
  static void saw(Origin& o, std::uint64_t version);
  static void advance(Origin& o);
  void index(const std::string& service, const std::string& origin, bool live);

  NodeId self_;
  Faults faults_;
  std::size_t max_per_origin_;
  std::uint64_t over_cap_ = 0;
  mutable std::uint64_t hash_ = 0;  // hash(), valid until the next change
  mutable bool hash_valid_ = false;
  std::map<std::string, Origin, std::less<>> origins_;
  struct Departure {
    std::uint64_t generation = 0;
    std::int64_t incarnation = kOrphan;
    Time until{};
  };
  std::map<std::string, Departure, std::less<>> departed_;
  std::map<std::string, std::set<std::string>, std::less<>> by_service_;       // live holders
};

}  // namespace regfs::cluster
