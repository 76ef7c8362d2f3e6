// Replays seeded simulation scenarios, one or many:
//   sim_replay --scenario partition --seed 1234 [--nodes 8]
//   sim_replay --scenario all --seeds 1000 [--first 1]      (the soak)
// Exit status 0 when every run kept every invariant, 1 otherwise.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sim/scenario.hpp"

int main(int argc, char** argv) {
  std::string scenario = "all";
  std::uint64_t seed = 1, first = 1, count = 0;
  std::size_t nodes = 0;
  bool verbose = false, trace = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "%s needs a value\n", arg.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (arg == "--scenario") scenario = next();
    else if (arg == "--seed") { seed = std::stoull(next()); first = seed; count = 1; }
    else if (arg == "--seeds") count = std::stoull(next());
    else if (arg == "--first") first = std::stoull(next());
    else if (arg == "--nodes") nodes = std::stoul(next());
    else if (arg == "-v" || arg == "--verbose") verbose = true;
    else if (arg == "--trace") trace = true;
    else {
      std::fprintf(stderr, "usage: sim_replay [--scenario NAME|all] [--seed N | --seeds COUNT "
                           "[--first N]] [--nodes N] [-v]\n");
      return 2;
    }
  }
  if (count == 0) count = 1;
  std::vector<std::string> names;
  if (scenario == "all") names = regfs::sim::scenario_names();
  else names.push_back(scenario);
  int failures = 0;
  std::uint64_t runs = 0;
  for (std::uint64_t s = first; s < first + count; ++s) {
    for (const auto& name : names) {
      const auto r = regfs::sim::run_scenario(name, s, nodes, trace);
      ++runs;
      if (verbose || !r.ok) {
        std::printf("%s seed=%llu nodes=%zu sim=%.1fs events=%llu %s%s\n", r.scenario.c_str(),
                    static_cast<unsigned long long>(r.seed), r.nodes, r.simulated_seconds,
                    static_cast<unsigned long long>(r.events), r.ok ? "ok" : "FAIL: ",
                    r.violation.c_str());
      }
      if (!r.ok) {
        ++failures;
        std::printf("  replay: %s\n", regfs::sim::replay_command(r).c_str());
      }
    }
  }
  std::printf("%llu runs, %d failed\n", static_cast<unsigned long long>(runs), failures);
  return failures == 0 ? 0 : 1;
}
