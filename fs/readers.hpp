// Which process reads, and what it was handed last: how a re-read is told
// from a first read (docs/INTERFACES.md, "Re-reads").
//
// The calling rule has a client read a service again when the endpoint it has
// failed. So when a process opens a service it was handed an endpoint of
// before, that endpoint is the suspect: the backend accepts only a recent
// verdict on it. A process, not a thread: the kernel names the calling thread,
// and a client's threads share what it read (one thread reads, another calls
// and re-reads); the thread group is found in /proc. A reader whose pid the
// daemon cannot see (a pid namespace that is not the daemon's or below it)
// comes as pid 0: all such readers count as one process.
//
// Loop thread only. Bounded: kProcesses thread-to-process entries (each kept
// kProcessTtl) and kHandouts remembered answers, the least recently used
// dropped first.
#pragma once

#include <sys/types.h>
#include <chrono>
#include <list>
#include <map>
#include <string>
#include <utility>

namespace regfs::fs {

class Readers {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kProcesses = 1024;
  static constexpr std::chrono::seconds kProcessTtl{10};
  static constexpr std::size_t kHandouts = 4096;

  // The process (thread group) of the calling thread `pid` as the kernel gave
  // it; 0 stays 0, and so does a thread gone before it could be looked up.
  pid_t process_of(pid_t pid, Clock::time_point now);

  // What `process` was handed last for `service` ("host:port"); empty if nothing.
  const std::string& last(pid_t process, const std::string& service) const;
  // Remembers that `process` was handed `endpoint` for `service`.
  void handed(pid_t process, const std::string& service, std::string endpoint);

  std::size_t remembered() const { return handouts_.size(); }

 private:
  using Key = std::pair<pid_t, std::string>;
  struct Handout {
    Key key;
    std::string endpoint;
  };
  // thread -> (its process, when that was looked up)
  std::map<pid_t, std::pair<pid_t, Clock::time_point>> processes_;
  std::list<Handout> order_;  // most recent first
  std::map<Key, std::list<Handout>::iterator> handouts_;
};

// The thread group of thread `tid` from /proc/TID/status; 0 when unknown.
pid_t thread_group_of(pid_t tid);

}  // namespace regfs::fs
