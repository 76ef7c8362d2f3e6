// poll() on answers and the /registry/.events streams: being told of changes.
#include <cerrno>
#include <chrono>
#include <cstring>
#include <poll.h>
#include <unistd.h>

#include "filesystem.hpp"

namespace regfs::fs {
namespace {

// What a regular file always is: readable (and writable), as sysfs reports.
constexpr unsigned kFileReady = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM;
constexpr unsigned kChanged = POLLPRI | POLLERR;

// The kernel's handle of the polled open file. libfuse keeps it as the first
// member of its fuse_pollhandle (fuse_i.h, unchanged since libfuse 2.8) and
// offers no accessor; it is the only name the kernel gives an open file when
// open is declined.
std::uint64_t file_handle_of(const fuse_pollhandle* ph) {
  std::uint64_t kh = 0;
  std::memcpy(&kh, ph, sizeof kh);
  return kh;
}

void destroy(fuse_pollhandle* ph) {
  if (ph != nullptr) fuse_pollhandle_destroy(ph);
}

// The distance from the monotonic clock the core's times count on to the
// wall clock, for the lines' "time".
Duration wall_offset() {
  return std::chrono::system_clock::now().time_since_epoch() -
         std::chrono::steady_clock::now().time_since_epoch();
}

std::uint64_t page_size() {
  static const std::uint64_t size = [] {
    const long s = ::sysconf(_SC_PAGESIZE);
    return s > 0 ? static_cast<std::uint64_t>(s) : 4096U;
  }();
  return size;
}

}  // namespace

void Filesystem::follow(ChangeFeed& feed) {
  feed_ = &feed;
  changes_ = feed.subscribe(ChangeFeed::kDefaultHistory, [this] { changes_arrived(); });
}

void Filesystem::changes_arrived() {
  const auto batch = changes_.take();
  // Handles to notify: each is told once, then the kernel polls again.
  std::vector<fuse_pollhandle*> wake;
  auto mark = [&](fuse_ino_t ino) {
    const auto it = watches_.find(ino);
    if (it == watches_.end()) return;
    for (auto& [kh, watch] : it->second) {
      watch.changed = true;
      if (watch.ph != nullptr) wake.push_back(std::exchange(watch.ph, nullptr));
    }
  };
  if (batch.missed > 0) {
    // Cannot happen with a subscriber that takes everything at once; if it
    // ever did, every watcher is told to look again.
    for (auto& [ino, watches] : watches_) mark(ino);
  }
  for (const auto& event : batch.events) {
    const auto inodes = inodes_.inodes_of(event.service);
    if (inodes.empty()) continue;  // nothing of it handed out: nobody can poll it
    changed_at_[event.service] = event.seq;
    for (const Inode* node : inodes) mark(node->ino);
  }
  if (wake.empty()) return;
  poll_wakeups_ += wake.size();
  auto send = [wake = std::move(wake)] {
    for (fuse_pollhandle* ph : wake) {
      fuse_lowlevel_notify_poll(ph);
      fuse_pollhandle_destroy(ph);
    }
  };
  // After the invalidations the change queued (the registrar tells its sinks
  // first), so that a woken reader's open finds the new answer.
  if (notifier_ == nullptr) return send();
  notifier_->then(std::move(send));
}

void Filesystem::poll(fuse_req_t req, fuse_ino_t ino, fuse_pollhandle* ph) {
  Inode* node = inodes_.find(ino);
  if (node == nullptr) {
    destroy(ph);
    return (void)fuse_reply_err(req, ENOENT);
  }
  if (node->kind == FileKind::events && node->type == InodeType::file) {
    const auto it = streams_.find(ino);
    if (it == streams_.end()) {
      destroy(ph);
      return (void)fuse_reply_err(req, ENOENT);
    }
    Stream& s = it->second;
    if (s.sub.pending() > 0) {
      destroy(ph);
      return (void)fuse_reply_poll(req, POLLIN | POLLRDNORM);
    }
    destroy(std::exchange(s.ph, ph));
    return (void)fuse_reply_poll(req, 0);
  }
  if (node->type != InodeType::file || node->service.empty()) {
    destroy(ph);
    return (void)fuse_reply_poll(req, kFileReady);
  }
  // Changed since this answer was last handed out?
  const auto at = changed_at_.find(node->service);
  bool changed = at != changed_at_.end() && at->second > node->answered_at;
  if (ph != nullptr) {
    auto& watches = watches_[ino];
    const auto [it, fresh] = watches.try_emplace(file_handle_of(ph));
    if (fresh) {
      it->second.changed = changed;
      if (watches.size() > kWatchesPerInode) {
        // Kernel handles grow: the smallest is the oldest open file.
        destroy(watches.begin()->second.ph);
        watches.erase(watches.begin());
      }
    } else {
      changed = it->second.changed;
    }
    if (changed) {
      destroy(ph);
    } else {
      destroy(std::exchange(it->second.ph, ph));
    }
  }
  fuse_reply_poll(req, kFileReady | (changed ? kChanged : 0));
}

void Filesystem::erased(fuse_ino_t ino, const std::string& service) {
  if (const auto it = watches_.find(ino); it != watches_.end()) {
    for (auto& [kh, watch] : it->second) destroy(watch.ph);
    watches_.erase(it);
  }
  drop_stream(ino);
  if (!service.empty() && inodes_.inodes_of(service).empty()) changed_at_.erase(service);
}

// ---- /registry/.events -----------------------------------------------------

void Filesystem::readlink_events(fuse_req_t req) {
  if (feed_ == nullptr) return (void)fuse_reply_err(req, ENOENT);
  // Streams that were named but never opened (`ls -l` reads the link) end
  // once their hold does: no timer needed.
  const auto now = Clock::now();
  inodes_.collect(now);
  if (streams_.size() >= kMaxStreams) return (void)fuse_reply_err(req, ENFILE);
  Inode& node = inodes_.stream();
  const fuse_ino_t ino = node.ino;
  Stream& s = streams_[ino];
  s.sub = feed_->subscribe(kStreamBacklog, [this, ino] { stream_arrived(ino); });
  inodes_.hold(node, now);
  const std::string target = std::string(kAnswersDir) + "/" + std::to_string(ino);
  fuse_reply_readlink(req, target.c_str());
}

bool Filesystem::extend(Stream& s) {
  // One line at a time (and the line saying what was missed): a reader whose
  // buffer holds a line takes all of it in one read() and is at the end when
  // it asks again, so waiting then is right.
  auto batch = s.sub.take(1);
  if (batch.events.empty() && batch.missed == 0) return false;
  std::string text;
  if (batch.missed > 0) {
    text += missed_json_line(batch.missed);
    events_missed_ += batch.missed;
  }
  for (const auto& event : batch.events) text += to_json_line(event, wall_offset());
  // The kernel reads again from the page holding the old end.
  const std::uint64_t keep_from = s.size - s.size % page_size();
  if (keep_from > s.base) {
    s.bytes.erase(0, keep_from - s.base);
    s.base = keep_from;
  }
  s.bytes += text;
  s.size += text.size();
  ++s.lines;
  ++event_lines_;
  return true;
}

void Filesystem::stream_arrived(fuse_ino_t ino) {
  const auto it = streams_.find(ino);
  if (it == streams_.end()) return;
  Stream& s = it->second;
  if (s.ph != nullptr) {
    fuse_pollhandle* ph = std::exchange(s.ph, nullptr);
    fuse_lowlevel_notify_poll(ph);
    fuse_pollhandle_destroy(ph);
    ++poll_wakeups_;
  }
  if (s.parked.empty() || !extend(s)) return;
  const Inode* node = inodes_.find(ino);
  const auto parked = std::exchange(s.parked, {});
  for (fuse_req_t req : parked) {
    if (node == nullptr) {
      fuse_reply_err(req, EIO);
      continue;
    }
    const struct stat st = attributes(*node);
    fuse_reply_attr(req, &st, 0.0);
  }
}

void Filesystem::getattr_stream(fuse_req_t req, const Inode& node, Stream& s, bool of_open_file) {
  // stat() and fstat() are answered at once; a read() (of_open_file) that
  // finds nothing new waits for the next change.
  if (of_open_file && !extend(s)) {
    if (!park_interruptible(req)) return;
    s.parked.push_back(req);
    return;
  }
  const struct stat st = attributes(node);
  fuse_reply_attr(req, &st, 0.0);
}

void Filesystem::read_stream(fuse_req_t req, const Stream& s, std::size_t size, off_t off) {
  const auto offset = static_cast<std::uint64_t>(off);
  if (offset < s.base) return (void)fuse_reply_err(req, EIO);  // seeked back past what is kept
  const std::uint64_t start = std::min<std::uint64_t>(offset - s.base, s.bytes.size());
  fuse_reply_buf(req, s.bytes.data() + start,
                 std::min<std::uint64_t>(size, s.bytes.size() - start));
}

void Filesystem::drop_stream(fuse_ino_t ino) {
  const auto it = streams_.find(ino);
  if (it == streams_.end()) return;
  destroy(it->second.ph);
  for (fuse_req_t req : it->second.parked) fuse_reply_err(req, EIO);
  streams_.erase(it);
}

}  // namespace regfs::fs
