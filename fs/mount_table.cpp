#include "mount_table.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace regfs::fs {

namespace {

// The kernel writes ' ', '\t', '\n' and '\\' in paths as \ooo.
std::string unescape(const std::string& field) {
  std::string out;
  const auto octal = [&](std::size_t k) { return field[k] >= '0' && field[k] <= '7'; };
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 + (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

}  // namespace

std::string table_path(const std::string& path) {
  std::string absolute = path;
  if (!absolute.starts_with("/")) {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd) != nullptr) absolute = std::string(cwd) + "/" + absolute;
  }
  while (absolute.size() > 1 && absolute.ends_with("/")) absolute.pop_back();
  if (const auto slash = absolute.rfind('/'); slash != std::string::npos && slash > 0) {
    if (char* parent = realpath(absolute.substr(0, slash).c_str(), nullptr)) {
      absolute = std::string(parent) + absolute.substr(slash);
      std::free(parent);
    }
  }
  return absolute;
}

std::optional<MountEntry> topmost_mount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountEntry> found;
  for (int n = 0; n < 100000 && std::getline(in, line); ++n) {  // later lines are mounted on top
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point.empty() || unescape(point) != path) continue;
    MountEntry entry;
    char colon = 0;
    std::istringstream numbers(dev);
    if (!(numbers >> entry.major >> colon >> entry.minor) || colon != ':') continue;
    if (const auto dash = line.find(" - "); dash != std::string::npos) {
      std::istringstream(line.substr(dash + 3)) >> entry.fstype;
    }
    found = entry;
  }
  return found;
}

}  // namespace regfs::fs
