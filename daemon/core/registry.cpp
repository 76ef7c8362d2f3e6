#include "registry.hpp"

#include <algorithm>
#include <tuple>

namespace regfs {
namespace {

bool same_order(const Instance& a, const Instance& b) {
  return std::tie(a.owner, a.spec) < std::tie(b.owner, b.spec);
}

}  // namespace

bool Registry::replace(std::string_view service, std::string_view owner,
                       std::vector<InstanceSpec> specs, std::vector<InstanceChange>* diff) {
  auto it = services_.find(service);
  if (it == services_.end()) {
    if (specs.empty()) return false;
    it = services_.emplace(std::string(service), Service{}).first;
  }
  Service& svc = it->second;

  std::vector<Instance> kept;
  kept.reserve(svc.instances.size() + specs.size());
  std::vector<Instance> previous;  // this owner's instances before the change
  for (auto& inst : svc.instances) {
    (inst.owner == owner ? previous : kept).push_back(std::move(inst));
  }
  std::sort(specs.begin(), specs.end());
  specs.erase(std::unique(specs.begin(), specs.end()), specs.end());

  bool changed = previous.size() != specs.size();
  if (diff != nullptr) {
    for (const auto& p : previous) {
      if (!std::binary_search(specs.begin(), specs.end(), p.spec)) diff->push_back({false, p});
    }
  }
  for (auto& spec : specs) {
    Instance inst{std::string(owner), std::move(spec), {}};
    const auto old = std::find_if(previous.begin(), previous.end(),
                                  [&](const Instance& p) { return p.spec == inst.spec; });
    if (old != previous.end()) {
      inst.verdict = std::move(old->verdict);
    } else {
      changed = true;
      if (diff != nullptr) diff->push_back({true, inst});
    }
    kept.push_back(std::move(inst));
  }
  std::sort(kept.begin(), kept.end(), same_order);
  instances_ = instances_ - previous.size() + specs.size();
  svc.instances = std::move(kept);
  if (changed) svc.version = next_version_++;
  if (svc.instances.empty()) services_.erase(it);
  return changed;
}

std::vector<std::string> Registry::drop_owner(std::string_view owner) {
  std::vector<std::string> changed;
  for (const auto& [name, svc] : services_) {
    for (const auto& inst : svc.instances) {
      if (inst.owner == owner) {
        changed.push_back(name);
        break;
      }
    }
  }
  for (const auto& name : changed) replace(name, owner, {});
  return changed;
}

Service* Registry::find(std::string_view service) {
  const auto it = services_.find(service);
  return it == services_.end() ? nullptr : &it->second;
}

const Service* Registry::find(std::string_view service) const {
  const auto it = services_.find(service);
  return it == services_.end() ? nullptr : &it->second;
}

std::vector<InstanceSpec> Registry::owned(std::string_view service, std::string_view owner) const {
  std::vector<InstanceSpec> specs;
  if (const Service* svc = find(service)) {
    for (const auto& inst : svc->instances) {
      if (inst.owner == owner) specs.push_back(inst.spec);
    }
  }
  return specs;
}

Result<std::vector<InstanceSpec>> merge_write(const std::vector<InstanceSpec>& current,
                                              std::vector<InstanceSpec> specs, WriteMode mode,
                                              std::size_t services_held, const Limits& limits) {
  std::vector<InstanceSpec> result;
  if (mode == WriteMode::remove) {
    result = current;
    for (const auto& spec : specs) {
      if (std::erase_if(result, [&](const InstanceSpec& s) { return s.endpoint == spec.endpoint; }) == 0) {
        std::string detail = "this node holds no instance at ";
        detail += to_string(spec.endpoint);
        return Error{Errc::not_found, std::move(detail)};
      }
    }
    return result;
  }
  if (mode == WriteMode::append) result = current;
  for (auto& spec : specs) {
    std::erase_if(result, [&](const InstanceSpec& s) { return s.endpoint == spec.endpoint; });
    result.push_back(std::move(spec));
  }
  if (result.size() > limits.max_instances_per_service) {
    return Error{Errc::too_many_instances,
                 std::to_string(result.size()) + " instances, at most " +
                     std::to_string(limits.max_instances_per_service) + " per service"};
  }
  if (current.empty() && !result.empty() && services_held >= limits.max_services_per_node) {
    return Error{Errc::too_many_services,
                 "this node already holds " + std::to_string(services_held) + " services"};
  }
  return result;
}

}  // namespace regfs
