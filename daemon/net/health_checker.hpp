// Asynchronous health checks of registered endpoints, on a Boost.Asio loop.
//
// tcp: a TCP connect succeeds. http:/path: a GET answered with 2xx or 3xx.
// none: healthy at once. Every check ends within its timeout whatever the
// network does (DNS names are resolved inside the same deadline).
//
// Not thread-safe: call only from the thread that runs the io_context, which
// must outlive the checker.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/instance.hpp"
#include "core/time.hpp"

namespace regfs::net {

struct CheckResult {
  bool healthy = false;
  std::string detail;  // "connected", "http 200", "connection refused", "timeout after 1000 ms"
};

class HealthChecker {
 public:
  explicit HealthChecker(boost::asio::io_context& io);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  using Callback = std::function<void(const CheckResult&)>;

  // Checks `endpoint` with `check`; calls `cb` exactly once, on the io
  // thread, never before returning. Concurrent checks of the same target
  // share one network check (single flight) and get the same result.
  void check(const Endpoint& endpoint, const Check& check, Duration timeout, Callback cb);

  std::size_t in_flight() const { return checks_.size(); }

  // Ends every check: callbacks get healthy=false "cancelled". For shutdown.
  void cancel_all();

 private:
  struct Attempt;  // health_checker.cpp
  using Key = std::tuple<std::string, std::uint16_t, Check>;

  void read_status(const Key& key, const std::shared_ptr<Attempt>& p);
  // Ends check `p` of `key` with `result`, unless it has ended already: a
  // completion that arrives after its check ended (a handler already queued
  // when the check timed out) must not end a newer check of the same target.
  void finish(const Key& key, std::shared_ptr<Attempt> p, const CheckResult& result);

  boost::asio::io_context& io_;
  std::map<Key, std::shared_ptr<Attempt>> checks_;
};

}  // namespace regfs::net
