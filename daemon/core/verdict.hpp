// The health verdict of one instance as this node last saw it, and its rules.
//
// Verdicts are local: every node checks what it reads, and the owner also
// checks its own instances in the background to decide when to reap them.
#pragma once

#include <cstdint>
#include <string>

#include "time.hpp"

namespace regfs {

struct Verdict {
  enum class State : std::uint8_t { unknown, healthy, unhealthy };

  State state = State::unknown;
  Time checked_at{};     // when the latest verdict arrived
  Time failing_since{};  // start of the current run of failures; valid while unhealthy
  std::string detail;    // what the check said ("http 200", "connection refused", ...)

  // A verdict counts for a read that accepts verdicts reached at or after `since`
  // (the read's arrival minus the freshness window).
  bool current(Time since) const { return state != State::unknown && checked_at >= since; }
  bool healthy() const { return state == State::healthy; }

  void record(bool ok, std::string what, Time now);

  // An instance failing for at least `reap_after` is removed by its owner.
  bool reapable(Time now, Duration reap_after) const {
    return state == State::unhealthy && now - failing_since >= reap_after;
  }
};

const char* to_string(Verdict::State s);

}  // namespace regfs
