// Sends kernel cache invalidations from a thread of its own.
//
// An invalidation may wait on a kernel lock held by a request that waits for
// the event loop's reply; sending it from the loop thread could deadlock, so
// the loop only queues them here. Thread-safe: push() from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

struct fuse_session;

namespace regfs::fs {

class Notifier {
 public:
  // `se` must outlive the notifier (stop() before fuse_session_destroy).
  explicit Notifier(fuse_session* se);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Drop the attributes and cached data of inode `ino`.
  void inval_inode(unsigned long ino);
  // Drop the directory entry `name` in directory `parent`.
  void inval_entry(unsigned long parent, std::string name);

  // Sends what is queued, then joins the thread. Idempotent.
  void stop();

 private:
  struct Item {
    unsigned long ino;
    std::string name;  // empty: inode invalidation
  };
  void run();

  fuse_session* se_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::thread thread_;
};

}  // namespace regfs::fs
