// How many datagrams, or stream connections, each source address may send
// per second: a token bucket per source, so that one member (or anyone who
// can reach the port) flooding the transport costs the others nothing more
// than the excess being dropped and counted.
//
// A source gets `burst` tokens at first and `per_second` more each second,
// up to `burst`; each datagram (or connection) takes one, and one that finds
// none is refused. The bucket of a source silent long enough to have filled
// up again is the same as none, so it is forgotten once the table holds
// `max_sources`; if nearly every source is busy then, all are forgotten (each
// starts again with a full bucket), which keeps the table bounded whatever
// addresses the traffic claims to come from.
//
// Pure (the time comes in as an argument); not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace regfs::transport {

struct RateLimit {
  double per_second = 0;  // 0: no limit
  double burst = 0;
};

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kMaxSources = 4096;

  explicit RateLimiter(RateLimit limit, std::size_t max_sources = kMaxSources)
      : limit_(limit), max_sources_(max_sources) {}

  // Takes a token of `source` at `now`: false when it has none left.
  bool admit(const std::string& source, Clock::time_point now);

  std::size_t sources() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point at{};  // when `tokens` was last brought up to date
  };
  void make_room(Clock::time_point now);

  RateLimit limit_;
  std::size_t max_sources_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace regfs::transport
