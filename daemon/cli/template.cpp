#include "template.hpp"

#include <algorithm>
#include <kainjow/mustache.hpp>
#include <nlohmann/json.hpp>

#include "core/instance.hpp"
#include "options.hpp"

namespace regfs::cli {
namespace {

namespace mustache = kainjow::mustache;
using Data = mustache::data;

constexpr std::string_view kPrefix = "service:";

bool name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

Error invalid(std::string detail) { return Error{Errc::invalid_line, std::move(detail)}; }

// The 1-based line of the first occurrence of `what` in `text`, or 0.
std::size_t line_of(std::string_view text, std::string_view what) {
  const auto at = text.find(what);
  if (at == std::string_view::npos) return 0;
  return 1 + static_cast<std::size_t>(
                 std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

// The names a template may use: `service:NAME[!]` anywhere, the instance's
// fields inside a section over one. Anything else is recorded as unknown,
// which fails the render.
class Lookup : public mustache::basic_context<std::string> {
 public:
  Lookup(const Data* root, const std::map<std::string, Data>& services) : services_(services) {
    items_.push_back(root);
  }

  void push(const Data* data) override { items_.insert(items_.begin(), data); }
  void pop() override { items_.erase(items_.begin()); }

  const Data* get(const std::string& name) const override {
    if (name == ".") return items_.front();
    if (name.starts_with(kPrefix)) {
      std::string service = name.substr(kPrefix.size());
      if (service.ends_with('!')) service.pop_back();
      const auto it = services_.find(service);
      if (it != services_.end()) return &it->second;
    } else {
      for (const Data* item : items_) {
        if (const Data* found = item->get(name)) return found;
      }
    }
    if (unknown_.empty()) unknown_ = name;
    return nullptr;
  }

  const Data* get_partial(const std::string& name) const override {
    if (unknown_.empty()) unknown_ = ">" + name;
    return nullptr;
  }

  const std::string& unknown() const { return unknown_; }

 private:
  std::vector<const Data*> items_;
  const std::map<std::string, Data>& services_;
  mutable std::string unknown_;  // the first name the template used that does not exist
};

Data instance_data(const TemplateInstance& inst, const std::string& service, std::size_t index,
                   std::size_t count) {
  Data d;
  d.set("endpoint", inst.endpoint);
  d.set("host", inst.host);
  d.set("port", std::to_string(inst.port));
  d.set("owner", inst.owner);
  d.set("check", inst.check);
  d.set("service", service);
  d.set("index", std::to_string(index));
  d.set("first", Data(index == 0));
  d.set("last", Data(index + 1 == count));
  return d;
}

}  // namespace

Result<Template> Template::parse(std::string_view text) {
  Template t;
  t.text_ = std::string(text);
  // Which services the template names: every `service:NAME` in the text (in a
  // comment too; watching one more name costs nothing).
  for (auto at = text.find(kPrefix); at != std::string_view::npos;
       at = text.find(kPrefix, at + 1)) {
    std::size_t end = at + kPrefix.size();
    while (end < text.size() && name_char(text[end])) ++end;
    const std::string name(text.substr(at + kPrefix.size(), end - at - kPrefix.size()));
    if (name.empty()) continue;
    if (!valid_service_name(name)) {
      const auto line =
          1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n');
      return invalid("line " + std::to_string(line) + ": '" + name +
                     "' is not a service name (1-128 of A-Z a-z 0-9 . _ -, not starting with '.')");
    }
    t.services_.insert(name);
    if (end < text.size() && text[end] == '!') t.required_.insert(name);
  }
  // Two trial renders, one where every service has an instance and one where
  // none has, reach the tags of both kinds of section, so a misspelt name
  // fails here, before anything is written.
  std::map<std::string, ServiceData> some, none;
  for (const auto& name : t.services_) {
    some[name] =
        ServiceData{true, {TemplateInstance{"192.0.2.1:1", "192.0.2.1", 1, "node", "tcp"}}};
  }
  for (const auto* trial : {&some, &none}) {
    if (auto r = t.render_any(*trial); !r) return r.error();
  }
  return t;
}

Result<std::string> Template::render(const std::map<std::string, ServiceData>& data) const {
  for (const auto& name : required_) {
    const auto it = data.find(name);
    if (it == data.end() || !it->second.registered) {
      return Error{Errc::not_found, "required service " + name + " is not registered"};
    }
    if (it->second.healthy.empty()) {
      return Error{Errc::host_down, "required service " + name + " has no healthy instance"};
    }
  }
  return render_any(data);
}

Result<std::string> Template::render_any(const std::map<std::string, ServiceData>& data) const {
  std::map<std::string, Data> services;
  for (const auto& name : services_) {
    Data list{Data::type::list};
    const auto it = data.find(name);
    if (it != data.end()) {
      const auto& healthy = it->second.healthy;
      for (std::size_t i = 0; i < healthy.size(); ++i) {
        list.push_back(instance_data(healthy[i], name, i, healthy.size()));
      }
    }
    services.emplace(name, std::move(list));
  }
  mustache::mustache tmpl{text_};
  if (!tmpl.is_valid()) return invalid(tmpl.error_message());
  tmpl.set_custom_escape([](const std::string& s) { return s; });
  const Data root;
  Lookup lookup{&root, services};
  std::string out = tmpl.render(lookup);
  if (!tmpl.error_message().empty()) return invalid(tmpl.error_message());
  if (!lookup.unknown().empty()) {
    const std::string& name = lookup.unknown();
    std::string detail;
    if (const auto line = line_of(text_, name); line != 0)
      detail = "line " + std::to_string(line) + ": ";
    if (name.starts_with('>')) {
      detail += "partials ({{" + name + "}}) are not supported";
    } else if (name.starts_with(kPrefix)) {
      detail += "'" + name.substr(kPrefix.size()) + "' is not a service name";
    } else {
      detail += "unknown name '" + name +
                "' (service:NAME, service:NAME!, and in a section over one: endpoint, host, port, "
                "owner, check, service, index, first, last)";
    }
    return invalid(detail);
  }
  return out;
}

Result<TemplateInstance> instance_from_endpoint(std::string_view endpoint) {
  auto ep = parse_endpoint(endpoint);
  if (!ep) return ep.error();
  if (ep->uses_advertise()) return invalid("endpoint without a host: " + std::string(endpoint));
  TemplateInstance inst;
  inst.endpoint = to_string(*ep);
  inst.host = ep->host;
  inst.port = ep->port;
  return inst;
}

StatusIndex index_status(std::string_view status_json) {
  StatusIndex index;
  const auto doc = nlohmann::json::parse(status_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return index;
  const auto services = doc.find("services");
  if (services == doc.end() || !services->is_object()) return index;
  for (const auto& [name, instances] : services->items()) {
    if (!instances.is_array()) continue;
    auto& by_endpoint = index[name];
    for (const auto& inst : instances) {
      if (!inst.is_object()) continue;
      const auto text = [&](const char* key) {
        const auto it = inst.find(key);
        return it != inst.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      by_endpoint[text("endpoint")] = InstanceInfo{text("owner"), text("check")};
    }
  }
  return index;
}

std::vector<TemplateInstance> parse_all_answer(std::string_view all, const StatusIndex& status,
                                               const std::string& service) {
  std::vector<TemplateInstance> out;
  const auto svc = status.find(service);
  std::size_t pos = 0;
  while (pos < all.size()) {
    const auto nl = std::min(all.find('\n', pos), all.size());
    const std::string_view line = all.substr(pos, nl - pos);
    pos = nl + 1;
    auto inst = instance_from_endpoint(line);
    if (!inst) continue;
    if (svc != status.end()) {
      if (const auto it = svc->second.find(inst->endpoint); it != svc->second.end()) {
        inst->owner = it->second.owner;
        inst->check = it->second.check;
      }
    }
    out.push_back(std::move(*inst));
  }
  std::sort(out.begin(), out.end(), [](const TemplateInstance& a, const TemplateInstance& b) {
    return a.endpoint < b.endpoint;
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const TemplateInstance& a, const TemplateInstance& b) {
                          return a.endpoint == b.endpoint;
                        }),
            out.end());
  return out;
}

Result<TemplateSpec> parse_template_spec(std::string_view arg) {
  const auto first = arg.find(':');
  if (first == std::string_view::npos)
    return invalid("'" + std::string(arg) + "': expected IN:OUT[:COMMAND]");
  const auto second = arg.find(':', first + 1);
  TemplateSpec spec;
  spec.in = std::string(arg.substr(0, first));
  spec.out = std::string(arg.substr(
      first + 1, second == std::string_view::npos ? std::string_view::npos : second - first - 1));
  if (second != std::string_view::npos) spec.command = std::string(arg.substr(second + 1));
  if (spec.in.empty() || spec.out.empty()) {
    return invalid("'" + std::string(arg) +
                   "': expected IN:OUT[:COMMAND] with IN and OUT not empty");
  }
  if (second != std::string_view::npos &&
      spec.command.find_first_not_of(" \t") == std::string::npos) {
    return invalid("'" + std::string(arg) + "': the COMMAND after OUT: is empty");
  }
  if (spec.out.ends_with('/')) return invalid("'" + spec.out + "': OUT must name a file");
  return spec;
}

Result<WaitSpec> parse_wait(std::string_view arg) {
  const auto colon = arg.find(':');
  auto min = parse_duration(arg.substr(0, colon));
  if (!min) return invalid("--wait: " + min.error().detail);
  WaitSpec w{*min, *min * 4};
  if (colon != std::string_view::npos) {
    auto max = parse_duration(arg.substr(colon + 1));
    if (!max) return invalid("--wait: " + max.error().detail);
    w.max = *max;
  }
  if (w.max < w.min) return invalid("--wait MIN:MAX: MAX is below MIN");
  return w;
}

}  // namespace regfs::cli
