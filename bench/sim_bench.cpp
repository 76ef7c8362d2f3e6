// Measures the replication core in the simulator (default LAN profile,
// 1 ms links). Figures go to docs/BENCHMARKS.md; nothing here is asserted.
//   sim_bench spread  [nodes=1000] [changes=5]   time for a change to reach every member
//   sim_bench detect  [nodes=30]   [kills=20]    time until every member declares a killed node dead
//   sim_bench false   [nodes=30]   [minutes=10] [loss=0.1]   false deaths under packet loss
//   sim_bench traffic [nodes=1000] [instances=10]            steady-state bytes per node per second
//   sim_bench speed   [nodes=100]  [seconds=60]              simulated time over wall time
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "sim/sim.hpp"

using namespace regfs;
using regfs::sim::Sim;

namespace {

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::vector<InstanceSpec> at(std::size_t node, std::size_t i) {
  return {InstanceSpec{Endpoint{"10." + std::to_string(node / 250) + "." +
                                    std::to_string(node % 250) + "." + std::to_string(i),
                                static_cast<std::uint16_t>(8000 + i)},
                       Check{}}};
}

void grow(Sim& sim, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    sim.add();
    if (i % 50 == 49) sim.run_for(milliseconds(100));
  }
  // Let membership settle: every node knows every other.
  for (int round = 0; round < 600; ++round) {
    sim.run_for(milliseconds(100));
    bool all = true;
    for (std::size_t i = 0; i < n && all; i += std::max<std::size_t>(1, n / 50)) {
      all = sim.node(i).live_members() == n;
    }
    if (all) break;
  }
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

void spread(std::size_t n, int changes) {
  Sim sim(1, cluster::Config{});
  const auto t0 = std::chrono::steady_clock::now();
  grow(sim, n);
  std::printf("spread: %zu nodes joined by t=%.1fs (wall %.1fs)\n", n,
              ms(sim.now().since_epoch) / 1000,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::vector<double> all_times, medians;
  for (int c = 0; c < changes; ++c) {
    const std::string service = "svc" + std::to_string(c);
    std::map<std::size_t, Time> reached;
    sim.on_events = [&](std::size_t node, const cluster::Events& e) {
      for (const auto& ch : e.services) {
        if (ch.service == service && !reached.count(node)) reached[node] = sim.now();
      }
    };
    const std::size_t origin = (static_cast<std::size_t>(c) * 7919) % n;
    const Time start = sim.now();
    (void)sim.set_service(origin, service, at(origin, 1));
    while (reached.size() < n && sim.now() - start < seconds(30)) sim.run_for(milliseconds(1));
    std::vector<double> t;
    for (const auto& [_, when] : reached) t.push_back(ms(when - start));
    const double last = t.empty() ? 0 : *std::max_element(t.begin(), t.end());
    std::printf("  change %d from n%zu: reached %zu/%zu, median %.1f ms, all %.1f ms\n", c, origin,
                reached.size(), n, percentile(t, 0.5), last);
    all_times.push_back(last);
    medians.push_back(percentile(t, 0.5));
    sim.on_events = nullptr;
    sim.run_for(seconds(2));
  }
  std::printf("spread %zu nodes: every member in median %.1f ms, max %.1f ms of simulated time\n", n,
              percentile(all_times, 0.5), *std::max_element(all_times.begin(), all_times.end()));
}

void detect(std::size_t n, int kills) {
  Sim sim(2, cluster::Config{});
  grow(sim, n);
  std::vector<double> times;
  for (int k = 0; k < kills; ++k) {
    const std::size_t victim = 1 + (static_cast<std::size_t>(k) * 13) % (n - 1);
    const std::string name = sim.name(victim);
    std::map<std::size_t, Time> declared;
    sim.on_events = [&](std::size_t node, const cluster::Events& e) {
      for (const auto& m : e.members) {
        if (m.id.name == name && m.state == cluster::MemberState::dead && !declared.count(node)) {
          declared[node] = sim.now();
        }
      }
    };
    const Time start = sim.now();
    sim.kill(victim);
    while (declared.size() < n - 1 && sim.now() - start < seconds(60)) sim.run_for(milliseconds(5));
    Time last = start;
    for (const auto& [_, t] : declared) last = std::max(last, t);
    times.push_back(ms(last - start) / 1000);
    sim.on_events = nullptr;
    sim.restart(victim);
    sim.run_for(seconds(5));
  }
  std::printf("detect %zu nodes, %d kills: declared dead by every member in median %.2f s, "
              "p90 %.2f s, max %.2f s\n",
              n, kills, percentile(times, 0.5), percentile(times, 0.9),
              *std::max_element(times.begin(), times.end()));
}

void false_deaths(std::size_t n, int minutes, double loss) {
  Sim sim(3, cluster::Config{});
  grow(sim, n);
  sim.set_loss(loss);
  std::uint64_t deaths = 0, suspicions = 0;
  sim.on_events = [&](std::size_t, const cluster::Events& e) {
    for (const auto& m : e.members) {
      deaths += m.state == cluster::MemberState::dead;
      suspicions += m.state == cluster::MemberState::suspect;
    }
  };
  sim.run_for(std::chrono::minutes(minutes));
  int max_awareness = 0;
  for (std::size_t i = 0; i < n; ++i) max_awareness = std::max(max_awareness, sim.node(i).awareness());
  std::printf("false deaths: %zu nodes, %d simulated minutes at %.0f%% loss: %llu false deaths, "
              "%llu suspicions (all refuted), max awareness now %d\n",
              n, minutes, loss * 100, static_cast<unsigned long long>(deaths),
              static_cast<unsigned long long>(suspicions), max_awareness);
}

void traffic(std::size_t n, std::size_t instances) {
  Sim sim(4, cluster::Config{});
  grow(sim, n);
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t s = 0; s < instances; ++s) {
      (void)sim.set_service(i, "svc" + std::to_string(s), at(i, s));
    }
  }
  sim.run_for(seconds(60));  // registrations spread; anti-entropy completes them
  std::vector<sim::NodeTraffic> before;
  for (std::size_t i = 0; i < n; ++i) before.push_back(sim.traffic(i));
  const Duration window = seconds(360);  // two push-pull periods at this size
  sim.run_for(window);
  std::vector<double> rates;
  double packets = 0, streams = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& t = sim.traffic(i);
    const double p = static_cast<double>(t.packet_bytes - before[i].packet_bytes);
    const double s = static_cast<double>(t.stream_bytes - before[i].stream_bytes);
    packets += p;
    streams += s;
    rates.push_back((p + s) / std::chrono::duration<double>(window).count());
  }
  const double secs = std::chrono::duration<double>(window).count() * static_cast<double>(n);
  std::printf("traffic %zu nodes x %zu instances, steady state over %.0f s: per node sent "
              "median %.0f B/s, max %.0f B/s (packets %.0f B/s, streams %.0f B/s on average)\n",
              n, instances, std::chrono::duration<double>(window).count(), percentile(rates, 0.5),
              *std::max_element(rates.begin(), rates.end()), packets / secs, streams / secs);
}

void speed(std::size_t n, int seconds_) {
  Sim sim(5, cluster::Config{});
  const auto t0 = std::chrono::steady_clock::now();
  grow(sim, n);
  const Time start = sim.now();
  const std::uint64_t events0 = sim.events_fired();
  for (int s = 0; s < seconds_; ++s) {
    (void)sim.set_service(static_cast<std::size_t>(s) % n, "svc" + std::to_string(s % 7),
                          at(static_cast<std::size_t>(s), 1));
    sim.run_for(seconds(1));
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double simulated = ms(sim.now() - start) / 1000 + ms(start.since_epoch) / 1000;
  std::printf("speed %zu nodes: %.0f s simulated in %.2f s wall = %.0fx real time "
              "(%llu events after join)\n",
              n, simulated, wall, simulated / wall,
              static_cast<unsigned long long>(sim.events_fired() - events0));
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  auto arg = [&](int i, double fallback) { return argc > i ? std::atof(argv[i]) : fallback; };
  if (mode == "spread") spread(static_cast<std::size_t>(arg(2, 1000)), static_cast<int>(arg(3, 5)));
  else if (mode == "detect") detect(static_cast<std::size_t>(arg(2, 30)), static_cast<int>(arg(3, 20)));
  else if (mode == "false") false_deaths(static_cast<std::size_t>(arg(2, 30)), static_cast<int>(arg(3, 10)), arg(4, 0.1));
  else if (mode == "traffic") traffic(static_cast<std::size_t>(arg(2, 1000)), static_cast<std::size_t>(arg(3, 10)));
  else if (mode == "speed") speed(static_cast<std::size_t>(arg(2, 100)), static_cast<int>(arg(3, 60)));
  else {
    std::fprintf(stderr, "usage: sim_bench spread|detect|false|traffic|speed [args...]\n");
    return 2;
  }
  return 0;
}
