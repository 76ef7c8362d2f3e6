// Rendering of the dot-files: .status.json and .metrics. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metrics.hpp"
#include "registry.hpp"

namespace regfs {

struct MemberView {
  std::string name;
  std::string address;  // gossip address, "ip:port"
  std::string state;    // alive, suspect, dead, left
  std::uint64_t incarnation = 0;
  std::uint64_t generation = 0;
  bool self = false;
  // When this node last received a frame from the member itself (on the
  // clock render_status is given); none: never (this node, etcd members).
  std::optional<Time> heard{};
};

// The store that replicates the registry, as this node sees it.
struct StoreView {
  std::string kind = "gossip";  // gossip, etcd
  bool reachable = true;
  // While unreachable: since when (UTC, RFC 3339) and for how long.
  std::string unreachable_since;
  std::int64_t unreachable_for_ms = 0;
  std::string endpoint;  // etcd: the member in use (or last tried)
};

struct NodeView {
  std::string name;
  std::uint64_t generation = 0;
  std::string advertise;
  std::vector<MemberView> members;
  StoreView store;
};

// The document described in docs/INTERFACES.md, with a trailing newline.
std::string render_status(const Registry& registry, const NodeView& node, Time now);

// Prometheus text exposition. `extra` is appended verbatim (other layers' counters).
std::string render_metrics(const Metrics& m, const Registry& registry, const std::string& extra);

}  // namespace regfs
