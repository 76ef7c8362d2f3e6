// Time as the pure core sees it: a monotonic instant, passed in by the caller.
//
// Nothing in the core reads a clock. Adapters read std::chrono::steady_clock
// (the daemon) or a simulated clock (the simulator) and hand the value down.
#pragma once

#include <chrono>

namespace regfs {

using Duration = std::chrono::nanoseconds;

// An instant on a monotonic clock, as a distance from an arbitrary epoch.
struct Time {
  Duration since_epoch{0};

  friend constexpr auto operator<=>(Time, Time) = default;
  friend constexpr Time operator+(Time t, Duration d) { return Time{t.since_epoch + d}; }
  friend constexpr Time operator-(Time t, Duration d) { return Time{t.since_epoch - d}; }
  friend constexpr Duration operator-(Time a, Time b) { return a.since_epoch - b.since_epoch; }
};

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::microseconds;

}  // namespace regfs
