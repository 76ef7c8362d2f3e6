#include "notifier.hpp"

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <cerrno>
#include <spdlog/spdlog.h>

namespace regfs::fs {

Notifier::Notifier(fuse_session* se) : se_(se), thread_([this] { run(); }) {}

Notifier::~Notifier() { stop(); }

void Notifier::inval_inode(unsigned long ino) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Item{ino, {}});
  }
  cv_.notify_one();
}

void Notifier::inval_entry(unsigned long parent, std::string name) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Item{parent, std::move(name)});
  }
  cv_.notify_one();
}

void Notifier::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Notifier::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, all sent
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    const int rc = item.name.empty()
                       ? fuse_lowlevel_notify_inval_inode(se_, item.ino, 0, 0)
                       : fuse_lowlevel_notify_inval_entry(se_, item.ino, item.name.data(),
                                                          item.name.size());
    // ENOENT: the kernel no longer knows the inode or entry, nothing to drop.
    if (rc != 0 && rc != -ENOENT) {
      spdlog::debug("invalidation of inode {} '{}' failed: {}", item.ino, item.name, rc);
    }
    lock.lock();
  }
}

}  // namespace regfs::fs
