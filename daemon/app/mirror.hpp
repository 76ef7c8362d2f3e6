// Fargate mode: the registry as plain files in a directory, for hosts that
// have no /dev/fuse. DIR/<service> holds one healthy endpoint, DIR/.all/<service>
// every healthy one; each is replaced atomically (write, fsync, rename) when
// what it shows changes, and removed when nothing healthy remains.
//
// Loop thread only.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/registry.hpp"
#include "fs/backend.hpp"

namespace regfs {

class Mirror final : public fs::ChangeSink {
 public:
  // `registry` must outlive the mirror. Creates DIR and DIR/.all.
  static Result<std::unique_ptr<Mirror>> open(const std::string& dir, const Registry& registry);

  // Rewrites the files of `service` if what they show changed.
  void service_changed(const std::string& service) override;
  // Rewrites every service and removes files of services that are gone.
  void refresh_all();

 private:
  Mirror(std::string dir, const Registry& registry);
  void put(const std::string& path, const std::string& content);
  void drop(const std::string& path);

  std::string dir_;
  const Registry& registry_;
  std::map<std::string, std::string> shown_;  // path -> content on disk
};

}  // namespace regfs
