#include "sim/invariants.hpp"

#include <algorithm>
#include <sstream>

#include "sim/sim.hpp"

namespace regfs::sim {
namespace {

std::string show(const std::vector<InstanceSpec>& v) {
  std::string s = "[";
  for (const auto& i : v) s += (s.size() > 1 ? " " : "") + to_line(i);
  return s + "]";
}

double secs(Time t) { return std::chrono::duration<double>(t.since_epoch).count(); }

}  // namespace

CheckConfig checks_for(const cluster::Config& c) {
  CheckConfig k;
  // A change reaches connected members by a direct send and gossip rounds.
  k.spread_bound = seconds(2);
  // A killed node: probed within a couple of rounds (stretched by Lifeguard
  // under loss), then the longest suspicion timeout, then gossip.
  const Duration suspicion_max = c.probe_interval * c.suspicion_mult * c.suspicion_max_mult * 2;
  k.detect_bound = c.probe_interval * c.awareness_max + suspicion_max + seconds(2);
  // Anything a lost datagram left behind is repaired by a push-pull, whose
  // first round may come up to two intervals after a node starts.
  k.settle_bound = std::max<Duration>(seconds(12), 2 * c.push_pull_interval + seconds(5));
  k.heal_bound = seconds(10);
  return k;
}

void Checker::fail(Sim& sim, std::string what) {
  if (violation_) return;
  std::ostringstream out;
  out << "t=" << secs(sim.now()) << "s: " << what;
  violation_ = out.str();
}

Time Checker::bound(Sim& sim, Duration quiet) const {
  const bool calm = !sim.partitioned() && sim.net().loss == 0 &&
                    sim.now() - sim.last_disturbance() >= cfg_.settle_bound;
  if (calm) return sim.now() + quiet;
  return std::max(sim.now(), sim.last_disturbance()) + cfg_.settle_bound + quiet;
}

void Checker::on_start(Sim& sim, std::size_t n) { on_stop(sim, n); }

void Checker::on_stop(Sim&, std::size_t n) {
  views_.erase(n);
  seen_.erase(seen_.lower_bound({n, "", ""}), seen_.lower_bound({n + 1, "", ""}));
  serving_.erase(serving_.lower_bound({n, "", ""}), serving_.lower_bound({n + 1, "", ""}));
  floor_.erase(floor_.lower_bound({n, "", ""}), floor_.lower_bound({n + 1, "", ""}));
  leaving_[n] = false;
  own_version_.erase(n);
}

void Checker::on_kill(Sim& sim, std::size_t n) {
  killed_.push_back(Killed{sim.node(n).self(), bound(sim, cfg_.detect_bound), sim.now()});
  on_stop(sim, n);
  std::erase_if(pending_, [&](const Pending& p) { return p.owner == n; });
}

void Checker::on_leave(Sim&, std::size_t n) {
  leaving_[n] = true;
  std::erase_if(pending_, [&](const Pending& p) { return p.owner == n; });
}

void Checker::on_register(Sim& sim, std::size_t n, const std::string& service,
                          const std::vector<InstanceSpec>& instances) {
  const auto& self = sim.node(n).self();
  const auto& origins = sim.node(n).store().origins();
  auto o = origins.find(self.name);
  if (o == origins.end()) return;
  auto e = o->second.entries.find(service);
  if (e == o->second.entries.end()) return;
  const Version v{self.generation, e->second.version};
  truth_[{self.name, service}][v] = instances;
  pending_.push_back(Pending{n, service, v, bound(sim, cfg_.spread_bound)});
}

void Checker::on_own_versions(Sim& sim, std::size_t n) {
  const cluster::Core& node = sim.node(n);
  const std::uint64_t v = node.store().own_version();
  const auto& self = node.self();
  auto& [life, known] = own_version_[n];
  if (life != self.generation) known = 0;
  life = self.generation;
  if (v <= known) return;
  for (const auto& [service, s] : node.store().origins().at(self.name).entries) {
    if (s.version > known) truth_[{self.name, service}][Version{self.generation, s.version}] = s.instances;
  }
  known = v;
}

void Checker::on_events(Sim& sim, std::size_t n, const cluster::Events& events) {
  // Every member is honest here and every restart takes a higher generation:
  // a new life without a restart means a node took its own state for forged.
  if (events.generation != 0) {
    return fail(sim, sim.name(n) + " started a new life at generation " +
                         std::to_string(events.generation) + " without a restart");
  }
  for (const auto& c : events.services) observe(sim, n, c.origin, c.service);
}

void Checker::on_disturbance(Sim& sim) {
  const Time later = sim.now() + cfg_.settle_bound;
  for (auto& p : pending_) p.deadline = std::max(p.deadline, later + cfg_.spread_bound);
  for (auto& k : killed_) {
    if (k.at != sim.now()) k.deadline = std::max(k.deadline, later + cfg_.detect_bound);
  }
  for (auto& [_, since] : dead_since_) since = sim.now();
}

void Checker::on_heal(Sim& sim) {
  if (cfg_.heal_bound <= Duration(0)) return;
  healed_at_ = sim.now();
  next_heal_look_ = sim.now();
}

std::optional<Checker::Version> Checker::served(Sim& sim, std::size_t n, const std::string& origin,
                                                const std::string& service) const {
  const cluster::Core& node = sim.node(n);
  if (node.instances(origin, service) == nullptr) return std::nullopt;
  const auto& o = node.store().origins().at(origin);
  return Version{o.generation, o.entries.find(service)->second.version};
}

void Checker::check_served(Sim& sim, std::size_t n, const std::string& origin,
                           const std::string& service, std::optional<Version> now_served) {
  const auto key = std::make_tuple(n, origin, service);
  auto was = serving_.find(key);
  if (was != serving_.end() && (!now_served || *now_served != was->second)) {
    auto& f = floor_[key];
    f = std::max(f, was->second);  // it stopped serving that version
  }
  if (!now_served) {
    if (was != serving_.end()) serving_.erase(was);
    return;
  }
  auto f = floor_.find(key);
  if (f != floor_.end() && *now_served <= f->second) {
    return fail(sim, sim.name(n) + " serves " + origin + "/" + service + " again at version " +
                         std::to_string(now_served->version) + " after it stopped serving version " +
                         std::to_string(f->second.version) +
                         " (resurrected: the owner never registered it again)");
  }
  serving_[key] = *now_served;
}

void Checker::observe(Sim& sim, std::size_t n, const std::string& origin,
                      const std::string& service) {
  if (origin != sim.node(n).self().name) check_served(sim, n, origin, service, served(sim, n, origin, service));
  if (violation_) return;
  const cluster::Core& node = sim.node(n);
  const auto& origins = node.store().origins();
  auto o = origins.find(origin);
  const cluster::Store::Stored* stored = nullptr;
  if (o != origins.end() && o->second.hidden) o = origins.end();  // departed: as if absent
  if (o != origins.end()) {
    auto e = o->second.entries.find(service);
    if (e != o->second.entries.end()) stored = &e->second;
  }
  auto& view = views_[n];
  if (node.instances(origin, service) != nullptr) {
    view[{origin, service}] = stored->instances;
  } else {
    view.erase({origin, service});
  }
  if (o == origins.end() || origin == node.self().name) return;
  const std::string where = sim.name(n) + " holding " + origin + "/" + service;
  const auto& truth = truth_[{origin, service}];
  auto& seen = seen_[{n, origin, service}];
  if (stored != nullptr) {
    const Version v{o->second.generation, stored->version};
    auto t = truth.find(v);
    if (t == truth.end() || t->second != stored->instances) {
      return fail(sim, where + " = " + show(stored->instances) + " at version " +
                           std::to_string(v.version) + ", which the owner never registered");
    }
    if (v < seen) {
      return fail(sim, where + " went back to version " + std::to_string(v.version) +
                           " after version " + std::to_string(seen.version) +
                           " (a removed or replaced registration reappeared)");
    }
    seen = v;
  }
  // Completeness: the latest change at or below `complete` must be held.
  const std::uint64_t gen = o->second.generation;
  auto last = truth.upper_bound(Version{gen, o->second.complete});
  if (last == truth.begin()) return;
  --last;
  if (last->first.generation != gen) return;
  const std::uint64_t held = stored ? stored->version : 0;
  if (held < last->first.version && (stored != nullptr || !last->second.empty())) {
    return fail(sim, where + ": claims every change up to " +
                         std::to_string(o->second.complete) + " but lacks version " +
                         std::to_string(last->first.version));
  }
  seen = std::max(seen, last->first);
}

void Checker::heal_check(Sim& sim) {
  if (!healed_at_ || sim.now() < next_heal_look_) return;
  next_heal_look_ = sim.now() + milliseconds(50);
  const Time healed = *healed_at_;
  if (sim.partitioned() || sim.net().loss > 0 || sim.last_disturbance() > healed) {
    healed_at_.reset();  // another fault: this heal is not timed
    return;
  }
  if (!converged(sim)) {
    merge_times_.push_back(sim.now() - healed);
    healed_at_.reset();
    return;
  }
  if (sim.now() - healed > cfg_.heal_bound) {
    healed_at_.reset();
    fail(sim, "not merged " + std::to_string(std::chrono::duration<double>(cfg_.heal_bound).count()) +
                  "s after the heal at t=" + std::to_string(secs(healed)) + "s: " + *converged(sim));
  }
}

void Checker::after_step(Sim& sim) {
  if (violation_) return;
  heal_check(sim);
  if (violation_ || sim.now() < next_full_) return;
  next_full_ = sim.now() + cfg_.full_check_every;
  full_check(sim);
}

void Checker::full_check(Sim& sim) {
  full_checks_++;
  const Time now = sim.now();
  // What every node serves, whether or not it reported a change.
  for (std::size_t i = 0; i < sim.size() && !violation_; ++i) {
    if (!sim.up(i)) continue;
    const cluster::Core& node = sim.node(i);
    std::map<std::pair<std::string, std::string>, std::optional<Version>> looked;
    for (auto it = serving_.lower_bound({i, "", ""}); it != serving_.end() && std::get<0>(it->first) == i; ++it) {
      looked[{std::get<1>(it->first), std::get<2>(it->first)}] = std::nullopt;
    }
    for (const auto& [origin, o] : node.store().origins()) {
      if (origin == node.self().name) continue;
      for (const auto& [service, st] : o.entries) {
        if (cluster::Store::serves(o, st)) looked[{origin, service}] = Version{o.generation, st.version};
      }
    }
    for (const auto& [k, v] : looked) {
      check_served(sim, i, k.first, k.second, v);
      if (violation_) return;
    }
  }
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (!sim.up(i) || leaving_[i]) continue;
    const auto& origins = sim.node(i).store().origins();
    for (const auto& k : killed_) {
      if (now < k.deadline) continue;
      auto o = origins.find(k.id.name);
      if (o == origins.end() || o->second.hidden || o->second.generation != k.id.generation) continue;
      for (const auto& [service, s] : o->second.entries) {
        if (cluster::Store::serves(o->second, s)) {
          return fail(sim, sim.name(i) + " still holds " + k.id.name + "/" + service +
                               " of a killed node past the detection bound");
        }
      }
    }
  }
  std::erase_if(killed_, [&](const Killed& k) { return now >= k.deadline + cfg_.settle_bound; });

  for (const auto& p : pending_) {
    if (now < p.deadline || !sim.up(p.owner) || leaving_[p.owner]) continue;
    if (sim.node(p.owner).self().generation != p.v.generation) continue;
    const std::string& owner = sim.name(p.owner);
    for (std::size_t i = 0; i < sim.size(); ++i) {
      if (i == p.owner || !sim.up(i) || leaving_[i] || !sim.connected(i, p.owner)) continue;
      const auto& origins = sim.node(i).store().origins();
      auto o = origins.find(owner);
      bool has = false;
      if (o != origins.end() && !o->second.hidden) {
        if (o->second.generation > p.v.generation) continue;
        auto e = o->second.entries.find(p.service);
        has = (o->second.generation == p.v.generation) &&
              (o->second.complete >= p.v.version ||
               (e != o->second.entries.end() && e->second.version >= p.v.version));
      }
      if (!has) {
        return fail(sim, "change " + owner + "/" + p.service + " v" + std::to_string(p.v.version) +
                             " did not reach connected member " + sim.name(i) + " in time");
      }
    }
  }
  std::erase_if(pending_, [&](const Pending& p) { return now >= p.deadline; });

  // Live, connected members seen dead.
  std::map<std::pair<std::size_t, std::string>, Time> still;
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (!sim.up(i) || leaving_[i]) continue;
    for (const auto& m : sim.node(i).members()) {
      if (m.state != cluster::MemberState::dead) continue;
      for (std::size_t j = 0; j < sim.size(); ++j) {
        if (sim.name(j) != m.id.name) continue;
        if (!sim.up(j) || leaving_[j] || sim.node(j).self() != m.id || !sim.connected(i, j)) break;
        auto it = dead_since_.find({i, m.id.name});
        const Time since = it == dead_since_.end() ? now : it->second;
        if (now - since > cfg_.settle_bound) {
          return fail(sim, sim.name(i) + " has seen live, connected " + m.id.name +
                               " as dead for over the settle bound");
        }
        still[{i, m.id.name}] = since;
        break;
      }
    }
  }
  dead_since_ = std::move(still);

  if (sim.partitioned() || now - sim.last_disturbance() < cfg_.settle_bound) return;
  if (auto diff = converged(sim)) return fail(sim, "not converged: " + *diff);
  for (std::size_t i = 0; i < sim.size(); ++i) {
    if (!sim.up(i) || leaving_[i]) continue;
    std::map<Key, std::vector<InstanceSpec>> held;
    for (const auto& [origin, o] : sim.node(i).store().origins()) {
      for (const auto& [service, s] : o.entries) {
        if (cluster::Store::serves(o, s)) held[{origin, service}] = s.instances;
      }
    }
    if (held != views_[i]) return fail(sim, sim.name(i) + ": change events disagree with its store");
  }
}

std::optional<std::string> Checker::converged(Sim& sim) const {
  std::map<Key, std::vector<InstanceSpec>> want;
  for (std::size_t o = 0; o < sim.size(); ++o) {
    auto l = leaving_.find(o);
    if (!sim.up(o) || (l != leaving_.end() && l->second)) continue;
    for (const auto& [service, instances] : sim.durable(o)) want[{sim.name(o), service}] = instances;
  }
  for (std::size_t i = 0; i < sim.size(); ++i) {
    auto l = leaving_.find(i);
    if (!sim.up(i) || (l != leaving_.end() && l->second)) continue;
    std::map<Key, std::vector<InstanceSpec>> held;
    for (const auto& [origin, o] : sim.node(i).store().origins()) {
      for (const auto& [service, s] : o.entries) {
        if (cluster::Store::serves(o, s)) held[{origin, service}] = s.instances;
      }
    }
    if (held == want) continue;
    for (const auto& [k, v] : want) {
      auto h = held.find(k);
      if (h == held.end() || h->second != v) {
        return sim.name(i) + " lacks " + std::get<0>(k) + "/" + std::get<1>(k) + " = " + show(v);
      }
    }
    for (const auto& [k, v] : held) {
      if (want.find(k) == want.end()) {
        return sim.name(i) + " still holds " + std::get<0>(k) + "/" + std::get<1>(k) + " = " + show(v);
      }
    }
  }
  return std::nullopt;
}

}  // namespace regfs::sim
