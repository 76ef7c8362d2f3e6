#include "codec.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

namespace regfs::etcd {

using json = nlohmann::json;

namespace {

Error bad(std::string what) { return Error{Errc::io, "etcd: " + std::move(what)}; }

// Parses without exceptions; depth is bounded by the parser's own explicit
// stack, and nothing is built for a document that fails.
std::optional<json> parse_json(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::nullopt;
  return doc;
}

// etcd's 64-bit integers: JSON strings of decimal digits (the gateway's
// encoding), or plain numbers. Absent: 0. Negative or not a number: nullopt.
std::optional<std::int64_t> int_field(const json& obj, const char* name) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return 0;
  if (it->is_number_unsigned()) {
    const auto v = it->get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(v);
  }
  if (it->is_number_integer()) {
    const auto v = it->get<std::int64_t>();
    return v < 0 ? std::nullopt : std::optional<std::int64_t>(v);
  }
  if (!it->is_string()) return std::nullopt;
  const auto& s = it->get_ref<const std::string&>();
  std::int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || ptr != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

std::optional<std::string> bytes_field(const json& obj, const char* name) {
  const auto it = obj.find(name);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return base64_decode(it->get_ref<const std::string&>());
}

bool bool_field(const json& obj, const char* name) {
  const auto it = obj.find(name);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

// The gateway's error document, or a generic one.
Error gateway_error(const json& doc, std::string_view what) {
  const auto it = doc.find("error");
  if (it != doc.end()) {
    std::string message = it->is_string() ? it->get<std::string>() : it->dump();
    if (message.size() > 200) message.resize(200);
    return bad(std::string(what) + ": " + message);
  }
  return bad(std::string(what) + ": unexpected reply");
}

std::optional<KeyValue> parse_kv(const json& kv) {
  if (!kv.is_object()) return std::nullopt;
  auto key = bytes_field(kv, "key");
  auto value = bytes_field(kv, "value");
  auto lease = int_field(kv, "lease");
  auto mod = int_field(kv, "mod_revision");
  if (!key || !value || !lease || !mod || key->empty()) return std::nullopt;
  return KeyValue{std::move(*key), std::move(*value), *lease, *mod};
}

std::optional<std::int64_t> header_revision(const json& doc) {
  const auto it = doc.find("header");
  if (it == doc.end()) return 0;
  if (!it->is_object()) return std::nullopt;
  return int_field(*it, "revision");
}

}  // namespace

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& c = end.back();
    if (static_cast<unsigned char>(c) < 0xff) {
      c = static_cast<char>(static_cast<unsigned char>(c) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key (etcd's convention); unreachable for valid prefixes
}

std::string instance_key(std::string_view prefix, std::string_view service,
                         std::string_view owner, const Endpoint& endpoint) {
  std::string key(prefix);
  key.append(service).append("/").append(owner).append("/").append(to_string(endpoint));
  return key;
}

std::string instance_value(std::string_view owner, const InstanceSpec& spec) {
  const json doc = {{"Op", 0},
                    {"Addr", to_string(spec.endpoint)},
                    {"Metadata", {{"check", to_string(spec.check)}, {"owner", owner}}}};
  return doc.dump();
}

std::optional<Entry> parse_entry(std::string_view prefix, std::string_view key,
                                 std::string_view value) {
  if (!key.starts_with(prefix)) return std::nullopt;
  std::string_view rest = key.substr(prefix.size());
  const auto slash1 = rest.find('/');
  if (slash1 == std::string_view::npos) return std::nullopt;
  const auto slash2 = rest.find('/', slash1 + 1);
  if (slash2 == std::string_view::npos) return std::nullopt;
  Entry e;
  e.service = std::string(rest.substr(0, slash1));
  e.owner = std::string(rest.substr(slash1 + 1, slash2 - slash1 - 1));
  const std::string_view addr = rest.substr(slash2 + 1);
  if (!valid_service_name(e.service) || !valid_node_name(e.owner)) return std::nullopt;
  auto endpoint = parse_endpoint(addr);
  if (!endpoint || endpoint->uses_advertise() || !valid_host(endpoint->host) ||
      to_string(*endpoint) != addr) {
    return std::nullopt;
  }
  e.spec.endpoint = std::move(*endpoint);
  auto doc = parse_json(value);
  if (!doc) return std::nullopt;
  const auto op = doc->find("Op");
  const auto a = doc->find("Addr");
  const auto meta = doc->find("Metadata");
  if (op == doc->end() || !op->is_number_integer() || op->get<std::int64_t>() != 0) return std::nullopt;
  if (a == doc->end() || !a->is_string() || a->get_ref<const std::string&>() != addr) return std::nullopt;
  if (meta == doc->end() || !meta->is_object()) return std::nullopt;
  const auto check = meta->find("check");
  const auto owner = meta->find("owner");
  if (owner == meta->end() || !owner->is_string() || owner->get_ref<const std::string&>() != e.owner) {
    return std::nullopt;
  }
  if (check == meta->end() || !check->is_string()) return std::nullopt;
  auto parsed = parse_check(check->get_ref<const std::string&>());
  if (!parsed) return std::nullopt;
  e.spec.check = std::move(*parsed);
  return e;
}

Result<RangeReply> parse_range(std::string_view body) {
  auto doc = parse_json(body);
  if (!doc) return bad("range: reply is not a JSON object");
  if (doc->contains("error")) return gateway_error(*doc, "range");
  RangeReply r;
  const auto rev = header_revision(*doc);
  if (!rev || *rev == 0) return bad("range: reply without a revision");
  r.revision = *rev;
  r.more = bool_field(*doc, "more");
  const auto kvs = doc->find("kvs");
  if (kvs != doc->end() && !kvs->is_null()) {
    if (!kvs->is_array()) return bad("range: kvs is not an array");
    r.kvs.reserve(kvs->size());
    for (const auto& kv : *kvs) {
      auto parsed = parse_kv(kv);
      if (!parsed) return bad("range: a malformed key-value");
      r.kvs.push_back(std::move(*parsed));
    }
  }
  return r;
}

Result<LeaseReply> parse_lease(std::string_view body) {
  auto doc = parse_json(body);
  if (!doc) return bad("lease: reply is not a JSON object");
  if (doc->contains("error")) return gateway_error(*doc, "lease");
  const json* obj = &*doc;
  if (const auto it = doc->find("result"); it != doc->end()) {  // a stream's message
    if (!it->is_object()) return bad("lease: result is not an object");
    obj = &*it;
  }
  const auto id = int_field(*obj, "ID");
  const auto ttl = int_field(*obj, "TTL");
  if (!id || !ttl || *id == 0) return bad("lease: reply without a lease");
  if (const auto e = obj->find("error"); e != obj->end() && e->is_string() && !e->get<std::string>().empty()) {
    return bad("lease: " + e->get<std::string>().substr(0, 200));
  }
  return LeaseReply{*id, *ttl};
}

Result<WatchMessage> parse_watch(std::string_view line) {
  auto doc = parse_json(line);
  if (!doc) return bad("watch: a line that is not a JSON object");
  const auto result = doc->find("result");
  if (result == doc->end()) return gateway_error(*doc, "watch");
  if (!result->is_object()) return bad("watch: result is not an object");
  WatchMessage m;
  const auto rev = header_revision(*result);
  const auto compact = int_field(*result, "compact_revision");
  if (!rev || !compact) return bad("watch: a malformed revision");
  m.revision = *rev;
  m.compact_revision = *compact;
  m.created = bool_field(*result, "created");
  m.canceled = bool_field(*result, "canceled");
  if (const auto it = result->find("cancel_reason"); it != result->end() && it->is_string()) {
    m.cancel_reason = it->get<std::string>().substr(0, 200);
  }
  const auto events = result->find("events");
  if (events != result->end() && !events->is_null()) {
    if (!events->is_array()) return bad("watch: events is not an array");
    m.events.reserve(events->size());
    for (const auto& ev : *events) {
      if (!ev.is_object()) return bad("watch: an event is not an object");
      WatchEvent out;
      const auto type = ev.find("type");
      if (type != ev.end() && !type->is_null()) {
        if (!type->is_string()) return bad("watch: an event type is not a string");
        const auto& t = type->get_ref<const std::string&>();
        if (t == "DELETE") {
          out.deleted = true;
        } else if (t != "PUT") {
          return bad("watch: unknown event type");
        }
      }
      const auto kv = ev.find("kv");
      if (kv == ev.end()) return bad("watch: an event without kv");
      auto parsed = parse_kv(*kv);
      if (!parsed) return bad("watch: a malformed key-value");
      out.kv = std::move(*parsed);
      m.events.push_back(std::move(out));
    }
  }
  return m;
}

Result<std::int64_t> parse_header_revision(std::string_view body) {
  auto doc = parse_json(body);
  if (!doc) return bad("reply is not a JSON object");
  if (doc->contains("error")) return gateway_error(*doc, "write");
  const auto rev = header_revision(*doc);
  if (!rev || *rev == 0) return bad("reply without a revision");
  if (doc->contains("succeeded") && !bool_field(*doc, "succeeded")) return bad("transaction failed");
  return *rev;
}

std::string range_request(std::string_view prefix) {
  return json{{"key", base64_encode(prefix)}, {"range_end", base64_encode(prefix_range_end(prefix))}}
      .dump();
}

std::string lease_grant_request(std::int64_t ttl_seconds) {
  return json{{"TTL", std::to_string(ttl_seconds)}}.dump();
}

std::string lease_keepalive_request(std::int64_t id) { return json{{"ID", std::to_string(id)}}.dump(); }

std::string lease_revoke_request(std::int64_t id) { return json{{"ID", std::to_string(id)}}.dump(); }

std::string auth_request(std::string_view user, std::string_view password) {
  return json{{"name", user}, {"password", password}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::string> parse_auth(std::string_view body) {
  auto doc = parse_json(body);
  if (!doc) return bad("authenticate: reply is not a JSON object");
  if (doc->contains("error")) return gateway_error(*doc, "authenticate");
  const auto it = doc->find("token");
  if (it == doc->end() || !it->is_string()) return bad("authenticate: reply without a token");
  const auto& token = it->get_ref<const std::string&>();
  // It goes into an HTTP header: printable ASCII only, bounded.
  if (token.empty() || token.size() > 4096) return bad("authenticate: a token of a bad size");
  for (const char c : token) {
    if (c <= 0x20 || c >= 0x7f) return bad("authenticate: a token with bytes outside printable ASCII");
  }
  return token;
}

std::string watch_request(std::string_view prefix, std::int64_t start_revision) {
  return json{{"create_request",
               {{"key", base64_encode(prefix)},
                {"range_end", base64_encode(prefix_range_end(prefix))},
                {"start_revision", std::to_string(start_revision)},
                {"progress_notify", true}}}}
      .dump();
}

std::string publish_request(std::string_view prefix, std::string_view service,
                            std::string_view owner, const std::vector<InstanceSpec>& specs,
                            const std::vector<std::string>& stale, std::int64_t lease) {
  json ops = json::array();
  for (const auto& key : stale) {
    ops.push_back({{"request_delete_range", {{"key", base64_encode(key)}}}});
  }
  for (const auto& spec : specs) {
    ops.push_back({{"request_put",
                    {{"key", base64_encode(instance_key(prefix, service, owner, spec.endpoint))},
                     {"value", base64_encode(instance_value(owner, spec))},
                     {"lease", std::to_string(lease)}}}});
  }
  return json{{"success", std::move(ops)}}.dump();
}

bool LineSplitter::feed(std::string_view bytes, std::vector<std::string>& out) {
  if (failed_) return false;
  while (!bytes.empty()) {
    const auto nl = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, nl);
    if (partial_.size() + piece.size() > max_) {
      failed_ = true;
      partial_.clear();
      return false;
    }
    partial_.append(piece);
    if (nl == std::string_view::npos) break;
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    if (!partial_.empty()) out.push_back(std::move(partial_));
    partial_.clear();
    bytes.remove_prefix(nl + 1);
  }
  return true;
}

KeySpace::Changed KeySpace::reset(const std::vector<KeyValue>& kvs) {
  Changed changed;
  for (const auto& [key, e] : entries_) changed.emplace(e.service, e.owner);
  entries_.clear();
  ignored_ = 0;
  for (const auto& kv : kvs) {
    auto e = parse_entry(prefix_, kv.key, kv.value);
    if (!e) {
      ++ignored_;
      continue;
    }
    changed.emplace(e->service, e->owner);
    entries_[kv.key] = std::move(*e);
  }
  return changed;
}

KeySpace::Changed KeySpace::apply(const std::vector<WatchEvent>& events) {
  Changed changed;
  for (const auto& ev : events) {
    if (const auto it = entries_.find(ev.kv.key); it != entries_.end()) {
      changed.emplace(it->second.service, it->second.owner);
      entries_.erase(it);
    }
    if (ev.deleted) continue;
    auto e = parse_entry(prefix_, ev.kv.key, ev.kv.value);
    if (!e) {
      ++ignored_;
      continue;
    }
    changed.emplace(e->service, e->owner);
    entries_[ev.kv.key] = std::move(*e);
  }
  return changed;
}

std::vector<InstanceSpec> KeySpace::instances(std::string_view service, std::string_view owner) const {
  std::vector<InstanceSpec> out;
  for (const auto& key : keys_of(service, owner)) out.push_back(entries_.at(key).spec);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> KeySpace::keys_of(std::string_view service, std::string_view owner) const {
  std::string start = prefix_;
  start.append(service).append("/").append(owner).append("/");
  std::vector<std::string> out;
  for (auto it = entries_.lower_bound(start); it != entries_.end() && it->first.starts_with(start); ++it) {
    out.push_back(it->first);
  }
  return out;
}

std::set<std::string> KeySpace::services_of(std::string_view owner) const {
  std::set<std::string> out;
  for (const auto& [key, e] : entries_) {
    if (e.owner == owner) out.insert(e.service);
  }
  return out;
}

std::set<std::string> KeySpace::owners() const {
  std::set<std::string> out;
  for (const auto& [key, e] : entries_) out.insert(e.owner);
  return out;
}

}  // namespace regfs::etcd
