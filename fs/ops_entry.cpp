// lookup, forget, create, unlink: the operations on directory entries.
#include <cerrno>
#include <cstring>

#include "errno_map.hpp"
#include "filesystem.hpp"

namespace regfs::fs {
namespace {

constexpr double kEntryTimeout = 86400.0;  // entries are invalidated explicitly on removal

int name_error(const char* name) {
  if (std::strlen(name) > kMaxServiceName) return ENAMETOOLONG;
  return valid_service_name(name) ? 0 : EINVAL;
}

}  // namespace

void Filesystem::reply_entry(fuse_req_t req, Node& node, double entry_timeout) {
  fuse_entry_param e{};
  e.ino = node.ino;
  e.generation = 1;
  e.attr = attributes(node);
  const bool fixed = node.service.empty() && node.type != NodeType::file;
  double attr_timeout = fixed ? kEntryTimeout : 0.0;
  if (!fixed && answer_usable(node)) {
    attr_timeout = std::chrono::duration<double>(node.decided_at + node.cache_for - options_.now())
                       .count();
    attr_timeout = std::max(attr_timeout, 0.0);
  }
  e.attr_timeout = attr_timeout;
  e.entry_timeout = entry_timeout;
  if (fuse_reply_entry(req, &e) == 0) ++node.nlookup;
}

void Filesystem::lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  const std::string n(name);
  if (parent == kRootIno) {
    fuse_ino_t fixed = 0;
    if (n == ".all") fixed = kAllIno;
    if (n == ".wait") fixed = kWaitIno;
    if (n == ".status.json") fixed = kStatusIno;
    if (n == ".metrics") fixed = kMetricsIno;
    if (fixed != 0) return reply_entry(req, *inodes_.find(fixed), kEntryTimeout);
    if (!valid_service_name(n) || !backend_.exists(n)) return (void)fuse_reply_err(req, ENOENT);
    return reply_entry(req, inodes_.service_node(FileKind::one, n), kEntryTimeout);
  }
  if (parent == kAllIno) {
    if (!valid_service_name(n) || !backend_.exists(n)) return (void)fuse_reply_err(req, ENOENT);
    return reply_entry(req, inodes_.service_node(FileKind::all, n), kEntryTimeout);
  }
  if (parent == kWaitIno) {
    // Every valid name exists under .wait/: reading it waits for the service.
    if (!valid_service_name(n)) return (void)fuse_reply_err(req, ENOENT);
    return reply_entry(req, inodes_.service_node(FileKind::wait, n), kEntryTimeout);
  }
  fuse_reply_err(req, inodes_.find(parent) == nullptr ? ENOENT : ENOTDIR);
}

void Filesystem::forget(fuse_ino_t ino, std::uint64_t nlookup) { inodes_.forget(ino, nlookup); }

void Filesystem::create(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_file_info* fi) {
  if (parent != kRootIno) return (void)fuse_reply_err(req, EPERM);
  if (const int err = name_error(name)) return (void)fuse_reply_err(req, err);
  if (!backend_.may_write(caller(req))) return (void)fuse_reply_err(req, EACCES);
  Node& node = inodes_.service_node(FileKind::one, name);
  // The file registers on write(); until then nothing exists. Writes through
  // this handle bypass the page cache so nothing written lingers there.
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fuse_entry_param e{};
  e.ino = node.ino;
  e.generation = 1;
  e.attr = attributes(node);
  e.attr.st_size = 0;
  e.attr_timeout = 0;
  e.entry_timeout = 0;  // an empty service does not exist: ask again next time
  if (fuse_reply_create(req, &e, fi) == 0) {
    ++node.nlookup;
    ++node.created_handles;
  }
}

void Filesystem::release(fuse_ino_t ino) {
  if (Node* node = inodes_.find(ino); node != nullptr && node->created_handles > 0) {
    --node->created_handles;
  }
}

void Filesystem::unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != kRootIno) return (void)fuse_reply_err(req, EPERM);
  if (!valid_service_name(name)) return (void)fuse_reply_err(req, ENOENT);
  if (!backend_.may_write(caller(req))) return (void)fuse_reply_err(req, EACCES);
  const Status st = backend_.remove(name);
  fuse_reply_err(req, st.ok() ? 0 : to_errno(st.error().code));
}

}  // namespace regfs::fs
