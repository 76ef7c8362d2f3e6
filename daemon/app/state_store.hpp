// This node's own registrations, durable in its state directory.
//
// DIR/services/NAME holds the instances of service NAME, one line each, as
// to_line() writes them. Every change is written so that a crash at any
// instant leaves the old or the new file: temp file, fsync, rename over,
// fsync of the directory. DIR/generation counts the daemon's starts.
//
// Not thread-safe: the daemon's loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/instance.hpp"

namespace regfs {

class StateStore {
 public:
  // Creates DIR (0700) and DIR/services if missing; removes leftover temp files.
  static Result<StateStore> open(const std::string& dir);

  // Durably replaces the instances of `service`; empty removes the service.
  Status save(std::string_view service, const std::vector<InstanceSpec>& specs);

  // Every service saved. A file that does not parse, or whose name is not a
  // service name, is skipped with a warning: one bad file never stops a start.
  Result<std::map<std::string, std::vector<InstanceSpec>>> load() const;

  // One more than the last start's generation, or `floor` if larger, durably recorded.
  Result<std::uint64_t> next_generation(std::uint64_t floor = 0);

  const std::string& dir() const { return dir_; }

 private:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  Status write_file(const std::string& dir, const std::string& name, const std::string& content);

  std::string dir_;
};

}  // namespace regfs
