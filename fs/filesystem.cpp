#include "filesystem.hpp"

#include <cerrno>
#include <ctime>
#include <spdlog/spdlog.h>

#include "errno_map.hpp"

namespace regfs::fs {
namespace {

constexpr mode_t kDirMode = S_IFDIR | 0755;
constexpr mode_t kReadOnlyDirMode = S_IFDIR | 0555;
constexpr mode_t kReadOnlyFileMode = S_IFREG | 0444;

double seconds(Duration d) { return d.count() <= 0 ? 0.0 : std::chrono::duration<double>(d).count(); }

// Unconsumed answers may be served to the read that follows their getattr for
// at least this long, so fstat-then-read does not rotate twice.
constexpr Duration kMinReuse = milliseconds(100);

}  // namespace

Filesystem::Filesystem(Backend& backend, MountOptions options)
    : backend_(backend), options_(options) {
  clock_gettime(CLOCK_REALTIME, &started_);
}

struct stat Filesystem::attributes(const Node& node) const {
  struct stat st{};
  st.st_ino = node.ino;
  st.st_uid = 0;
  st.st_gid = options_.writers_gid;
  st.st_atim = st.st_ctim = st.st_mtim = started_;
  st.st_blksize = 4096;
  switch (node.type) {
    case NodeType::root:
      st.st_mode = kDirMode | (options_.writers_gid != 0 ? 0020 : 0);
      st.st_nlink = 4;
      return st;
    case NodeType::dir_all:
    case NodeType::dir_wait:
      st.st_mode = kReadOnlyDirMode;
      st.st_nlink = 2;
      return st;
    case NodeType::file:
      break;
  }
  const bool writable = node.kind == FileKind::one;
  st.st_mode = writable ? S_IFREG | 0644 | (options_.writers_gid != 0 ? 0020 : 0)
                        : kReadOnlyFileMode;
  st.st_nlink = 1;
  st.st_size = node.have_answer ? static_cast<off_t>(node.content.size()) : 0;
  st.st_blocks = (st.st_size + 511) / 512;
  // The serial is the mtime's nanoseconds past the daemon's start: it changes
  // exactly when the content does, which is what the kernel compares.
  st.st_mtim.tv_sec += static_cast<time_t>(node.serial / 1000000000U);
  st.st_mtim.tv_nsec = static_cast<long>(node.serial % 1000000000U);
  st.st_ctim = st.st_mtim;
  return st;
}

bool Filesystem::answer_usable(const Node& node) const {
  if (!node.have_answer) return false;
  const Time now = options_.now();
  if (now < node.decided_at + node.cache_for) return true;
  const Duration reuse = std::max(options_.fresh, kMinReuse);
  return !node.consumed && now < node.decided_at + reuse;
}

void Filesystem::decide(Node& node) {
  if (node.deciding) return;
  node.deciding = true;
  const std::uint64_t id = next_decision_++;
  node.decision = id;
  const fuse_ino_t ino = node.ino;
  backend_.answer(node.kind, node.service,
                  [this, ino, id](Result<Answer> answer) { decided(ino, id, std::move(answer)); });
}

void Filesystem::decided(fuse_ino_t ino, std::uint64_t decision, Result<Answer> answer) {
  Node* node = inodes_.find(ino);
  if (node == nullptr || node->decision != decision || !node->deciding) return;
  node->deciding = false;
  auto getattrs = std::move(node->getattrs);
  auto reads = std::move(node->reads);
  node->getattrs.clear();
  node->reads.clear();

  if (answer.ok()) {
    if (!node->have_answer || node->content != answer->content) {
      ++node->serial;
      node->content = std::move(answer->content);
    }
    node->have_answer = true;
    node->consumed = false;
    node->decided_at = options_.now();
    node->cache_for = answer->cache_for;
    for (fuse_req_t req : getattrs) answer_getattr(req, *node);
    for (const auto& r : reads) serve_read(*node, r.req, r.size, r.off);
  } else {
    node->have_answer = false;
    const int err = to_errno(answer.error().code);
    for (fuse_req_t req : getattrs) fuse_reply_err(req, err);
    for (const auto& r : reads) fuse_reply_err(r.req, err);
    if (err == ENOENT && notifier_ != nullptr && node->kind != FileKind::wait) {
      notifier_->inval_entry(node->kind == FileKind::all ? kAllIno : kRootIno, node->service);
    }
  }
  if (node->nlookup == 0) inodes_.forget(ino, 0);
}

void Filesystem::answer_getattr(fuse_req_t req, Node& node) {
  const struct stat st = attributes(node);
  const Duration left = node.decided_at + node.cache_for - options_.now();
  fuse_reply_attr(req, &st, seconds(left));
}

void Filesystem::serve_read(Node& node, fuse_req_t req, std::size_t size, off_t off) {
  const auto total = node.content.size();
  const auto start = std::min<std::size_t>(static_cast<std::size_t>(off), total);
  const auto len = std::min(size, total - start);
  if (start + len >= total) node.consumed = true;
  fuse_reply_buf(req, node.content.data() + start, len);
}

void Filesystem::service_changed(const std::string& service) {
  for (Node* node : inodes_.nodes_of(service)) {
    node->have_answer = false;
    if (notifier_ != nullptr && node->nlookup > 0) {
      notifier_->inval_inode(node->ino);
      ++invalidations_;
    }
  }
  if (notifier_ != nullptr && !backend_.exists(service)) {
    notifier_->inval_entry(kRootIno, service);
    notifier_->inval_entry(kAllIno, service);
    invalidations_ += 2;
  }
}

std::string Filesystem::metrics_text() const {
  return "# HELP regfs_invalidations_total Kernel cache invalidations sent.\n"
         "# TYPE regfs_invalidations_total counter\n"
         "regfs_invalidations_total " + std::to_string(invalidations_) + "\n"
         "# HELP regfs_inodes Inodes the mount tracks.\n"
         "# TYPE regfs_inodes gauge\n"
         "regfs_inodes " + std::to_string(inodes_.size()) + "\n";
}

void Filesystem::fail_pending() {
  inodes_.for_each([](Node& node) {
    for (fuse_req_t req : node.getattrs) fuse_reply_err(req, EIO);
    for (const auto& r : node.reads) fuse_reply_err(r.req, EIO);
    node.getattrs.clear();
    node.reads.clear();
    node.deciding = false;
  });
}

Caller Filesystem::caller(fuse_req_t req) const {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Caller who{ctx->uid, ctx->gid, {}};
  gid_t groups[64];
  const int n = fuse_req_getgroups(req, 64, groups);
  for (int i = 0; i < std::min(n, 64); ++i) who.groups.push_back(groups[i]);
  return who;
}

void Filesystem::interrupted(fuse_req_t req) {
  std::size_t found = 0;
  inodes_.for_each([&](Node& node) {
    found += std::erase(node.getattrs, req);
    found += std::erase_if(node.reads, [&](const PendingRead& r) { return r.req == req; });
  });
  if (found > 0) fuse_reply_err(req, EINTR);
}

}  // namespace regfs::fs
