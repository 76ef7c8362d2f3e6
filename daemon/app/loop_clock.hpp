// The daemon's Clock and Checker for Registrar: the steady clock with one timer on
// the Asio loop, and the network health checker.
//
// Loop thread only; `io` and the HealthChecker must outlive them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>

#include "net/health_checker.hpp"
#include "registrar.hpp"

namespace regfs {

class LoopClock final : public Clock {
 public:
  explicit LoopClock(boost::asio::io_context& io) : timer_(io) {}
  // What runs when the requested time comes (Registrar::tick).
  void on_wake(std::function<void()> wake) { wake_ = std::move(wake); }

  Time now() const override { return steady_now(); }
  void wake_at(Time when) override;

 private:
  boost::asio::steady_timer timer_;
  std::function<void()> wake_;
};

class LoopChecker final : public Checker {
 public:
  explicit LoopChecker(net::HealthChecker& checker) : checker_(checker) {}
  void check(const Endpoint& endpoint, const Check& check, Duration timeout, Done done) override;

 private:
  net::HealthChecker& checker_;
};

}  // namespace regfs
