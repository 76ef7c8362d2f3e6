#include "render.hpp"

#include <nlohmann/json.hpp>

namespace regfs {
namespace {

std::int64_t to_ms(Duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

void counter(std::string& out, const char* name, const char* help, std::uint64_t value) {
  out += "# HELP regfs_";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE regfs_";
  out += name;
  out += " counter\nregfs_";
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

void gauge(std::string& out, const char* name, const char* help, std::uint64_t value) {
  out += std::string("# HELP regfs_") + name + ' ' + help + "\n# TYPE regfs_" + name +
         " gauge\nregfs_" + name + ' ' + std::to_string(value) + '\n';
}

void histogram(std::string& out, const char* name, const char* help, const Histogram& h) {
  out += std::string("# HELP regfs_") + name + ' ' + help + "\n# TYPE regfs_" + name +
         " histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBoundsUs.size(); ++i) {
    cumulative += h.buckets[i];
    out += std::string("regfs_") + name + "_bucket{le=\"" +
           std::to_string(static_cast<double>(Histogram::kBoundsUs[i]) / 1e6) + "\"} " +
           std::to_string(cumulative) + '\n';
  }
  out += std::string("regfs_") + name + "_bucket{le=\"+Inf\"} " + std::to_string(h.count) + '\n';
  out += std::string("regfs_") + name + "_sum " + std::to_string(h.sum_seconds) + '\n';
  out += std::string("regfs_") + name + "_count " + std::to_string(h.count) + '\n';
}

}  // namespace

std::string render_status(const Registry& registry, const NodeView& node, Time now) {
  nlohmann::ordered_json doc;
  doc["node"] = node.name;
  doc["generation"] = node.generation;
  doc["advertise"] = node.advertise;
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
    members.push_back({{"name", m.name},
                       {"address", m.address},
                       {"state", m.state},
                       {"incarnation", m.incarnation},
                       {"generation", m.generation},
                       {"self", m.self}});
  }
  // Every name and address in here was validated where it came in; bytes
  // that are not UTF-8 (a check's detail, say) still never fail the read:
  // they show as U+FFFD.
  return doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + '\n';
}

std::string render_metrics(const Metrics& m, const Registry& registry, const std::string& extra) {
  std::string out;
  out.reserve(4096);
  counter(out, "reads_total", "Reads answered by the daemon (kernel cache misses).", m.reads);
  counter(out, "reads_not_found_total", "Reads of unregistered names (ENOENT).", m.reads_not_found);
  counter(out, "reads_host_down_total", "Reads with no healthy instance (EHOSTDOWN).",
          m.reads_host_down);
  counter(out, "waits_timed_out_total", "Reads of .wait/ that timed out.", m.waits_timed_out);
  counter(out, "writes_total", "Registrations accepted.", m.writes);
  counter(out, "writes_rejected_total", "Registrations refused.", m.writes_rejected);
  counter(out, "unlinks_total", "Deregistrations.", m.unlinks);
  counter(out, "checks_total", "Health checks started.", m.checks);
  counter(out, "checks_failed_total", "Health checks that failed.", m.checks_failed);
  counter(out, "reaped_total", "Own instances removed after failing too long.", m.reaped);
  gauge(out, "services", "Services with at least one instance.", registry.services().size());
  gauge(out, "instances", "Registered instances, all owners.", registry.instance_count());
  histogram(out, "read_seconds", "Daemon-side latency of answered reads.", m.read_latency);
  histogram(out, "check_seconds", "Latency of health checks.", m.check_latency);
  out += extra;
  return out;
}

}  // namespace regfs
