#include "transport/rate_limit.hpp"

#include <algorithm>

namespace regfs::transport {

namespace {
double seconds_between(RateLimiter::Clock::time_point from, RateLimiter::Clock::time_point to) {
  return to <= from ? 0.0 : std::chrono::duration<double>(to - from).count();
}
}  // namespace

bool RateLimiter::admit(const std::string& source, Clock::time_point now) {
  if (limit_.per_second <= 0) return true;
  auto it = buckets_.find(source);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_sources_) make_room(now);
    it = buckets_.emplace(source, Bucket{limit_.burst, now}).first;
  } else {
    Bucket& b = it->second;
    b.tokens = std::min(limit_.burst, b.tokens + seconds_between(b.at, now) * limit_.per_second);
    b.at = std::max(b.at, now);
  }
  if (it->second.tokens < 1.0) return false;
  it->second.tokens -= 1.0;
  return true;
}

void RateLimiter::make_room(Clock::time_point now) {
  // A source whose bucket has filled up again is the same as a new one.
  std::erase_if(buckets_, [&](const auto& entry) {
    const Bucket& b = entry.second;
    return b.tokens + seconds_between(b.at, now) * limit_.per_second >= limit_.burst;
  });
  // Too few were idle (a flood from many addresses): start afresh, so that
  // each sweep frees at least an eighth of the table and stays cheap per source.
  if (buckets_.size() > max_sources_ - max_sources_ / 8) buckets_.clear();
}

}  // namespace regfs::transport
