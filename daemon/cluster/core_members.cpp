// Membership rumors: alive, suspect, dead/left, with incarnation numbers
// inside a generation and generations across restarts. A node refutes
// suspicion or death of its own current life by raising its incarnation.
//
// A new life instead of a refutation: when the accusation is at an
// incarnation this node cannot outbid within what members accept (the last
// one, 2^32-1, or beyond half of incarnation_jump_max above its own: nobody
// honest holds an incarnation it never issued), and when it learns that a
// life of its name at a generation at least as high as its own died (its
// clock went back, or its state directory was lost). Every receiver drops
// the previous life and accepts the new one, whatever it believed of the old.
#include <algorithm>
#include <cmath>
#include <limits>

#include "cluster/core.hpp"

namespace regfs::cluster {
Duration Core::suspicion_min() const {
  const double n = static_cast<double>(std::max<std::size_t>(1, live_members()));
  const double scale = std::max(1.0, std::log10(n));
  return Duration(static_cast<Duration::rep>(cfg_.suspicion_mult * scale *
                                             static_cast<double>(cfg_.probe_interval.count())));
}

Alive Core::self_alive() const {
  return Alive{self_, me().incarnation, me().addr, me().announced};
}

void Core::refute(Time now, std::uint32_t accused, bool was_dead) {
  Member& m = me();
  if (leaving_) return;
  const std::uint64_t ceiling = std::uint64_t{m.incarnation} + cfg_.incarnation_jump_max / 2;
  if (accused == std::numeric_limits<std::uint32_t>::max() || accused >= ceiling) {
    return new_life(now, self_.generation);
  }
  m.incarnation = std::max(m.incarnation, accused) + 1;
  stats_.refutations++;
  awareness_.apply(1);
  // Whoever took this node for dead has withdrawn its entries and serves
  // them again only at newer versions (cluster/store.hpp), and a suspicion
  // may have become a death somewhere before this refutation arrives: so
  // every live entry is registered again, same instances, new version.
  for (auto& e : store_.own_entries()) {
    Entry again = store_.set_own(e.service, std::move(e.instances), now, events_.services);
    queue_rumor("e/" + self_.name + "/" + again.service, again);
  }
  m.announced = store_.own_version();
  queue_rumor("m/" + self_.name, self_alive());
  if (was_dead) push_pull_next_ = now;  // and sync soon
}

void Core::new_life(Time now, std::uint64_t above) {
  if (leaving_ || above >= std::numeric_limits<std::uint64_t>::max() - 1) return;
  self_.generation = std::max(self_.generation, above) + 1;
  Member& m = me();
  m.id = self_;
  m.incarnation = 0;
  m.state = MemberState::alive;
  m.since = now;
  store_.new_life(self_, now, events_.services);
  m.announced = store_.own_version();
  stats_.new_lives++;
  events_.generation = self_.generation;
  for (const auto& e : store_.own_entries()) queue_rumor("e/" + self_.name + "/" + e.service, e);
  queue_rumor("m/" + self_.name, self_alive());
  push_pull_next_ = now;  // and a push-pull at once: peers learn the new life whole
}

void Core::announce(Time now) {
  Member& m = me();
  if (leaving_) return;
  if (m.incarnation == std::numeric_limits<std::uint32_t>::max()) return new_life(now, self_.generation);
  m.incarnation++;
  m.announced = store_.own_version();
  queue_rumor("m/" + self_.name, self_alive());
}

bool Core::own_life_forged(const NodeId& id, std::uint64_t version) const {
  return id == self_ && version > store_.own_version();
}

void Core::on_alive(Time now, const Alive& a, bool rumor) {
  if (a.node.name == self_.name) {
    // A life above this one that is alive: a namesake, or the previous life
    // not yet declared dead (its death, when it comes, starts a new life).
    if (a.node.generation != self_.generation) return;
    if (own_life_forged(a.node, a.version)) return new_life(now, self_.generation);
    if (a.incarnation > me().incarnation) refute(now, a.incarnation, false);  // someone speaks for us: outbid it
    return;
  }
  Member* record = members_.find(a.node.name);
  const bool fresh = record == nullptr;
  if (fresh) {
    // Late gossip about a life whose death we recorded without knowing it?
    // Only a refutation (a higher incarnation) brings it back.
    if (store_.departed(a.node, a.incarnation)) return;
    record = members_.emplace(a.node.name).first;
  }
  Member& m = *record;
  const bool was_live = !fresh && is_live(m.state);
  if (fresh) {
    m = Member{a.node, a.addr, a.incarnation, MemberState::alive, now, a.version};
    if (store_.departed(a.node)) revived(now, a);
  } else if (a.node.generation > m.id.generation) {
    // A restart: the new life supersedes the old one and all it registered.
    store_.depart(m.id, m.incarnation, now + cfg_.departure_ttl, events_.services);
    suspicions_.erase(m.id.name);
    m = Member{a.node, a.addr, a.incarnation, MemberState::alive, now, a.version};
  } else if (a.node.generation < m.id.generation || a.incarnation <= m.incarnation) {
    return;
  } else {
    if (m.state == MemberState::dead || m.state == MemberState::left) {
      revived(now, a);
    } else {
      store_.revive(a.node, a.version, events_.services);  // records what it announced
      if (store_.behind(a.node)) {
        if (!catching_up_) catch_up_next_ = now;
        catching_up_ = true;
      }
    }
    suspicions_.erase(m.id.name);
    m.incarnation = a.incarnation;
    m.addr = a.addr;
    m.announced = a.version;
    if (m.state != MemberState::alive) m.since = now;
    m.state = MemberState::alive;
  }
  member_event(m, was_live, fresh);
  if (rumor) queue_rumor("m/" + m.id.name, a);
}

void Core::revived(Time now, const Alive& a) {
  // Back from a death this node believed: its old entries stay withdrawn;
  // what it registered again (and any other change since) must arrive.
  store_.revive(a.node, a.version, events_.services);
  if (!catching_up_) catch_up_next_ = now;
  catching_up_ = true;
  // A death declared at an incarnation it had already refuted (this node had
  // not heard yet): entries it registered since are withdrawn here and its
  // refutation did not register them again. Make it refute once more.
  if (store_.stranded(a.node)) send_packet(a.addr, Suspect{a.node, a.incarnation, self_.name});
}

void Core::on_suspect(Time now, const Suspect& s) {
  if (s.node.name == self_.name) {
    if (s.node.generation != self_.generation || leaving_) return;
    if (s.incarnation >= me().incarnation) {
      refute(now, s.incarnation, false);
    } else {
      // A stale suspicion: someone missed our refutation. Say it again.
      queue_rumor("m/" + self_.name, self_alive());
    }
    return;
  }
  Member* record = members_.find(s.node.name);
  if (record == nullptr) return;
  Member& m = *record;
  if (m.id != s.node || s.incarnation < m.incarnation || !is_live(m.state)) return;
  if (m.state == MemberState::suspect && s.incarnation == m.incarnation) {
    auto sus = suspicions_.find(m.id.name);
    if (sus != suspicions_.end() && sus->second.confirm(s.from)) {
      queue_rumor("m/" + m.id.name, s);
    }
    return;
  }
  m.incarnation = s.incarnation;
  m.state = MemberState::suspect;
  m.since = now;
  const std::size_t n = live_members();
  int k = cfg_.suspicion_mult - 2;
  if (n < static_cast<std::size_t>(k) + 2) k = 0;
  const Duration min = suspicion_min();
  suspicions_.erase(m.id.name);
  suspicions_.emplace(m.id.name, Suspicion(now, min, min * cfg_.suspicion_max_mult, k, s.from));
  member_event(m, true);
  queue_rumor("m/" + m.id.name, s);
}

void Core::on_dead(Time now, const Dead& d) {
  if (d.node.name == self_.name) {
    if (d.node.generation > self_.generation) {
      // A previous life of this name, with a higher generation than this one
      // (a clock behind it, a lost state directory): members refuse anything
      // at or below it, so this node lives above it.
      return new_life(now, d.node.generation);
    }
    // A leave this node did not say (it is not leaving) is refuted like a death.
    if (d.node.generation == self_.generation && d.incarnation >= me().incarnation) {
      refute(now, d.incarnation, true);
    }
    return;
  }
  Member* record = members_.find(d.node.name);
  if (record == nullptr) {
    // A node we hold no record of (we may still hold its entries, learned
    // through a third node): drop them and keep them out.
    store_.depart(d.node, d.incarnation, now + cfg_.departure_ttl, events_.services);
    return;
  }
  Member& m = *record;
  if (m.id.generation > d.node.generation) return;
  if (m.id.generation == d.node.generation) {
    if (d.incarnation < m.incarnation || !is_live(m.state)) return;
  } else {
    m.id = d.node;  // the death of a life newer than the one we knew
  }
  m.incarnation = d.incarnation;
  m.state = d.left ? MemberState::left : MemberState::dead;
  depart(now, m);
  queue_rumor("m/" + m.id.name, d);
}

void Core::depart(Time now, Member& m) {
  m.since = now;
  suspicions_.erase(m.id.name);
  store_.depart(m.id, m.incarnation, now + cfg_.departure_ttl, events_.services);
  member_event(m, true);
}

void Core::suspicion_tick(Time now) {
  for (auto it = suspicions_.begin(); it != suspicions_.end();) {
    if (it->second.deadline() > now) { ++it; continue; }
    const Member* m = members_.find(it->first);
    it = suspicions_.erase(it);
    if (m == nullptr || m->state != MemberState::suspect) continue;
    on_dead(now, Dead{m->id, m->incarnation, self_.name, false});
  }
}

}  // namespace regfs::cluster
