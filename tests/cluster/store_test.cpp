#include <catch2/catch.hpp>

#include "cluster/store.hpp"

using namespace regfs;
using namespace regfs::cluster;

namespace {
std::vector<InstanceSpec> one(std::string host) {
  return {InstanceSpec{Endpoint{std::move(host), 80}, Check{}}};
}
const NodeId kA{"a", 5};
const NodeId kB{"b", 9};
}  // namespace

TEST_CASE("own changes bump one version per change", "[store]") {
  Store s(kA);
  Changes ch;
  auto e1 = s.set_own("web", one("h1"), Time{}, ch);
  auto e2 = s.set_own("db", one("h2"), Time{}, ch);
  auto e3 = s.set_own("web", {}, Time{}, ch);
  CHECK(e1.version == 1);
  CHECK(e2.version == 2);
  CHECK(e3.version == 3);
  CHECK(e3.instances.empty());
  CHECK(ch.size() == 3);
  CHECK(s.entry("a", "web") == nullptr);
  CHECK(s.holders("db") == std::vector<std::string>{"a"});
  CHECK(s.own_entries().size() == 1);
}

TEST_CASE("replicas apply newer entries only and never go back", "[store]") {
  Store s(kB);
  Changes ch;
  CHECK(s.apply(Entry{kA, "web", 2, one("new")}, Time{}, ch));
  CHECK_FALSE(s.apply(Entry{kA, "web", 1, one("old")}, Time{}, ch));
  CHECK((*s.entry("a", "web"))[0].endpoint.host == "new");
  // A tombstone hides the service; the older live value cannot come back.
  CHECK(s.apply(Entry{kA, "web", 3, {}}, Time{}, ch));
  CHECK(s.entry("a", "web") == nullptr);
  CHECK_FALSE(s.apply(Entry{kA, "web", 2, one("new")}, Time{}, ch));
  CHECK(s.holders("web").empty());
  // Nobody else writes our own entries.
  CHECK_FALSE(s.apply(Entry{kB, "web", 7, one("x")}, Time{}, ch));
}

TEST_CASE("completeness advances over contiguous versions and guards purged tombstones", "[store]") {
  Store s(kB);
  Changes ch;
  s.apply(Entry{kA, "x", 1, one("1")}, Time{}, ch);
  s.apply(Entry{kA, "y", 3, one("3")}, Time{}, ch);
  CHECK(s.origins().at("a").complete == 1);
  s.apply(Entry{kA, "x", 2, {}}, Time{}, ch);  // fills the gap
  CHECK(s.origins().at("a").complete == 3);
  // The tombstone is purged after its TTL, and version 1 of x still cannot return.
  s.purge(Time{seconds(100)}, Time{seconds(50)});
  CHECK(s.origins().at("a").entries.count("x") == 0);
  CHECK(s.origins().at("a").purged == 2);
  CHECK_FALSE(s.apply(Entry{kA, "x", 1, one("1")}, Time{}, ch));
  CHECK(s.entry("a", "x") == nullptr);
}

TEST_CASE("chunks carry what a peer lacks, as increments or snapshots", "[store]") {
  Store origin(kA);
  Changes ch;
  origin.set_own("x", one("1"), Time{}, ch);
  origin.set_own("y", one("2"), Time{}, ch);
  origin.set_own("x", {}, Time{}, ch);  // v3 tombstone

  Store replica(kB);
  replica.apply(Entry{kA, "x", 1, one("1")}, Time{}, ch);
  auto chunks = origin.chunks_for(replica.digests());
  REQUIRE(chunks.size() == 1);
  CHECK_FALSE(chunks[0].snapshot);
  CHECK(chunks[0].base == 1);
  CHECK(chunks[0].items.size() == 2);  // y@2 and the tombstone x@3
  replica.apply(chunks[0], Time{}, ch);
  CHECK(replica.entry("a", "x") == nullptr);
  CHECK(replica.entry("a", "y") != nullptr);
  CHECK(replica.origins().at("a").complete == 3);
  CHECK(origin.chunks_for(replica.digests()).empty());

  // Once the origin purged its tombstone, a peer behind it gets a snapshot,
  // and drops what the snapshot does not list.
  Store stale(NodeId{"c", 1});
  stale.apply(Entry{kA, "x", 1, one("1")}, Time{}, ch);
  origin.purge(Time{seconds(100)}, Time{seconds(50)});
  chunks = origin.chunks_for(stale.digests());
  REQUIRE(chunks.size() == 1);
  CHECK(chunks[0].snapshot);
  stale.apply(chunks[0], Time{}, ch);
  CHECK(stale.entry("a", "x") == nullptr);
  CHECK(stale.entry("a", "y") != nullptr);
  CHECK(stale.origins().at("a").complete == 3);
}

TEST_CASE("departed origins are hidden, refused, revived or replaced by a new life", "[store]") {
  Store s(kB);
  Changes ch;
  s.apply(Entry{kA, "web", 1, one("h")}, Time{}, ch);
  ch.clear();
  s.depart(kA, 0, Time{seconds(60)}, ch);
  CHECK(ch == Changes{{"web", "a"}});
  CHECK(s.entry("a", "web") == nullptr);
  CHECK_FALSE(s.apply(Entry{kA, "web", 2, one("late")}, Time{}, ch));
  CHECK(s.digests().empty());
  // A refutation does not bring back what was held: the origin may have
  // removed it meanwhile. It is withdrawn until a newer version comes.
  ch.clear();
  s.revive(kA, 4, ch);
  CHECK(ch.empty());
  CHECK(s.entry("a", "web") == nullptr);
  CHECK(s.behind() == std::vector<std::string>{"a"});  // announced 4, holds up to 1
  CHECK_FALSE(s.apply(Entry{kA, "web", 1, one("h")}, Time{}, ch));  // the same version again
  CHECK(s.entry("a", "web") == nullptr);
  CHECK(s.apply(Entry{kA, "web", 4, one("h")}, Time{}, ch));  // registered again
  CHECK(ch == Changes{{"web", "a"}});
  CHECK((*s.entry("a", "web"))[0].endpoint.host == "h");
  // A new life replaces the old one entirely.
  ch.clear();
  CHECK(s.apply(Entry{NodeId{"a", 6}, "db", 1, one("d")}, Time{}, ch));
  CHECK(s.entry("a", "web") == nullptr);
  CHECK(s.entry("a", "db") != nullptr);
  CHECK_FALSE(s.apply(Entry{kA, "web", 9, one("old life")}, Time{}, ch));
  // The departure record expires with its TTL.
  s.depart(NodeId{"a", 6}, 0, Time{seconds(10)}, ch);
  CHECK(s.departed(NodeId{"a", 6}));
  s.purge(Time{seconds(11)}, Time{});
  CHECK_FALSE(s.departed(NodeId{"a", 6}));
  CHECK(s.origins().count("a") == 0);
}

TEST_CASE("the registry hash follows digests", "[store]") {
  Store a(kA), b(kB);
  Changes ch;
  CHECK(a.hash() == b.hash());
  auto e = a.set_own("web", one("h"), Time{}, ch);
  CHECK(a.hash() != b.hash());
  Store c(NodeId{"c", 1});
  c.apply(e, Time{}, ch);
  b.apply(e, Time{}, ch);
  CHECK(b.hash() == c.hash());
}

TEST_CASE("a chunk claims completeness only as far as it carries", "[store]") {
  Store s(kB);
  Changes ch;
  s.apply(Entry{kA, "web", 1, one("h")}, Time{}, ch);
  // Nothing carried: an increment's claim goes no further than its base.
  s.apply(OriginChunk{kA, 1, 1000, false, {}}, Time{}, ch);
  CHECK(s.origins().at("a").complete == 1);
  CHECK(s.origins().at("a").max == 1);
  // Up to its newest item, with the gap below filled by the claim.
  s.apply(OriginChunk{kA, 1, 1000, false, {{"db", 7, one("d")}}}, Time{}, ch);
  CHECK(s.origins().at("a").complete == 7);
  // A snapshot counts its purge mark too (tombstones purged up to it), and
  // removes only what it covers.
  s.apply(OriginChunk{kA, 9, 1000, true, {{"web", 1, one("h")}, {"db", 7, one("d")}}}, Time{}, ch);
  CHECK(s.origins().at("a").complete == 9);
  CHECK(s.entry("a", "db") != nullptr);
  // The origin's next changes are new here.
  CHECK(s.apply(Entry{kA, "web", 10, one("h2")}, Time{}, ch));
  CHECK((*s.entry("a", "web"))[0].endpoint.host == "h2");
}

TEST_CASE("a new life of this node registers its live entries again from version 1", "[store]") {
  Store s(kA);
  Changes ch;
  s.set_own("web", one("h"), Time{}, ch);
  s.set_own("db", one("d"), Time{}, ch);
  s.set_own("old", one("o"), Time{}, ch);
  s.set_own("old", {}, Time{}, ch);
  s.new_life(NodeId{"a", 6}, Time{}, ch);
  CHECK(s.own_version() == 2);
  CHECK(s.origins().at("a").generation == 6);
  CHECK(s.origins().at("a").entries.count("old") == 0);
  CHECK(s.entry("a", "web") != nullptr);
  CHECK(s.own_entries().size() == 2);
  CHECK(s.own_entries()[0].origin == NodeId{"a", 6});
}

TEST_CASE("a remote origin is held to its cap of instances; removals and its own are not", "[store]") {
  std::vector<InstanceSpec> three = {InstanceSpec{Endpoint{"h", 1}, Check{}},
                                     InstanceSpec{Endpoint{"h", 2}, Check{}},
                                     InstanceSpec{Endpoint{"h", 3}, Check{}}};
  Store s(kB, {}, 4);
  Changes ch;
  CHECK(s.apply(Entry{kA, "web", 1, three}, Time{}, ch));
  CHECK(s.apply(Entry{kA, "db", 2, one("d")}, Time{}, ch));  // 4 of 4
  // One more instance would make 5: refused and counted, but seen.
  CHECK_FALSE(s.apply(Entry{kA, "api", 3, one("x")}, Time{}, ch));
  CHECK(s.entry("a", "api") == nullptr);
  CHECK(s.refused_over_cap() == 1);
  CHECK(s.origins().at("a").complete == 3);  // not asked for again
  // Growing a held service past the cap is refused; what it had stays.
  auto four = three;
  four.push_back(InstanceSpec{Endpoint{"h", 4}, Check{}});
  CHECK_FALSE(s.apply(Entry{kA, "web", 4, four}, Time{}, ch));
  CHECK(s.entry("a", "web")->size() == 3);
  // Shrinking and removing are always taken, and make room again.
  CHECK(s.apply(Entry{kA, "web", 5, one("h")}, Time{}, ch));  // 2 of 4
  CHECK(s.apply(Entry{kA, "db", 6, {}}, Time{}, ch));         // a tombstone counts one
  CHECK(s.apply(Entry{kA, "api", 7, one("x")}, Time{}, ch));  // 3 of 4
  CHECK(s.origins().at("a").held == 3);
  // A snapshot chunk goes through the same cap, item by item (it drops db
  // and api, which it does not list: 1 of 4 before its items).
  OriginChunk c{kA, 0, 12, true, {{"web", 8, one("h")}, {"a1", 9, one("1")}, {"a2", 10, one("2")},
                                  {"a3", 11, one("3")}, {"a4", 12, one("4")}}};
  s.apply(c, Time{}, ch);
  CHECK(s.origins().at("a").held == 4);
  CHECK(s.entry("a", "a4") == nullptr);
  CHECK(s.refused_over_cap() == 3);
  // Another origin has a cap of its own; this node's own entries have none.
  CHECK(s.apply(Entry{NodeId{"c", 1}, "web", 1, three}, Time{}, ch));
  for (int i = 0; i < 6; ++i) s.set_own("own" + std::to_string(i), one("o"), Time{}, ch);
  CHECK(s.own_entries().size() == 6);
}

TEST_CASE("the cap switched off by the test-only fault lets an origin fill the store", "[store]") {
  Faults f;
  f.no_origin_cap = true;
  Store s(kB, f, 4);
  Changes ch;
  for (std::uint64_t v = 1; v <= 10; ++v) {
    CHECK(s.apply(Entry{kA, "s" + std::to_string(v), v, one("h")}, Time{}, ch));
  }
  CHECK(s.origins().at("a").held == 10);
  CHECK(s.refused_over_cap() == 0);
}
