// The libfuse low-level operations table, wired to a Filesystem.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

namespace regfs::fs {

// The table; userdata passed to fuse_session_new must be the Filesystem*.
const fuse_lowlevel_ops& operations();

}  // namespace regfs::fs
