// The registry as this node sees it: every service, every instance, its owner
// and this node's verdict on it. Pure; not thread-safe (the daemon touches it
// from its one event-loop thread).
//
// Instances are grouped per owner so that a replicated store can stand behind
// it: the local node and the cluster both speak `replace(service, owner, ...)`
// and `drop_owner(owner)`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "instance.hpp"
#include "verdict.hpp"

namespace regfs {

struct Instance {
  std::string owner;  // node name of the daemon that accepted the registration
  InstanceSpec spec;  // endpoint with the owner's advertise address filled in
  Verdict verdict;    // this node's latest verdict
};

struct Service {
  std::vector<Instance> instances;  // ordered by (owner, endpoint): same order on every node
  std::size_t cursor = 0;           // rotation: index of the next instance to hand out
  std::uint64_t version = 0;        // bumps on every change of `instances`
};

// One instance that a replace() added or removed (for the change feed).
struct InstanceChange {
  bool added = false;  // else removed
  Instance instance;   // a removed one with its last verdict
};

class Registry {
 public:
  using Services = std::map<std::string, Service, std::less<>>;

  // Replaces every instance `owner` holds in `service` with `specs` (empty
  // removes them; a service left with no instance disappears). Verdicts of
  // instances that stay are kept. Returns whether anything changed; when
  // `diff` is given, appends what was removed, then what was added (an
  // instance whose check changed is both).
  bool replace(std::string_view service, std::string_view owner, std::vector<InstanceSpec> specs,
               std::vector<InstanceChange>* diff = nullptr);

  // Removes every instance of `owner`. Returns the services that changed.
  std::vector<std::string> drop_owner(std::string_view owner);

  // nullptr when nothing is registered under `service`. The pointer stays
  // valid until the next replace/drop_owner.
  Service* find(std::string_view service);
  const Service* find(std::string_view service) const;

  // What `owner` holds in `service`, in registry order.
  std::vector<InstanceSpec> owned(std::string_view service, std::string_view owner) const;

  const Services& services() const { return services_; }
  std::size_t instance_count() const { return instances_; }

 private:
  Services services_;
  std::size_t instances_ = 0;
  std::uint64_t next_version_ = 1;
};

// How a write through the mount combines with what the node already holds:
// `remove` takes out the instances whose endpoints `specs` name (a removal,
// see is_removal).
enum class WriteMode { replace, append, remove };

// The instances this node will hold in a service after a write of `specs`
// over `current`, or the limit it breaks (for `remove`: not_found when this
// node holds no instance at one of the endpoints). `services_held` counts the services
// this node holds now; `adds_service` says whether `current` is empty.
Result<std::vector<InstanceSpec>> merge_write(const std::vector<InstanceSpec>& current,
                                              std::vector<InstanceSpec> specs, WriteMode mode,
                                              std::size_t services_held, const Limits& limits);

}  // namespace regfs
