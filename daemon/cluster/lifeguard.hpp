// Lifeguard's two refinements of SWIM failure detection, as pure values.
//
// Awareness (local health multiplier): a node that misses acks or nacks, or
// must refute suspicions of itself, is probably the slow one; it stretches
// its own probe timeouts by (score + 1) instead of accusing others.
//
// Suspicion: a suspect is declared dead after a timeout that starts at `max`
// and shrinks toward `min` as independent confirmations (suspect messages
// from distinct members) arrive: after c of the k expected confirmations the
// timeout is max - (max - min) * log(c + 1) / log(k + 1).
#pragma once

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "core/time.hpp"

namespace regfs::cluster {

class Awareness {
 public:
  explicit Awareness(int max_score) : max_(max_score) {}
  void apply(int delta) { score_ = std::clamp(score_ + delta, 0, max_ - 1); }
  int score() const { return score_; }
  Duration scale(Duration d) const { return d * (score_ + 1); }

 private:
  int max_;
  int score_ = 0;
};

class Suspicion {
 public:
  // `from` is the first accuser (it does not count as a confirmation).
  Suspicion(Time start, Duration min, Duration max, int k, std::string from)
      : start_(start), min_(min), max_(max), k_(k) {
    accusers_.insert(std::move(from));
  }

  // Records an accusation; true when it is a new, independent confirmation
  // (the caller gossips it on only then).
  bool confirm(const std::string& from) {
    if (confirmations() >= k_) return false;
    return accusers_.insert(from).second;
  }

  int confirmations() const { return static_cast<int>(accusers_.size()) - 1; }

  Time deadline() const {
    if (k_ < 1) return start_ + min_;
    const double frac = std::log(confirmations() + 1.0) / std::log(k_ + 1.0);
    const auto span = std::chrono::duration<double, std::nano>(max_ - min_).count();
    const auto timeout = max_ - Duration(static_cast<Duration::rep>(frac * span));
    return start_ + std::max(timeout, min_);
  }

 private:
  Time start_;
  Duration min_;
  Duration max_;
  int k_;
  std::set<std::string> accusers_;
};

}  // namespace regfs::cluster
