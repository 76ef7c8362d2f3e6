// regfs run: when is the command ready, and under which endpoint.
//
// The command's listening sockets are found through /proc (its file
// descriptors and its descendants', matched with /proc/net/tcp{,6}); each is
// checked where it listens: a wildcard listener (0.0.0.0, ::) through the
// loopback address of its family and registered as `:PORT` (this node's
// advertised address), a listener on one address at that address and
// registered as `ADDRESS:PORT`.
//
// Which port: with --port, that one. With --port auto, the one port the
// command listens on; if it listens on several, the one port among them that
// passes the check; if several pass, none is chosen (the caller says so and
// asks for --port). The ports are looked at again on every call, so a port
// opened later, or a check that starts passing later, is seen.
#pragma once

#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

#include "cli.hpp"
#include "core/instance.hpp"

namespace regfs::cli {

// What one look at the command found.
struct Readiness {
  std::string endpoint;                // to register (`:8080`, `[::1]:8080`); empty: not ready
  std::vector<std::uint16_t> passing;  // ports whose check passed, ascending
  std::vector<std::uint16_t> ports;    // ports the command listens on, ascending
};

// Looks at `pid` and its descendants once; `port` 0 means auto. Each check is
// bounded to 500 ms.
Readiness look_for_ready(pid_t pid, std::uint16_t port, const Check& check);

// The order in which a port's listeners are tried: wildcard first, then
// addresses other than loopback, then loopback; duplicates dropped. Pure.
std::vector<Listener> in_check_order(std::vector<Listener> listeners);

// The endpoint a listener is registered as. Pure.
std::string endpoint_for(const Listener& l);

}  // namespace regfs::cli
