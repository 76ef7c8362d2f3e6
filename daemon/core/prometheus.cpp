#include "prometheus.hpp"

namespace regfs {

void PrometheusText::header(std::string_view name, std::string_view help, std::string_view type) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += help;
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, std::string_view labels,
                            std::string_view value) {
  out_ += name;
  out_ += labels;
  out_ += ' ';
  out_ += value;
  out_ += '\n';
}

void PrometheusText::counter(std::string_view name, std::string_view help, std::uint64_t value) {
  header(name, help, "counter");
  sample(name, {}, std::to_string(value));
}

void PrometheusText::gauge(std::string_view name, std::string_view help, std::uint64_t value) {
  header(name, help, "gauge");
  sample(name, {}, std::to_string(value));
}

void PrometheusText::histogram(std::string_view name, std::string_view help, const Histogram& h) {
  header(name, help, "histogram");
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Histogram::kBoundsUs.size(); ++i) {
    cumulative += h.buckets[i];
    const double le = static_cast<double>(Histogram::kBoundsUs[i]) / 1e6;
    sample(bucket, "{le=\"" + std::to_string(le) + "\"}", std::to_string(cumulative));
  }
  sample(bucket, "{le=\"+Inf\"}", std::to_string(h.count));
  sample(std::string(name) + "_sum", {}, std::to_string(h.sum_seconds));
  sample(std::string(name) + "_count", {}, std::to_string(h.count));
}

}  // namespace regfs
