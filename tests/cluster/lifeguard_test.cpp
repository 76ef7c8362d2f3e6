#include <catch2/catch.hpp>

#include "cluster/broadcasts.hpp"
#include "cluster/lifeguard.hpp"

using namespace regfs;
using namespace regfs::cluster;

TEST_CASE("suspicion shrinks from max toward min with confirmations", "[lifeguard]") {
  const Time start{seconds(10)};
  Suspicion s(start, seconds(1), seconds(6), 3, "a");
  CHECK(s.deadline() == start + seconds(6));
  CHECK_FALSE(s.confirm("a"));  // the first accuser does not confirm itself
  CHECK(s.confirm("b"));
  const Duration one = s.deadline() - start;
  CHECK(one < seconds(6));
  CHECK(one > seconds(1));
  CHECK_FALSE(s.confirm("b"));
  CHECK(s.confirm("c"));
  CHECK(s.confirm("d"));
  CHECK(s.deadline() == start + seconds(1));
  CHECK_FALSE(s.confirm("e"));  // beyond k nothing changes
  Suspicion none(start, seconds(1), seconds(6), 0, "a");
  CHECK(none.deadline() == start + seconds(1));
}

TEST_CASE("awareness stretches timeouts and is bounded", "[lifeguard]") {
  Awareness a(8);
  CHECK(a.scale(milliseconds(100)) == milliseconds(100));
  a.apply(3);
  CHECK(a.scale(milliseconds(100)) == milliseconds(400));
  a.apply(100);
  CHECK(a.score() == 7);
  a.apply(-100);
  CHECK(a.score() == 0);
}

TEST_CASE("broadcasts go out least-sent first, are superseded by key, and retire", "[broadcasts]") {
  Broadcasts q;
  q.queue("m/a", {1, 1, 'a'});
  q.queue("m/b", {1, 1, 'b'});
  q.queue("m/a", {1, 1, 'A'});  // supersedes the first
  CHECK(q.size() == 2);
  std::vector<std::uint8_t> out;
  CHECK(q.pack(out, 3, 2) == 3);
  CHECK(out == std::vector<std::uint8_t>{1, 1, 'A'});  // newest first among the unsent
  out.clear();
  CHECK(q.pack(out, 100, 2) == 6);
  CHECK(out == std::vector<std::uint8_t>{1, 1, 'b', 1, 1, 'A'});  // b unsent yet, then A
  out.clear();
  q.pack(out, 100, 2);  // b's second transmission: retired; A already retired
  CHECK(q.empty());
}
