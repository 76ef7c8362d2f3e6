// The kernel's mount table (/proc/self/mountinfo), read without sending
// anything to the mounts themselves: a FUSE mount whose daemon died may
// answer nothing.
#pragma once

#include <optional>
#include <string>

namespace regfs::fs {

struct MountEntry {
  unsigned major = 0;  // the mount's device; a FUSE mount's minor is its
  unsigned minor = 0;  // connection number under /sys/fs/fuse/connections
  std::string fstype;  // e.g. "fuse.regfs"
};

// `path` as the mount table spells it: absolute, without trailing slashes,
// with its parent's symbolic links resolved. The last component is not
// resolved: that would ask the mount.
std::string table_path(const std::string& path);

// The topmost mount at `path` (as table_path spells it), or nullopt.
std::optional<MountEntry> topmost_mount(const std::string& path);

}  // namespace regfs::fs
