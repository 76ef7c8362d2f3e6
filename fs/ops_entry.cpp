// lookup, forget, create, unlink: the operations on names.
#include <cerrno>
#include <cstring>

#include "errno_map.hpp"
#include "filesystem.hpp"

namespace regfs::fs {
namespace {

int name_error(const char* name) {
  if (std::strlen(name) > kMaxServiceName) return ENAMETOOLONG;
  return valid_service_name(name) ? 0 : EINVAL;
}

}  // namespace

void Filesystem::lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  inodes_.collect(Clock::now());
  const std::string n(name);
  if (parent == kRootIno) {
    if (n == ".all") return reply_entry(req, *inodes_.find(kAllIno), kDirTimeout, kRootIno);
    if (n == ".wait") return reply_entry(req, *inodes_.find(kWaitIno), kDirTimeout, kRootIno);
    if (n == kAnswersDir) return reply_entry(req, *inodes_.find(kAnswersIno), kDirTimeout, kRootIno);
    if (n == ".status.json") return decide(req, FileKind::status, {}, Via::lookup);
    if (n == ".metrics") return decide(req, FileKind::metrics, {}, Via::lookup);
    if (n == ".events") return reply_entry(req, *inodes_.find(kEventsIno), kDirTimeout, kRootIno);
    if (!valid_service_name(n)) return (void)fuse_reply_err(req, ENOENT);
    return lookup_service(req, FileKind::one, n);
  }
  if (parent == kAllIno) {
    if (!valid_service_name(n)) return (void)fuse_reply_err(req, ENOENT);
    return lookup_service(req, FileKind::all, n);
  }
  if (parent == kWaitIno) {
    if (!valid_service_name(n)) return (void)fuse_reply_err(req, ENOENT);
    if (!park_interruptible(req)) return;
    return lookup_service(req, FileKind::wait, n);
  }
  if (parent == kAnswersIno) return lookup_answer(req, name);
  fuse_reply_err(req, inodes_.find(parent) == nullptr ? ENOENT : ENOTDIR);
}

void Filesystem::create(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_file_info* fi) {
  if (parent != kRootIno) return (void)fuse_reply_err(req, EPERM);
  if (const int err = name_error(name)) return (void)fuse_reply_err(req, err);
  if (!backend_.may_write(caller(req))) return (void)fuse_reply_err(req, EACCES);
  // An empty file until the first write registers it. Writes through this
  // handle bypass the page cache, so nothing written lingers there.
  // Its entry has no timeout, so there is nothing to drop when it changes.
  Inode& node = inodes_.file(FileKind::one, name, {}, 0);
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fuse_entry_param e{};
  e.ino = node.ino;
  e.generation = 1;
  e.attr = attributes(node);
  e.attr_timeout = 0;
  e.entry_timeout = 0;  // the next open decides again
  if (fuse_reply_create(req, &e, fi) != 0) return;
  ++node.nlookup;
  entries_[{kRootIno, name}] = node.ino;  // the kernel's entry of the name leads here now
}

void Filesystem::unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != kRootIno) return (void)fuse_reply_err(req, EPERM);
  if (!valid_service_name(name)) return (void)fuse_reply_err(req, ENOENT);
  if (!backend_.may_write(caller(req))) return (void)fuse_reply_err(req, EACCES);
  const Status st = backend_.remove(name);
  fuse_reply_err(req, st.ok() ? 0 : to_errno(st.error().code));
}

}  // namespace regfs::fs
