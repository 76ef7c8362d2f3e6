// Who a node is and where it can be reached, as the cluster core sees it.
//
// Addresses are opaque to the core: it stores them, compares them and hands
// them back in effects. The transport decides what they mean ("ip:port" for
// the UDP/TCP transport, a node label in the simulator).
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace regfs::cluster {

struct PeerAddr {
  std::string value;
  friend auto operator<=>(const PeerAddr&, const PeerAddr&) = default;
};

// A node's identity. `generation` grows across restarts of the same name
// (the daemon uses max(state-dir counter + 1, wall-clock µs) at start, and a
// running node moves above a dead life of its name it learns of: see
// Core::new_life): a higher generation is a new life that supersedes
// everything known about the previous one.
struct NodeId {
  std::string name;
  std::uint64_t generation = 0;
  friend auto operator<=>(const NodeId&, const NodeId&) = default;
};

inline constexpr std::size_t kMaxNodeName = 128;
inline constexpr std::size_t kMaxAddr = 262;  // "[v6%zone]:port" and host names

// Node names follow the service-name alphabet: 1-128 of A-Z a-z 0-9 . _ -,
// not starting with '.'.
bool valid_node_name(std::string_view name);

}  // namespace regfs::cluster
