#include "render.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "prometheus.hpp"

namespace regfs {
namespace {

std::int64_t to_ms(Duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

}  // namespace

std::string render_status(const Registry& registry, const NodeView& node, Time now) {
  nlohmann::ordered_json doc;
  doc["node"] = node.name;
  doc["generation"] = node.generation;
  doc["advertise"] = node.advertise;
  auto& store = doc["store"] = {{"kind", node.store.kind}, {"reachable", node.store.reachable}};
  if (!node.store.endpoint.empty()) store["endpoint"] = node.store.endpoint;
  if (!node.store.reachable) {
    store["unreachable_since"] = node.store.unreachable_since;
    store["unreachable_for_ms"] = node.store.unreachable_for_ms;
  }
  auto& services = doc["services"] = nlohmann::ordered_json::object();
  for (const auto& [name, svc] : registry.services()) {
    auto& list = services[name] = nlohmann::ordered_json::array();
    for (const auto& inst : svc.instances) {
      const Verdict& v = inst.verdict;
      nlohmann::ordered_json entry;
      entry["endpoint"] = to_string(inst.spec.endpoint);
      entry["check"] = to_string(inst.spec.check);
      entry["owner"] = inst.owner;
      entry["verdict"] = to_string(v.state);
      if (v.state == Verdict::State::unknown) {
        entry["verdict_age_ms"] = nullptr;
      } else {
        entry["verdict_age_ms"] = to_ms(now - v.checked_at);
      }
      entry["detail"] = v.detail;
      entry["failing_for_ms"] =
          v.state == Verdict::State::unhealthy ? to_ms(now - v.failing_since) : 0;
      list.push_back(std::move(entry));
    }
  }
  auto& members = doc["members"] = nlohmann::ordered_json::array();
  for (const auto& m : node.members) {
    nlohmann::ordered_json entry = {{"name", m.name},
                                    {"address", m.address},
                                    {"state", m.state},
                                    {"incarnation", m.incarnation},
                                    {"generation", m.generation},
                                    {"self", m.self}};
    if (m.heard) {
      entry["last_heard_age_ms"] = std::max<std::int64_t>(0, to_ms(now - *m.heard));
    } else {
      entry["last_heard_age_ms"] = nullptr;
    }
    members.push_back(std::move(entry));
  }
  // Every name and address in here was validated where it came in; bytes
  // that are not UTF-8 (a check's detail, say) still never fail the read:
  // they show as U+FFFD.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + '\n';
}

std::string render_metrics(const Metrics& m, const Registry& registry, const std::string& extra) {
  PrometheusText out;
  out.counter("regfs_reads_total", "Reads answered by the daemon (kernel cache misses).", m.reads);
  out.counter("regfs_reads_not_found_total", "Reads of unregistered names (ENOENT).",
              m.reads_not_found);
  out.counter("regfs_reads_host_down_total", "Reads with no healthy instance (EHOSTDOWN).",
              m.reads_host_down);
  out.counter("regfs_waits_timed_out_total", "Reads of .wait/ that timed out.", m.waits_timed_out);
  out.counter("regfs_writes_total", "Registrations accepted.", m.writes);
  out.counter("regfs_writes_rejected_total", "Registrations refused.", m.writes_rejected);
  out.counter("regfs_unlinks_total", "Deregistrations.", m.unlinks);
  out.counter("regfs_checks_total", "Health checks started.", m.checks);
  out.counter("regfs_checks_failed_total", "Health checks that failed.", m.checks_failed);
  out.counter("regfs_reverify_checks_total",
              "Checks started because a process read a service again: of its last endpoint, "
              "while the verdict on it was still fresh (at most one per endpoint per 100 ms).",
              m.reverify_checks);
  out.counter("regfs_reaped_total", "Own instances removed after failing too long.", m.reaped);
  out.gauge("regfs_services", "Services with at least one instance.", registry.services().size());
  out.gauge("regfs_instances", "Registered instances, all owners.", registry.instance_count());
  out.histogram("regfs_read_seconds", "Daemon-side latency of answered reads.", m.read_latency);
  out.histogram("regfs_check_seconds", "Latency of health checks.", m.check_latency);
  return out.take() + extra;
}

}  // namespace regfs
