#include "verdict.hpp"

#include <utility>

namespace regfs {

void Verdict::record(bool ok, std::string what, Time now) {
  if (!ok && state != State::unhealthy) failing_since = now;
  state = ok ? State::healthy : State::unhealthy;
  checked_at = now;
  detail = std::move(what);
}

const char* to_string(Verdict::State s) {
  switch (s) {
    case Verdict::State::unknown: return "unknown";
    case Verdict::State::healthy: return "healthy";
    case Verdict::State::unhealthy: return "unhealthy";
  }
  return "unknown";
}

}  // namespace regfs
