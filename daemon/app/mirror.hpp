// Fargate mode: the registry as plain files in a directory, for hosts that
// have no /dev/fuse. DIR/<service> holds one healthy endpoint, DIR/.all/<service>
// every healthy one; each is replaced atomically (write, fsync, rename) when
// what it shows changes, and removed when nothing healthy remains.
//
// DIR is shared with other things (a volume of the task's containers), so
// the daemon touches only files it created there and never follows a link
// in it:
//  - DIR/.regfsd.owned is a journal of the names it created ("+web",
//    "-.all/web"), each entry made durable before the file it names is.
//    Only a name listed there is ever replaced or removed; a name that
//    exists and is not listed is left alone and retried later.
//  - Every access is relative to a descriptor of DIR or of DIR/.all (opened
//    with O_DIRECTORY, DIR/.all also with O_NOFOLLOW): openat with
//    O_NOFOLLOW|O_EXCL, renameat and unlinkat, none of which follows a link.
//  - Names starting with ".regfsd" are the daemon's (the journal, the temp
//    file ".regfsd.tmp" in DIR and DIR/.all, the control socket); no
//    service name starts with '.'.
// A change that cannot be written (a full disk, a name taken) is retried
// with a backoff from 100 ms doubling to 10 s, until it is written or
// superseded.
//
// Loop thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/registry.hpp"
#include "fs/backend.hpp"

namespace regfs {

class Mirror final : public fs::ChangeSink {
 public:
  // `registry` and `io` must outlive the mirror. Creates DIR and DIR/.all,
  // writes what the registry shows now and removes the files of an earlier
  // run that it no longer shows.
  static Result<std::unique_ptr<Mirror>> open(boost::asio::io_context& io, const std::string& dir,
                                               const Registry& registry);
  ~Mirror() override;
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  // Rewrites the files of `service` if what they show changed.
  void service_changed(const std::string& service) override;
  // Rewrites every service and removes files of services that are gone.
  void refresh_all();

  // Prometheus text: failed writes, changes waiting for a retry.
  std::string metrics_text() const;

 private:
  using Content = std::optional<std::string>;  // nullopt: no file

  Mirror(boost::asio::io_context& io, std::string dir, const Registry& registry, int dir_fd);
  // Makes `name` ("web" or ".all/web") show `want`, or queues a retry.
  void set(const std::string& name, const Content& want);
  bool write(const std::string& name, const Content& want);
  bool put(int fd, const std::string& name, const std::string& base, const std::string& content);
  bool drop(int fd, const std::string& name, const std::string& base);
  int dir_of(const std::string& name, std::string& base);
  bool journal(char op, const std::string& name);
  void load_journal();
  bool compact_journal();
  void schedule_retry();
  void retry();

  boost::asio::io_context& io_;
  std::string dir_;
  const Registry& registry_;
  int dir_fd_ = -1;
  int all_fd_ = -1;      // DIR/.all, opened when needed
  int journal_fd_ = -1;  // DIR/.regfsd.owned, append-only
  std::size_t journal_lines_ = 0;
  std::set<std::string> owned_;               // names this daemon created (per the journal)
  std::map<std::string, std::string> shown_;  // name -> content on disk
  std::map<std::string, Content> pending_;    // changes waiting for a retry
  boost::asio::steady_timer retry_timer_;
  bool retry_armed_ = false;
  std::chrono::milliseconds backoff_{100};
  std::uint64_t failures_ = 0;
};

}  // namespace regfs
