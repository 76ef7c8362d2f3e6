// Sends kernel cache invalidations from a thread of its own.
//
// An invalidation may wait on a kernel lock held by a request that waits for
// the event loop's reply; sending it from the loop thread could deadlock, so
// the loop only queues them here.
//
// An invalidation after a change is sent twice: at once, and again a moment
// later. A lookup answered just before the change may have its reply turned
// into a dentry only after the first invalidation went out; the second one
// drops it.
// Thread-safe: the inval_* methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

struct fuse_session;

namespace regfs::fs {

class Notifier {
 public:
  static constexpr std::chrono::milliseconds kRepeatAfter{20};

  // `se` must outlive the notifier (stop() before fuse_session_destroy).
  explicit Notifier(fuse_session* se);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Drop the directory entry `name` in directory `parent`, now and once
  // more kRepeatAfter later.
  void inval_entry(unsigned long parent, std::string name);

  // Runs `fn` once every invalidation queued before it has been sent: at
  // once on the calling thread when none is queued or being sent, else on
  // the notifier thread. Used to hold a write's reply until the kernel has
  // dropped what the write changed, so the writer's next open sees it.
  void then(std::function<void()> fn);

  // Sends what is due now, drops the repeats, joins the thread. Idempotent.
  void stop();
  // The same, but waits at most `within` for the thread to finish: false if
  // it is still sending (an invalidation waits on a kernel lock that a
  // request nobody will answer holds). Call stop() once that is resolved.
  bool stop(std::chrono::milliseconds within);

 private:
  using Clock = std::chrono::steady_clock;
  struct Item {
    unsigned long parent = 0;
    std::string name;
    Clock::time_point due{};
    std::function<void()> then;  // a barrier instead of an invalidation
  };
  void run();
  void send(const Item& item);

  fuse_session* se_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;  // run() has returned
  std::deque<Item> now_;    // guarded by mu_
  std::deque<Item> later_;  // guarded by mu_; due times in order
  bool stopping_ = false;   // guarded by mu_
  bool sending_ = false;    // guarded by mu_; an item is out of now_ but not yet sent
  bool done_ = false;       // guarded by mu_; run() has returned
  std::thread thread_;
};

}  // namespace regfs::fs
