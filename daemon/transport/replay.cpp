#include "replay.hpp"

#include <algorithm>

namespace regfs::transport {

ReplayGuard::Verdict ReplayGuard::admit(const SealLabel& label, std::uint64_t now_ms) {
  const std::uint64_t t = label.time_ms;
  if (t + tolerance_ms_ < now_ms || t > now_ms + tolerance_ms_) return Verdict::stale;
  forget_old(now_ms);
  auto it = streams_.find(label.stream);
  if (it == streams_.end()) {
    if (floor_ms_ != 0 && t <= floor_ms_) return Verdict::replayed;
    if (streams_.size() >= max_streams_) {
      // Forget the stream heard from least recently; frames of streams not
      // known are refused up to its time from now on.
      auto oldest = std::min_element(streams_.begin(), streams_.end(), [](const auto& a, const auto& b) {
        return a.second.newest_ms < b.second.newest_ms;
      });
      floor_ms_ = std::max(floor_ms_, oldest->second.newest_ms);
      streams_.erase(oldest);
      if (t <= floor_ms_) return Verdict::replayed;
    }
    Record r;
    r.top = label.counter;
    r.newest_ms = t;
    r.seen.set(0);
    r.floor_ms = floor_ms_;
    streams_.emplace(label.stream, r);
    return Verdict::fresh;
  }
  Record& r = it->second;
  if (r.floor_ms != 0 && t <= r.floor_ms) return Verdict::replayed;
  if (label.counter > r.top) {
    const std::uint64_t ahead = label.counter - r.top;
    if (ahead >= kWindow) {
      r.seen.reset();
    } else {
      r.seen <<= static_cast<std::size_t>(ahead);
    }
    r.top = label.counter;
    r.seen.set(0);
  } else {
    const std::uint64_t behind = r.top - label.counter;
    if (behind >= kWindow || r.seen.test(static_cast<std::size_t>(behind))) return Verdict::replayed;
    r.seen.set(static_cast<std::size_t>(behind));
  }
  r.newest_ms = std::max(r.newest_ms, t);
  return Verdict::fresh;
}

void ReplayGuard::forget_old(std::uint64_t now_ms) {
  if (now_ms < next_sweep_ms_) return;
  next_sweep_ms_ = now_ms + std::max<std::uint64_t>(tolerance_ms_ / 4, 1);
  std::erase_if(streams_, [&](const auto& s) { return s.second.newest_ms + tolerance_ms_ < now_ms; });
  if (floor_ms_ + tolerance_ms_ < now_ms) floor_ms_ = 0;  // every frame up to it is stale now
}

}  // namespace regfs::transport
