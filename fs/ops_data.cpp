// read, write and readdir.
#include <cerrno>
#include <fcntl.h>
#include <string_view>

#include "errno_map.hpp"
#include "filesystem.hpp"

namespace regfs::fs {

void Filesystem::read(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off) {
  Inode* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type != InodeType::file) {
    return (void)fuse_reply_err(req, node->type == InodeType::link ? EINVAL : EISDIR);
  }
  if (node->error != 0) return (void)fuse_reply_err(req, node->error);
  if (node->kind == FileKind::events) {
    const auto it = streams_.find(ino);
    if (it == streams_.end()) return (void)fuse_reply_err(req, EIO);
    return read_stream(req, it->second, size, off);
  }
  const auto total = node->content.size();
  const auto start = std::min<std::size_t>(static_cast<std::size_t>(off), total);
  fuse_reply_buf(req, node->content.data() + start, std::min(size, total - start));
}

void Filesystem::write(fuse_req_t req, fuse_ino_t ino, const char* buf, std::size_t size,
                       off_t off, int open_flags) {
  Inode* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type != InodeType::file || node->kind != FileKind::one) {
    return (void)fuse_reply_err(req, EPERM);
  }
  if (!backend_.may_write(caller(req))) return (void)fuse_reply_err(req, EACCES);
  // The kernel copied the written bytes into its pages of this inode.
  retire(*node);
  if (size > options_.limits.max_write) return (void)fuse_reply_err(req, EFBIG);
  // `>` writes at offset 0 and replaces; `>>` and later writes of the same
  // handle add (docs/INTERFACES.md).
  const bool append = (open_flags & O_APPEND) != 0 || off > 0;
  const Status st = backend_.write(node->service, std::string_view(buf, size), append);
  if (!st.ok()) return (void)fuse_reply_err(req, to_errno(st.error().code));
  // The write changed the service: its names were queued for invalidation.
  // Reply once they are sent, so the writer's next open sees the change.
  // (The writer holds no directory lock, so the invalidations cannot wait on it.)
  if (notifier_ == nullptr) return (void)fuse_reply_write(req, size);
  notifier_->then([req, size] { fuse_reply_write(req, size); });
}

void Filesystem::readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off) {
  const Inode* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type == InodeType::file || node->type == InodeType::link ||
      node->type == InodeType::events) {
    return (void)fuse_reply_err(req, ENOTDIR);
  }

  struct Entry {
    std::string name;
    fuse_ino_t ino;
    mode_t mode;
  };
  std::vector<Entry> entries{{".", ino, S_IFDIR}, {"..", kRootIno, S_IFDIR}};
  if (node->type == InodeType::root) {
    entries.push_back({".all", kAllIno, S_IFDIR});
    entries.push_back({".wait", kWaitIno, S_IFDIR});
    entries.push_back({".status.json", 0, S_IFREG});
    entries.push_back({".metrics", 0, S_IFREG});
    entries.push_back({".events", kEventsIno, S_IFLNK});
  }
  // .wait/ and .answers/ list nothing: a name there is decided by its lookup.
  // A service's type is decided at lookup too (a file, or a link while it rotates).
  if (node->type == InodeType::root || node->type == InodeType::dir_all) {
    const mode_t type = node->type == InodeType::root ? 0 : S_IFREG;
    for (auto& service : backend_.list()) entries.push_back({std::move(service), 0, type});
  }

  std::string buf(size, '\0');
  std::size_t used = 0;
  for (auto i = static_cast<std::size_t>(off); i < entries.size(); ++i) {
    struct stat st{};
    st.st_ino = entries[i].ino != 0 ? entries[i].ino : 0xffffffffU;  // decided at lookup
    st.st_mode = entries[i].mode;
    const std::size_t need =
        fuse_add_direntry(req, buf.data() + used, size - used, entries[i].name.c_str(), &st,
                          static_cast<off_t>(i + 1));
    if (need > size - used) break;
    used += need;
  }
  fuse_reply_buf(req, buf.data(), used);
}

}  // namespace regfs::fs
