#include "sentinel.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <spdlog/spdlog.h>
#include <string>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <thread>
#include <unistd.h>

namespace regfs {
namespace {

constexpr const char* kFusectl = "/sys/fs/fuse/connections";

void say(const std::string& line) {
  const std::string text = "regfsd sentinel: " + line + "\n";
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, text.data(), text.size());
}

// Whether any thread of `pid` is still alive (not a zombie).
bool has_live_thread(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (dir == nullptr) return false;
  bool live = false;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream stat(tasks + "/" + e->d_name + "/stat");
    std::string line;
    std::getline(stat, line);
    // pid (comm) STATE ...: the state follows the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 2 >= line.size()) continue;
    const char state = line[close + 2];
    if (state != 'Z' && state != 'X') live = true;
  }
  closedir(dir);
  return live;
}

// The connection's abort file, opened while the connection is the daemon's.
// The open file names that connection for good: once it is gone, fusectl
// detaches the file from it and a write ends nothing, even when a successor's
// mount has been given the same number since. -1 with errno set if it cannot.
int open_abort(unsigned connection) {
  const std::string abort = std::string(kFusectl) + "/" + std::to_string(connection) + "/abort";
  if (access(abort.c_str(), W_OK) != 0) {
    mount("fusectl", kFusectl, "fusectl", 0, nullptr);  // not mounted yet, usually
  }
  return open(abort.c_str(), O_WRONLY | O_CLOEXEC);
}

void end_connection(unsigned connection, int abort_fd, int open_error) {
  int err = open_error;
  if (abort_fd >= 0) err = write(abort_fd, "1", 1) == 1 ? 0 : errno;
  const std::string name = "FUSE connection " + std::to_string(connection);
  if (err != 0) {
    say("the daemon was killed and cannot finish; ending " + name +
        " failed: " + std::strerror(err));
  } else {
    say("the daemon was killed while a thread waited in the kernel: ended " + name);
  }
}

[[noreturn]] void run_child(pid_t daemon, int pipe_in) {
  // Nothing of the daemon's but stderr and the pipe (no state-directory
  // descriptor that would outlive it).
  for (int fd = 3; fd < 1024; ++fd) {
    if (fd != pipe_in) close(fd);
  }
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (getppid() != daemon) _exit(0);  // gone before we were told to watch it
  const int sig = signalfd(-1, &mask, SFD_CLOEXEC);
  unsigned connection = 0;
  int abort_fd = -1;
  int open_error = 0;
  pollfd fds[2] = {{pipe_in, POLLIN, 0}, {sig, POLLIN, 0}};
  while (true) {
    if (poll(fds, sig >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if ((fds[0].revents & (POLLIN | POLLHUP)) != 0) {
      unsigned next = 0;
      const ssize_t n = read(pipe_in, &next, sizeof next);
      if (n == static_cast<ssize_t>(sizeof next)) {
        if (abort_fd >= 0) close(abort_fd);
        connection = next;
        abort_fd = open_abort(connection);
        open_error = abort_fd < 0 ? errno : 0;
        continue;
      }
      if (n == 0 || (n < 0 && errno != EINTR)) _exit(0);  // the daemon is gone, all of it
    }
    if (sig >= 0 && (fds[1].revents & POLLIN) != 0) break;  // its main thread died
  }
  // A daemon that dies normally is gone within moments; one with a thread
  // stuck in the kernel is not.
  for (int i = 0; i < 20 && has_live_thread(daemon); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (connection != 0 && has_live_thread(daemon)) end_connection(connection, abort_fd, open_error);
  _exit(0);
}

}  // namespace

std::optional<Sentinel> Sentinel::start() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    spdlog::warn("no sentinel process: pipe: {}", std::strerror(errno));
    return std::nullopt;
  }
  const pid_t daemon = getpid();
  const pid_t child = fork();
  if (child < 0) {
    spdlog::warn("no sentinel process: fork: {}", std::strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return std::nullopt;
  }
  if (child == 0) {
    close(fds[1]);
    run_child(daemon, fds[0]);
  }
  close(fds[0]);
  return Sentinel(fds[1]);
}

void Sentinel::watch(unsigned connection) const {
  if (write(fd_, &connection, sizeof connection) != static_cast<ssize_t>(sizeof connection)) {
    spdlog::warn("sentinel: {}", std::strerror(errno));
  }
}

}  // namespace regfs
