#include "inode_table.hpp"

namespace regfs::fs {

InodeTable::InodeTable() {
  add_dir(kRootIno, NodeType::root);
  add_dir(kAllIno, NodeType::dir_all);
  add_dir(kWaitIno, NodeType::dir_wait);
}

void InodeTable::add_dir(fuse_ino_t ino, NodeType type) {
  auto node = std::make_unique<Node>();
  node->ino = ino;
  node->type = type;
  nodes_.emplace(ino, std::move(node));
}

Node* InodeTable::find(fuse_ino_t ino) {
  const auto it = nodes_.find(ino);
  return it == nodes_.end() ? nullptr : it->second.get();
}

Node& InodeTable::file(FileKind kind, const std::string& service, const std::string& content,
                       int error) {
  Key key{kind, service, content, error};
  if (const auto it = by_answer_.find(key); it != by_answer_.end()) return *nodes_.at(it->second);
  auto node = std::make_unique<Node>();
  node->ino = next_ino_++;
  node->kind = kind;
  node->service = service;
  node->content = content;
  node->error = error;
  node->snapshot = kind == FileKind::all || kind == FileKind::status || kind == FileKind::metrics;
  Node& ref = *node;
  by_answer_.emplace(std::move(key), ref.ino);
  if (!service.empty()) by_service_.emplace(service, ref.ino);
  nodes_.emplace(ref.ino, std::move(node));
  return ref;
}

std::vector<Node*> InodeTable::nodes_of(const std::string& service) {
  std::vector<Node*> found;
  const auto [first, last] = by_service_.equal_range(service);
  for (auto it = first; it != last; ++it) found.push_back(nodes_.at(it->second).get());
  return found;
}

void InodeTable::forget(fuse_ino_t ino, std::uint64_t n) {
  const auto it = nodes_.find(ino);
  if (it == nodes_.end()) return;
  Node& node = *it->second;
  node.nlookup = n >= node.nlookup ? 0 : node.nlookup - n;
  if (node.nlookup > 0 || node.type != NodeType::file) return;
  by_answer_.erase(Key{node.kind, node.service, node.content, node.error});
  const auto [first, last] = by_service_.equal_range(node.service);
  for (auto s = first; s != last; ++s) {
    if (s->second == ino) {
      by_service_.erase(s);
      break;
    }
  }
  nodes_.erase(it);
}

}  // namespace regfs::fs
