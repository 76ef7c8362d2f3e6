// The FUSE adapter: maps kernel requests on /registry to the Backend.
//
// Caching is the heart of it (docs/DESIGN.md). The session declines open,
// flush and opendir, so the kernel never sends them. A lookup decides the
// answer and returns the inode of that exact content; file inodes never
// change, so the kernel may keep their attributes and pages, and a read the
// kernel serves from its cache costs no round trip. The entry timeout says
// how long the name may lead to the same answer: the rest of the verdict's
// freshness window for a single healthy instance, zero where every open must
// decide again (dot-files, .wait/). A service with several instances is a
// symbolic link whose readlink decides each open and names the chosen
// answer's inode under .answers/ (in .wait/ too, where the readlink waits for
// a healthy instance). Every change to a service drops exactly its entries in
// / and .all/ from the kernel's cache, and the .answers/ names of its answers.
//
// Being told of changes (docs/INTERFACES.md, "Following changes"): poll() on
// an answer inode (/registry/<svc>, .all/<svc>, .answers/<ino>) reports
// POLLPRI|POLLERR once its service changed after that answer was handed out;
// the kernel names the open file by the handle inside each fuse_pollhandle,
// so the state is per open file (one small entry, no timer); a waiting handle
// is notified from the change feed after the service's invalidations are
// sent. The kernel never tells of a close (open is declined), so an entry
// lives until its inode is forgotten, at most kWatchesPerInode per inode.
//
// /registry/.events is a link; each readlink (each open) makes a stream
// inode with its own feed subscription. The kernel reads it through its page
// cache: every read() first asks for the attributes (no attribute caching,
// auto_inval_data), and that getattr is where the reader waits: it is parked
// until the next change, then answered with the size grown by one line, which
// the kernel then reads. A stream keeps the bytes from the page holding the
// reader's position on (one page and a line at most).
//
// Every method runs on the event-loop thread. Each request gets exactly one
// reply, now or from a Backend callback later.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <sys/stat.h>
#include <tuple>
#include <utility>
#include <vector>

#include "backend.hpp"
#include "core/change_feed.hpp"
#include "core/instance.hpp"
#include "inode_table.hpp"
#include "notifier.hpp"
#include "readers.hpp"

namespace regfs::fs {

struct MountOptions {
  gid_t writers_gid = 0;  // group that owns the writable files (0: root only)
  Limits limits;          // max_write bounds one write()
};

class Filesystem final : public ChangeSink {
 public:
  // `backend` must outlive the filesystem.
  Filesystem(Backend& backend, MountOptions options);

  // Set once the session exists; invalidations are dropped before that.
  void set_notifier(Notifier* notifier) { notifier_ = notifier; }

  // ChangeSink: drop the kernel's entries for `service`.
  void service_changed(const std::string& service) override;

  // Follows `feed` for poll() and .events. `feed` must outlive the
  // filesystem; call once, before the mount serves requests.
  void follow(ChangeFeed& feed);

  // The adapter's counters, as Prometheus text.
  std::string metrics_text() const;

  // Replies EIO to every parked request (at shutdown).
  void fail_pending();

  // Ends the mount's work, in the only safe order: first every parked
  // request gets its reply (a lookup parked here holds its directory's lock
  // in the kernel), then the notifier stops, waiting at most `grace` for the
  // invalidations already queued (each takes that lock). False if they are
  // still blocked then: a request the kernel has not handed us yet holds the
  // lock, and only ending the connection frees it.
  bool shut_down(std::chrono::milliseconds grace);

  // Requests parked in the daemon now (the regfs_parked_requests gauge).
  std::size_t parked() const;

  // The operations, one per FUSE request type (ops_*.cpp).
  void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void forget(fuse_ino_t ino, std::uint64_t nlookup);
  // `of_open_file`: the kernel asks for an open file (FUSE_GETATTR_FH: a
  // read() or lseek(), not stat()).
  void getattr(fuse_req_t req, fuse_ino_t ino, bool of_open_file);
  // Takes ownership of `ph` (may be null).
  void poll(fuse_req_t req, fuse_ino_t ino, fuse_pollhandle* ph);
  void setattr(fuse_req_t req, fuse_ino_t ino, int to_set);
  void readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off);
  void readlink(fuse_req_t req, fuse_ino_t ino);
  void read(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off);
  void write(fuse_req_t req, fuse_ino_t ino, const char* buf, std::size_t size, off_t off,
             int open_flags);
  void create(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_file_info* fi);
  void unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
  void interrupted(fuse_req_t req);

  // At most this many .events streams at once (a readlink beyond: ENFILE),
  // and poll() entries per answer inode (the oldest open file's dropped first).
  static constexpr std::size_t kMaxStreams = 4096;
  static constexpr std::size_t kWatchesPerInode = 1024;
  // How many events a .events reader may fall behind before it loses some.
  static constexpr std::size_t kStreamBacklog = 256;

 private:
  // How long the kernel may keep what never changes: directories, file
  // inodes' attributes and their names under .answers/, and a rotating name's
  // link (until a change to its service drops it).
  static constexpr double kDirTimeout = 86400.0;
  static constexpr double kStableTimeout = 86400.0;
  static constexpr double kLinkTimeout = 86400.0;
  // A rotating name's link: kept in /, looked up on every open in .wait/.
  static constexpr double link_timeout(FileKind kind) {
    return kind == FileKind::wait ? 0.0 : kLinkTimeout;
  }

  // How a decision is delivered: as a lookup's entry, or as a readlink's target.
  enum class Via { lookup, readlink };
  // What parked requests asked for: kind, service, via, and the suspect (the
  // endpoint their process was handed last, Readers) so that a re-read never
  // shares a decision made without it.
  using Pending = std::tuple<FileKind, std::string, Via, std::string>;

  // Requests parked on one backend decision.
  struct Decision {
    std::uint64_t id = 0;           // which backend call's answer is theirs
    std::vector<fuse_req_t> reqs;   // each still owed its one reply
    Backend::Abandon abandon;       // stops the backend's work if nobody waits any more
  };

  // Requests taken off the parked list, each owed exactly one reply. Whatever
  // `each` did not get to (a reply that threw, say) gets EIO on destruction,
  // so nothing thrown on the way can leave a request unanswered.
  class Replies {
   public:
    explicit Replies(std::vector<fuse_req_t> reqs) : reqs_(std::move(reqs)) {}
    ~Replies();
    Replies(const Replies&) = delete;
    Replies& operator=(const Replies&) = delete;
    std::size_t size() const { return reqs_.size(); }
    // Calls `reply` with each request in arrival order; a request counts as
    // answered once `reply` returns.
    template <typename Fn>
    void each(Fn&& reply) {
      for (; next_ < reqs_.size(); ++next_) reply(reqs_[next_]);
    }

   private:
    std::vector<fuse_req_t> reqs_;
    std::size_t next_ = 0;
  };

  struct stat attributes(const Inode& node) const;
  // A truncation, a time update or a write through `node`, accepted or not:
  // the kernel changed its copy of the inode's pages, so the inode gets a new
  // mtime (the kernel drops them), no later answer leads to it, and its
  // .answers/ name is dropped at once. Such a call may change nothing, so no
  // change would drop that name; each one through a rotating name would
  // leave the kernel holding one more name and this daemon one more inode.
  void retire(Inode& node);
  // Drops the kernel's .answers/<ino> name (already out of answer_names_).
  void invalidate_answer_name(fuse_ino_t ino);
  // Replies with `node` as the entry of a name in directory `parent`, and
  // remembers the name if the kernel may keep it (entry_timeout > 0).
  void reply_entry(fuse_req_t req, Inode& node, double entry_timeout, fuse_ino_t parent);
  void lookup_service(fuse_req_t req, FileKind kind, const std::string& service);
  void lookup_answer(fuse_req_t req, const char* name);
  // Parks `req` and starts deciding `kind` of `service` unless already under
  // way. The only way into lookups_; decided() and interrupted() the only ways
  // out, each replying to what it takes out. Whatever the backend throws, the
  // parked requests are answered (EIO).
  void decide(fuse_req_t req, FileKind kind, const std::string& service, Via via);
  // The backend's answer to decision `id`: replies to its parked requests.
  void decided(const Pending& key, std::uint64_t id, Result<Answer> answer) noexcept;
  void deliver(const Pending& key, const Result<Answer>& answer, Replies& parked);
  Caller caller(fuse_req_t req) const;
  // The process behind `req` (Readers::process_of).
  pid_t reader(fuse_req_t req);
  bool park_interruptible(fuse_req_t req);
  // The kernel's second lookup within one open (Relookup): answers it with
  // the inode its first lookup was given, and returns true; false when
  // `req` is not one.
  bool answer_relookup(fuse_req_t req, FileKind kind, const std::string& service);
  // `req` revalidates an entry that leads to another inode than `node`: its
  // thread will look the name up again at once.
  void expect_relookup(fuse_req_t req, FileKind kind, const std::string& service, const Inode& node,
                       double entry_timeout);

  // poll() and .events (ops_watch.cpp).
  struct Watch {                      // one open file that poll()ed an answer
    bool changed = false;             // its service changed since it was handed out
    fuse_pollhandle* ph = nullptr;    // owned; the kernel waits for a notification
  };
  struct Stream {                     // one open of /registry/.events
    ChangeFeed::Subscription sub;
    std::string bytes;                // the stream's bytes [base, size)
    std::uint64_t base = 0;
    std::uint64_t size = 0;           // what the kernel was told
    std::vector<fuse_req_t> parked;   // read()s' getattrs waiting for a line
    fuse_pollhandle* ph = nullptr;    // owned
    std::uint64_t lines = 0;
  };
  void changes_arrived();
  void stream_arrived(fuse_ino_t ino);
  // Appends the next line(s) to `s`; false when there is nothing to add.
  bool extend(Stream& s);
  void readlink_events(fuse_req_t req);
  void getattr_stream(fuse_req_t req, const Inode& node, Stream& s, bool of_open_file);
  void read_stream(fuse_req_t req, const Stream& s, std::size_t size, off_t off);
  // The inode table forgot `ino`: drops what watched it.
  void erased(fuse_ino_t ino, const std::string& service);
  void drop_stream(fuse_ino_t ino);
  std::uint64_t feed_now() const { return feed_ == nullptr ? 0 : feed_->published(); }

  Backend& backend_;
  MountOptions options_;
  Notifier* notifier_ = nullptr;
  InodeTable inodes_;
  Readers readers_;  // what each process was handed last, per service
  std::map<Pending, Decision> lookups_;  // parked requests by what they asked
  std::uint64_t decisions_ = 0;          // ids of backend decisions started
  bool starting_ = false;                // in backend_.answer for a new decision
  // Names in / and .all/ whose entry a lookup let the kernel keep (an entry
  // timeout above zero) since their last invalidation: only for these may the
  // kernel hold a dentry to drop. Registered services only, so bounded by the
  // registry: a missing name's negative entry is never kept.
  std::set<std::pair<fuse_ino_t, std::string>> exposed_;
  // Answer inodes whose `.answers/<ino>` name a lookup handed the kernel
  // (with a day's entry timeout) and that it still references. A change to
  // their service drops those names, which supersedes them: otherwise the
  // kernel would keep every answer a readlink ever named, and this daemon its
  // inode. Bounded by the inode table.
  std::set<fuse_ino_t> answer_names_;
  std::uint64_t invalidations_ = 0;  // kernel cache invalidations queued
  std::uint64_t interrupted_ = 0;    // parked requests ended with EINTR
  std::uint64_t abandoned_ = 0;      // decisions abandoned: every reader was interrupted
  std::uint64_t rereads_ = 0;        // opens by a process handed an endpoint of that service before
  std::uint64_t relookups_served_ = 0;  // second lookups within one open, answered without deciding
  // One open, one decision. While the kernel holds a name's entry it sends a
  // lookup only to revalidate it (an entry timeout of zero: every open), and
  // a reply with another inode than the entry's makes the kernel drop the
  // entry and look the name up again, from the same thread, within the same
  // open. Deciding again there would run a second check when the freshness
  // window is zero (each decision checks), so that one open could wait twice
  // the read deadline. So a lookup that got another inode than the name's
  // entry leads to is remembered, by thread, for kRelookupWindow; that
  // thread's next lookup of the name gets the same inode. The entry is known
  // from this daemon's own replies (lookups, creates) and forgotten when the
  // kernel forgets its inode or the name is invalidated.
  struct Relookup {
    fuse_ino_t ino = 0;
    double entry_timeout = 0;
    Clock::time_point until{};
  };
  static constexpr std::chrono::seconds kRelookupWindow{1};
  static constexpr std::size_t kMaxRelookups = 4096;
  std::map<std::pair<fuse_ino_t, std::string>, fuse_ino_t> entries_;  // (directory, service) -> ino
  std::map<std::tuple<pid_t, FileKind, std::string>, Relookup> relookups_;  // by (thread, kind, service)
  ChangeFeed* feed_ = nullptr;
  ChangeFeed::Subscription changes_;  // for poll()
  // The feed's count at each service's latest change, for services with inodes.
  std::map<std::string, std::uint64_t, std::less<>> changed_at_;
  std::map<fuse_ino_t, std::map<std::uint64_t, Watch>> watches_;  // by inode, by kernel file handle
  std::map<fuse_ino_t, Stream> streams_;
  std::uint64_t poll_wakeups_ = 0;    // poll handles notified
  std::uint64_t event_lines_ = 0;     // lines handed to .events readers
  std::uint64_t events_missed_ = 0;   // events .events readers lost by falling behind
  struct timespec started_{};
};

}  // namespace regfs::fs
