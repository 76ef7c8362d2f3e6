#include "change_waiter.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <csignal>

namespace regfs::cli {
namespace {

int g_signal_pipe[2] = {-1, -1};

void on_signal(int sig) {
  const int saved = errno;
  const auto byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = ::write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

void install(int sig) {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = sig == SIGCHLD ? SA_NOCLDSTOP : 0;
  sigaction(sig, &sa, nullptr);
}

// Reads what `fd` answers, from its start.
Answer read_all(int fd) {
  Answer a;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      a.err = errno;
      a.text.clear();
      return a;
    }
    if (n == 0) return a;
    a.text.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

Time steady_now() {
  return Time{
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch())};
}

ChangeWaiter::ChangeWaiter(const Context& ctx, bool wake_on_child) : ctx_(ctx) {
  if (g_signal_pipe[0] < 0) {
    if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
      g_signal_pipe[0] = g_signal_pipe[1] = -1;
  }
  install(SIGINT);
  install(SIGTERM);
  if (wake_on_child) install(SIGCHLD);
}

ChangeWaiter::~ChangeWaiter() {
  close_names();
  if (events_fd_ >= 0) ::close(events_fd_);
}

void ChangeWaiter::close_names() {
  for (const int fd : fds_) {
    if (fd >= 0) ::close(fd);
  }
  fds_.clear();
}

int ChangeWaiter::read(const std::vector<std::string>& names, std::vector<Answer>& answers,
                       bool once) {
  close_names();
  answers.assign(names.size(), Answer{});
  fds_.assign(names.size(), -1);
  bool missing = false;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string path = ctx_.path(names[i]);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOTCONN && events_fd_ < 0 && !once) {
      // No descriptor to poll (not registered, or nothing healthy): from now
      // on .events tells of the change. It streams from the moment it is
      // opened, so look again once it is open.
      events_fd_ = ::open(ctx_.path(".events").c_str(), O_RDONLY | O_CLOEXEC);
      if (events_fd_ < 0) {
        const int err = errno;
        struct stat st {};
        if (::stat(ctx_.path(".metrics").c_str(), &st) != 0) return ENODEV;
        return err == ENOENT ? ENOSYS : err;
      }
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
      const int err = errno;
      answers[i].err = err;
      if (err == ENOTCONN) return ENOTCONN;
      if (err == ENOENT) {
        // Unregistered, or no longer a regfs mount at all.
        struct stat st {};
        if (::stat(ctx_.path(".metrics").c_str(), &st) != 0)
          return errno == ENOTCONN ? ENOTCONN : ENODEV;
      }
      missing = true;
      continue;
    }
    answers[i] = read_all(fd);
    if (once) {
      ::close(fd);
    } else {
      fds_[i] = fd;
    }
    if (answers[i].err == ENOTCONN) return ENOTCONN;
  }
  if (!missing && events_fd_ >= 0) {
    ::close(events_fd_);
    events_fd_ = -1;
  }
  return 0;
}

ChangeWaiter::Wake ChangeWaiter::wait(std::optional<Time> deadline, int& err) {
  err = 0;
  std::vector<pollfd> fds;
  fds.push_back({g_signal_pipe[0], POLLIN, 0});
  for (const int fd : fds_) {
    if (fd >= 0) fds.push_back({fd, POLLPRI, 0});
  }
  if (events_fd_ >= 0) fds.push_back({events_fd_, POLLIN, 0});
  while (true) {
    int timeout = -1;
    if (deadline) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*deadline - steady_now()).count();
      timeout = static_cast<int>(std::clamp<long long>(left, 0, 24LL * 3600 * 1000));
    }
    for (auto& p : fds) p.revents = 0;
    const int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno == EINTR) continue;  // the handler wrote to the pipe
    if (n < 0) {
      err = errno;
      return Wake::error;
    }
    if (n == 0) {
      if (deadline && steady_now() < *deadline) continue;
      return Wake::deadline;
    }
    if (fds[0].revents & POLLIN) {
      unsigned char sigs[64];
      const ssize_t got = ::read(g_signal_pipe[0], sigs, sizeof sigs);
      bool child = false;
      for (ssize_t k = 0; k < got; ++k) {
        if (sigs[k] == SIGCHLD) {
          child = true;
        } else {
          signal_ = sigs[k];
        }
      }
      if (signal_ != 0) return Wake::signal;
      if (child) return Wake::child;
    }
    bool changed = false;
    for (std::size_t k = 1; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      if (fds[k].fd == events_fd_) {
        char buf[65536];
        const ssize_t got = ::read(events_fd_, buf, sizeof buf);
        if (got < 0 && errno == ENOTCONN) {
          err = errno;
          return Wake::error;
        }
        if (got <= 0 && !(got < 0 && errno == EINTR)) {
          // The stream ended: the next read() opens it again.
          ::close(events_fd_);
          events_fd_ = -1;
        }
      }
      changed = true;
    }
    if (changed) return Wake::changed;
  }
}

}  // namespace regfs::cli
