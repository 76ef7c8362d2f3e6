#include "filesystem.hpp"

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <string>

#include "core/prometheus.hpp"
#include "errno_map.hpp"

#include <spdlog/spdlog.h>

namespace regfs::fs {
namespace {

double seconds(Duration d) {
  return d.count() <= 0 ? 0.0 : std::chrono::duration<double>(d).count();
}

// Whether a name of `kind` is a link while its service has several instances
// (in / and .wait/; .all/ lists them all, the dot-files are not services).
bool rotates_through_link(FileKind kind) { return kind == FileKind::one || kind == FileKind::wait; }

// Where a link of `kind` in its directory leads to the answer inode `answer`.
std::string link_target(FileKind kind, fuse_ino_t answer) {
  return std::string(kind == FileKind::wait ? "../" : "") + std::string(kAnswersDir) + "/" +
         std::to_string(answer);
}

// The directory a name of `kind` is looked up in.
fuse_ino_t directory_of(FileKind kind) {
  switch (kind) {
    case FileKind::all: return kAllIno;
    case FileKind::wait: return kWaitIno;
    default: return kRootIno;
  }
}

}  // namespace

Filesystem::Filesystem(Backend& backend, MountOptions options)
    : backend_(backend), options_(options) {
  clock_gettime(CLOCK_REALTIME, &started_);
  inodes_.on_erase([this](fuse_ino_t ino, const std::string& service) { erased(ino, service); });
}

struct stat Filesystem::attributes(const Inode& node) const {
  struct stat st{};
  st.st_ino = node.ino;
  st.st_uid = 0;
  st.st_gid = options_.writers_gid;
  st.st_atim = st.st_ctim = st.st_mtim = started_;
  st.st_blksize = 4096;
  const mode_t group_write = options_.writers_gid != 0 ? 0020 : 0;
  switch (node.type) {
    case InodeType::root:
      st.st_mode = S_IFDIR | 0755 | group_write;
      st.st_nlink = 5;
      return st;
    case InodeType::dir_all:
    case InodeType::dir_wait:
    case InodeType::dir_answers:
      st.st_mode = S_IFDIR | 0555;
      st.st_nlink = 2;
      return st;
    case InodeType::link:
    case InodeType::events:
      // The target is decided per open; its length here is only a hint.
      st.st_mode = S_IFLNK | 0777;
      st.st_nlink = 1;
      st.st_size = static_cast<off_t>(link_target(node.kind, node.ino).size());
      return st;
    case InodeType::file:
      break;
  }
  if (node.kind == FileKind::events) {
    // A stream: its size is what the reader has been given so far. Unlinked
    // (nlink 0), so that the kernel forgets it once its reader closes it.
    st.st_mode = S_IFREG | 0444;
    st.st_nlink = 0;
    const auto it = streams_.find(node.ino);
    st.st_size = it == streams_.end() ? 0 : static_cast<off_t>(it->second.size);
    st.st_mtim.tv_nsec = it == streams_.end() ? 0 : static_cast<long>(it->second.lines % 1000000000U);
    st.st_ctim = st.st_mtim;
    return st;
  }
  st.st_mode = node.kind == FileKind::one ? S_IFREG | 0644 | group_write : S_IFREG | 0444;
  st.st_nlink = node.snapshot ? 0 : 1;
  // An error inode claims one byte, so that a read reaches the daemon and fails.
  st.st_size = node.error != 0 ? 1 : static_cast<off_t>(node.content.size());
  st.st_blocks = (st.st_size + 511) / 512;
  // A write through the inode dirties the kernel's copy of its pages; a new
  // mtime makes the kernel (auto_inval_data) drop them.
  st.st_mtim.tv_nsec = static_cast<long>(node.serial % 1000000000U);
  st.st_ctim = st.st_mtim;
  return st;
}

void Filesystem::reply_entry(fuse_req_t req, Inode& node, double entry_timeout, fuse_ino_t parent) {
  fuse_entry_param e{};
  e.ino = node.ino;
  e.generation = 1;
  e.attr = attributes(node);
  // A stream's attributes are asked again at every read(): that is where it waits.
  e.attr_timeout = node.kind == FileKind::events ? 0.0 : kStableTimeout;
  e.entry_timeout = entry_timeout;
  if (node.type == InodeType::file) node.answered_at = feed_now();
  // Only a dentry the kernel may keep needs dropping when its service
  // changes: one with no entry timeout (and a negative one, from an error
  // reply) is looked up again at every open. So names looked up but never
  // registered are never remembered.
  if (entry_timeout > 0 && (parent == kRootIno || parent == kAllIno) && !node.service.empty()) {
    exposed_.emplace(parent, node.service);
  }
  if (fuse_reply_entry(req, &e) != 0) return;
  ++node.nlookup;
  if (parent == kAnswersIno && node.kind != FileKind::events) answer_names_.insert(node.ino);
}

void Filesystem::lookup_service(fuse_req_t req, FileKind kind, const std::string& service) {
  if (answer_relookup(req, kind, service)) return;
  if (rotates_through_link(kind) && backend_.instance_count(service) > 1) {
    // Rotation: the name is a link, and each open's readlink decides. In /
    // the kernel keeps it until a change drops it; .wait/ gets no
    // invalidations, so there each open's lookup finds the link again.
    return reply_entry(req, inodes_.link(kind, service), link_timeout(kind), directory_of(kind));
  }
  decide(req, kind, service, Via::lookup);
}

void Filesystem::lookup_answer(fuse_req_t req, const char* name) {
  // Only inodes a readlink named are found here; their content never changes.
  char* end = nullptr;
  errno = 0;
  const unsigned long long ino = std::strtoull(name, &end, 10);
  Inode* node = errno == 0 && end != name && *end == '\0' && name[0] != '0'
                   ? inodes_.find(static_cast<fuse_ino_t>(ino))
                   : nullptr;
  if (node == nullptr || node->type != InodeType::file ||
      (node->kind != FileKind::one && node->kind != FileKind::wait &&
       node->kind != FileKind::events) ||
      node->held_until == Clock::time_point{}) {
    return (void)fuse_reply_err(req, ENOENT);
  }
  if (node->kind != FileKind::events) return reply_entry(req, *node, kStableTimeout, kAnswersIno);
  // A stream's name is dropped from the kernel's cache at once (its open
  // file keeps it), so that when the reader closes it the kernel forgets
  // the inode and the stream ends: the only close the daemon hears of.
  reply_entry(req, *node, 0.0, kAnswersIno);
  if (notifier_ != nullptr) {
    notifier_->inval_entry(kAnswersIno, name);
    ++invalidations_;
  }
}

void Filesystem::decide(fuse_req_t req, FileKind kind, const std::string& service, Via via) {
  // A process opening a service again names what it was handed last as the
  // suspect (readers.hpp). .all/ and the dot-files hand out no one endpoint.
  std::string suspect;
  if (kind == FileKind::one || kind == FileKind::wait) {
    suspect = readers_.last(reader(req), service);
    if (!suspect.empty()) ++rereads_;
  }
  Pending key{kind, service, via, suspect};
  const auto [it, fresh] = lookups_.try_emplace(key);
  Decision& decision = it->second;
  try {
    decision.reqs.push_back(req);
  } catch (...) {
    if (fresh) lookups_.erase(it);
    throw;  // not parked: the C boundary replies EIO
  }
  if (!fresh) return;  // a decision is under way: share it
  const std::uint64_t id = decision.id = ++decisions_;
  try {
    starting_ = true;  // a dot-file answered at once does not count itself as parked
    Backend::Abandon abandon =
        backend_.answer(kind, service, suspect,
                        [this, key, id](Result<Answer> answer) { decided(key, id, std::move(answer)); });
    starting_ = false;
    // Decided already (the callback ran before answer returned)?
    if (const auto again = lookups_.find(key); again != lookups_.end() && again->second.id == id) {
      again->second.abandon = std::move(abandon);
    }
  } catch (const std::exception& e) {
    starting_ = false;
    // Whatever the backend threw, the requests parked on this decision get
    // their one reply: none stays parked for later lookups to queue behind.
    spdlog::error("deciding {} failed: {}", service.empty() ? "a dot-file" : service, e.what());
    decided(key, id, Error{Errc::io, e.what()});
  } catch (...) {
    starting_ = false;
    decided(key, id, Error{Errc::io, "unknown exception"});
  }
}

void Filesystem::decided(const Pending& key, std::uint64_t id, Result<Answer> answer) noexcept {
  const auto it = lookups_.find(key);
  if (it == lookups_.end() || it->second.id != id) return;  // failed at shutdown, or abandoned
  Replies parked(std::move(it->second.reqs));
  lookups_.erase(it);
  try {
    deliver(key, answer, parked);
  } catch (const std::exception& e) {
    spdlog::error("answering {} failed: {}", std::get<1>(key), e.what());
  } catch (...) {
    spdlog::error("answering {} failed", std::get<1>(key));
  }
  // Whatever deliver did not reply to, `parked` replies EIO to as it goes.
}

void Filesystem::deliver(const Pending& key, const Result<Answer>& answer, Replies& parked) {
  const auto& [kind, service, via, suspect] = key;
  Inode* node = nullptr;
  double entry_timeout = 0.0;
  // The endpoint each reader is handed, remembered for its next open.
  std::string handed;
  if (answer.ok()) {
    if (via == Via::lookup && rotates_through_link(kind) && answer->rotates) {
      node = &inodes_.link(kind, service);  // instances were added while deciding
      entry_timeout = link_timeout(kind);
    } else {
      if (kind == FileKind::one || kind == FileKind::wait) {
        handed = answer->content.substr(0, answer->content.find('\n'));
      }
      // .wait/ answers are inodes of their own: read-only, so a write through
      // a .wait/ name is refused (and none of it lands in pages / hands out).
      node = &inodes_.file(kind, service, answer->content, 0);
      if (kind != FileKind::wait && !answer->rotates) entry_timeout = seconds(answer->cache_for);
    }
  } else if (answer.error().code == Errc::host_down && kind == FileKind::one) {
    // The name exists (it can be written and removed); reading it fails.
    node = &inodes_.file(kind, service, {}, EHOSTDOWN);
  }
  if (node == nullptr) {
    const int err = to_errno(answer.error().code);
    return parked.each([err](fuse_req_t req) { fuse_reply_err(req, err); });
  }
  auto remember = [&](fuse_req_t req) {
    if (!handed.empty()) readers_.handed(reader(req), service, handed);
  };
  if (via == Via::lookup) {
    const auto name = std::make_pair(directory_of(kind), service);
    const auto entry = entries_.find(name);
    const bool refused = entry != entries_.end() && entry->second != node->ino;
    entries_[name] = node->ino;
    return parked.each([&](fuse_req_t req) {
      remember(req);
      if (refused) expect_relookup(req, kind, service, *node, entry_timeout);
      reply_entry(req, *node, entry_timeout, directory_of(kind));
    });
  }
  inodes_.hold(*node, Clock::now());
  node->answered_at = feed_now();
  const std::string target = link_target(kind, node->ino);
  parked.each([&](fuse_req_t req) {
    remember(req);
    fuse_reply_readlink(req, target.c_str());
  });
}

void Filesystem::readlink(fuse_req_t req, fuse_ino_t ino) {
  const Inode* node = inodes_.find(ino);
  if (node == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (node->type == InodeType::events) return readlink_events(req);
  if (node->type != InodeType::link) return (void)fuse_reply_err(req, EINVAL);
  if (node->kind == FileKind::wait && !park_interruptible(req)) return;
  decide(req, node->kind, node->service, Via::readlink);
}

void Filesystem::forget(fuse_ino_t ino, std::uint64_t nlookup) {
  const auto now = Clock::now();
  // A stream's hold only bridges its readlink and the lookup that follows:
  // once the kernel forgets it, its reader has closed it.
  if (Inode* node = inodes_.find(ino); node != nullptr && node->kind == FileKind::events) {
    node->held_until = {};
  }
  std::pair<fuse_ino_t, std::string> name;
  if (const Inode* node = inodes_.find(ino); node != nullptr && !node->service.empty()) {
    name = {directory_of(node->kind), node->service};
  }
  inodes_.forget(ino, nlookup, now);
  // No kernel reference left: the kernel holds no name of it either.
  if (const Inode* node = inodes_.find(ino); node == nullptr || node->nlookup == 0) {
    answer_names_.erase(ino);
    if (const auto it = entries_.find(name); it != entries_.end() && it->second == ino) {
      entries_.erase(it);
    }
  }
  inodes_.collect(now);
}

void Filesystem::service_changed(const std::string& service) {
  const auto now = Clock::now();
  // The kernel's names of this service's answers under .answers/: whatever a
  // readlink named before the change is superseded, so the kernel drops the
  // names and then forgets the inodes once no open file holds them (an open
  // file keeps reading its inode; a readlink's target stays findable for its
  // hold, InodeTable::kHold). An answer that is still current is merely looked
  // up again by the next open that is led to it. No lookup in .answers/ ever
  // waits, so these invalidations never wait long for its directory's lock.
  std::vector<fuse_ino_t> answers;
  for (const Inode* node : inodes_.inodes_of(service)) {
    if (answer_names_.erase(node->ino) != 0) answers.push_back(node->ino);
  }
  inodes_.sweep(service, now);
  inodes_.collect(now);
  if (notifier_ == nullptr) return;
  // Not .wait/: its entries are never cached (each open looks up again), and
  // an invalidation there would queue behind a lookup parked in .wait/ for
  // another name, holding every later write's reply until that wait ends.
  for (fuse_ino_t dir : {kRootIno, kAllIno}) {
    if (exposed_.erase({dir, service}) == 0) continue;  // no dentry to drop
    entries_.erase({dir, service});
    notifier_->inval_entry(dir, service);
    ++invalidations_;
  }
  for (fuse_ino_t ino : answers) invalidate_answer_name(ino);
}

void Filesystem::retire(Inode& node) {
  ++node.serial;
  inodes_.retire(node);
  if (answer_names_.erase(node.ino) != 0 && notifier_ != nullptr) invalidate_answer_name(node.ino);
}

void Filesystem::invalidate_answer_name(fuse_ino_t ino) {
  notifier_->inval_entry(kAnswersIno, std::to_string(ino));
  ++invalidations_;
}

std::string Filesystem::metrics_text() const {
  PrometheusText out;
  out.counter("regfs_invalidations_total", "Kernel cache invalidations queued.", invalidations_);
  out.gauge("regfs_inodes", "Inodes the mount tracks.", inodes_.size());
  out.gauge("regfs_cached_names",
            "Names the kernel may hold in its cache, remembered to drop them.",
            exposed_.size() + answer_names_.size());
  out.gauge("regfs_parked_requests", "Kernel requests waiting in the daemon for a decision.",
            parked());
  out.counter("regfs_interrupted_total", "Parked requests ended by the reader's signal (EINTR).",
              interrupted_);
  out.counter("regfs_abandoned_total", "Decisions stopped because every reader was interrupted.",
              abandoned_);
  out.counter("regfs_relookups_total",
              "Lookups the kernel repeated within one open, given the answer just decided.",
              relookups_served_);
  out.counter("regfs_rereads_total",
              "Opens of a service by a process that was handed an endpoint of it before.", rereads_);
  out.gauge("regfs_reread_memory", "Endpoints remembered as handed to a process, to tell re-reads.",
            readers_.remembered());
  std::size_t watches = 0;
  std::size_t waiting = 0;
  for (const auto& [ino, per_file] : watches_) {
    watches += per_file.size();
    for (const auto& [kh, watch] : per_file) waiting += watch.ph != nullptr ? 1 : 0;
  }
  std::size_t stream_waiting = 0;
  for (const auto& [ino, s] : streams_) stream_waiting += s.parked.size() + (s.ph != nullptr ? 1 : 0);
  out.gauge("regfs_poll_watches", "Open answer files that poll() has seen.", watches);
  out.gauge("regfs_poll_waiting", "poll() handles waiting for a change of their service.", waiting);
  out.counter("regfs_poll_wakeups_total", "poll() handles notified of a change.", poll_wakeups_);
  out.gauge("regfs_event_streams", "Opens of /registry/.events.", streams_.size());
  out.gauge("regfs_event_readers_waiting", ".events reads and polls waiting for the next change.",
            stream_waiting);
  out.counter("regfs_event_lines_total", "Change lines handed to .events readers.", event_lines_);
  out.counter("regfs_events_missed_total", "Changes .events readers lost by falling behind.",
              events_missed_);
  return out.take();
}

void Filesystem::fail_pending() {
  for (auto& [ino, s] : streams_) {
    for (fuse_req_t req : std::exchange(s.parked, {})) fuse_reply_err(req, EIO);
  }
  auto parked = std::move(lookups_);
  lookups_.clear();
  for (auto& [key, decision] : parked) {
    Replies replies(std::move(decision.reqs));
    replies.each([](fuse_req_t req) { fuse_reply_err(req, EIO); });
  }
}

bool Filesystem::shut_down(std::chrono::milliseconds grace) {
  fail_pending();
  return notifier_ == nullptr || notifier_->stop(grace);
}

Caller Filesystem::caller(fuse_req_t req) const {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Caller who{ctx->uid, ctx->gid, {}};
  // Root may do anything; its groups would cost two reads of /proc per request.
  if (who.uid == 0) return who;
  gid_t groups[64];
  const int n = fuse_req_getgroups(req, 64, groups);
  for (int i = 0; i < std::min(n, 64); ++i) who.groups.push_back(groups[i]);
  return who;
}

pid_t Filesystem::reader(fuse_req_t req) {
  return readers_.process_of(fuse_req_ctx(req)->pid, Readers::Clock::now());
}

bool Filesystem::answer_relookup(fuse_req_t req, FileKind kind, const std::string& service) {
  if (relookups_.empty()) return false;
  const auto it = relookups_.find({fuse_req_ctx(req)->pid, kind, service});
  if (it == relookups_.end()) return false;
  const Relookup r = it->second;
  relookups_.erase(it);  // one open: once
  Inode* node = inodes_.find(r.ino);
  if (node == nullptr || Clock::now() > r.until) return false;
  ++relookups_served_;
  entries_[{directory_of(kind), service}] = node->ino;
  reply_entry(req, *node, r.entry_timeout, directory_of(kind));
  return true;
}

void Filesystem::expect_relookup(fuse_req_t req, FileKind kind, const std::string& service,
                                 const Inode& node, double entry_timeout) {
  const auto now = Clock::now();
  if (relookups_.size() >= kMaxRelookups) {
    std::erase_if(relookups_, [now](const auto& r) { return r.second.until < now; });
    if (relookups_.size() >= kMaxRelookups) return;  // that open may decide twice
  }
  relookups_[{fuse_req_ctx(req)->pid, kind, service}] = Relookup{node.ino, entry_timeout,
                                                                 now + kRelookupWindow};
}

bool Filesystem::park_interruptible(fuse_req_t req) {
  if (fuse_req_interrupted(req) != 0) {
    fuse_reply_err(req, EINTR);
    return false;
  }
  fuse_req_interrupt_func(
      req, [](fuse_req_t r, void* self) { static_cast<Filesystem*>(self)->interrupted(r); }, this);
  return true;
}

void Filesystem::interrupted(fuse_req_t req) {
  for (auto& [ino, s] : streams_) {
    if (std::erase(s.parked, req) == 0) continue;
    ++interrupted_;
    fuse_reply_err(req, EINTR);
    return;
  }
  for (auto it = lookups_.begin(); it != lookups_.end(); ++it) {
    auto& reqs = it->second.reqs;
    if (std::erase(reqs, req) == 0) continue;
    ++interrupted_;
    fuse_reply_err(req, EINTR);
    if (!reqs.empty()) return;  // the decision goes on for the others
    // Nobody waits for it any more: the backend stops its checks and retries.
    const Backend::Abandon abandon = std::move(it->second.abandon);
    lookups_.erase(it);
    ++abandoned_;
    if (abandon) abandon();
    return;
  }
}

std::size_t Filesystem::parked() const {
  std::size_t n = 0;
  for (const auto& [key, decision] : lookups_) n += decision.reqs.size();
  if (starting_ && n > 0) --n;
  for (const auto& [ino, s] : streams_) n += s.parked.size();
  return n;
}

Filesystem::Replies::~Replies() {
  for (std::size_t i = next_; i < reqs_.size(); ++i) fuse_reply_err(reqs_[i], EIO);
}

}  // namespace regfs::fs
