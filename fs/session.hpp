// A mounted FUSE session driven by a Boost.Asio event loop.
//
// The /dev/fuse descriptor is non-blocking and watched by the io_context:
// requests are read and handled on the loop thread, so the Filesystem and
// the Backend need no locks. Invalidations go out through a Notifier thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "filesystem.hpp"
#include "notifier.hpp"

struct fuse_session;

namespace regfs::fs {

class Session {
 public:
  // Mounts `fs` at `mountpoint` (created if missing; a mountpoint left dead
  // by a crashed daemon is detached first). `fs` and `io` must outlive the
  // session. `on_exit` runs on the loop thread if the kernel ends the session
  // (someone unmounted us).
  static Result<std::unique_ptr<Session>> mount(boost::asio::io_context& io, Filesystem& fs,
                                                const std::string& mountpoint,
                                                std::function<void()> on_exit);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Unmounts, failing parked requests first. Idempotent; loop thread only.
  void unmount();

 private:
  Session(boost::asio::io_context& io, Filesystem& fs, fuse_session* se, std::string mountpoint,
          std::function<void()> on_exit);
  void wait_readable();
  void drain();

  Filesystem& fs_;
  fuse_session* se_;
  std::string mountpoint_;
  std::function<void()> on_exit_;
  boost::asio::posix::stream_descriptor fd_;
  std::unique_ptr<Notifier> notifier_;
  void* buf_mem_ = nullptr;  // libfuse's request buffer, reused
  std::size_t buf_size_ = 0;
  bool mounted_ = true;
};

// If `mountpoint` is a mount whose daemon died ("Transport endpoint is not
// connected"), detaches it. Returns whether it did.
bool take_over_dead_mount(const std::string& mountpoint);

}  // namespace regfs::fs
