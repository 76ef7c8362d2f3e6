// ReplayGuard: the window of counters per nonce stream, the clock tolerance,
// and forgetting.
#include <catch2/catch.hpp>

#include "transport/replay.hpp"

using namespace regfs::transport;
using V = ReplayGuard::Verdict;

namespace {
SealLabel label(std::uint8_t stream, std::uint64_t counter, std::uint64_t time_ms) {
  SealLabel l;
  l.stream.fill(stream);
  l.counter = counter;
  l.time_ms = time_ms;
  return l;
}
constexpr std::uint64_t kNow = 1'700'000'000'000;
}  // namespace

TEST_CASE("a frame is admitted once; reordered frames within the window are admitted") {
  ReplayGuard g(60'000);
  CHECK(g.admit(label(1, 10, kNow), kNow) == V::fresh);
  CHECK(g.admit(label(1, 10, kNow), kNow) == V::replayed);
  CHECK(g.admit(label(1, 12, kNow), kNow) == V::fresh);
  CHECK(g.admit(label(1, 11, kNow), kNow) == V::fresh);  // late, not seen before
  CHECK(g.admit(label(1, 11, kNow), kNow) == V::replayed);
  CHECK(g.admit(label(1, 12, kNow), kNow) == V::replayed);
  CHECK(g.admit(label(2, 10, kNow), kNow) == V::fresh);  // another stream has its own window
  // Far ahead: what falls out of the window is refused, the rest is judged.
  CHECK(g.admit(label(1, 12 + ReplayGuard::kWindow, kNow), kNow) == V::fresh);
  CHECK(g.admit(label(1, 12, kNow), kNow) == V::replayed);  // out of the window
  CHECK(g.admit(label(1, 13, kNow), kNow) == V::fresh);     // its oldest place, never seen
  CHECK(g.admit(label(1, 13, kNow), kNow) == V::replayed);
  CHECK(g.admit(label(1, 12 + 3 * ReplayGuard::kWindow, kNow), kNow) == V::fresh);
  CHECK(g.admit(label(1, 12 + ReplayGuard::kWindow, kNow), kNow) == V::replayed);
}

TEST_CASE("a frame stamped beyond the clock tolerance is stale") {
  ReplayGuard g(60'000);
  CHECK(g.admit(label(1, 1, kNow - 60'001), kNow) == V::stale);
  CHECK(g.admit(label(1, 2, kNow + 60'001), kNow) == V::stale);
  CHECK(g.admit(label(1, 3, kNow - 60'000), kNow) == V::fresh);
  CHECK(g.admit(label(1, 4, kNow + 60'000), kNow) == V::fresh);
}

TEST_CASE("a quiet stream is forgotten, and its frames are stale by then") {
  ReplayGuard g(60'000);
  REQUIRE(g.admit(label(1, 1, kNow), kNow) == V::fresh);
  REQUIRE(g.admit(label(2, 1, kNow + 61'000), kNow + 61'000) == V::fresh);
  CHECK(g.streams() == 1);  // stream 1's newest frame is older than the tolerance
  CHECK(g.admit(label(1, 1, kNow), kNow + 61'000) == V::stale);
}

TEST_CASE("past max_streams, the least recent stream goes and its past is refused") {
  ReplayGuard g(60'000, 3);
  for (std::uint8_t s = 1; s <= 3; ++s) REQUIRE(g.admit(label(s, 1, kNow + s), kNow + 10) == V::fresh);
  REQUIRE(g.admit(label(4, 1, kNow + 4), kNow + 10) == V::fresh);  // stream 1 forgotten
  CHECK(g.streams() == 3);
  CHECK(g.admit(label(1, 1, kNow + 1), kNow + 10) == V::replayed);  // at or below the floor
  CHECK(g.admit(label(1, 2, kNow + 20), kNow + 20) == V::fresh);    // newer: a live sender
}

// Found by tests/fuzz/wire_sealed.cpp: once a forgotten stream was heard from
// again, its frames from before were judged by the new record's window alone.
TEST_CASE("a forgotten stream heard from again still refuses its past") {
  ReplayGuard g(60'000, 3);
  for (std::uint8_t s = 1; s <= 3; ++s) REQUIRE(g.admit(label(s, 5, kNow + s), kNow + 10) == V::fresh);
  REQUIRE(g.admit(label(4, 5, kNow + 4), kNow + 10) == V::fresh);   // stream 1 forgotten
  REQUIRE(g.admit(label(1, 7, kNow + 20), kNow + 20) == V::fresh);  // heard from again
  CHECK(g.admit(label(1, 5, kNow + 1), kNow + 20) == V::replayed);  // admitted before it was forgotten
  CHECK(g.admit(label(1, 6, kNow + 15), kNow + 20) == V::fresh);    // after the floor: judged by the window
  CHECK(g.admit(label(1, 6, kNow + 15), kNow + 20) == V::replayed);
}
