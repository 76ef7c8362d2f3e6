// The store seam: where this node's registrations go and where other nodes'
// come from. The registry, the mount and the health checks do not know which
// store replicates; `main` picks one implementation once (--store): the gossip
// cluster (daemon/gossip, the default) or etcd (daemon/etcd).
//
// Loop thread only: every call, and every call into a RemoteSink, happens on
// the daemon's event-loop thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/instance.hpp"
#include "core/render.hpp"
#include "core/result.hpp"

namespace regfs {

// Where other nodes' registrations arrive (the registrar).
class RemoteSink {
 public:
  virtual ~RemoteSink() = default;
  // `origin`'s instances of `service` are now `instances` (empty: none).
  virtual void apply_remote(const std::string& service, const std::string& origin,
                            std::vector<InstanceSpec> instances) = 0;
};

class Replicator {
 public:
  virtual ~Replicator() = default;

  // This node's instances of `service` as restored from the state directory
  // at start: replicated as soon as the store can take them.
  virtual void restore(const std::string& service, const std::vector<InstanceSpec>& instances) = 0;
  // This node's instances of `service` after a write (empty: removed).
  // Returns once the store has taken the change as far as it acknowledges
  // anything (the gossip cluster: at once; etcd: after its commit). An error
  // means the store did not take it; the caller then undoes its own side.
  virtual Status publish(const std::string& service, const std::vector<InstanceSpec>& instances) = 0;

  // For .status.json: the members, and the store's own state.
  virtual std::vector<MemberView> members() const = 0;
  virtual StoreView store_view() const = 0;
  // Prometheus text for .metrics.
  virtual std::string metrics_text() const = 0;

  // Withdraws this node's registrations from the store as far as it can
  // (a goodbye, a revoked lease), then calls `done` once.
  virtual void leave(std::function<void()> done) = 0;
};

}  // namespace regfs
