// getattr and setattr. A file's getattr is where its answer is decided.
#include <cerrno>

#include "filesystem.hpp"

namespace regfs::fs {
namespace {
constexpr double kFixedTimeout = 86400.0;
}

void Filesystem::getattr(fuse_req_t req, fuse_ino_t ino) {
  Node* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type != NodeType::file) {
    const struct stat st = attributes(*node);
    return (void)fuse_reply_attr(req, &st, kFixedTimeout);
  }
  if (answer_usable(*node)) return answer_getattr(req, *node);
  if (node->created_handles > 0 && !backend_.exists(node->service)) {
    // Created, not yet written: an empty file until the first write registers it.
    struct stat st = attributes(*node);
    st.st_size = 0;
    return (void)fuse_reply_attr(req, &st, 0.0);
  }
  if (node->kind == FileKind::wait && !park_interruptible(req, *node)) return;
  node->getattrs.push_back(req);
  decide(*node);
}

void Filesystem::setattr(fuse_req_t req, fuse_ino_t ino, const struct stat* /*attr*/,
                         int to_set) {
  Node* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type != NodeType::file || node->kind != FileKind::one) {
    return (void)fuse_reply_err(req, EPERM);
  }
  if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
    return (void)fuse_reply_err(req, EPERM);
  }
  if (!backend_.may_write(caller(req))) return (void)fuse_reply_err(req, EACCES);
  // Truncation (O_TRUNC, `: >`) and time updates (touch) change nothing: a
  // write replaces, rm removes. The next getattr decides afresh.
  node->have_answer = false;
  struct stat st = attributes(*node);
  if ((to_set & FUSE_SET_ATTR_SIZE) != 0) st.st_size = 0;
  fuse_reply_attr(req, &st, 0.0);
}

bool Filesystem::park_interruptible(fuse_req_t req, const Node& /*node*/) {
  if (fuse_req_interrupted(req) != 0) {
    fuse_reply_err(req, EINTR);
    return false;
  }
  fuse_req_interrupt_func(
      req, [](fuse_req_t r, void* self) { static_cast<Filesystem*>(self)->interrupted(r); }, this);
  return true;
}

}  // namespace regfs::fs
