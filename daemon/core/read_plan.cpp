#include "read_plan.hpp"

#include <algorithm>

namespace regfs {

ReadPlan plan_one(const Service& svc, Time since, bool final, const Suspect& suspect) {
  ReadPlan plan;
  const std::size_t n = svc.instances.size();
  const Time suspect_since = std::max(since, suspect.since);
  for (std::size_t step = 0; step < n; ++step) {
    const std::size_t i = (svc.cursor + step) % n;
    const Instance& inst = svc.instances[i];
    const Verdict& v = inst.verdict;
    const bool suspected = suspect.endpoint && inst.spec.endpoint == *suspect.endpoint;
    if (!v.current(suspected ? suspect_since : since)) {
      plan.check.push_back(i);
      if (suspected && v.current(since)) plan.reverify.push_back(i);
    } else if (v.healthy() && plan.serve.empty()) {
      plan.serve.push_back(i);
    }
  }
  if (!plan.serve.empty()) {
    plan.kind = ReadPlan::Kind::serve;
  } else if (!plan.check.empty() && !final) {
    plan.kind = ReadPlan::Kind::wait;
  }
  return plan;
}

ReadPlan plan_all(const Service& svc, Time since, bool final) {
  ReadPlan plan;
  for (std::size_t i = 0; i < svc.instances.size(); ++i) {
    const Verdict& v = svc.instances[i].verdict;
    if (!v.current(since)) {
      plan.check.push_back(i);
    } else if (v.healthy()) {
      plan.serve.push_back(i);
    }
  }
  if (!plan.check.empty() && !final) {
    plan.kind = ReadPlan::Kind::wait;
  } else if (!plan.serve.empty()) {
    plan.kind = ReadPlan::Kind::serve;
  }
  return plan;
}

void advance(Service& svc, std::size_t served) {
  if (!svc.instances.empty()) svc.cursor = (served + 1) % svc.instances.size();
}

std::string render_endpoints(const Service& svc, const std::vector<std::size_t>& which) {
  std::string out;
  for (std::size_t i : which) {
    out += to_string(svc.instances[i].spec.endpoint);
    out += '\n';
  }
  return out;
}

}  // namespace regfs
