// Named, seeded fault scenarios over a small simulated cluster, shared by the
// test suite, the replay tool and the soak.
//
// A scenario draws its whole script (cluster size, registrations, faults and
// their times) from the seed, runs it with invariants checked after every
// step, then heals everything, lets the cluster settle and checks that every
// node holds exactly what the alive owners registered.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cluster/config.hpp"
#include "core/time.hpp"

namespace regfs::sim {

// The configuration a scenario runs with: `shipped` is the daemon's own
// defaults (cluster::Config{}), what users run; `fast` shortens anti-entropy
// and tombstone times so that short runs exercise them too.
enum class Profile { shipped, fast };
const char* to_string(Profile p);

struct ScenarioResult {
  std::string scenario;
  Profile profile = Profile::shipped;
  std::uint64_t seed = 0;
  std::size_t nodes = 0;
  bool ok = true;
  std::string violation;  // the first broken invariant, with its simulated time
  double simulated_seconds = 0;
  std::uint64_t events = 0;
  std::vector<Duration> merge_times;  // per timed heal: until every node held the same
  cluster::Faults faults;             // deliberate defects the run had switched on
};

// Names of the deliberate defects (cluster/faults.hpp), for the replay tool:
// "drop-tombstones", "restore-on-revive", "silent-changes", "ignore-removals",
// "no-origin-cap".
bool set_fault(cluster::Faults& f, const std::string& name);

// "basic", "lossy", "partition", "oneway", "crash", "leave", "mixed",
// "partition-long" (halves that declare each other dead, removals and
// re-registrations on both sides, heal, repeat).
const std::vector<std::string>& scenario_names();

// The configuration scenarios run with: the default LAN profile with
// anti-entropy and tombstone times shortened so that short runs exercise them.
cluster::Config scenario_config();

cluster::Config profile_config(Profile p);

// A member that floods registrations ("flood", also through run_scenario;
// not in scenario_names(), whose invariants it breaks on purpose: members
// refuse what is over the cap, so they disagree about the flooder). Node 0
// registers ten times Config::max_instances_per_origin (set low here) over
// a few seconds while the others register and remove a few services each,
// with 5 % loss. Checked: no member ever holds more instances of another
// origin than the cap, and at the end each holds the flooder's up to the cap
// (the flood did arrive), every change of the others reaches every member,
// and the flooder holds what it registered.
ScenarioResult run_flood(std::uint64_t seed, std::size_t nodes = 0, bool trace = false,
                         cluster::Faults faults = {});

// Runs one scenario. `nodes` == 0 draws the cluster size (4-12) from the seed.
// `faults` switches on deliberate defects (tests of the checker itself).
ScenarioResult run_scenario(const std::string& name, std::uint64_t seed, std::size_t nodes = 0,
                            bool trace = false, Profile profile = Profile::shipped,
                            cluster::Faults faults = {});

// The one-line command that replays a result (relative to the build tree).
std::string replay_command(const ScenarioResult& r);

}  // namespace regfs::sim
