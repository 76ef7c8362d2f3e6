#include "host_port.hpp"

#include <charconv>

namespace regfs {
namespace {

Error bad(const std::string& what, std::string_view text) {
  std::string shown(text.substr(0, 64));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return Error{Errc::invalid_line, what + ": '" + shown + "'"};
}

}  // namespace

Result<HostPort> HostPort::parse(std::string_view text, std::uint16_t min_port) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("expected [ipv6]:port", text);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("expected host:port", text);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 5 || ec != std::errc{} || ptr != port.data() + port.size() ||
      value < min_port || value > 65535) {
    return bad("bad port (" + std::to_string(min_port) + "-65535)", text);
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(value)};
}

std::string HostPort::host_text() const { return is_ipv6() ? "[" + host + "]" : host; }

std::string HostPort::to_string() const { return host_text() + ":" + std::to_string(port); }

}  // namespace regfs
