// A small child process that ends the mount's FUSE connection when the daemon
// is killed but cannot finish dying.
//
// The kernel sends an invalidation only after taking the directory's lock,
// uninterruptibly, and a request waiting for this daemon may hold that lock
// (the lookup of an O_CREAT open, parked on a check). Killed (SIGKILL, the
// OOM killer) at that moment, the daemon's other threads go, but the one in
// the kernel stays: it holds the FUSE device, so the connection is never
// ended, the request is never answered, and process and mount hang for good.
//
// The sentinel is told the connection once mounted, and opens its fusectl
// abort file (/sys/fs/fuse/connections/N/abort) then, while the connection is
// surely the daemon's. When the daemon's main thread dies (PR_SET_PDEATHSIG)
// and some thread of the daemon is still alive a moment later, it writes to
// that file: the request fails, the lock is released and the daemon finishes
// dying. The number alone would not do: a successor that aborts and detaches
// the dead mount first frees the number with it, and its own mount may be
// given the same one. The open file stays bound to the connection it was
// opened for, so the sentinel never ends a successor's mount. It exits when
// the daemon closes its end of the pipe (a clean exit) or after acting.
#pragma once

#include <optional>

namespace regfs {

class Sentinel {
 public:
  // Forks the sentinel. Call before any other thread or file exists: the
  // child keeps nothing of the daemon's. nullopt if it cannot (logged).
  static std::optional<Sentinel> start();

  // The connection to end if the daemon is killed: the mount's device minor.
  void watch(unsigned connection) const;

 private:
  explicit Sentinel(int fd) : fd_(fd) {}
  int fd_;  // the pipe's write end; closed by the daemon's exit
};

}  // namespace regfs
