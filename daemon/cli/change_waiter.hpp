// Waiting for an answer of the mount to change, at no cost while nothing
// changes: no timer, no wake-up, no re-read until the daemon says so.
//
// Each name that exists is held open and poll()ed for POLLPRI: the mount
// wakes the poll with POLLPRI|POLLERR when what that name answers changes
// (sysfs-style; the answer read from the descriptor before the poll is the
// one the change is measured against). A name that does not open (not
// registered: ENOENT; nothing healthy: EHOSTDOWN) leaves nothing to poll, so
// while one of them is watched, /registry/.events (a stream of one line per
// change, from the moment it is opened) is held open and poll()ed for POLLIN
// instead, and every line on it counts as a possible change.
//
// SIGINT and SIGTERM end a wait (their handlers write to a pipe that the
// poll watches), and so does SIGCHLD when asked for, so that a caller with
// children learns of their exit. Used from one thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "core/time.hpp"

namespace regfs::cli {

// What reading one name answered: its text, or the errno of open()/read().
struct Answer {
  int err = 0;
  std::string text;
  friend bool operator==(const Answer&, const Answer&) = default;
};

class ChangeWaiter {
 public:
  // Installs the signal handlers (for the life of the process; a second
  // waiter shares them).
  ChangeWaiter(const Context& ctx, bool wake_on_child);
  ~ChangeWaiter();
  ChangeWaiter(const ChangeWaiter&) = delete;
  ChangeWaiter& operator=(const ChangeWaiter&) = delete;

  // Reads each of `names` (paths under the mount, e.g. ".all/web") afresh and,
  // unless `once`, keeps it open to be polled. Returns 0, or the errno that
  // means the mount itself is gone (ENOTCONN, or ENODEV when the path is no
  // longer a regfs mount), or ENOSYS when .events is not there to follow a
  // name that does not open.
  int read(const std::vector<std::string>& names, std::vector<Answer>& answers, bool once = false);

  enum class Wake { changed, signal, child, deadline, error };
  // Waits for a change in any name read last, a signal, or `deadline`
  // (steady clock; none: no time limit). On Wake::error, `err` says why.
  Wake wait(std::optional<Time> deadline, int& err);

  // The signal that ended the last Wake::signal (SIGINT, SIGTERM).
  int signal() const { return signal_; }

 private:
  void close_names();

  Context ctx_;
  std::vector<int> fds_;  // the names read last; -1 where the name did not open
  int events_fd_ = -1;    // .events, while some name does not open
  int signal_ = 0;
};

// Now, on the steady clock, as the core's Time.
Time steady_now();

}  // namespace regfs::cli
