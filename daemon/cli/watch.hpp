// regfs watch: what one answer of a service turns into (pure).
#pragma once

#include <string>
#include <vector>

#include "change_waiter.hpp"
#include "command.hpp"

namespace regfs::cli {

struct WatchView {
  // "healthy", "down" (registered, nothing healthy: EHOSTDOWN), "missing"
  // (not registered: ENOENT), or "error" (another errno; `err` says which).
  std::string state;
  int err = 0;
  std::vector<std::string> endpoints;  // every healthy endpoint, as .all/ lists them
  std::string endpoint;                // the one /registry/<service> answered
};

// `all` is what .all/<service> answered, `one` what /registry/<service> did
// (only looked at when `all` has endpoints; when it failed since, the first
// of `all` stands in).
WatchView watch_view(const Answer& all, const Answer& one);

// The line printed for a view: the endpoint (with `all`: every endpoint,
// separated by spaces); an empty line when nothing is healthy.
std::string watch_line(const WatchView& view, bool all);

// The variables a COMMAND gets: REGFS_SERVICE, REGFS_STATE, REGFS_ENDPOINT,
// REGFS_ENDPOINTS (space-separated), REGFS_HOST and REGFS_PORT (of
// REGFS_ENDPOINT; IPv6 without brackets). Empty values when nothing is healthy.
Environment watch_environment(const std::string& service, const WatchView& view);

}  // namespace regfs::cli
