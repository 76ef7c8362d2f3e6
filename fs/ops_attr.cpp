// getattr and setattr. Attributes of file inodes never change, except the
// mtime bump after a write through the inode.
#include <cerrno>

#include "filesystem.hpp"

namespace regfs::fs {

void Filesystem::getattr(fuse_req_t req, fuse_ino_t ino, bool of_open_file) {
  const Inode* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type == InodeType::file && node->kind == FileKind::events) {
    const auto it = streams_.find(ino);
    if (it == streams_.end()) return (void)fuse_reply_err(req, ENOENT);
    return getattr_stream(req, *node, it->second, of_open_file);
  }
  const struct stat st = attributes(*node);
  fuse_reply_attr(req, &st, kStableTimeout);
}

void Filesystem::setattr(fuse_req_t req, fuse_ino_t ino, int to_set) {
  Inode* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type != InodeType::file || node->kind != FileKind::one) {
    return (void)fuse_reply_err(req, EPERM);
  }
  if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
    return (void)fuse_reply_err(req, EPERM);
  }
  if (!backend_.may_write(caller(req))) return (void)fuse_reply_err(req, EACCES);
  // Truncation (O_TRUNC, `: >`) and time updates (touch) change nothing: a
  // write replaces, rm removes. The kernel has truncated its copy of the
  // pages.
  retire(*node);
  struct stat st = attributes(*node);
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) st.st_size = 0;
  fuse_reply_attr(req, &st, 0.0);
}

}  // namespace regfs::fs
