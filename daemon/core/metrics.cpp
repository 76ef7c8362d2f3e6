#include "metrics.hpp"

namespace regfs {

void Histogram::observe(Duration d) {
  const auto us = static_cast<std::uint64_t>(std::chrono::duration_cast<microseconds>(d).count());
  for (std::size_t i = 0; i < kBoundsUs.size(); ++i) {
    if (us <= kBoundsUs[i]) {
      ++buckets[i];
      break;
    }
  }
  ++count;
  sum_seconds += std::chrono::duration<double>(d).count();
}

}  // namespace regfs
