// One small callback per FUSE request type, forwarding to the Filesystem.
// No exception crosses into libfuse: a request whose handler throws gets EIO
// (handlers reply as their last act, so a throw means no reply was sent; a
// request parked for a decision is answered by Filesystem::decide itself,
// which never lets an exception out once the request is parked).
#include "operations.hpp"

#include <cerrno>
#include <spdlog/spdlog.h>
#include <utility>

#include "filesystem.hpp"

namespace regfs::fs {
namespace {

Filesystem& fs_of(fuse_req_t req) { return *static_cast<Filesystem*>(fuse_req_userdata(req)); }

template <typename Fn>
void guarded(fuse_req_t req, Fn&& fn) {
  try {
    fn(fs_of(req));
  } catch (const std::exception& e) {
    spdlog::error("request failed: {}", e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    spdlog::error("request failed");
    fuse_reply_err(req, EIO);
  }
}

// For requests that get no reply (forget): nothing thrown gets out either.
template <typename Fn>
void unreplied(Fn&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    spdlog::error("forget failed: {}", e.what());
  } catch (...) {
    spdlog::error("forget failed");
  }
}

void op_init(void* /*userdata*/, fuse_conn_info* conn) {
  // The kernel may keep pages while mtime and size stay; it must not
  // truncate behind our back or batch writes.
  conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_EXPLICIT_INVAL_DATA | FUSE_CAP_ATOMIC_O_TRUNC |
                  FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
  if ((conn->capable & FUSE_CAP_PARALLEL_DIROPS) != 0) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  spdlog::debug("fuse protocol {}.{}", conn->proto_major, conn->proto_minor);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, [&](Filesystem& fs) { fs.lookup(req, parent, name); });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, std::uint64_t nlookup) {
  unreplied([&] { fs_of(req).forget(ino, nlookup); });
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, std::size_t count, fuse_forget_data* forgets) {
  unreplied([&] {
    for (std::size_t i = 0; i < count; ++i) fs_of(req).forget(forgets[i].ino, forgets[i].nlookup);
  });
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  guarded(req, [&](Filesystem& fs) { fs.getattr(req, ino, fi != nullptr); });
}

// The handle is the filesystem's from here on, whatever happens.
void op_poll(fuse_req_t req, fuse_ino_t ino, fuse_file_info* /*fi*/, fuse_pollhandle* ph) {
  guarded(req, [&](Filesystem& fs) { fs.poll(req, ino, std::exchange(ph, nullptr)); });
  if (ph != nullptr) fuse_pollhandle_destroy(ph);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* /*attr*/, int to_set,
                fuse_file_info* /*fi*/) {
  guarded(req, [&](Filesystem& fs) { fs.setattr(req, ino, to_set); });
}

// Declining open, opendir and flush tells the kernel never to send them
// again: a cached read then costs no round trip at all.
void op_open(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, ENOSYS);
}

void op_opendir(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, ENOSYS);
}

void op_flush(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, ENOSYS);
}

void op_release(fuse_req_t req, fuse_ino_t /*ino*/, fuse_file_info* /*fi*/) {
  fuse_reply_err(req, 0);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  guarded(req, [&](Filesystem& fs) { fs.readlink(req, ino); });
}

void op_read(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off, fuse_file_info* /*fi*/) {
  guarded(req, [&](Filesystem& fs) { fs.read(req, ino, size, off); });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, std::size_t size, off_t off,
              fuse_file_info* fi) {
  guarded(req, [&](Filesystem& fs) { fs.write(req, ino, buf, size, off, fi->flags); });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, std::size_t size, off_t off,
                fuse_file_info* /*fi*/) {
  guarded(req, [&](Filesystem& fs) { fs.readdir(req, ino, size, off); });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t /*mode*/,
               fuse_file_info* fi) {
  guarded(req, [&](Filesystem& fs) { fs.create(req, parent, name, fi); });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, [&](Filesystem& fs) { fs.unlink(req, parent, name); });
}

// The shapes of the tree are fixed: no directories, links or renames.
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EPERM); }
void op_mkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EPERM); }
void op_rmdir(fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void op_link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); }
void op_rename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int) {
  fuse_reply_err(req, EPERM);
}

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.open = op_open;
  ops.opendir = op_opendir;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.readlink = op_readlink;
  ops.read = op_read;
  ops.write = op_write;
  ops.readdir = op_readdir;
  ops.create = op_create;
  ops.unlink = op_unlink;
  ops.poll = op_poll;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.link = op_link;
  ops.rename = op_rename;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& operations() {
  static const fuse_lowlevel_ops ops = make_operations();
  return ops;
}

}  // namespace regfs::fs
