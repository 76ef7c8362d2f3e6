// The Prometheus text writer: HELP and TYPE before every metric's samples,
// in the order written, histograms cumulative with +Inf, _sum and _count.
#include <catch2/catch.hpp>
#include <string>

#include "core/prometheus.hpp"

using namespace regfs;

TEST_CASE("counters and gauges: HELP, TYPE and one sample each, in order") {
  PrometheusText out;
  out.counter("regfs_things_total", "Things done.", 42);
  out.gauge("regfs_open", "Open now.", 0);
  CHECK(out.text() ==
        "# HELP regfs_things_total Things done.\n"
        "# TYPE regfs_things_total counter\n"
        "regfs_things_total 42\n"
        "# HELP regfs_open Open now.\n"
        "# TYPE regfs_open gauge\n"
        "regfs_open 0\n");
  CHECK(out.take().size() > 0);
}

TEST_CASE("a counter keeps every digit of a 64-bit value") {
  PrometheusText out;
  out.counter("c_total", "h", 18446744073709551615ULL);
  CHECK(out.text().find("\nc_total 18446744073709551615\n") != std::string::npos);
}

TEST_CASE("a histogram's buckets are cumulative, then +Inf, _sum and _count") {
  Histogram h;
  h.observe(microseconds(5));      // <= 10 us
  h.observe(microseconds(40));     // <= 50 us
  h.observe(seconds(2));           // over every bound
  PrometheusText out;
  out.histogram("regfs_read_seconds", "Latency.", h);
  const std::string& t = out.text();
  CHECK(t.starts_with("# HELP regfs_read_seconds Latency.\n"
                      "# TYPE regfs_read_seconds histogram\n"
                      "regfs_read_seconds_bucket{le=\"0.000010\"} 1\n"
                      "regfs_read_seconds_bucket{le=\"0.000025\"} 1\n"
                      "regfs_read_seconds_bucket{le=\"0.000050\"} 2\n"));
  CHECK(t.find("regfs_read_seconds_bucket{le=\"1.000000\"} 2\n"
               "regfs_read_seconds_bucket{le=\"+Inf\"} 3\n"
               "regfs_read_seconds_sum 2.000045\n"
               "regfs_read_seconds_count 3\n") != std::string::npos);
  CHECK(t.ends_with("regfs_read_seconds_count 3\n"));
}
