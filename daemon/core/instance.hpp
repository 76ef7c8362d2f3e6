// What a registration is: an endpoint and how to check it.
//
// These are plain values shared by every layer: the parser produces them from
// the lines users write, the registry stores them, the cluster replicates them
// and the health checker checks them. All functions here are pure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "result.hpp"

namespace regfs {

// host:port. An empty host means "this node's advertised address" (the user
// wrote ":port" or "0.0.0.0:port"); the owner fills it in before the instance
// leaves the node. IPv6 hosts are stored without brackets.
struct Endpoint {
  std::string host;
  std::uint16_t port = 0;

  bool is_ipv6() const { return host.find(':') != std::string::npos; }
  bool uses_advertise() const { return host.empty(); }
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

// "host:port", "[v6]:port" or ":port" for an advertise-address endpoint.
std::string to_string(const Endpoint& e);

struct Check {
  enum class Kind : std::uint8_t { tcp = 0, http = 1, none = 2 };
  Kind kind = Kind::tcp;
  std::string path;  // for http: the request path, starting with '/'

  friend auto operator<=>(const Check&, const Check&) = default;
};

// "tcp", "http:/path" or "none": the same spelling the parser accepts.
std::string to_string(const Check& c);

// One line of a registration: `ENDPOINT [check=CHECK]`.
struct InstanceSpec {
  Endpoint endpoint;
  Check check;
  friend auto operator<=>(const InstanceSpec&, const InstanceSpec&) = default;
};

// The line as it would be written back (`10.0.0.5:8080 check=http:/health`).
std::string to_line(const InstanceSpec& s);

// Bounds on what one node may register. A write over a bound fails with the
// matching Errc and changes nothing.
struct Limits {
  std::size_t max_line = 512;                  // bytes in one line, without '\n'
  std::size_t max_write = 64 * 1024;           // bytes in one write()
  std::size_t max_instances_per_service = 256; // this node's, per service
  std::size_t max_services_per_node = 16384;   // services this node registers
};

inline constexpr std::size_t kMaxServiceName = 128;
inline constexpr std::size_t kMaxHostName = 253;
inline constexpr std::size_t kMaxCheckPath = 256;

// 1-128 characters of A-Z a-z 0-9 . _ -, not starting with '.'.
bool valid_service_name(std::string_view name);

// A node name follows the service-name alphabet: 1-128 characters of
// A-Z a-z 0-9 . _ -, not starting with '.' (a host name or an FQDN fits).
// Checked on the command line and on every name a peer sends.
inline constexpr std::size_t kMaxNodeName = 128;
bool valid_node_name(std::string_view name);

// An endpoint's host as it travels between nodes: a dotted-quad IPv4
// address, an IPv6 address without brackets, or an RFC 1123 host name of at
// most 253 characters. Never empty (the owner fills in its advertise address).
bool valid_host(std::string_view host);

// Parses one line (without its newline). Surrounding blanks are ignored.
Result<InstanceSpec> parse_line(std::string_view line, const Limits& limits);

// Parses the content of one write(): one instance per line, blank lines
// ignored, a final newline optional. Any bad line fails the whole text.
// Duplicate endpoints collapse to the last line that names them.
Result<std::vector<InstanceSpec>> parse_registration(std::string_view text,
                                                     const Limits& limits);

// A write that removes instances instead of registering them: every line is
// `-ENDPOINT` (a registration line with a leading '-'; the endpoint names the
// instance, a check after it is ignored), blank lines ignored. A text is a
// removal when its first non-blank character is '-'.
bool is_removal(std::string_view text);

// Parses a removal (above); the specs carry only the endpoints to remove. Any
// bad line fails the whole text.
Result<std::vector<InstanceSpec>> parse_removal(std::string_view text, const Limits& limits);

// Parses "tcp", "http:/path", "none".
Result<Check> parse_check(std::string_view text);

// Parses "host:port", "[v6]:port", ":port" or "0.0.0.0:port".
Result<Endpoint> parse_endpoint(std::string_view text);

}  // namespace regfs
