#include "session.hpp"

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "mount_table.hpp"
#include "operations.hpp"

namespace regfs::fs {

bool take_over_dead_mount(const std::string& mountpoint, std::chrono::milliseconds patience) {
  const std::string absolute = table_path(mountpoint);
  const auto mounted = topmost_mount(absolute);
  if (!mounted || mounted->fstype != "fuse.regfs") return false;  // a plain directory, or not ours
  // The probe reads .metrics, which only the daemon answers (a stat() may be
  // answered from the kernel's cache), on a thread of its own: on a mount
  // whose daemon died while one of its threads waited in the kernel (an
  // invalidation waiting for a directory lock that a request to the dead
  // daemon holds), the connection never ends by itself and the read waits
  // until the connection is aborted.
  struct Probe {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;  // guarded by mu
    int err = 0;        // guarded by mu
  };
  auto probe = std::make_shared<Probe>();
  std::thread([probe, path = absolute + "/.metrics"] {
    int err = 0;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    char byte = 0;
    if (fd < 0 || ::read(fd, &byte, 1) < 0) err = errno;
    if (fd >= 0) ::close(fd);
    const std::lock_guard lock(probe->mu);
    probe->done = true;
    probe->err = err;
    probe->cv.notify_all();
  }).detach();
  std::unique_lock lock(probe->mu);
  if (!probe->cv.wait_for(lock, patience, [&] { return probe->done; })) {
    lock.unlock();
    // A live daemon answers at once; one that answers nothing for the
    // watchdog's bound is treated as its own watchdog would treat it.
    spdlog::warn("{}: the previous daemon's connection answered nothing for {} ms: aborting it",
                 mountpoint, patience.count());
    if (!abort_mount(mountpoint)) return false;
    lock.lock();
    // The abort ends the read with an error; bounded, in case the kernel keeps it.
    if (!probe->cv.wait_for(lock, std::chrono::seconds(5), [&] { return probe->done; })) {
      spdlog::warn("{}: the probe still waits after the abort", mountpoint);
    }
  } else if (probe->err != ENOTCONN && probe->err != ECONNABORTED) {
    return false;  // a live daemon answered
  }
  if (umount2(mountpoint.c_str(), MNT_DETACH) != 0) {
    spdlog::warn("could not detach dead mount {}: {}", mountpoint, std::strerror(errno));
    return false;
  }
  spdlog::info("took over {} from a daemon that died", mountpoint);
  return true;
}

bool abort_mount(const std::string& mountpoint) {
  // A forced unmount of a FUSE mount aborts its connection first (the
  // kernel's umount_begin), whatever the unmount itself then finds busy.
  if (umount2(mountpoint.c_str(), MNT_FORCE) != 0 && errno != EBUSY) {
    spdlog::error("could not abort the connection of {}: {}", mountpoint, std::strerror(errno));
    return false;
  }
  return true;
}

Result<std::unique_ptr<Session>> Session::mount(boost::asio::io_context& io, Filesystem& fs,
                                                const std::string& mountpoint,
                                                std::chrono::microseconds busy_poll,
                                                std::function<void()> on_exit,
                                                std::chrono::milliseconds patience) {
  take_over_dead_mount(mountpoint, patience);
  if (mkdir(mountpoint.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error{Errc::io, "cannot create mountpoint " + mountpoint + ": " + std::strerror(errno)};
  }

  // At trace level libfuse prints every request and reply.
  const char* argv[] = {"regfsd", "-o",
                        "allow_other,default_permissions,fsname=regfs,subtype=regfs,noatime",
                        "-odebug"};
  const int argc = spdlog::should_log(spdlog::level::trace) ? 4 : 3;
  fuse_args args = FUSE_ARGS_INIT(argc, const_cast<char**>(argv));
  fuse_session* se = fuse_session_new(&args, &operations(), sizeof(fuse_lowlevel_ops), &fs);
  fuse_opt_free_args(&args);  // libfuse may have copied them
  if (se == nullptr) return Error{Errc::io, "cannot create the FUSE session"};
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    return Error{Errc::io, "cannot mount " + mountpoint +
                               " (is /dev/fuse there, and are we root?)"};
  }
  const int fd = fuse_session_fd(se);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return std::unique_ptr<Session>(
      new Session(io, fs, se, mountpoint, busy_poll, std::move(on_exit)));
}

Session::Session(boost::asio::io_context& io, Filesystem& fs, fuse_session* se,
                 std::string mountpoint, std::chrono::microseconds busy_poll,
                 std::function<void()> on_exit)
    : fs_(fs),
      se_(se),
      mountpoint_(std::move(mountpoint)),
      on_exit_(std::move(on_exit)),
      fd_(io, fuse_session_fd(se)),
      notifier_(std::make_unique<Notifier>(se)),
      busy_poll_(busy_poll) {
  fs_.set_notifier(notifier_.get());
  wait_readable();
}

Session::~Session() {
  unmount();
  fs_.set_notifier(nullptr);
  fd_.release();  // libfuse owns the descriptor
  fuse_session_destroy(se_);
  std::free(buf_mem_);
}

void Session::wait_readable() {
  fd_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                 [this](const boost::system::error_code& ec) {
                   if (ec || !mounted_) return;
                   streak_ = busy_poll_.count() > 0 && Clock::now() - last_reply_ <= busy_poll_;
                   serve();
                 });
}

void Session::serve() {
  // While polling, a few reads per turn of the loop: the request is usually
  // there within microseconds, and each turn also costs the reactor a system call.
  constexpr int kReadsPerTurn = 4;
  int handled = drain();
  for (int i = 1; handled == 0 && streak_ && i < kReadsPerTurn; ++i) handled = drain();
  if (handled < 0 || !mounted_) return;
  const auto now = Clock::now();
  if (handled > 0) last_reply_ = now;
  if (streak_ && now < last_reply_ + busy_poll_) {
    // Poll again after the loop has run whatever else is ready (the reactor
    // takes its turn between handlers): checks and packets are not held up.
    boost::asio::post(fd_.get_executor(), [this] {
      if (mounted_) serve();
    });
    return;
  }
  streak_ = false;
  wait_readable();
}

int Session::receive(fuse_buf& buf) {
  buf = fuse_buf{};
  buf.mem = buf_mem_;
  buf.size = buf_size_;
  const int res = fuse_session_receive_buf(se_, &buf);
  buf_mem_ = buf.mem;
  buf_size_ = std::max(buf_size_, buf.size);
  if (res == -EAGAIN || res == -EINTR) return 0;
  if (res <= 0 || fuse_session_exited(se_) != 0) {
    spdlog::warn("the kernel ended the FUSE session on {}", mountpoint_);
    mounted_ = false;
    if (on_exit_) on_exit_();
    return -1;
  }
  return res;
}

int Session::drain() {
  // Bounded, so a flood of requests cannot starve timers and checks.
  int handled = 0;
  while (handled < 64) {
    fuse_buf buf{};
    const int res = receive(buf);
    if (res < 0) return -1;
    if (res == 0) break;
    fuse_session_process_buf(se_, &buf);
    ++handled;
  }
  return handled;
}

void Session::unmount() {
  if (!fs_.shut_down(kNotifierGrace)) {
    // Invalidations still blocked: ending the connection ends every request
    // that holds their lock, and the send.
    spdlog::warn("invalidations still blocked after {} ms: aborting the connection of {}",
                 kNotifierGrace.count(), mountpoint_);
    abort_mount(mountpoint_);
    notifier_->stop();
  }
  if (released_) return;
  released_ = true;
  const bool ended_by_kernel = !mounted_;
  mounted_ = false;
  fd_.cancel();
  // Also after the kernel ended the session: libfuse then finds the
  // connection gone, leaves the dead mount for the next daemon to take over,
  // and only releases what it holds.
  fuse_session_unmount(se_);
  if (!ended_by_kernel) spdlog::info("unmounted {}", mountpoint_);
}

}  // namespace regfs::fs
