#include "cluster/store.hpp"

#include <algorithm>

#include "cluster/hash.hpp"

namespace regfs::cluster {
namespace {
constexpr std::size_t kMaxAhead = 4096;
}

void Store::index(const std::string& service, const std::string& origin, bool live) {
  if (live) {
    by_service_[service].insert(origin);
    return;
  }
  auto it = by_service_.find(service);
  if (it == by_service_.end()) return;
  it->second.erase(origin);
  if (it->second.empty()) by_service_.erase(it);
}

void Store::saw(Origin& o, std::uint64_t version) {
  if (version > o.max) o.max = version;
  if (version <= o.complete) return;
  if (version == o.complete + 1) {
    o.complete = version;
  } else if (o.ahead.size() < kMaxAhead) {
    o.ahead.insert(version);
  }
  advance(o);
}

void Store::advance(Origin& o) {
  while (!o.ahead.empty() && *o.ahead.begin() <= o.complete + 1) {
    o.complete = std::max(o.complete, *o.ahead.begin());
    o.ahead.erase(o.ahead.begin());
  }
}

void Store::changed(Changes& changes, const std::string& service, const std::string& origin) const {
  if (!faults_.silent_changes) changes.push_back({service, origin});
}

bool Store::put(const std::string& origin, Origin& o, const std::string& service,
                std::uint64_t version, std::vector<InstanceSpec> instances, Time now,
                Changes& changes) {
  const auto found = o.entries.find(service);
  const std::size_t before = found == o.entries.end() ? 0 : weight(found->second.instances);
  const std::size_t after = weight(instances);
  if (after > before && o.held - before + after > max_per_origin_ && origin != self_.name &&
      !faults_.no_origin_cap) {
    ++over_cap_;
    return false;
  }
  auto [it, fresh] = o.entries.try_emplace(service);
  Stored& s = it->second;
  const bool served_before = !fresh && serves(o, s);
  const bool same = !fresh && s.instances == instances;
  o.held = o.held - before + after;
  if (faults_.drop_tombstones && instances.empty() && origin != self_.name) {
    if (served_before) {
      index(service, origin, false);
      changed(changes, service, origin);
    }
    o.held -= after;
    o.entries.erase(it);
    return true;
  }
  s.version = version;
  s.instances = std::move(instances);
  s.withdrawn = false;
  s.removed_at = s.instances.empty() ? now : Time{};
  const bool served_after = serves(o, s);
  if (served_before != served_after) index(service, origin, served_after);
  if (served_before != served_after || (served_after && !same)) changed(changes, service, origin);
  return true;
}

void Store::erase_origin(std::map<std::string, Origin, std::less<>>::iterator it,
                         Changes& changes) {
  for (auto& [service, s] : it->second.entries) {
    if (!serves(it->second, s)) continue;
    index(service, it->first, false);
    changed(changes, service, it->first);
  }
  origins_.erase(it);
}

Store::Origin* Store::origin_for(const NodeId& id, Changes& changes) {
  if (id.name == self_.name) return nullptr;  // only this node writes its own entries
  if (departed(id)) return nullptr;
  auto it = origins_.find(id.name);
  if (it != origins_.end()) {
    if (it->second.generation > id.generation) return nullptr;
    if (it->second.generation == id.generation) return &it->second;
    erase_origin(it, changes);  // a new life supersedes the old one
  }
  Origin& o = origins_[id.name];
  o.generation = id.generation;
  return &o;
}

Entry Store::set_own(std::string_view service, std::vector<InstanceSpec> instances, Time now,
                     Changes& changes) {
  hash_valid_ = false;
  Origin& o = origins_[self_.name];
  o.generation = self_.generation;
  const std::uint64_t version = o.max + 1;
  std::string name(service);
  put(self_.name, o, name, version, instances, now, changes);
  saw(o, version);
  return Entry{self_, std::move(name), version, std::move(instances)};
}

std::uint64_t Store::own_version() const {
  auto it = origins_.find(self_.name);
  return it == origins_.end() ? 0 : it->second.max;
}

std::vector<Entry> Store::own_entries() const {
  std::vector<Entry> out;
  auto it = origins_.find(self_.name);
  if (it == origins_.end()) return out;
  for (const auto& [service, s] : it->second.entries) {
    if (!s.instances.empty()) out.push_back(Entry{self_, service, s.version, s.instances});
  }
  return out;
}

bool Store::apply(const Entry& e, Time now, Changes& changes) {
  hash_valid_ = false;
  Origin* o = origin_for(e.origin, changes);
  if (o == nullptr || e.version <= o->complete) return false;
  if (faults_.ignore_removals && e.instances.empty()) return false;
  auto it = o->entries.find(e.service);
  bool newer = it == o->entries.end() || it->second.version < e.version;
  if (newer) newer = put(e.origin.name, *o, e.service, e.version, e.instances, now, changes);
  saw(*o, e.version);  // refused at the cap: seen all the same, so not asked for again
  return newer;
}

void Store::apply(const OriginChunk& c, Time now, Changes& changes) {
  hash_valid_ = false;
  Origin* o = origin_for(c.origin, changes);
  if (o == nullptr) return;
  const std::string& name = c.origin.name;
  // An honest sender is complete at most up to what it carries: every change
  // up to its `complete` is held (an item, or superseded by a newer one) or
  // was a tombstone purged (at or below its purge mark, a snapshot's base).
  // An increment's base is at most the receiver's own completeness.
  std::uint64_t carried = c.base;
  for (const auto& item : c.items) carried = std::max(carried, item.version);
  const std::uint64_t upto = std::min(c.upto, carried);
  if (c.snapshot) {
    std::set<std::string_view> listed;
    for (const auto& item : c.items) listed.insert(item.service);
    for (auto it = o->entries.begin(); it != o->entries.end();) {
      if (it->second.version > upto || listed.count(it->first) != 0) { ++it; continue; }
      if (serves(*o, it->second)) {
        index(it->first, name, false);
        changed(changes, it->first, name);
      } else if (it->second.instances.empty()) {
        o->purged = std::max(o->purged, it->second.version);
      }
      o->held -= weight(it->second.instances);
      it = o->entries.erase(it);
    }
    o->purged = std::max(o->purged, c.base);
  }
  const bool covers = c.snapshot || c.base <= o->complete;
  for (const auto& item : c.items) {
    if (item.version <= o->complete) continue;
    if (faults_.ignore_removals && item.instances.empty()) continue;
    auto it = o->entries.find(item.service);
    if (it == o->entries.end() || it->second.version < item.version) {
      put(name, *o, item.service, item.version, item.instances, now, changes);
    }
    if (!covers || item.version > upto) saw(*o, item.version);
  }
  o->max = std::max(o->max, upto);
  if (covers && upto > o->complete) {
    o->complete = upto;
    advance(*o);
  }
}

void Store::depart(const NodeId& origin, std::int64_t incarnation, Time until, Changes& changes) {
  hash_valid_ = false;
  auto& rec = departed_[origin.name];
  if (rec.generation < origin.generation ||
      (rec.generation == origin.generation && rec.incarnation <= incarnation)) {
    rec = {origin.generation, incarnation, until};
  }
  auto it = origins_.find(origin.name);
  if (it == origins_.end() || it->second.generation > origin.generation) return;
  if (it->second.generation < origin.generation) return erase_origin(it, changes);
  Origin& o = it->second;
  if (o.hidden) return;
  for (auto& [service, s] : o.entries) {
    if (s.instances.empty()) continue;
    if (serves(o, s)) {
      index(service, it->first, false);
      changed(changes, service, it->first);
    }
    s.withdrawn = true;
  }
  o.hidden = true;
}

void Store::revive(const NodeId& origin, std::uint64_t announced, Changes& changes) {
  hash_valid_ = false;
  auto d = departed_.find(origin.name);
  if (d != departed_.end() && d->second.generation <= origin.generation) departed_.erase(d);
  if (origin.name == self_.name) return;
  auto it = origins_.find(origin.name);
  if (it == origins_.end()) {
    // Nothing held of it, but what it registered while it was taken for
    // dead was refused here: remember what it announced, to catch up.
    if (announced == 0) return;
    it = origins_.try_emplace(origin.name).first;
    it->second.generation = origin.generation;
  }
  if (it->second.generation != origin.generation) return;
  Origin& o = it->second;
  o.announced = std::max(o.announced, announced);
  if (!o.hidden) return;
  o.hidden = false;
  if (!faults_.restore_on_revive) return;
  for (auto& [service, s] : o.entries) {
    if (!s.withdrawn || s.instances.empty()) continue;
    s.withdrawn = false;
    index(service, it->first, true);
    changed(changes, service, it->first);
  }
}

std::uint32_t Store::death_incarnation(const NodeId& origin) const {
  auto it = departed_.find(origin.name);
  if (it == departed_.end() || it->second.incarnation < 0) return 0;
  return static_cast<std::uint32_t>(it->second.incarnation);
}

NodeId Store::death_of(std::string_view name) const {
  auto it = departed_.find(name);
  if (it == departed_.end()) return NodeId{};
  return NodeId{it->first, it->second.generation};
}

std::uint64_t Store::seen(const NodeId& origin) const {
  auto it = origins_.find(origin.name);
  if (it == origins_.end() || it->second.generation != origin.generation) return 0;
  return std::max(it->second.max, it->second.announced);
}

void Store::new_life(NodeId self, Time now, Changes& changes) {
  hash_valid_ = false;
  const std::vector<Entry> live = own_entries();
  auto it = origins_.find(self_.name);
  if (it != origins_.end()) erase_origin(it, changes);
  self_ = std::move(self);
  for (const auto& e : live) set_own(e.service, e.instances, now, changes);
}

bool Store::stranded(const NodeId& origin) const {
  auto it = origins_.find(origin.name);
  if (it == origins_.end() || it->second.generation != origin.generation) return false;
  for (const auto& [_, s] : it->second.entries) {
    if (s.withdrawn && s.version > it->second.announced) return true;
  }
  return false;
}

bool Store::behind(const NodeId& origin) const {
  auto it = origins_.find(origin.name);
  return it != origins_.end() && it->second.generation == origin.generation &&
         !it->second.hidden && it->second.announced > it->second.complete;
}

std::vector<std::string> Store::behind() const {
  std::vector<std::string> out;
  for (const auto& [name, o] : origins_) {
    if (!o.hidden && o.announced > o.complete) out.push_back(name);
  }
  return out;
}

bool Store::departed(const NodeId& origin) const {
  auto it = departed_.find(origin.name);
  return it != departed_.end() && it->second.generation >= origin.generation;
}

bool Store::departed(const NodeId& origin, std::uint32_t incarnation) const {
  auto it = departed_.find(origin.name);
  if (it == departed_.end()) return false;
  const Departure& d = it->second;
  return d.generation > origin.generation ||
         (d.generation == origin.generation && d.incarnation >= std::int64_t{incarnation});
}

std::vector<OriginDigest> Store::digests() const {
  std::vector<OriginDigest> out;
  out.reserve(origins_.size());
  for (const auto& [name, o] : origins_) {
    if (o.hidden) continue;
    out.push_back(OriginDigest{NodeId{name, o.generation}, o.complete, o.max});
  }
  return out;
}

std::vector<OriginChunk> Store::chunks_for(const std::vector<OriginDigest>& peer) const {
  std::map<std::string_view, const OriginDigest*> theirs;
  for (const auto& d : peer) theirs[d.origin.name] = &d;
  std::vector<OriginChunk> out;
  for (const auto& [name, o] : origins_) {
    if (o.hidden) continue;
    auto t = theirs.find(name);
    const OriginDigest* d = t == theirs.end() ? nullptr : t->second;
    if (d != nullptr && d->origin.generation > o.generation) continue;
    const bool same_life = d != nullptr && d->origin.generation == o.generation;
    const std::uint64_t base = same_life ? d->complete : 0;
    if (same_life && base >= o.max) continue;
    OriginChunk c;
    c.origin = NodeId{name, o.generation};
    c.upto = o.complete;
    if (!same_life || o.purged > base) {
      c.snapshot = true;
      c.base = o.purged;
    } else {
      c.base = base;
    }
    for (const auto& [service, s] : o.entries) {
      if (c.snapshot || s.version > base) c.items.push_back({service, s.version, s.instances});
    }
    if (!c.snapshot && c.items.empty() && c.upto <= base) continue;
    out.push_back(std::move(c));
  }
  return out;
}

std::uint64_t Store::hash() const {
  // Asked on every ping answered (the hash rides in the ack): computed once
  // per change, not once per ping over every origin.
  if (hash_valid_) return hash_;
  Fnv64 h;
  for (const auto& [name, o] : origins_) {
    if (o.hidden) continue;
    h.add(name);
    h.add(o.generation);
    h.add(o.complete);
    h.add(o.max);
  }
  hash_ = h.value();
  hash_valid_ = true;
  return hash_;
}

void Store::purge(Time now, Time before) {
  hash_valid_ = false;
  for (auto& [name, o] : origins_) {
    for (auto it = o.entries.begin(); it != o.entries.end();) {
      const Stored& s = it->second;
      if (s.instances.empty() && s.removed_at < before && s.version <= o.complete) {
        o.purged = std::max(o.purged, s.version);
        o.held -= weight(s.instances);
        it = o.entries.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = departed_.begin(); it != departed_.end();) {
    if (it->second.until > now) { ++it; continue; }
    auto o = origins_.find(it->first);
    if (o != origins_.end() && o->second.hidden) origins_.erase(o);
    it = departed_.erase(it);
  }
}

const std::vector<InstanceSpec>* Store::entry(std::string_view origin,
                                              std::string_view service) const {
  auto o = origins_.find(origin);
  if (o == origins_.end()) return nullptr;
  auto e = o->second.entries.find(service);
  if (e == o->second.entries.end() || !serves(o->second, e->second)) return nullptr;
  return &e->second.instances;
}

std::vector<std::string> Store::holders(std::string_view service) const {
  auto it = by_service_.find(service);
  if (it == by_service_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> Store::services() const {
  std::vector<std::string> out;
  out.reserve(by_service_.size());
  for (const auto& [s, _] : by_service_) out.push_back(s);
  return out;
}

}  // namespace regfs::cluster
