// Deciding what a read answers, from the registry and the verdicts alone.
//
// The adapter asks for a plan, runs the checks the plan names, feeds the
// verdicts back into the registry and asks again, until the plan answers or
// the read deadline passes (then it asks with `final` set). Pure.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "registry.hpp"

namespace regfs {

struct ReadPlan {
  enum class Kind { serve, wait, fail };
  Kind kind = Kind::fail;
  std::vector<std::size_t> serve;  // instance indexes to answer with (serve)
  std::vector<std::size_t> check;  // instances whose verdict is not current: check them
  // Of `check`, those whose verdict was current for the read's freshness
  // window but not for the suspect's (Suspect, below): re-verifications.
  std::vector<std::size_t> reverify;
  Errc error = Errc::host_down;    // fail: host_down
};

// The endpoint a reader was handed before and now asks again about: a re-read
// says that endpoint failed the reader, so its verdict must be younger than
// for the others (docs/INTERFACES.md, "Re-reads").
struct Suspect {
  std::optional<Endpoint> endpoint;  // none: no suspect
  Time since{};                      // the oldest verdict on it this read accepts
};

// One endpoint, walking the rotation from the service's cursor. Serves the
// first instance whose current verdict is healthy; instances passed over with
// no current verdict are named in `check` either way. Waits while unchecked
// instances remain and nothing healthy is current; with `final`, fails instead.
// `since`: the oldest verdict this read accepts (arrival minus freshness window);
// for the instance at `suspect.endpoint`, the later of `since` and `suspect.since`.
ReadPlan plan_one(const Service& svc, Time since, bool final, const Suspect& suspect = {});

// Every healthy endpoint: waits until every instance has a current verdict
// (unless `final`), then serves the healthy ones in registry order.
ReadPlan plan_all(const Service& svc, Time since, bool final);

// Moves the rotation past the instance at `served`.
void advance(Service& svc, std::size_t served);

// "host:port\n" lines for the given instances, in order.
std::string render_endpoints(const Service& svc, const std::vector<std::size_t>& which);

}  // namespace regfs
