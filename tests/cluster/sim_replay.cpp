// Replays seeded simulation scenarios, one or many:
//   sim_replay --scenario partition --seed 1234 [--nodes 8]
//   sim_replay --scenario all --seeds 1000 [--first 1]      (the soak)
//   --profile defaults|fast|both   the daemon's defaults (the default) or the
//                                  shortened anti-entropy profile, or each in turn
//   --fault NAME                   switch on a deliberate defect (the checker's own tests)
//   --merge-times                  print the median and worst time from a heal
//                                  to every node holding the same registry
// Exit status 0 when every run kept every invariant, 1 otherwise.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sim/scenario.hpp"

int main(int argc, char** argv) {
  std::string scenario = "all";
  std::uint64_t seed = 1, first = 1, count = 0;
  std::size_t nodes = 0;
  bool verbose = false, trace = false, merge_times = false;
  std::vector<regfs::sim::Profile> profiles{regfs::sim::Profile::shipped};
  regfs::cluster::Faults faults;
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
    else if (arg == "--merge-times") merge_times = true;
    else if (arg == "--fault") {
      if (!regfs::sim::set_fault(faults, next())) {
        std::fprintf(stderr, "--fault: drop-tombstones, restore-on-revive, silent-changes, ignore-removals or no-origin-cap\n");
        return 2;
      }
    }
    else if (arg == "--profile") {
      const std::string p = next();
      if (p == "defaults") profiles = {regfs::sim::Profile::shipped};
      else if (p == "fast") profiles = {regfs::sim::Profile::fast};
      else if (p == "both") profiles = {regfs::sim::Profile::shipped, regfs::sim::Profile::fast};
      else { std::fprintf(stderr, "--profile: defaults, fast or both\n"); return 2; }
    }
    else {
      std::fprintf(stderr, "usage: sim_replay [--scenario NAME|all] [--seed N | --seeds COUNT "
                           "[--first N]] [--nodes N] [--profile defaults|fast|both] [--merge-times] [-v]\n");
      return 2;
    }
  }
  if (count == 0) count = 1;
  std::vector<std::string> names;
  if (scenario == "all") names = regfs::sim::scenario_names();
  else names.push_back(scenario);
  int failures = 0;
  std::uint64_t runs = 0;
  std::vector<double> merges;
  for (std::uint64_t s = first; s < first + count; ++s) {
    for (const auto profile : profiles) for (const auto& name : names) {
      const auto r = regfs::sim::run_scenario(name, s, nodes, trace, profile, faults);
      ++runs;
      for (auto d : r.merge_times) merges.push_back(std::chrono::duration<double>(d).count());
      if (verbose || !r.ok) {
        std::printf("%s/%s seed=%llu nodes=%zu sim=%.1fs events=%llu %s%s\n", r.scenario.c_str(),
                    regfs::sim::to_string(r.profile),
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
  if (merge_times && !merges.empty()) {
    std::sort(merges.begin(), merges.end());
    std::printf("heal to merged: %zu heals, median %.2f s, p99 %.2f s, worst %.2f s\n", merges.size(),
                merges[merges.size() / 2], merges[merges.size() * 99 / 100], merges.back());
  }
  return failures == 0 ? 0 : 1;
}
