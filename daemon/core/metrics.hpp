// The daemon's counters and histograms, as plain data. Rendered as Prometheus
// text by render_metrics (render.hpp). Not thread-safe: one event-loop thread.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "time.hpp"

namespace regfs {

// Latency histogram with fixed bucket bounds in microseconds.
struct Histogram {
  static constexpr std::array<std::uint64_t, 12> kBoundsUs = {
      10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 100000, 1000000};
  std::array<std::uint64_t, kBoundsUs.size()> buckets{};  // non-cumulative counts
  std::uint64_t count = 0;
  double sum_seconds = 0;

  void observe(Duration d);
};

struct Metrics {
  std::uint64_t reads = 0;            // reads answered from the daemon (kernel cache misses)
  std::uint64_t reads_not_found = 0;  // ENOENT
  std::uint64_t reads_host_down = 0;  // EHOSTDOWN
  std::uint64_t waits_timed_out = 0;  // ETIMEDOUT on .wait/
  std::uint64_t writes = 0;           // accepted write()s
  std::uint64_t writes_rejected = 0;  // EINVAL, ENOSPC, EFBIG, EACCES, EIO
  std::uint64_t unlinks = 0;
  std::uint64_t checks = 0;           // health checks started
  std::uint64_t checks_failed = 0;
  std::uint64_t reverify_checks = 0;  // checks started because a re-read suspected an endpoint
  std::uint64_t reaped = 0;           // own instances removed after failing too long
  Histogram read_latency;             // from arrival to answer, daemon side
  Histogram check_latency;
};

}  // namespace regfs
