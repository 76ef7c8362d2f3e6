// Notices an event loop that stops making progress, and ends the mount it
// serves so that readers get an error instead of waiting for good.
//
// The loop thread beats every quarter of the bound (a timer on the loop); a
// thread of the watchdog's own checks the beats. When none came for longer
// than the bound (a deadlock, a handler stuck in a system call), it calls
// `on_stall` once, from its own thread; if the loop still makes no progress
// within one more bound, `on_dead` (a loop that comes back is left to stop
// by itself, its session ended). Readers blocked on a loop that is
// merely slow are a price worth paying for one that never comes back: the
// bound is several times anything a handler should take.
//
// A stopped process (SIGSTOP, a frozen cgroup) stops this thread too; that
// case needs the kernel's request timeout (docs/INTERFACES.md).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace regfs::fs {

class Watchdog {
 public:
  // Starts watching `io`, which must outlive the watchdog. `on_stall` and
  // `on_dead` run on the watchdog's thread, each at most once.
  Watchdog(boost::asio::io_context& io, std::chrono::milliseconds bound,
           std::function<void()> on_stall, std::function<void()> on_dead);
  ~Watchdog();  // stops the thread; loop thread only
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Whether on_stall ran. Any thread.
  bool fired() const { return fired_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  void beat();  // loop thread
  void run();   // the watchdog's thread

  std::chrono::milliseconds bound_;
  bool beat_since(Clock::time_point t) const;
  std::function<void()> on_stall_;
  std::function<void()> on_dead_;
  boost::asio::steady_timer timer_;
  std::atomic<Clock::rep> last_beat_;  // Clock ticks of the loop's last beat
  std::atomic<bool> fired_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace regfs::fs
