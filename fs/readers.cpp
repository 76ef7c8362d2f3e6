#include "readers.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace regfs::fs {

pid_t thread_group_of(pid_t tid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(tid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  // "Tgid:" is the fourth line, after Name (at most 64 escaped bytes), Umask and State.
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* at = std::strstr(buf, "\nTgid:");
  if (at == nullptr) return 0;
  const long tgid = std::strtol(at + 6, nullptr, 10);
  return tgid > 0 ? static_cast<pid_t>(tgid) : 0;
}

pid_t Readers::process_of(pid_t pid, Clock::time_point now) {
  if (pid <= 0) return 0;
  if (const auto it = processes_.find(pid); it != processes_.end()) {
    if (now - it->second.second < kProcessTtl) return it->second.first;
    processes_.erase(it);
  }
  const pid_t process = thread_group_of(pid);
  if (process == 0) return pid;  // gone already: its own id is the best name left
  if (processes_.size() >= kProcesses) processes_.clear();
  processes_.emplace(pid, std::make_pair(process, now));
  return process;
}

const std::string& Readers::last(pid_t process, const std::string& service) const {
  static const std::string kNone;
  const auto it = handouts_.find(Key{process, service});
  return it == handouts_.end() ? kNone : it->second->endpoint;
}

void Readers::handed(pid_t process, const std::string& service, std::string endpoint) {
  Key key{process, service};
  if (const auto it = handouts_.find(key); it != handouts_.end()) {
    it->second->endpoint = std::move(endpoint);
    order_.splice(order_.begin(), order_, it->second);
    return;
  }
  if (handouts_.size() >= kHandouts) {
    handouts_.erase(order_.back().key);
    order_.pop_back();
  }
  order_.push_front(Handout{key, std::move(endpoint)});
  handouts_.emplace(std::move(key), order_.begin());
}

}  // namespace regfs::fs
