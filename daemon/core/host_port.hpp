// A network address as users and peers write it: `host:port`, `[v6]:port`.
//
// The one spelling of an address across the daemon: registrations, the gossip
// bind and advertise addresses, transport peers and the Host header of health
// checks. Pure: parsing checks the shape only (brackets, a colon, a decimal
// port); whether the host is a valid name or address is the caller's rule
// (valid_host for registrations, the resolver for the transport).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "result.hpp"

namespace regfs {

struct HostPort {
  std::string host;  // without brackets; may be empty (":port")
  std::uint16_t port = 0;

  // "host:port", "[v6]:port" or ":port". A host without brackets is what
  // precedes the last colon (so "::1:80" is host "::1"); a host in brackets
  // must be followed by ":port". The port is `min_port`-65535 in decimal
  // digits only. A malformed text is an Errc::invalid_line error naming what
  // was expected.
  static Result<HostPort> parse(std::string_view text, std::uint16_t min_port = 0);

  bool is_ipv6() const { return host.find(':') != std::string::npos; }
  // "host:port", or "[host]:port" when the host holds a colon (IPv6).
  std::string to_string() const;
  // The host as it goes before ":port": bracketed when it holds a colon.
  std::string host_text() const;

  friend auto operator<=>(const HostPort&, const HostPort&) = default;
};

}  // namespace regfs
