// A mounted FUSE session driven by a Boost.Asio event loop.
//
// The /dev/fuse descriptor is non-blocking and watched by the io_context:
// requests are read and handled on the loop thread, so the Filesystem and
// the Backend need no locks. Invalidations go out through a Notifier thread.
//
// Busy polling: a reader that opens a rotating name in a loop sends its next
// request a few microseconds after our reply. Sleeping in epoll in between
// costs a scheduler wake-up per request, a third of a round trip on virtual
// machines. So after a reply the loop keeps reading the device for up to the
// busy-poll window, but only while that pays: when the request that woke it
// came within the window of the previous reply. An idle or slow-paced mount
// never polls; a window that passes without a request ends the streak. Each
// poll is a handler of its own, so the reactor (checks, packets, timers)
// takes its turn between polls.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "filesystem.hpp"
#include "notifier.hpp"

struct fuse_session;
struct fuse_buf;

namespace regfs::fs {

class Session {
 public:
  // Mounts `fs` at `mountpoint` (created if missing; a mountpoint left dead
  // by a crashed daemon is detached first). `fs` and `io` must outlive the
  // session. `on_exit` runs on the loop thread if the kernel ends the session
  // (someone unmounted us). `patience`: see take_over_dead_mount.
  static Result<std::unique_ptr<Session>> mount(boost::asio::io_context& io, Filesystem& fs,
                                                const std::string& mountpoint,
                                                std::chrono::microseconds busy_poll,
                                                std::function<void()> on_exit,
                                                std::chrono::milliseconds patience);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Unmounts, failing parked requests first. Idempotent; loop thread only.
  void unmount();

 private:
  using Clock = std::chrono::steady_clock;
  // How long unmount waits for queued invalidations before aborting the connection.
  static constexpr std::chrono::milliseconds kNotifierGrace{1000};

  Session(boost::asio::io_context& io, Filesystem& fs, fuse_session* se, std::string mountpoint,
          std::chrono::microseconds busy_poll, std::function<void()> on_exit);
  void wait_readable();
  // Handles the requests there are, then, on a streak, polls again until
  // busy_poll_ after the last reply, else waits for the device to be readable.
  void serve();
  // Handles up to 64 requests: how many, or -1 when the session ended.
  int drain();
  // Reads one request into `buf`: its size, 0 when none is there, -1 when the session ended.
  int receive(fuse_buf& buf);

  Filesystem& fs_;
  fuse_session* se_;
  std::string mountpoint_;
  std::function<void()> on_exit_;
  boost::asio::posix::stream_descriptor fd_;
  std::unique_ptr<Notifier> notifier_;
  void* buf_mem_ = nullptr;  // libfuse's request buffer, reused
  std::size_t buf_size_ = 0;
  bool mounted_ = true;    // the kernel serves the mount through this session
  bool released_ = false;  // fuse_session_unmount has run
  std::chrono::microseconds busy_poll_;
  Clock::time_point last_reply_{};  // when the last request was handled
  bool streak_ = false;             // requests came within busy_poll_ of each other
};

// Aborts the FUSE connection of the mount at `mountpoint` (a forced
// unmount): every request waiting in the kernel fails (ENOTCONN or
// ECONNABORTED) and so does every later one, until a daemon mounts again.
// Needs no answer from the daemon, so any thread may call it. Returns whether
// the kernel took it.
bool abort_mount(const std::string& mountpoint);

// If `mountpoint` is a mount whose daemon died, detaches it; returns whether
// it did. Dead means: a regfs mount (by the mount table) whose .metrics
// cannot be read (ENOTCONN, ECONNABORTED) or gets no answer within `patience`. The second is what a
// daemon killed while its invalidation thread waited in the kernel for a
// directory lock leaves: that lock's holder waits for the dead daemon's
// answer, so the connection never ends by itself (nor do its waiting
// callers, nor the dead daemon's process); aborting the connection ends all.
bool take_over_dead_mount(const std::string& mountpoint, std::chrono::milliseconds patience);

}  // namespace regfs::fs
