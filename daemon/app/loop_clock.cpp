#include "loop_clock.hpp"

namespace regfs {

void LoopClock::wake_at(Time when) {
  timer_.cancel();
  if (when.since_epoch == Duration::max()) return;
  using clock = std::chrono::steady_clock;
  timer_.expires_at(clock::time_point(std::chrono::duration_cast<clock::duration>(when.since_epoch)));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && wake_) wake_();
  });
}

void LoopChecker::check(const Endpoint& endpoint, const Check& check, Duration timeout, Done done) {
  checker_.check(endpoint, check, timeout, [done = std::move(done)](const net::CheckResult& r) {
    done(CheckResult{r.healthy, r.detail});
  });
}

}  // namespace regfs
