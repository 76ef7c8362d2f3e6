// A seeded simulator of many cluster cores on a simulated network and clock.
//
// Deterministic: one seed drives every random choice (network and nodes), the
// event queue is ordered by (time, sequence), and only ordered containers are
// iterated. Same seed, same calls, same run.
//
// The network carries two channels like the real transport: packets (UDP:
// lost, duplicated, reordered, delayed) and streams (TCP: delayed, never
// lost or duplicated, but cut by partitions). Partitions are checked when a
// frame is sent and again when it arrives.
//
// Each node is driven like the daemon drives its core: frames delivered with
// handle(), tick() at next_deadline(), effects drained after every call. A
// restart builds a new core with a higher generation and gives back the
// registrations the daemon would have kept in its state directory.
//
// Single-threaded; a Sim owns its nodes.
#pragma once

#include <cstdint>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cluster/core.hpp"
#include "sim/invariants.hpp"

namespace regfs::sim {

struct NetConfig {
  Duration delay = milliseconds(1);        // one-way latency of a packet
  Duration jitter = Duration(0);           // plus uniform [0, jitter)
  double loss = 0.0;                       // packet loss probability
  double dup = 0.0;                        // packet duplication probability
  double reorder = 0.0;                    // probability a packet is held back
  Duration reorder_delay = milliseconds(20);  // ... by up to this much more
  Duration stream_delay = milliseconds(2);    // a stream frame (TCP) takes this long
};

struct NodeTraffic {
  std::uint64_t packets = 0, packet_bytes = 0, streams = 0, stream_bytes = 0;
};

class Sim {
 public:
  Sim(std::uint64_t seed, cluster::Config config, NetConfig net = {});
  ~Sim();
  Sim(const Sim&) = delete;
  Sim& operator=(const Sim&) = delete;

  // Starts a node named `name` (default "n<index>") that joins the first
  // `seeds` nodes. Returns its index.
  std::size_t add(std::string name = {}, std::size_t seeds = 3);

  // Fires the next event; false when nothing is scheduled.
  bool step();
  void run_until(Time t);
  void run_for(Duration d) { run_until(now_ + d); }
  Time now() const { return now_; }

  // Faults. Groups list node indices; nodes not listed form one more group.
  void partition(const std::vector<std::vector<std::size_t>>& groups);
  void partition_oneway(std::size_t from, std::size_t to);  // frames from -> to are dropped
  void heal();
  void kill(std::size_t n);
  void restart(std::size_t n);
  void leave(std::size_t n);  // graceful goodbye, then the node stops
  void set_loss(double p) { net_.loss = p; disturbed(); }
  void set_delay(Duration d, Duration jitter = Duration(0)) { net_.delay = d; net_.jitter = jitter; }
  void set_dup(double p) { net_.dup = p; }
  void set_reorder(double p) { net_.reorder = p; }
  const NetConfig& net() const { return net_; }

  // What the daemon does for a write or an unlink on node n.
  Status set_service(std::size_t n, const std::string& service,
                     std::vector<InstanceSpec> instances);

  // Observation.
  std::size_t size() const { return nodes_.size(); }
  bool up(std::size_t n) const { return nodes_[n].core != nullptr; }
  cluster::Core& node(std::size_t n) { return *nodes_[n].core; }
  const cluster::Core& node(std::size_t n) const { return *nodes_[n].core; }
  const std::string& name(std::size_t n) const { return nodes_[n].name; }
  const std::map<std::string, std::vector<InstanceSpec>>& durable(std::size_t n) const {
    return nodes_[n].durable;
  }
  bool connected(std::size_t a, std::size_t b) const;  // both directions pass
  bool partitioned() const { return !oneway_.empty() || has_groups_; }
  Time last_disturbance() const { return last_disturbance_; }
  const NodeTraffic& traffic(std::size_t n) const { return nodes_[n].traffic; }
  std::uint64_t events_fired() const { return fired_; }
  std::uint64_t seed() const { return seed_; }

  // Invariants checked after every step (see invariants.hpp). Off by default.
  void enable_checks(CheckConfig cfg);
  // The first violation, once one happened (the run keeps going).
  const std::optional<std::string>& violation() const;
  Checker* checker() { return checker_.get(); }

  // Prints faults and membership changes to stderr (for replaying a seed).
  bool trace = false;

  // Called with every change a node reports (for benchmarks and tests).
  std::function<void(std::size_t, const cluster::Events&)> on_events;

 private:
  struct SimNode {
    std::string name;
    std::unique_ptr<cluster::Core> core;
    std::uint64_t generation = 0;
    std::uint64_t tick_token = 0;
    Time tick_at{};
    std::map<std::string, std::vector<InstanceSpec>> durable;
    std::vector<cluster::PeerAddr> seeds;
    NodeTraffic traffic;
  };
  struct Event {
    enum Kind : std::uint8_t { deliver, tick, stop } kind = deliver;
    std::size_t node = 0;
    std::size_t from = 0;
    std::uint64_t token = 0;  // tick: the node's token; deliver: the receiver's generation
    std::vector<std::uint8_t> bytes;
  };

  void start(std::size_t n);
  void after_call(std::size_t n);
  void schedule(Time at, Event e);
  void transmit(std::size_t from, cluster::Outgoing out);
  bool passes(std::size_t from, std::size_t to) const;
  double uniform();
  Duration random_duration(Duration below);
  void disturbed();
  void note(const std::string& what) const;

  std::uint64_t seed_;
  cluster::Config config_;
  NetConfig net_;
  std::mt19937_64 rng_;
  Time now_{};
  std::uint64_t next_seq_ = 0;
  std::uint64_t fired_ = 0;
  std::map<std::pair<Time, std::uint64_t>, Event> queue_;
  std::vector<SimNode> nodes_;
  std::map<std::string, std::size_t> by_addr_;
  std::vector<std::size_t> group_;  // partition group per node
  bool has_groups_ = false;
  std::map<std::pair<std::size_t, std::size_t>, bool> oneway_;
  Time last_disturbance_{};
  std::unique_ptr<Checker> checker_;
  friend class Checker;
};

}  // namespace regfs::sim
