#include "mirror.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/prometheus.hpp"
#include "core/read_plan.hpp"

namespace regfs {
namespace {

constexpr const char* kJournal = ".regfsd.owned";
constexpr const char* kJournalTmp = ".regfsd.owned.tmp";
constexpr const char* kTmp = ".regfsd.tmp";
constexpr const char* kAllPrefix = ".all/";
constexpr std::size_t kMaxJournal = 64 * 1024 * 1024;
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{10000};

bool write_all(int fd, const std::string& content) {
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// A name the mirror may have created: "SERVICE" or ".all/SERVICE".
bool mirror_name(const std::string& name) {
  const std::string_view base = std::string_view(name).starts_with(kAllPrefix)
                                    ? std::string_view(name).substr(std::strlen(kAllPrefix))
                                    : std::string_view(name);
  return valid_service_name(base);
}

}  // namespace

Result<std::unique_ptr<Mirror>> Mirror::open(boost::asio::io_context& io, const std::string& dir,
                                             const Registry& registry) {
  // DIR itself is the operator's choice (it may be reached through a link);
  // nothing inside it is followed.
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Error{Errc::io, "mirror directory " + dir + ": " + std::strerror(errno)};
  }
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{Errc::io, "mirror directory " + dir + ": " + std::strerror(errno)};
  auto mirror = std::unique_ptr<Mirror>(new Mirror(io, dir, registry, fd));
  mirror->load_journal();
  const std::set<std::string> earlier = mirror->owned_;
  mirror->refresh_all();
  // Files of an earlier run that show nothing now.
  for (const auto& name : earlier) {
    if (!mirror->shown_.contains(name)) mirror->set(name, std::nullopt);
  }
  // Not fatal: a full disk at start must not keep the daemon down; appends
  // to the journal go on and the next compaction tries again.
  if (!mirror->compact_journal()) {
    spdlog::warn("mirror: cannot rewrite {}/{}: {}", dir, kJournal, std::strerror(errno));
  }
  return mirror;
}

Mirror::Mirror(boost::asio::io_context& io, std::string dir, const Registry& registry, int dir_fd)
    : io_(io), dir_(std::move(dir)), registry_(registry), dir_fd_(dir_fd), retry_timer_(io) {}

Mirror::~Mirror() {
  retry_timer_.cancel();
  for (int fd : {all_fd_, journal_fd_, dir_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

void Mirror::service_changed(const std::string& service) {
  const Service* svc = registry_.find(service);
  Content one;
  Content all;
  if (svc != nullptr) {
    // Whatever the verdicts' age, only instances whose latest check passed.
    const ReadPlan first = plan_one(*svc, Time{}, true);
    if (first.kind == ReadPlan::Kind::serve) {
      one = render_endpoints(*svc, first.serve);
      all = render_endpoints(*svc, plan_all(*svc, Time{}, true).serve);
    }
  }
  set(service, one);
  set(kAllPrefix + service, all);
}

void Mirror::refresh_all() {
  std::set<std::string> gone;
  for (const auto& [name, content] : shown_) {
    const std::string service = name.starts_with(kAllPrefix) ? name.substr(5) : name;
    if (registry_.find(service) == nullptr) gone.insert(service);
  }
  for (const auto& service : gone) service_changed(service);
  for (const auto& [service, svc] : registry_.services()) service_changed(service);
}

std::string Mirror::metrics_text() const {
  PrometheusText out;
  out.counter("regfs_mirror_write_failures_total",
              "Mirror files that could not be written or removed (retried).", failures_);
  out.gauge("regfs_mirror_pending", "Mirror files waiting for a retry.", pending_.size());
  return out.take();
}

void Mirror::set(const std::string& name, const Content& want) {
  const auto shown = shown_.find(name);
  const bool same = want ? shown != shown_.end() && shown->second == *want
                         : shown == shown_.end() && !owned_.contains(name);
  if (same || write(name, want)) {
    pending_.erase(name);
    return;
  }
  ++failures_;
  pending_[name] = want;
  schedule_retry();
}

bool Mirror::write(const std::string& name, const Content& want) {
  std::string base;
  const int fd = dir_of(name, base);
  if (fd < 0) {
    spdlog::warn("mirror: cannot open {}/.all: {} (retrying)", dir_, std::strerror(errno));
    return false;
  }
  return want ? put(fd, name, base, *want) : drop(fd, name, base);
}

// The descriptor of the directory `name` is in, and its last component.
int Mirror::dir_of(const std::string& name, std::string& base) {
  if (!name.starts_with(kAllPrefix)) {
    base = name;
    return dir_fd_;
  }
  base = name.substr(std::strlen(kAllPrefix));
  if (all_fd_ < 0) {
    if (::mkdirat(dir_fd_, ".all", 0755) != 0 && errno != EEXIST) return -1;
    // O_NOFOLLOW: a link planted at .all fails (ELOOP/ENOTDIR) instead of leading elsewhere.
    all_fd_ = ::openat(dir_fd_, ".all", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  return all_fd_;
}

bool Mirror::put(int fd, const std::string& name, const std::string& base, const std::string& content) {
  if (!owned_.contains(name)) {
    struct stat st{};
    if (::fstatat(fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      spdlog::warn("mirror: {}/{} exists and was not written by regfsd: leaving it alone (retrying)",
                   dir_, name);
      return false;
    }
    if (errno != ENOENT || !journal('+', name)) {
      spdlog::warn("mirror: cannot claim {}/{}: {} (retrying)", dir_, name, std::strerror(errno));
      return false;
    }
  }
  // The temp name is the daemon's own; whatever sits there (a link, say) is
  // removed, not followed, and O_EXCL|O_NOFOLLOW creates a new file or fails.
  if (::unlinkat(fd, kTmp, 0) != 0 && errno != ENOENT) {
    spdlog::warn("mirror: cannot remove {}/{}{}: {} (retrying)", dir_, fd == dir_fd_ ? "" : ".all/",
                 kTmp, std::strerror(errno));
    return false;
  }
  const int out = ::openat(fd, kTmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  bool ok = out >= 0 && write_all(out, content) && ::fsync(out) == 0;
  int err = errno;
  if (out >= 0) ::close(out);
  if (ok && ::renameat(fd, kTmp, fd, base.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    spdlog::warn("mirror: cannot write {}/{}: {} (retrying)", dir_, name, std::strerror(err));
    if (out >= 0) ::unlinkat(fd, kTmp, 0);
    return false;
  }
  shown_[name] = content;
  return true;
}

bool Mirror::drop(int fd, const std::string& name, const std::string& base) {
  if (!owned_.contains(name)) return true;  // not ours: nothing to remove
  // unlinkat removes a link itself, never its target; a directory someone
  // put there (EISDIR) is not ours either.
  if (::unlinkat(fd, base.c_str(), 0) != 0 && errno != ENOENT && errno != EISDIR) {
    spdlog::warn("mirror: cannot remove {}/{}: {} (retrying)", dir_, name, std::strerror(errno));
    return false;
  }
  shown_.erase(name);
  if (!journal('-', name)) {
    spdlog::warn("mirror: cannot record the removal of {}/{}: {} (retrying)", dir_, name,
                 std::strerror(errno));
    return false;
  }
  return true;
}

// Appends "+NAME" or "-NAME" to the journal, durably.
bool Mirror::journal(char op, const std::string& name) {
  if (journal_lines_ > 2 * owned_.size() + 64 && !compact_journal()) return false;
  if (journal_fd_ < 0) {
    journal_fd_ = ::openat(dir_fd_, kJournal, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (journal_fd_ < 0) return false;
  }
  if (!write_all(journal_fd_, std::string(1, op) + name + "\n") || ::fdatasync(journal_fd_) != 0) {
    // A partial line is harmless: loading skips what does not parse.
    ::close(journal_fd_);
    journal_fd_ = -1;
    return false;
  }
  ++journal_lines_;
  if (op == '+') {
    owned_.insert(name);
  } else {
    owned_.erase(name);
  }
  return true;
}

void Mirror::load_journal() {
  const int fd = ::openat(dir_fd_, kJournal, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  std::string text;
  char buf[65536];
  ssize_t n = 0;
  while (text.size() < kMaxJournal && (n = ::read(fd, buf, sizeof buf)) > 0) {
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // a line cut short by a crash
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.size() < 2 || !mirror_name(line.substr(1))) continue;
    if (line[0] == '+') owned_.insert(line.substr(1));
    if (line[0] == '-') owned_.erase(line.substr(1));
  }
}

// Rewrites the journal to list exactly owned_ (temp, fsync, rename, fsync).
bool Mirror::compact_journal() {
  std::string text;
  for (const auto& name : owned_) text += "+" + name + "\n";
  if (::unlinkat(dir_fd_, kJournalTmp, 0) != 0 && errno != ENOENT) return false;
  const int fd = ::openat(dir_fd_, kJournalTmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = write_all(fd, text) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::renameat(dir_fd_, kJournalTmp, dir_fd_, kJournal) != 0 || ::fsync(dir_fd_) != 0) {
    ::unlinkat(dir_fd_, kJournalTmp, 0);
    return false;
  }
  if (journal_fd_ >= 0) ::close(journal_fd_);
  journal_fd_ = -1;
  journal_lines_ = owned_.size();
  return true;
}

void Mirror::schedule_retry() {
  if (retry_armed_) return;
  retry_armed_ = true;
  retry_timer_.expires_after(backoff_);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    retry_armed_ = false;
    retry();
  });
}

void Mirror::retry() {
  // .all may have been fixed (or replaced) meanwhile: open it again.
  if (all_fd_ >= 0) ::close(all_fd_);
  all_fd_ = -1;
  const auto waiting = pending_;
  for (const auto& [name, want] : waiting) {
    if (write(name, want)) {
      pending_.erase(name);
    } else {
      ++failures_;
    }
  }
  if (pending_.empty()) {
    backoff_ = kFirstBackoff;
    return;
  }
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  schedule_retry();
}

}  // namespace regfs
