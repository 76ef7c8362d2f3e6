// The invariants a simulated cluster must keep, checked as it runs.
//
// Safety, checked on every change a node reports:
//   - what a node holds for (origin, service) is a value that origin really
//     registered at that (generation, version);
//   - per node, (generation, version) of an (origin, service) never goes
//     back: a removed or replaced registration never reappears;
//   - no resurrection, as a reader sees it: once a node stops serving an
//     (origin, service) at some (generation, version), because it was
//     removed or replaced or because the origin was declared dead, it serves
//     that name again only at a newer (generation, version). Also checked on
//     a scan of every node once a second, so a change that was applied but
//     not reported cannot hide one;
//   - a node that claims to have seen every change of an origin up to W
//     holds the latest of them (or its removal) for every service.
// Liveness, with bounds that restart at every fault (partition, heal, kill,
// restart, leave, loss change):
//   - a change of an alive owner reaches every member connected to it;
//   - a killed node's instances disappear from every node;
//   - a live node connected to an observer is not seen dead for long;
//   - once the network is whole and quiet, every node holds exactly what the
//     alive owners registered, and each node's change events add up to what
//     its core holds;
//   - a heal merges: within heal_bound of the network becoming whole (with
//     no other fault meanwhile), every node holds exactly that.
// The first violation is kept with the simulated time it happened at.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cluster/core.hpp"

namespace regfs::sim {

class Sim;

struct CheckConfig {
  Duration spread_bound = seconds(2);   // a change reaches connected members (quiet network)
  Duration settle_bound = seconds(30);  // after a fault: convergence, spread, revival
  Duration detect_bound = seconds(15);  // a killed node's instances are gone everywhere
  Duration full_check_every = seconds(1);
  Duration heal_bound = seconds(10);    // a heal merges within this (0: not checked)
};

// Checker settings derived from a cluster configuration, so that what runs
// with the daemon's defaults is held to bounds that follow from them.
CheckConfig checks_for(const cluster::Config& config);

class Checker {
 public:
  explicit Checker(CheckConfig cfg) : cfg_(cfg) {}

  // Hooks the simulator calls.
  void on_start(Sim& sim, std::size_t n);
  void on_stop(Sim& sim, std::size_t n);
  void on_kill(Sim& sim, std::size_t n);
  void on_leave(Sim& sim, std::size_t n);
  void on_register(Sim& sim, std::size_t n, const std::string& service,
                   const std::vector<InstanceSpec>& instances);
  void on_events(Sim& sim, std::size_t n, const cluster::Events& events);
  // After every call into node n: versions the node issued by itself (a
  // refutation registers its entries again) join the ground truth.
  void on_own_versions(Sim& sim, std::size_t n);
  void on_disturbance(Sim& sim);
  void on_heal(Sim& sim);
  void after_step(Sim& sim);

  // The whole-cluster check: every up node holds exactly what the up owners
  // registered. Returns the first difference, or nothing.
  std::optional<std::string> converged(Sim& sim) const;

  const std::optional<std::string>& violation() const { return violation_; }
  std::uint64_t full_checks() const { return full_checks_; }
  // For every heal followed by no other fault: how long until every node
  // held what the alive owners registered (measured every 50 ms).
  const std::vector<Duration>& merge_times() const { return merge_times_; }

 private:
  using Key = std::tuple<std::string, std::string>;  // origin, service
  struct Version {
    std::uint64_t generation = 0, version = 0;
    friend auto operator<=>(const Version&, const Version&) = default;
  };
  struct Pending {  // a registration that must reach connected members
    std::size_t owner;
    std::string service;
    Version v;
    Time deadline;
  };
  struct Killed {
    cluster::NodeId id;
    Time deadline;
    Time at;
  };

  void fail(Sim& sim, std::string what);
  void observe(Sim& sim, std::size_t n, const std::string& origin, const std::string& service);
  // What node n serves of (origin, service) now: the version, or nothing.
  std::optional<Version> served(Sim& sim, std::size_t n, const std::string& origin,
                                const std::string& service) const;
  void check_served(Sim& sim, std::size_t n, const std::string& origin, const std::string& service,
                    std::optional<Version> now_served);
  void heal_check(Sim& sim);
  void full_check(Sim& sim);
  Time bound(Sim& sim, Duration quiet) const;

  CheckConfig cfg_;
  // Ground truth: (origin, service) -> generation/version -> instances.
  std::map<Key, std::map<Version, std::vector<InstanceSpec>>> truth_;
  // Per node: the life and the last version of it recorded (a node may start
  // a new life without a restart, its versions starting again at 1).
  std::map<std::size_t, std::pair<std::uint64_t, std::uint64_t>> own_version_;
  // Per (node index, origin, service): the highest (generation, version) seen.
  std::map<std::tuple<std::size_t, std::string, std::string>, Version> seen_;
  // Per (node index, origin, service): the version served at the last look,
  // and the highest version the node has stopped serving (the floor).
  std::map<std::tuple<std::size_t, std::string, std::string>, Version> serving_;
  std::map<std::tuple<std::size_t, std::string, std::string>, Version> floor_;
  // Per node: what its events say it holds.
  std::map<std::size_t, std::map<Key, std::vector<InstanceSpec>>> views_;
  // Per (observer, member name): since when a live, connected member is seen dead.
  std::map<std::pair<std::size_t, std::string>, Time> dead_since_;
  std::vector<Pending> pending_;
  std::vector<Killed> killed_;
  std::map<std::size_t, bool> leaving_;
  Time next_full_{};
  std::optional<Time> healed_at_;  // a heal whose merge is being timed
  Time next_heal_look_{};
  std::vector<Duration> merge_times_;
  std::uint64_t full_checks_ = 0;
  std::optional<std::string> violation_;
};

}  // namespace regfs::sim
