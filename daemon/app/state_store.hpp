// This node's own registrations, durable in its state directory.
//
// DIR/services/NAME holds the instances of service NAME, one line each, as
// to_line() writes them. Every change is written so that a crash at any
// instant leaves the old or the new file: temp file, fsync, rename over,
// fsync of the directory. A change that fails leaves the previous file, also
// when only the directory's fsync failed (the previous file is put back).
// Temp files are DIR/services/.NAME.tmp and .NAME.old: a leading '.' is
// never a service name. DIR/generation counts the daemon's starts.
//
// Not thread-safe: the daemon's loop thread only.
#pragma once

#include <cstdint>
#include <functional>
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
  // On error (Errc::io) the file is as it was before the call.
  Status save(std::string_view service, const std::vector<InstanceSpec>& specs);

  // Every service saved. A file that does not parse, or whose name is not a
  // service name, is skipped with a warning: one bad file never stops a start.
  Result<std::map<std::string, std::vector<InstanceSpec>>> load() const;

  // One more than the last start's generation, or `floor` if larger, durably
  // recorded. An io error when the last start's was the largest there is.
  Result<std::uint64_t> next_generation(std::uint64_t floor = 0);

  const std::string& dir() const { return dir_; }

  // For tests: `hook` is asked at each point where the disk can fail; a
  // nonzero errno makes that step fail as if the system call had.
  enum class Fault { file_fsync, dir_fsync };
  void set_fault_hook(std::function<int(Fault)> hook) { fault_ = std::move(hook); }

 private:
  explicit StateStore(std::string dir) : dir_(std::move(dir)) {}
  Status replace_file(const std::string& dir, const std::string& name, const std::string* content);
  Status write_temp(const std::string& tmp, const std::string& content);
  Status sync_dir(const std::string& dir);
  int injected(Fault point) const;

  std::string dir_;
  std::function<int(Fault)> fault_;
};

}  // namespace regfs
