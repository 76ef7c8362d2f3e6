// What the filesystem asks of the daemon. The FUSE adapter knows paths,
// inodes and kernel caches; the backend knows the registry and the checks.
//
// Every call happens on the daemon's single event-loop thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"

namespace regfs::fs {

// What a file under the mount shows.
enum class FileKind {
  one,      // /registry/<service>
  all,      // /registry/.all/<service>
  wait,     // /registry/.wait/<service>
  status,   // /registry/.status.json
  metrics,  // /registry/.metrics
  events,   // one open of /registry/.events (never asked of the backend)
};

// A decided answer to a read.
struct Answer {
  std::string content;
  // How long the kernel may keep this answer without asking again (the rest
  // of the freshness window of the verdicts behind it). Zero for dot-files.
  Duration cache_for{0};
  // The service has several instances: each open decides again (rotation).
  bool rotates = false;
};

// Who is asking, from the FUSE request context.
struct Caller {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

class Backend {
 public:
  virtual ~Backend() = default;

  using AnswerFn = std::function<void(Result<Answer>)>;
  // Stops a decision nobody waits for any more (every reader was interrupted):
  // its checks and retries end and `done` is never called. Loop thread only,
  // at most once, and only while `done` has not been called.
  using Abandon = std::function<void()>;
  // Decides what `kind` of `service` reads as now. Calls `done` exactly once,
  // on the loop thread, possibly before returning; within the read deadline
  // (the wait timeout for FileKind::wait). Errors: not_found, host_down, timed_out.
  // `suspect`: the endpoint ("host:port") this reader was handed last for
  // `service`, empty when none; a re-read says it failed the reader, so its
  // verdict must be recent (docs/INTERFACES.md, "Re-reads").
  // Returns how to abandon the decision (empty when it cannot be, e.g. once decided).
  virtual Abandon answer(FileKind kind, const std::string& service, const std::string& suspect,
                         AnswerFn done) = 0;

  // How many instances are registered under `service` (healthy or not).
  virtual std::size_t instance_count(std::string_view service) const = 0;

  // Services with at least one instance, sorted.
  virtual std::vector<std::string> list() const = 0;

  // May `who` register and deregister?
  virtual bool may_write(const Caller& who) const = 0;

  // Registers the lines in `text` for this node, replacing or appending.
  // Durable when it returns success; on error nothing changed.
  virtual Status write(const std::string& service, std::string_view text, bool append) = 0;

  // Removes this node's instances of `service` (not_found, not_owner).
  virtual Status remove(const std::string& service) = 0;
};

// Told by the backend when what a service reads as may have changed, so the
// filesystem can drop kernel caches of exactly that service.
class ChangeSink {
 public:
  virtual ~ChangeSink() = default;
  virtual void service_changed(const std::string& service) = 0;
};

}  // namespace regfs::fs
