#include "sim/scenario.hpp"

#include <algorithm>
#include <map>
#include <random>

#include "sim/sim.hpp"

namespace regfs::sim {
namespace {

struct Script {
  std::mt19937_64 rng;
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng() % n; }
  bool chance(double p) { return static_cast<double>(rng() >> 11) * 0x1.0p-53 < p; }
  Duration between(Duration lo, Duration hi) {
    return lo + Duration(static_cast<Duration::rep>(below(static_cast<std::uint64_t>((hi - lo).count()) + 1)));
  }
};

std::vector<InstanceSpec> random_instances(Script& s) {
  std::vector<InstanceSpec> v;
  const std::size_t n = s.below(4);  // 0 removes
  for (std::size_t i = 0; i < n; ++i) {
    InstanceSpec spec;
    spec.endpoint.host = "10.0." + std::to_string(s.below(4)) + "." + std::to_string(s.below(250));
    spec.endpoint.port = static_cast<std::uint16_t>(8000 + s.below(100));
    if (s.chance(0.3)) { spec.check.kind = Check::Kind::http; spec.check.path = "/health"; }
    if (std::find(v.begin(), v.end(), spec) == v.end()) v.push_back(spec);
  }
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::size_t> up_nodes(Sim& sim) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < sim.size(); ++i) if (sim.up(i)) out.push_back(i);
  return out;
}

void random_registration(Sim& sim, Script& s) {
  auto up = up_nodes(sim);
  if (up.empty()) return;
  const std::size_t n = up[s.below(up.size())];
  (void)sim.set_service(n, "svc" + std::to_string(s.below(6)), random_instances(s));
}

void random_partition(Sim& sim, Script& s) {
  std::vector<std::size_t> side;
  for (std::size_t i = 0; i < sim.size(); ++i) if (s.chance(0.4)) side.push_back(i);
  if (side.empty()) side.push_back(s.below(sim.size()));
  sim.partition({side});
}

void random_fault(const std::string& kind, Sim& sim, Script& s, std::vector<std::size_t>& stopped) {
  if (kind == "partition") {
    random_partition(sim, s);
  } else if (kind == "oneway") {
    const std::size_t blocks = 1 + s.below(3);
    for (std::size_t i = 0; i < blocks; ++i) {
      const std::size_t a = s.below(sim.size()), b = s.below(sim.size());
      if (a != b) sim.partition_oneway(a, b);
    }
  } else if (kind == "crash" || kind == "leave") {
    auto up = up_nodes(sim);
    if (up.size() <= 2) return;
    const std::size_t n = up[s.below(up.size())];
    if (kind == "crash") sim.kill(n); else sim.leave(n);
    stopped.push_back(n);
  } else if (kind == "restart") {
    if (stopped.empty()) return;
    const std::size_t i = s.below(stopped.size());
    if (!sim.up(stopped[i])) sim.restart(stopped[i]);
    stopped.erase(stopped.begin() + static_cast<std::ptrdiff_t>(i));
  } else if (kind == "loss") {
    sim.set_loss(s.chance(0.5) ? 0.0 : 0.05 * static_cast<double>(1 + s.below(3)));
  } else if (kind == "heal") {
    sim.heal();
  }
}

// Two halves, cut apart for longer than it takes each to declare the other
// dead, while both sides remove and re-register; then a heal with nothing
// else going on, so that the merge is timed; three times over.
void partition_long(Sim& sim, Script& s, const CheckConfig& checks) {
  sim.run_for(seconds(2));  // the cluster forms first: a node cut off from its seeds cannot join
  for (int round = 0; round < 3 && !sim.violation(); ++round) {
    std::vector<std::size_t> side;
    for (std::size_t i = 0; i < sim.size(); ++i) if (s.chance(0.5)) side.push_back(i);
    if (side.empty() || side.size() == sim.size()) side = {s.below(sim.size())};
    sim.partition({side});
    const Time heal_at = sim.now() + checks.detect_bound + s.between(seconds(1), seconds(10));
    while (sim.now() < heal_at && !sim.violation()) {
      sim.run_for(s.between(milliseconds(100), milliseconds(1500)));
      random_registration(sim, s);
    }
    sim.heal();
    sim.run_for(checks.heal_bound + seconds(1));
    random_registration(sim, s);
    sim.run_for(seconds(2));
  }
}

}  // namespace

const std::vector<std::string>& scenario_names() {
  static const std::vector<std::string> names{"basic", "lossy", "partition", "oneway",
                                              "crash", "leave", "mixed", "partition-long"};
  return names;
}

const char* to_string(Profile p) { return p == Profile::shipped ? "defaults" : "fast"; }

cluster::Config profile_config(Profile p) {
  return p == Profile::shipped ? cluster::Config{} : scenario_config();
}

cluster::Config scenario_config() {
  cluster::Config c;
  c.push_pull_interval = seconds(1);
  c.rejoin_interval = seconds(2);
  c.tombstone_ttl = seconds(8);
  c.purge_interval = milliseconds(500);
  c.gossip_to_dead = seconds(10);
  return c;
}

ScenarioResult run_flood(std::uint64_t seed, std::size_t nodes, bool trace, cluster::Faults faults) {
  Script s{std::mt19937_64(seed ^ 0xf100dULL)};
  const std::size_t drawn = 4 + s.below(5);
  if (nodes == 0) nodes = drawn;
  ScenarioResult r{"flood", Profile::fast, seed, nodes, true, {}, 0, 0, {}, faults};
  constexpr std::size_t kCap = 200;
  cluster::Config config = scenario_config();
  config.max_instances_per_origin = kCap;
  config.faults = faults;
  NetConfig net;
  net.loss = 0.05;
  Sim sim(seed, config, net);
  sim.trace = trace;
  for (std::size_t i = 0; i < nodes; ++i) sim.add();
  sim.run_for(seconds(2));

  // What the honest members (1..) registered last, by (origin, service).
  std::map<std::pair<std::string, std::string>, std::vector<InstanceSpec>> honest;
  auto fail = [&](std::string what) {
    if (!r.ok) return;
    r.ok = false;
    r.violation = "at " + std::to_string(sim.now().since_epoch.count() / 1000000) + " ms: " + what;
  };
  auto check_cap = [&] {
    for (std::size_t n = 0; n < nodes; ++n) {
      for (const auto& [origin, o] : sim.node(n).store().origins()) {
        if (origin == sim.name(n) || o.held <= kCap) continue;
        fail(sim.name(n) + " holds " + std::to_string(o.held) + " instances of " + origin +
             ", over the cap of " + std::to_string(kCap));
      }
    }
  };
  // The flood: 500 services of 4 instances each, in bursts, 10x the cap.
  std::size_t flooded = 0;
  const Time end = sim.now() + seconds(6);
  while (sim.now() < end && r.ok) {
    for (int burst = 0; burst < 20 && flooded < 500; ++burst, ++flooded) {
      std::vector<InstanceSpec> four;
      for (std::uint16_t p = 0; p < 4; ++p) {
        four.push_back(InstanceSpec{Endpoint{"10.9." + std::to_string(flooded % 250) + ".1",
                                             static_cast<std::uint16_t>(9000 + p)}, Check{}});
      }
      if (!sim.set_service(0, "flood" + std::to_string(flooded), std::move(four))) {
        fail("the flooder's own registration was refused");
      }
    }
    if (s.chance(0.5)) {
      const std::size_t n = 1 + s.below(nodes - 1);
      const std::string service = "svc" + std::to_string(s.below(5));
      auto instances = random_instances(s);
      if (sim.set_service(n, service, instances)) honest[{sim.name(n), service}] = instances;
    }
    for (int i = 0; i < 10; ++i) {
      sim.run_for(milliseconds(20));
      check_cap();
    }
  }
  // Heal the loss and let anti-entropy finish.
  sim.set_loss(0);
  for (int i = 0; i < 100 && r.ok; ++i) {
    sim.run_for(milliseconds(100));
    check_cap();
  }
  for (std::size_t n = 0; n < nodes && r.ok; ++n) {
    for (const auto& [key, instances] : honest) {
      const auto* held = sim.node(n).instances(key.first, key.second);
      const std::vector<InstanceSpec> got = held == nullptr ? std::vector<InstanceSpec>{} : *held;
      if (got != instances) {
        fail(sim.name(n) + " does not hold " + key.first + "'s " + key.second + " as registered");
      }
    }
  }
  // The flood did arrive: every other member holds the flooder's entries up to the cap.
  for (std::size_t n = 1; n < nodes && r.ok; ++n) {
    const auto& origins = sim.node(n).store().origins();
    const auto it = origins.find(sim.name(0));
    const std::size_t held = it == origins.end() ? 0 : it->second.held;
    if (held + 4 <= kCap) {
      fail(sim.name(n) + " holds only " + std::to_string(held) + " instances of the flooder");
    }
  }
  if (r.ok && sim.node(0).store().own_entries().size() != flooded) {
    fail("the flooder holds " + std::to_string(sim.node(0).store().own_entries().size()) +
         " of its " + std::to_string(flooded) + " services");
  }
  r.simulated_seconds = std::chrono::duration<double>(sim.now().since_epoch).count();
  r.events = sim.events_fired();
  return r;
}

ScenarioResult run_scenario(const std::string& name, std::uint64_t seed, std::size_t nodes,
                            bool trace, Profile profile, cluster::Faults faults) {
  if (name == "flood") return run_flood(seed, nodes, trace, faults);
  Script s{std::mt19937_64(seed ^ 0x5ce7a210c0ffeeULL)};
  // Drawn whether or not it is given, so that a replay with --nodes N runs
  // the same script as the run that printed it.
  const std::size_t drawn = 4 + s.below(9);
  if (nodes == 0) nodes = drawn;
  NetConfig net;
  if (name == "lossy" || name == "mixed") {
    net.loss = 0.02 * static_cast<double>(1 + s.below(5));
    net.dup = 0.05;
    net.reorder = 0.1;
    net.jitter = milliseconds(2);
  }
  cluster::Config config = profile_config(profile);
  config.faults = faults;
  Sim sim(seed, config, net);
  sim.trace = trace;
  CheckConfig checks = checks_for(config);
  if (profile == Profile::fast) {
    checks.settle_bound = seconds(12);
    checks.detect_bound = seconds(8);
  }
  sim.enable_checks(checks);
  for (std::size_t i = 0; i < nodes; ++i) {
    sim.add();
    sim.run_for(s.between(milliseconds(0), milliseconds(50)));
  }
  // Registrations and faults, for about ten simulated seconds.
  std::vector<std::size_t> stopped;
  if (name == "partition-long") partition_long(sim, s, checks);
  const Time end = sim.now() + (name == "partition-long" ? Duration(0) : seconds(10));
  Time next_fault = sim.now() + s.between(seconds(1), seconds(3));
  while (sim.now() < end && !sim.violation()) {
    sim.run_for(s.between(milliseconds(20), milliseconds(400)));
    random_registration(sim, s);
    if (sim.now() < next_fault || name == "basic" || name == "lossy") continue;
    next_fault = sim.now() + s.between(seconds(1), seconds(4));
    std::string kind = name;
    if (name == "mixed") {
      static const char* kinds[] = {"partition", "oneway", "crash", "leave", "restart", "loss", "heal"};
      kind = kinds[s.below(7)];
    } else if (name == "crash" || name == "leave") {
      kind = s.chance(0.3) ? "restart" : name;
    } else if (s.chance(0.4)) {
      kind = "heal";
    }
    random_fault(kind, sim, s, stopped);
  }
  // Heal, settle, and demand convergence.
  sim.heal();
  sim.set_loss(0);
  sim.run_until(sim.last_disturbance() + checks.settle_bound + seconds(3));
  ScenarioResult r{name, profile, seed, nodes, true, {}, 0, 0, sim.checker()->merge_times(), faults};
  if (auto v = sim.violation()) {
    r.ok = false;
    r.violation = *v;
  } else if (auto diff = sim.checker()->converged(sim)) {
    r.ok = false;
    r.violation = "not converged at the end: " + *diff;
  }
  r.simulated_seconds = std::chrono::duration<double>(sim.now().since_epoch).count();
  r.events = sim.events_fired();
  return r;
}

bool set_fault(cluster::Faults& f, const std::string& name) {
  if (name == "drop-tombstones") f.drop_tombstones = true;
  else if (name == "restore-on-revive") f.restore_on_revive = true;
  else if (name == "silent-changes") f.silent_changes = true;
  else if (name == "ignore-removals") f.ignore_removals = true;
  else if (name == "no-origin-cap") f.no_origin_cap = true;
  else return false;
  return true;
}

std::string replay_command(const ScenarioResult& r) {
  std::string faults;
  if (r.faults.drop_tombstones) faults += " --fault drop-tombstones";
  if (r.faults.restore_on_revive) faults += " --fault restore-on-revive";
  if (r.faults.silent_changes) faults += " --fault silent-changes";
  if (r.faults.ignore_removals) faults += " --fault ignore-removals";
  if (r.faults.no_origin_cap) faults += " --fault no-origin-cap";
  return "tests/cluster/sim_replay --scenario " + r.scenario + " --profile " +
         to_string(r.profile) + " --seed " + std::to_string(r.seed) + " --nodes " +
         std::to_string(r.nodes) + faults;
}

}  // namespace regfs::sim
