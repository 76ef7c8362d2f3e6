#include "watchdog.hpp"

namespace regfs::fs {

Watchdog::Watchdog(boost::asio::io_context& io, std::chrono::milliseconds bound,
                   std::function<void()> on_stall, std::function<void()> on_dead)
    : bound_(bound),
      on_stall_(std::move(on_stall)),
      on_dead_(std::move(on_dead)),
      timer_(io),
      last_beat_(Clock::now().time_since_epoch().count()) {
  beat();
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  timer_.cancel();
}

void Watchdog::beat() {
  last_beat_.store(Clock::now().time_since_epoch().count());
  timer_.expires_after(bound_ / 4);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) beat();
  });
}

bool Watchdog::beat_since(Clock::time_point t) const {
  return Clock::time_point{Clock::duration{last_beat_.load()}} > t;
}

void Watchdog::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, bound_ / 4);
    if (stopping_) return;
    if (beat_since(Clock::now() - bound_)) continue;
    fired_.store(true);
    lock.unlock();
    on_stall_();
    lock.lock();
    const auto fired_at = Clock::now();
    while (!stopping_ && !beat_since(fired_at) && Clock::now() < fired_at + bound_) {
      cv_.wait_for(lock, bound_ / 4);
    }
    if (stopping_ || beat_since(fired_at)) return;
    lock.unlock();
    on_dead_();
    return;
  }
}

}  // namespace regfs::fs
