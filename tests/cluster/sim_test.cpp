// Seeded simulations: thousands of small clusters under every fault the
// simulator offers, plus a few larger ones. A failure prints the seed and the
// command that replays it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>

#include "cluster/codec.hpp"
#include "sim/scenario.hpp"
#include "sim/sim.hpp"

using namespace regfs;

namespace {

// How many seeds a scenario runs: `normal` by default. REGFS_SIM_SEEDS=N runs
// N where the default is 150, and other counts in the same proportion.
constexpr std::uint64_t kDefaultSeeds = 150;

std::uint64_t seeds(std::uint64_t normal) {
  const char* env = std::getenv("REGFS_SIM_SEEDS");
  if (env == nullptr) return normal;
  return std::max<std::uint64_t>(1, normal * std::strtoull(env, nullptr, 10) / kDefaultSeeds);
}

void run(const std::string& scenario, std::uint64_t first, std::uint64_t count, std::size_t nodes,
         sim::Profile profile = sim::Profile::shipped) {
  for (std::uint64_t s = first; s < first + count; ++s) {
    const auto r = sim::run_scenario(scenario, s, nodes, false, profile);
    if (!r.ok) {
      FAIL_CHECK(r.violation << "\n  seed " << s << ", replay: " << sim::replay_command(r));
      return;
    }
  }
  SUCCEED();
}

}  // namespace

TEST_CASE("small clusters keep every invariant, with the daemon's defaults and fast anti-entropy",
          "[sim]") {
  for (const auto profile : {sim::Profile::shipped, sim::Profile::fast}) {
    for (const auto& name : sim::scenario_names()) {
      DYNAMIC_SECTION(name << " (" << sim::to_string(profile) << ")") {
        run(name, 1, seeds(kDefaultSeeds), 0, profile);
      }
    }
  }
}

TEST_CASE("larger clusters keep every invariant", "[sim][large]") {
  SECTION("partition, 30 nodes") { run("partition", 1000, 3, 30); }
  SECTION("partition-long, 30 nodes") { run("partition-long", 1500, 2, 30); }
  SECTION("crash, 30 nodes") { run("crash", 2000, 3, 30); }
  SECTION("mixed, 40 nodes") { run("mixed", 3000, 2, 40); }
  SECTION("mixed, 30 nodes, fast profile") { run("mixed", 3500, 2, 30, sim::Profile::fast); }
}

TEST_CASE("a heal merges within seconds with the daemon's defaults", "[sim]") {
  // Halves that declared each other dead, with removals and registrations on
  // both sides: every node holds the same registry soon after each heal.
  std::vector<Duration> merges;
  for (std::uint64_t s = 1; s <= seeds(kDefaultSeeds); ++s) {
    const auto r = sim::run_scenario("partition-long", s);
    REQUIRE(r.ok);
    merges.insert(merges.end(), r.merge_times.begin(), r.merge_times.end());
  }
  REQUIRE(merges.size() >= seeds(kDefaultSeeds) * 2);
  std::sort(merges.begin(), merges.end());
  const Duration median = merges[merges.size() / 2];
  INFO("heals: " << merges.size() << ", median " << median.count() / 1e6 << " ms, worst "
                 << merges.back().count() / 1e6 << " ms");
  CHECK(median <= seconds(5));
  CHECK(merges.back() <= seconds(10));
}

// Each deliberate defect must be reported, with a seed that replays it. The
// scenario is the one that provokes that defect; the first seeds suffice, and
// the test fails if none of the first 50 does.
void expect_caught(const char* what, cluster::Faults faults, const std::string& scenario,
                   const std::string& expected) {
  for (std::uint64_t s = 1; s <= 50; ++s) {
    const auto r = sim::run_scenario(scenario, s, 0, false, sim::Profile::shipped, faults);
    if (r.ok) continue;
    INFO(what << ": seed " << s << ": " << r.violation << "\n  replay: " << sim::replay_command(r));
    CHECK(r.violation.find(expected) != std::string::npos);
    return;
  }
  FAIL(what << ": no seed of " << scenario << " was caught");
}

TEST_CASE("the checker catches each deliberate defect of the core", "[sim]") {
  struct Case {
    const char* fault;     // cluster/faults.hpp, by its replay name
    const char* scenario;  // the scenario that provokes it
    const char* expected;  // in the violation reported
  };
  // Dropped tombstones: not "lossy": there a replica that dropped a tombstone
  // now rarely does harm, as a chunk's claim of completeness counts only as
  // far as it carries; a partition lets a peer keep the removed value across
  // the heal.
  const Case cases[] = {
      {"restore-on-revive", "partition-long", "resurrected"},
      {"drop-tombstones", "partition", "still holds"},
      {"silent-changes", "basic", "change events disagree"},
      {"ignore-removals", "basic", "still holds"},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.fault) {
      cluster::Faults f;
      REQUIRE(sim::set_fault(f, c.fault));
      expect_caught(c.fault, f, c.scenario, c.expected);
    }
  }
}

TEST_CASE("a member flooding registrations makes no other hold more than its cap", "[sim]") {
  for (std::uint64_t s = 1; s <= seeds(5); ++s) {
    const auto r = sim::run_flood(s);
    INFO("seed " << s << ": " << r.violation << "\n  replay: " << sim::replay_command(r));
    REQUIRE(r.ok);
  }
  // The check fails without the cap: it is what keeps the others bounded.
  cluster::Faults uncapped;
  REQUIRE(sim::set_fault(uncapped, "no-origin-cap"));
  const auto r = sim::run_flood(1, 0, false, uncapped);
  REQUIRE_FALSE(r.ok);
  CHECK(r.violation.find("over the cap") != std::string::npos);
}

TEST_CASE("the same seed gives the same run", "[sim]") {
  const auto a = sim::run_scenario("mixed", 77);
  const auto b = sim::run_scenario("mixed", 77);
  CHECK(a.events == b.events);
  CHECK(a.nodes == b.nodes);
  CHECK(a.violation == b.violation);
  const auto c = sim::run_scenario("mixed", 78);
  CHECK(c.events != a.events);
}

TEST_CASE("the checker catches a registration that never spreads", "[sim]") {
  // A node isolated for good: its change must be reported as not reaching
  // the others, proving the invariant can fail.
  sim::Sim s(5, sim::scenario_config());
  sim::CheckConfig checks;
  checks.settle_bound = seconds(3);
  s.enable_checks(checks);
  for (int i = 0; i < 4; ++i) s.add();
  s.run_for(seconds(5));
  s.partition({{3}});
  s.run_for(seconds(4));
  REQUIRE(s.set_service(3, "web", {InstanceSpec{Endpoint{"h", 1}, Check{}}}).ok());
  s.run_for(seconds(3));
  REQUIRE_FALSE(s.violation().has_value());  // partitioned: nothing is owed yet
  s.heal();
  s.run_for(seconds(10));
  CHECK_FALSE(s.violation().has_value());   // healed: it spread
  CHECK(s.node(0).instances("n3", "web") != nullptr);
}

TEST_CASE("the checker catches a node that starts a new life without a restart", "[sim]") {
  // Honest members never make a node take its own state for forged: a new
  // life outside a restart is a defect. Here a frame no member would send
  // (a death at the last incarnation) provokes one.
  sim::Sim s(6, sim::scenario_config());
  s.enable_checks(sim::CheckConfig{});
  for (int i = 0; i < 3; ++i) s.add();
  s.run_for(seconds(3));
  REQUIRE_FALSE(s.violation().has_value());
  const cluster::NodeId n1 = s.node(1).self();
  const auto forged = cluster::encode_frame(
      cluster::Channel::packet, cluster::NodeId{"mallory", 1},
      std::vector<cluster::Message>{cluster::Dead{n1, 0xffffffffu, "mallory", false}});
  s.node(1).handle(s.now(), cluster::PeerAddr{"mallory"}, forged);
  s.run_for(seconds(1));
  REQUIRE(s.violation().has_value());
  CHECK(s.violation()->find("n1 started a new life") != std::string::npos);
}
