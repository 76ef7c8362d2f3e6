// The inodes the kernel knows, and what each stands for.
//
// A file inode is a snapshot: its content never changes once created, so the
// kernel may keep its attributes and pages for as long as it likes, and an
// open file reads one consistent answer however many read() calls it takes.
// What changes is which inode a name leads to: each lookup decides the
// answer and hands out the inode of that content (created on first use).
//
// A service with several instances is a symbolic link instead, one per
// service, whose target is decided on every open: `.answers/<ino>`, the file
// inode of the chosen instance. Those answer inodes stay cached in the kernel
// under `.answers/`, so a rotating open costs one round trip (the readlink).
// So is a service with several instances under `.wait/`: its readlink waits.
// When the service changes, the filesystem has the kernel drop those names,
// so that it forgets the inodes (and this table with it) once no open file
// holds them.
//
// Inode numbers are never reused. Loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "backend.hpp"

namespace regfs::fs {

// `events` is /registry/.events: a link whose every readlink makes a new
// stream inode (a file of kind events) for that one open.
enum class InodeType { root, dir_all, dir_wait, dir_answers, link, file, events };

inline constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
inline constexpr fuse_ino_t kAllIno = 2;
inline constexpr fuse_ino_t kWaitIno = 3;
inline constexpr fuse_ino_t kAnswersIno = 4;
inline constexpr fuse_ino_t kEventsIno = 5;
inline constexpr std::string_view kAnswersDir = ".answers";  // name of kAnswersIno in /

using Clock = std::chrono::steady_clock;

struct Inode {
  fuse_ino_t ino = 0;
  InodeType type = InodeType::file;
  FileKind kind = FileKind::one;
  std::string service;  // empty for directories and dot-files
  std::string content;  // what reads return; immutable
  int error = 0;        // non-zero: reads fail with this errno (a service with nothing healthy)
  bool snapshot = false;  // dot-files and .all answers: unlinked (nlink 0), dropped after close
  std::uint64_t serial = 0;  // shown as mtime; bumps when a write dirtied the kernel's pages
  std::uint64_t nlookup = 0;  // kernel references (lookup/create minus forget)
  // A readlink named this inode: it stays findable under .answers/ until then,
  // whatever the kernel forgets, since the kernel looks it up only after the reply.
  Clock::time_point held_until{};
  bool hold_queued = false;  // in the table's queue of holds to end
  // The change feed's count of events when a lookup or readlink last handed
  // this answer out: a poll() on it reports a change of its service after that.
  std::uint64_t answered_at = 0;
};

class InodeTable {
 public:
  // How long an inode named by a readlink stays findable without kernel references.
  static constexpr std::chrono::seconds kHold{2};

  InodeTable();

  Inode* find(fuse_ino_t ino);
  // The file inode for this exact answer (or error), created on first use.
  Inode& file(FileKind kind, const std::string& service, const std::string& content, int error);
  // The symbolic link that `service` reads through while it has several
  // instances: kind one in /, kind wait in .wait/.
  Inode& link(FileKind kind, const std::string& service);
  // A new inode for one open of /registry/.events (a file of kind events).
  Inode& stream();
  // A write went through `node`: the kernel's pages of it hold the writer's
  // bytes, so no later answer may lead to it. It lives on while referenced.
  void retire(Inode& node);
  // Keeps `node` findable until kHold from `now`; collect() forgets it after
  // that if nothing references it.
  void hold(Inode& node, Clock::time_point now);
  // Every file and link inode of `service`.
  std::vector<Inode*> inodes_of(const std::string& service);
  // Drops `n` kernel references; an inode the kernel no longer references
  // (and no readlink holds) is forgotten.
  void forget(fuse_ino_t ino, std::uint64_t n, Clock::time_point now);
  // Forgets the inodes of `service` that nothing references or holds any more.
  void sweep(const std::string& service, Clock::time_point now);
  // Forgets the inodes whose hold has ended by `now` and that nothing
  // references (the kernel forgot them while they were held). Cheap when
  // nothing is due: call it often.
  void collect(Clock::time_point now);

  std::size_t size() const { return nodes_.size(); }

  // Called with each inode's number and service once it is forgotten, from
  // whichever call forgot it (the adapter drops what watched it there). It
  // must not call back into the table's forget, sweep or collect.
  void on_erase(std::function<void(fuse_ino_t, const std::string&)> fn) { on_erase_ = std::move(fn); }

 private:
  using Key = std::tuple<FileKind, std::string, std::string, int>;

  void add_dir(fuse_ino_t ino, InodeType type);
  Inode& add(std::unique_ptr<Inode> node);
  bool unused(const Inode& node, Clock::time_point now) const;
  void erase(fuse_ino_t ino);

  std::map<fuse_ino_t, std::unique_ptr<Inode>> nodes_;
  std::map<Key, fuse_ino_t> by_answer_;
  std::map<std::pair<FileKind, std::string>, fuse_ino_t> links_;
  std::multimap<std::string, fuse_ino_t> by_service_;
  // Held inodes by when their hold ends (at most one entry each: hold_queued).
  std::multimap<Clock::time_point, fuse_ino_t> holds_;
  fuse_ino_t next_ino_ = 16;
  std::function<void(fuse_ino_t, const std::string&)> on_erase_;
};

}  // namespace regfs::fs
