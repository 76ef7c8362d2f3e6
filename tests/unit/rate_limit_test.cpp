#include <catch2/catch.hpp>

#include "transport/rate_limit.hpp"

using namespace regfs::transport;
using std::chrono::milliseconds;

namespace {
const RateLimiter::Clock::time_point t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
}

TEST_CASE("a source gets its burst, then its rate; others are not affected") {
  RateLimiter r(RateLimit{10, 5});
  int admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += r.admit("10.0.0.1", t0);
  CHECK(admitted == 5);
  CHECK(r.admit("10.0.0.2", t0));  // a bucket of its own
  CHECK_FALSE(r.admit("10.0.0.1", t0 + milliseconds(50)));  // half a token
  CHECK(r.admit("10.0.0.1", t0 + milliseconds(100)));
  // A second later: 10 more, never more than the burst.
  admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += r.admit("10.0.0.1", t0 + milliseconds(1100));
  CHECK(admitted == 5);
  // Over ten seconds of flooding, about the rate gets through.
  admitted = 0;
  for (int ms = 2000; ms < 12000; ++ms) admitted += r.admit("10.0.0.1", t0 + milliseconds(ms));
  CHECK(admitted >= 100);
  CHECK(admitted <= 106);
}

TEST_CASE("no limit admits everything") {
  RateLimiter r(RateLimit{});
  for (int i = 0; i < 1000; ++i) CHECK(r.admit("x", t0));
  CHECK(r.sources() == 0);
}

TEST_CASE("the table of sources stays bounded whatever sources are claimed") {
  RateLimiter r(RateLimit{10, 5}, 64);
  for (int i = 0; i < 10000; ++i) {
    r.admit("10.0.0." + std::to_string(i), t0 + milliseconds(i / 100));
    REQUIRE(r.sources() <= 64);
  }
  // A busy source keeps its bucket while idle ones make room.
  RateLimiter q(RateLimit{10, 5}, 4);
  for (int i = 0; i < 5; ++i) q.admit("busy", t0);
  for (int i = 0; i < 3; ++i) q.admit("idle" + std::to_string(i), t0);
  const auto later = t0 + std::chrono::seconds(2);  // the idle ones have filled up again
  for (int i = 0; i < 5; ++i) CHECK(q.admit("busy", later));
  CHECK(q.admit("new", later));
  CHECK(q.sources() == 2);  // busy and new
  CHECK_FALSE(q.admit("busy", later));  // still its own, empty, bucket
}
