#include "mirror.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/read_plan.hpp"

namespace regfs {

Result<std::unique_ptr<Mirror>> Mirror::open(const std::string& dir, const Registry& registry) {
  std::error_code ec;
  std::filesystem::create_directories(dir + "/.all", ec);
  if (ec) return Error{Errc::io, "mirror directory " + dir + ": " + ec.message()};
  auto mirror = std::unique_ptr<Mirror>(new Mirror(dir, registry));
  // Files left by an earlier run may be stale: start from what is known now.
  for (const char* sub : {"", "/.all"}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir + sub, ec)) {
      if (entry.is_regular_file() && valid_service_name(entry.path().filename().string())) {
        std::filesystem::remove(entry.path(), ec);
      }
    }
  }
  mirror->refresh_all();
  return mirror;
}

Mirror::Mirror(std::string dir, const Registry& registry) : dir_(std::move(dir)), registry_(registry) {}

void Mirror::service_changed(const std::string& service) {
  const std::string one = dir_ + "/" + service;
  const std::string all = dir_ + "/.all/" + service;
  const Service* svc = registry_.find(service);
  if (svc == nullptr) {
    drop(one);
    drop(all);
    return;
  }
  // Whatever the verdicts' age, only instances whose latest check passed.
  const ReadPlan first = plan_one(*svc, Time{}, true);
  const ReadPlan every = plan_all(*svc, Time{}, true);
  if (first.kind == ReadPlan::Kind::serve) {
    put(one, render_endpoints(*svc, first.serve));
    put(all, render_endpoints(*svc, every.serve));
  } else {
    drop(one);
    drop(all);
  }
}

void Mirror::refresh_all() {
  std::vector<std::string> gone;
  for (const auto& [path, content] : shown_) {
    const auto name = std::filesystem::path(path).filename().string();
    if (registry_.find(name) == nullptr) gone.push_back(name);
  }
  for (const auto& name : gone) service_changed(name);
  for (const auto& [name, svc] : registry_.services()) service_changed(name);
}

void Mirror::put(const std::string& path, const std::string& content) {
  if (const auto it = shown_.find(path); it != shown_.end() && it->second == content) return;
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, content.data(), content.size()) ==
                           static_cast<ssize_t>(content.size());
  ok = ok && ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) {
    spdlog::warn("mirror: cannot write {}: {}", path, std::strerror(errno));
    ::unlink(tmp.c_str());
    return;
  }
  shown_[path] = content;
}

void Mirror::drop(const std::string& path) {
  if (shown_.erase(path) == 0) return;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("mirror: cannot remove {}: {}", path, std::strerror(errno));
  }
}

}  // namespace regfs
