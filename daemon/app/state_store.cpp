#include "state_store.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <limits>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

namespace regfs {
namespace {

Error io_error(const std::string& what, const std::string& path) {
  return Error{Errc::io, what + " " + path + ": " + std::strerror(errno)};
}

Status fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return io_error("cannot fsync", dir);
  return ok_status();
}

Status make_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return io_error("cannot create", dir);
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) return io_error("cannot stat", dir);
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return io_error("not a directory:", dir);
  }
  return ok_status();
}

// A state file's content. Only a regular file is read: a symbolic link is not
// followed, and a FIFO or a device (which could block the start for good)
// is refused without waiting.
Result<std::string> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return io_error("cannot open", path);
  struct stat st{};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    errno = EINVAL;
    return Error{Errc::io, path + " is not a regular file"};
  }
  std::string content;
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n < 0) continue;
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > 16 * 1024 * 1024) break;  // bounded: a state file is small
  }
  const int err = errno;
  ::close(fd);
  if (n < 0) {
    errno = err;
    return io_error("cannot read", path);
  }
  return content;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    spdlog::error("state: cannot list {}: {}", dir, std::strerror(errno));
    return names;
  }
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

}  // namespace

Result<StateStore> StateStore::open(const std::string& dir) {
  if (auto st = make_dir(dir); !st) return st.error();
  if (auto st = make_dir(dir + "/services"); !st) return st.error();
  for (const auto& name : list_dir(dir + "/services")) {
    // Only the store's own temp files: they start with '.', which no service name does.
    if (name.starts_with(".") && (name.ends_with(".tmp") || name.ends_with(".old"))) {
      ::unlink((dir + "/services/" + name).c_str());
    }
  }
  ::unlink((dir + "/.generation.tmp").c_str());
  ::unlink((dir + "/.generation.old").c_str());
  return StateStore(dir);
}

int StateStore::injected(Fault point) const { return fault_ ? fault_(point) : 0; }

Status StateStore::sync_dir(const std::string& dir) {
  if (const int e = injected(Fault::dir_fsync); e != 0) {
    errno = e;
    return io_error("cannot fsync", dir);
  }
  return fsync_dir(dir);
}

Status StateStore::write_temp(const std::string& tmp, const std::string& content) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return io_error("cannot create", tmp);
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const Error e = io_error("cannot write", tmp);
      const int err = errno;  // for the caller, who may tell a full disk apart
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = err;
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (const int e = injected(Fault::file_fsync); e != 0 || ::fsync(fd) != 0) {
    if (e != 0) errno = e;
    const Error err = io_error("cannot fsync", tmp);
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    return err;
  }
  ::close(fd);
  return ok_status();
}

// Makes `path` hold `content` (nullptr: not exist), durably, or leaves it as it
// was. The previous file is kept under a second name until the directory's
// fsync has succeeded; if that fsync fails, the previous file is put back and
// the directory synced again, so what a restart reads is what the caller was
// told: the failed change did not happen.
Status StateStore::replace_file(const std::string& dir, const std::string& name,
                                const std::string* content) {
  const std::string path = dir + "/" + name;
  const std::string tmp = dir + "/." + name + ".tmp";
  const std::string old = dir + "/." + name + ".old";
  if (content != nullptr) {
    if (auto st = write_temp(tmp, *content); !st) return st;
  }
  ::unlink(old.c_str());
  bool had_old = false;
  if (::link(path.c_str(), old.c_str()) == 0) {
    had_old = true;
  } else if (errno != ENOENT) {
    const Error e = io_error("cannot keep the previous", path);
    if (content != nullptr) ::unlink(tmp.c_str());
    return e;
  }
  if (content == nullptr && !had_old) return ok_status();  // nothing to remove
  const int rc = content != nullptr ? ::rename(tmp.c_str(), path.c_str()) : ::unlink(path.c_str());
  if (rc != 0) {
    const Error e = io_error(content != nullptr ? "cannot rename onto" : "cannot remove", path);
    if (content != nullptr) ::unlink(tmp.c_str());
    ::unlink(old.c_str());
    return e;
  }
  auto synced = sync_dir(dir);
  if (synced) {
    ::unlink(old.c_str());  // a leftover is removed at the next start
    return ok_status();
  }
  // The change may or may not be on the disk: put the previous state back.
  const int back = had_old ? ::rename(old.c_str(), path.c_str()) : ::unlink(path.c_str());
  if (back == 0 && sync_dir(dir)) {
    return Error{Errc::io, synced.error().detail + " (the previous state is kept)"};
  }
  spdlog::error("state: {} and cannot restore {}: after a restart it may hold the new or the "
                "previous state", synced.error().detail, path);
  return synced.error();
}

Status StateStore::save(std::string_view service, const std::vector<InstanceSpec>& specs) {
  if (!valid_service_name(service)) return Error{Errc::invalid_name, std::string(service)};
  if (specs.empty()) return replace_file(dir_ + "/services", std::string(service), nullptr);
  std::string content;
  for (const auto& spec : specs) content += to_line(spec) + "\n";
  return replace_file(dir_ + "/services", std::string(service), &content);
}

Result<std::map<std::string, std::vector<InstanceSpec>>> StateStore::load() const {
  std::map<std::string, std::vector<InstanceSpec>> services;
  const std::string dir = dir_ + "/services";
  const Limits limits;
  for (const auto& name : list_dir(dir)) {
    if (name.starts_with(".")) continue;  // temp files
    if (!valid_service_name(name)) {
      spdlog::warn("state: skipping {}/{}: not a service name", dir, name);
      continue;
    }
    auto content = read_file(dir + "/" + name);
    if (!content) {
      spdlog::warn("state: skipping {}: service {} is not restored", content.error().detail, name);
      continue;
    }
    // The store writes whole files ending in a newline and never an empty
    // one: anything else was damaged outside it.
    if (content->empty()) {
      spdlog::warn("state: skipping {}/{}: empty; service {} is not restored", dir, name, name);
      continue;
    }
    if (!content->ends_with('\n')) {
      const auto last = content->rfind('\n');
      spdlog::warn("state: {}/{} ends inside a line (truncated): its last, partial line is "
                   "dropped, the whole lines before it are restored",
                   dir, name);
      content->resize(last == std::string::npos ? 0 : last + 1);
    }
    auto specs = parse_registration(*content, limits);
    if (!specs) {
      spdlog::warn("state: skipping {}/{}: {}; service {} is not restored", dir, name,
                   specs.error().detail, name);
      continue;
    }
    if (specs->empty()) {
      spdlog::warn("state: skipping {}/{}: no instance in it; service {} is not restored", dir,
                   name, name);
      continue;
    }
    if (!specs->empty()) services.emplace(name, std::move(*specs));
  }
  return services;
}

Result<std::uint64_t> StateStore::next_generation(std::uint64_t floor) {
  const std::string path = dir_ + "/generation";
  std::uint64_t generation = 0;
  if (auto content = read_file(path)) {
    // A decimal number and a newline, as written below; anything else was
    // damaged outside the store, and the clock (`floor`) decides alone.
    const std::string_view text(*content);
    const std::string_view digits = text.substr(0, text.find_last_not_of('\n') + 1);
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    const bool number = !digits.empty() && end == digits.data() + digits.size();
    if (number && (ec == std::errc::result_out_of_range ||
                   value == std::numeric_limits<std::uint64_t>::max())) {
      // generation + 1 would wrap to 0: the next life would be older than this one.
      return Error{Errc::io, path + " holds the last generation there is (" +
                                 std::string(digits.substr(0, 32)) +
                                 "); remove the file to start over from the clock"};
    }
    if (!number || ec != std::errc{}) {
      spdlog::warn("state: {} holds no generation ({} bytes): the new one comes from the clock",
                   path, content->size());
    } else {
      generation = value;
    }
  } else if (errno != ENOENT) {
    spdlog::warn("state: {}: the new generation comes from the clock", content.error().detail);
  }
  generation = std::max(generation + 1, floor);
  const std::string content = std::to_string(generation) + "\n";
  if (auto st = replace_file(dir_, "generation", &content); !st) {
    if (errno == ENOSPC || errno == EDQUOT) {
      // A full disk must not keep the node from serving what it restored; the
      // clock keeps the next start's generation above this one.
      spdlog::error("state: {}: generation {} is not recorded", st.error().detail, generation);
      return generation;
    }
    return st.error();
  }
  return generation;
}

}  // namespace regfs
