#include "instance.hpp"

#include <charconv>

#include "host_port.hpp"

namespace regfs {
namespace {

constexpr std::string_view kBlanks = " \t\r";

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kBlanks);
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(kBlanks);
  return s.substr(first, last - first + 1);
}

Error bad(std::string_view what, std::string_view text) {
  std::string shown(text.substr(0, 64));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return Error{Errc::invalid_line, std::string(what) + ": '" + shown + "'"};
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Dotted quad with each part 0-255 and no leading zeros beyond "0".
bool valid_ipv4(std::string_view s) {
  int parts = 0;
  while (true) {
    std::size_t n = 0;
    while (n < s.size() && is_digit(s[n])) ++n;
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0')) return false;
    int value = 0;
    std::from_chars(s.data(), s.data() + n, value);
    if (value > 255) return false;
    ++parts;
    s.remove_prefix(n);
    if (s.empty()) return parts == 4;
    if (s[0] != '.' || parts == 4) return false;
    s.remove_prefix(1);
  }
}

// Hex groups and colons, at most one "::", optional trailing dotted quad.
bool valid_ipv6(std::string_view s) {
  if (s.size() < 2 || s.size() > 45) return false;
  const auto dbl = s.find("::");
  if (dbl != std::string_view::npos && s.find("::", dbl + 1) != std::string_view::npos) return false;
  int groups = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ':') {
      ++i;
      continue;
    }
    std::size_t n = 0;
    while (i + n < s.size() && s[i + n] != ':') ++n;
    const std::string_view group = s.substr(i, n);
    if (i + n == s.size() && group.find('.') != std::string_view::npos) {
      if (!valid_ipv4(group)) return false;
      groups += 2;
    } else {
      if (group.size() > 4) return false;
      for (char c : group) {
        if (!is_hex(c)) return false;
      }
      ++groups;
    }
    i += n;
  }
  if (s.find(":::") != std::string_view::npos) return false;
  if (s.front() == ':' && s.substr(0, 2) != "::") return false;
  if (s.back() == ':' && s.substr(s.size() - 2) != "::") return false;
  return dbl == std::string_view::npos ? groups == 8 : groups < 8;
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool valid_hostname(std::string_view s) {
  if (s.empty() || s.size() > kMaxHostName) return false;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find('.', start);
    if (end == std::string_view::npos) end = s.size();
    const std::string_view label = s.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!is_alnum(c) && c != '-') return false;
    }
    start = end + 1;
  }
  return true;
}

bool valid_http_path(std::string_view p) {
  if (p.empty() || p.front() != '/' || p.size() > kMaxCheckPath) return false;
  for (char c : p) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;  // no blanks, controls or raw bytes on the wire
  }
  return true;
}

}  // namespace

std::string to_string(const Endpoint& e) { return HostPort{e.host, e.port}.to_string(); }

std::string to_string(const Check& c) {
  switch (c.kind) {
    case Check::Kind::tcp: return "tcp";
    case Check::Kind::http: return "http:" + c.path;
    case Check::Kind::none: return "none";
  }
  return "tcp";
}

std::string to_line(const InstanceSpec& s) {
  std::string line = to_string(s.endpoint);
  if (s.check.kind != Check::Kind::tcp) line += " check=" + to_string(s.check);
  return line;
}

bool valid_service_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxServiceName || name.front() == '.') return false;
  for (char c : name) {
    if (!is_alnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}

bool valid_node_name(std::string_view name) {
  return name.size() <= kMaxNodeName && valid_service_name(name);
}

bool valid_host(std::string_view host) {
  if (host.find(':') != std::string_view::npos) return valid_ipv6(host);
  const bool numeric = host.find_first_not_of("0123456789.") == std::string_view::npos;
  return numeric ? valid_ipv4(host) : valid_hostname(host);
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  auto parsed = HostPort::parse(text, 1);
  if (!parsed) return parsed.error();
  std::string& host = parsed->host;
  if (text.front() == '[') {
    if (!valid_ipv6(host)) return bad("bad IPv6 address", text);
  } else {
    if (host == "0.0.0.0") host.clear();
    if (!host.empty()) {
      const bool numeric = host.find_first_not_of("0123456789.") == std::string::npos;
      if (numeric ? !valid_ipv4(host) : !valid_hostname(host)) return bad("bad host", text);
    }
  }
  if (host == "::") host.clear();
  return Endpoint{std::move(host), parsed->port};
}

Result<Check> parse_check(std::string_view text) {
  if (text == "tcp") return Check{Check::Kind::tcp, {}};
  if (text == "none") return Check{Check::Kind::none, {}};
  if (text.starts_with("http:")) {
    const std::string_view path = text.substr(5);
    if (!valid_http_path(path)) return bad("bad http check path (http:/path)", text);
    return Check{Check::Kind::http, std::string(path)};
  }
  return bad("unknown check (tcp, http:/path, none)", text);
}

Result<InstanceSpec> parse_line(std::string_view line, const Limits& limits) {
  if (line.size() > limits.max_line) {
    return Error{Errc::line_too_long,
                 "line of " + std::to_string(line.size()) + " bytes, at most " +
                     std::to_string(limits.max_line)};
  }
  if (line.find('\0') != std::string_view::npos) return bad("NUL byte in line", line);
  line = trim(line);
  const auto blank = line.find_first_of(kBlanks);
  auto endpoint = parse_endpoint(line.substr(0, blank));
  if (!endpoint) return endpoint.error();
  InstanceSpec spec{std::move(*endpoint), Check{}};
  if (blank == std::string_view::npos) return spec;

  const std::string_view rest = trim(line.substr(blank));
  if (!rest.starts_with("check=") || rest.find_first_of(kBlanks) != std::string_view::npos) {
    return bad("expected 'check=CHECK' after the endpoint", rest);
  }
  auto check = parse_check(rest.substr(6));
  if (!check) return check.error();
  spec.check = std::move(*check);
  return spec;
}

Result<std::vector<InstanceSpec>> parse_registration(std::string_view text, const Limits& limits) {
  std::vector<InstanceSpec> specs;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (trim(line).empty() && line.find('\0') == std::string_view::npos) continue;
    auto spec = parse_line(line, limits);
    if (!spec) return spec.error();
    std::erase_if(specs, [&](const InstanceSpec& s) { return s.endpoint == spec->endpoint; });
    specs.push_back(std::move(*spec));
    if (specs.size() > limits.max_instances_per_service) {
      return Error{Errc::too_many_instances,
                   "more than " + std::to_string(limits.max_instances_per_service) +
                       " instances in one service"};
    }
  }
  return specs;
}

bool is_removal(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  return first != std::string_view::npos && text[first] == '-';
}

Result<std::vector<InstanceSpec>> parse_removal(std::string_view text, const Limits& limits) {
  std::vector<InstanceSpec> specs;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const std::string_view bare = trim(line);
    if (bare.empty() && line.find('\0') == std::string_view::npos) continue;
    if (!bare.starts_with('-')) return bad("expected '-ENDPOINT' in a removal", bare);
    auto spec = parse_line(bare.substr(1), limits);
    if (!spec) return spec.error();
    std::erase_if(specs, [&](const InstanceSpec& s) { return s.endpoint == spec->endpoint; });
    specs.push_back(InstanceSpec{std::move(spec->endpoint), Check{}});
    if (specs.size() > limits.max_instances_per_service) {
      return Error{Errc::too_many_instances,
                   "more than " + std::to_string(limits.max_instances_per_service) +
                       " instances in one service"};
    }
  }
  return specs;
}

}  // namespace regfs
