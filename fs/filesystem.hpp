// The FUSE adapter: maps kernel requests on /registry to the Backend.
//
// Caching is the heart of it. The session gives up open, flush and opendir
// (the kernel then sends none), so a read the kernel can serve from its page
// cache costs no round trip. Each file's answer is decided at getattr and
// served at read; its mtime is a serial that changes only when the content
// does, so the kernel (auto_inval_data) keeps pages exactly while they are
// right. Answers that must be decided per open (rotation over several
// instances, dot-files) carry an attribute timeout of zero; single answers
// may be kept for as long as their verdict is fresh. Every change to a
// service queues invalidations of exactly its inodes.
//
// Every method runs on the event-loop thread. Each request gets exactly one
// reply, now or from a Backend callback later.
#pragma once

#include <string>
#include <sys/stat.h>

#include "backend.hpp"
#include "core/instance.hpp"
#include "inode_table.hpp"
#include "notifier.hpp"

namespace regfs::fs {

struct MountOptions {
  gid_t writers_gid = 0;  // group that owns the writable files (0: root only)
  Limits limits;          // max_write bounds one write()
  Duration fresh{0};      // freshness window: how long an unread answer stays good
  Time (*now)() = nullptr;  // monotonic clock of the adapter
};

class Filesystem final : public ChangeSink {
 public:
  // `backend` must outlive the filesystem.
  Filesystem(Backend& backend, MountOptions options);

  // Set once the session exists; invalidations are dropped before that.
  void set_notifier(Notifier* notifier) { notifier_ = notifier; }

  // ChangeSink: drop every answer and kernel cache of `service`.
  void service_changed(const std::string& service) override;

  // The adapter's counters, as Prometheus text.
  std::string metrics_text() const;

  // Replies EIO to every parked request (at shutdown).
  void fail_pending();

  // The operations, one per FUSE request type (ops_*.cpp).
  void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void forget(fuse_ino_t ino, std::uint64_t nlookup);
  void getattr(fuse_req_t req, fuse_ino_t ino);
  void setattr(fuse_req_t req, fuse_ino_t ino, const struct stat* attr, int to_set);
  void readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off);
  void read(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off);
  void write(fuse_req_t req, fuse_ino_t ino, const char* buf, std::size_t size, off_t off,
             int open_flags);
  void create(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_file_info* fi);
  void unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
  void release(fuse_ino_t ino);
  void interrupted(fuse_req_t req);

 private:
  // Attributes of a node as the kernel should see them now.
  struct stat attributes(const Node& node) const;
  void reply_entry(fuse_req_t req, Node& node, double entry_timeout);
  // Starts deciding node's answer unless a decision is under way.
  void decide(Node& node);
  void decided(fuse_ino_t ino, std::uint64_t decision, Result<Answer> answer);
  bool answer_usable(const Node& node) const;
  void serve_read(Node& node, fuse_req_t req, std::size_t size, off_t off);
  void answer_getattr(fuse_req_t req, Node& node);
  Caller caller(fuse_req_t req) const;
  bool park_interruptible(fuse_req_t req, const Node& node);

  Backend& backend_;
  MountOptions options_;
  Notifier* notifier_ = nullptr;
  InodeTable inodes_;
  std::uint64_t next_decision_ = 1;
  std::uint64_t invalidations_ = 0;  // kernel cache invalidations queued
  struct timespec started_{};
};

}  // namespace regfs::fs
