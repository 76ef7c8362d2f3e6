// The quiet period of `regfs template --wait MIN[:MAX]` (consul-template's
// wait): after a change, render once nothing more has changed for MIN, but no
// later than MAX after the first change not yet rendered, so a burst of
// changes makes one render and a steady stream still renders every MAX.
// Pure: the caller passes the time in.
#pragma once

#include <algorithm>

#include "core/time.hpp"

namespace regfs::cli {

class Quiet {
 public:
  // max >= min; min == 0 renders at once.
  Quiet(Duration min, Duration max) : min_(min), max_(max) {}

  // Something the templates read changed at `now`.
  void changed(Time now) {
    if (!pending_) first_ = now;
    pending_ = true;
    last_ = now;
  }
  // A render is owed.
  bool pending() const { return pending_; }
  // When it is due (only while pending()).
  Time due() const { return std::min(last_ + min_, first_ + max_); }
  // The owed render was made.
  void rendered() { pending_ = false; }

 private:
  Duration min_;
  Duration max_;
  bool pending_ = false;
  Time first_{};  // the first change not yet rendered
  Time last_{};   // the latest change
};

}  // namespace regfs::cli
