// The inodes the kernel knows, and what each stands for.
//
// Inode numbers are stable for a name while the daemon runs and never reused
// for another name, so a dentry the kernel kept past a change can at worst
// point at an empty service, never at the wrong one. Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "backend.hpp"

namespace regfs::fs {

enum class NodeType { root, dir_all, dir_wait, file };

inline constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
inline constexpr fuse_ino_t kAllIno = 2;
inline constexpr fuse_ino_t kWaitIno = 3;
inline constexpr fuse_ino_t kStatusIno = 4;
inline constexpr fuse_ino_t kMetricsIno = 5;

// A read parked until the node's answer is decided.
struct PendingRead {
  fuse_req_t req;
  std::size_t size;
  off_t off;
};

struct Node {
  fuse_ino_t ino = 0;
  NodeType type = NodeType::file;
  FileKind kind = FileKind::one;
  std::string service;       // empty for the fixed nodes
  std::uint64_t nlookup = 0;  // kernel references (lookup/create minus forget)
  std::uint32_t created_handles = 0;  // open handles from create(): exist before the first write

  // The decided answer: getattr decides, read serves it.
  bool have_answer = false;
  bool consumed = false;  // a read reached its end since it was decided
  std::string content;
  std::uint64_t serial = 0;  // bumps when content changes; shown as mtime
  Time decided_at{};
  Duration cache_for{0};

  // Requests waiting for a decision under way.
  bool deciding = false;
  std::uint64_t decision = 0;  // id of the decision under way, to ignore stale ones
  std::vector<fuse_req_t> getattrs;
  std::vector<PendingRead> reads;
};

class InodeTable {
 public:
  InodeTable();

  Node* find(fuse_ino_t ino);
  // The node for `kind` of `service`, created on first use.
  Node& service_node(FileKind kind, const std::string& service);
  // The nodes of `service` that exist (one, all, wait).
  std::vector<Node*> nodes_of(const std::string& service);
  // Drops `n` kernel references; forgets a service node the kernel no longer
  // references and that has no request parked.
  void forget(fuse_ino_t ino, std::uint64_t n);

  std::size_t size() const { return nodes_.size(); }

  template <typename Fn>
  void for_each(Fn&& fn) {
    for (auto& [ino, node] : nodes_) fn(*node);
  }

 private:
  Node& add_fixed(fuse_ino_t ino, NodeType type, FileKind kind);

  std::map<fuse_ino_t, std::unique_ptr<Node>> nodes_;
  std::map<std::pair<FileKind, std::string>, fuse_ino_t> by_name_;
  fuse_ino_t next_ino_ = 16;
};

}  // namespace regfs::fs
