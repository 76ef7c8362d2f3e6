#include "notifier.hpp"

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <cerrno>
#include <spdlog/spdlog.h>

namespace regfs::fs {

Notifier::Notifier(fuse_session* se) : se_(se), thread_([this] { run(); }) {}

Notifier::~Notifier() { stop(); }

void Notifier::inval_entry(unsigned long parent, std::string name) {
  {
    std::lock_guard lock(mu_);
    later_.push_back(Item{parent, name, Clock::now() + kRepeatAfter, {}});
    now_.push_back(Item{parent, std::move(name), {}, {}});
  }
  cv_.notify_one();
}

void Notifier::then(std::function<void()> fn) {
  {
    std::unique_lock lock(mu_);
    if (now_.empty() && !sending_) {
      lock.unlock();
      return fn();  // nothing to wait for: no wake-up of the thread
    }
    now_.push_back(Item{0, {}, {}, std::move(fn)});
  }
  cv_.notify_one();
}

void Notifier::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    later_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Notifier::stop(std::chrono::milliseconds within) {
  {
    std::unique_lock lock(mu_);
    stopping_ = true;
    later_.clear();
    cv_.notify_all();
    if (!done_cv_.wait_for(lock, within, [this] { return done_; })) return false;
  }
  if (thread_.joinable()) thread_.join();
  return true;
}

void Notifier::send(const Item& item) {
  if (item.then) return item.then();
  const int rc = fuse_lowlevel_notify_inval_entry(se_, item.parent, item.name.data(),
                                                  item.name.size());
  // ENOENT: the kernel holds no such entry, nothing to drop.
  if (rc != 0 && rc != -ENOENT) {
    spdlog::debug("invalidation of '{}' in {} failed: {}", item.name, item.parent, rc);
  }
}

void Notifier::run() {
  std::unique_lock lock(mu_);
  while (true) {
    if (now_.empty() && !stopping_) {
      if (later_.empty()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, later_.front().due);
      }
    }
    if (now_.empty() && stopping_) {
      done_ = true;
      done_cv_.notify_all();
      return;
    }
    Item item;
    if (!now_.empty()) {
      item = std::move(now_.front());
      now_.pop_front();
    } else if (!later_.empty() && later_.front().due <= Clock::now()) {
      item = std::move(later_.front());
      later_.pop_front();
    } else {
      continue;
    }
    sending_ = true;
    lock.unlock();
    send(item);
    lock.lock();
    sending_ = false;
  }
}

}  // namespace regfs::fs
