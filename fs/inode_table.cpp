#include "inode_table.hpp"

namespace regfs::fs {

InodeTable::InodeTable() {
  add_fixed(kRootIno, NodeType::root, FileKind::one);
  add_fixed(kAllIno, NodeType::dir_all, FileKind::all);
  add_fixed(kWaitIno, NodeType::dir_wait, FileKind::wait);
  add_fixed(kStatusIno, NodeType::file, FileKind::status);
  add_fixed(kMetricsIno, NodeType::file, FileKind::metrics);
}

Node& InodeTable::add_fixed(fuse_ino_t ino, NodeType type, FileKind kind) {
  auto node = std::make_unique<Node>();
  node->ino = ino;
  node->type = type;
  node->kind = kind;
  Node& ref = *node;
  nodes_.emplace(ino, std::move(node));
  return ref;
}

Node* InodeTable::find(fuse_ino_t ino) {
  const auto it = nodes_.find(ino);
  return it == nodes_.end() ? nullptr : it->second.get();
}

Node& InodeTable::service_node(FileKind kind, const std::string& service) {
  const auto key = std::make_pair(kind, service);
  if (const auto it = by_name_.find(key); it != by_name_.end()) return *nodes_.at(it->second);
  auto node = std::make_unique<Node>();
  node->ino = next_ino_++;
  node->kind = kind;
  node->service = service;
  Node& ref = *node;
  by_name_.emplace(key, ref.ino);
  nodes_.emplace(ref.ino, std::move(node));
  return ref;
}

std::vector<Node*> InodeTable::nodes_of(const std::string& service) {
  std::vector<Node*> found;
  for (FileKind kind : {FileKind::one, FileKind::all, FileKind::wait}) {
    if (const auto it = by_name_.find({kind, service}); it != by_name_.end()) {
      found.push_back(nodes_.at(it->second).get());
    }
  }
  return found;
}

void InodeTable::forget(fuse_ino_t ino, std::uint64_t n) {
  const auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  Node& node = *it->second;
  node.nlookup = n >= node.nlookup ? 0 : node.nlookup - n;
  if (node.nlookup == 0 && !node.service.empty() && !node.deciding) {
    by_name_.erase({node.kind, node.service});
    nodes_.erase(it);
  }
}

}  // namespace regfs::fs
