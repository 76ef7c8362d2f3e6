// Seeded simulations: thousands of small clusters under every fault the
// simulator offers, plus a few larger ones. A failure prints the seed and the
// command that replays it.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "sim/scenario.hpp"
#include "sim/sim.hpp"

using namespace regfs;

namespace {

// REGFS_SIM_SEEDS overrides how many seeds each scenario runs.
std::uint64_t seeds(std::uint64_t fallback) {
  const char* env = std::getenv("REGFS_SIM_SEEDS");
  return env ? std::strtoull(env, nullptr, 10) : fallback;
}

void run(const std::string& scenario, std::uint64_t first, std::uint64_t count, std::size_t nodes) {
  for (std::uint64_t s = first; s < first + count; ++s) {
    const auto r = sim::run_scenario(scenario, s, nodes);
    if (!r.ok) {
      FAIL_CHECK(r.violation << "\n  seed " << s << ", replay: " << sim::replay_command(r));
      return;
    }
  }
  SUCCEED();
}

}  // namespace

TEST_CASE("small clusters keep every invariant", "[sim]") {
  for (const auto& name : sim::scenario_names()) {
    SECTION(name) { run(name, 1, seeds(300), 0); }
  }
}

TEST_CASE("larger clusters keep every invariant", "[sim][large]") {
  SECTION("partition, 30 nodes") { run("partition", 1000, 3, 30); }
  SECTION("crash, 30 nodes") { run("crash", 2000, 3, 30); }
  SECTION("mixed, 40 nodes") { run("mixed", 3000, 2, 40); }
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
