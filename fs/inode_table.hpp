// The inodes the kernel knows, and what each stands for.
//
// A file inode is a snapshot: its content never changes once created, so the
// kernel may keep its attributes and pages for as long as it likes, and an
// open file reads one consistent answer however many read() calls it takes.
// What changes is which inode a name leads to: each lookup decides the
// answer and hands out the inode of that content (created on first use).
//
// Inode numbers are never reused. Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "backend.hpp"

namespace regfs::fs {

enum class NodeType { root, dir_all, dir_wait, file };

inline constexpr fuse_ino_t kRootIno = FUSE_ROOT_ID;
inline constexpr fuse_ino_t kAllIno = 2;
inline constexpr fuse_ino_t kWaitIno = 3;

struct Node {
  fuse_ino_t ino = 0;
  NodeType type = NodeType::file;
  FileKind kind = FileKind::one;
  std::string service;  // empty for directories and dot-files
  std::string content;  // what reads return; immutable
  int error = 0;        // non-zero: reads fail with this errno (a service with nothing healthy)
  bool snapshot = false;  // dot-files and .all answers: unlinked (nlink 0), dropped after close
  std::uint64_t serial = 0;  // shown as mtime; bumps when a write dirtied the kernel's pages
  std::uint64_t nlookup = 0;  // kernel references (lookup/create minus forget)
  bool read = false;          // a read reached the daemon
};

class InodeTable {
 public:
  InodeTable();

  Node* find(fuse_ino_t ino);
  // The file inode for this exact answer (or error), created on first use.
  Node& file(FileKind kind, const std::string& service, const std::string& content, int error);
  // Every file inode of `service`.
  std::vector<Node*> nodes_of(const std::string& service);
  // Drops `n` kernel references; a file the kernel no longer references is forgotten.
  void forget(fuse_ino_t ino, std::uint64_t n);

  std::size_t size() const { return nodes_.size(); }

 private:
  using Key = std::tuple<FileKind, std::string, std::string, int>;

  void add_dir(fuse_ino_t ino, NodeType type);

  std::map<fuse_ino_t, std::unique_ptr<Node>> nodes_;
  std::map<Key, fuse_ino_t> by_answer_;
  std::multimap<std::string, fuse_ino_t> by_service_;
  fuse_ino_t next_ino_ = 16;
};

}  // namespace regfs::fs
