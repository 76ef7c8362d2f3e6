// Prometheus text exposition (format 0.0.4): every metric a HELP line, a TYPE
// line and its samples, in the order written. The one writer of .metrics for
// every layer, so all of them read the same way.
//
// Names and help texts are the caller's constants: they are written as given
// (a help text holds no newline or backslash).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "metrics.hpp"

namespace regfs {

class PrometheusText {
 public:
  void counter(std::string_view name, std::string_view help, std::uint64_t value);
  void gauge(std::string_view name, std::string_view help, std::uint64_t value);
  // Cumulative buckets at Histogram::kBoundsUs (in seconds), +Inf, _sum, _count.
  void histogram(std::string_view name, std::string_view help, const Histogram& h);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void header(std::string_view name, std::string_view help, std::string_view type);
  void sample(std::string_view name, std::string_view labels, std::string_view value);

  std::string out_;
};

}  // namespace regfs
