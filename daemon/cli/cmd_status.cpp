// regfs status [--json], regfs members
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"

namespace regfs::cli {
namespace {

int load_status(const Context& ctx, nlohmann::json& doc, std::string& raw) {
  if (const int err = read_file(ctx.path(".status.json"), raw)) return fail("status", err);
  doc = nlohmann::json::parse(raw, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return fail_usage("status: the daemon's .status.json is not valid JSON", kError);
  }
  return kOk;
}

std::string text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump();
}

// A *_age_ms field as the tables show it: "120ms" (then `suffix`), or "-" when null.
std::string age_ms(const nlohmann::json& v, const char* suffix = "") {
  return v.is_number() ? std::to_string(v.get<long long>()) + "ms" + suffix : "-";
}

}  // namespace

int cmd_status(const Context& ctx, const std::vector<std::string>& args) {
  const bool json = args.size() == 1 && args[0] == "--json";
  if (!args.empty() && !json) return fail_usage("usage: regfs status [--json]");
  nlohmann::json doc;
  std::string raw;
  if (const int rc = load_status(ctx, doc, raw)) return rc;
  if (json) {
    std::cout << raw;
    return kOk;
  }
  std::vector<std::vector<std::string>> rows{{"SERVICE", "ENDPOINT", "OWNER", "CHECK", "VERDICT", "AGE"}};
  const nlohmann::json services = doc.value("services", nlohmann::json::object());
  for (const auto& [name, instances] : services.items()) {
    for (const auto& inst : instances) {
      rows.push_back({name, text(inst.value("endpoint", nlohmann::json())),
                      text(inst.value("owner", nlohmann::json())),
                      text(inst.value("check", nlohmann::json())),
                      text(inst.value("verdict", nlohmann::json())),
                      age_ms(inst.value("verdict_age_ms", nlohmann::json()))});
    }
  }
  std::cout << "node " << text(doc.value("node", nlohmann::json())) << ", "
            << rows.size() - 1 << " instance(s)\n"
            << format_table(rows);
  return kOk;
}

int cmd_members(const Context& ctx, const std::vector<std::string>& args) {
  if (!args.empty()) return fail_usage("usage: regfs members");
  nlohmann::json doc;
  std::string raw;
  if (const int rc = load_status(ctx, doc, raw)) return rc;
  std::vector<std::vector<std::string>> rows{
      {"NAME", "ADDRESS", "STATE", "INCARNATION", "GENERATION", "HEARD"}};
  const nlohmann::json members = doc.value("members", nlohmann::json::array());
  for (const auto& m : members) {
    rows.push_back(
        {text(m.value("name", nlohmann::json())) + (m.value("self", false) ? " (self)" : ""),
         text(m.value("address", nlohmann::json())), text(m.value("state", nlohmann::json())),
         text(m.value("incarnation", nlohmann::json())),
         text(m.value("generation", nlohmann::json())),
         age_ms(m.value("last_heard_age_ms", nlohmann::json()), " ago")});
  }
  std::cout << format_table(rows);
  return kOk;
}

}  // namespace regfs::cli
