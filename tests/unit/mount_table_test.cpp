#include "fs/mount_table.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <unistd.h>

using regfs::fs::table_path;
using regfs::fs::topmost_mount;

TEST_CASE("topmost_mount finds a mount by the path the table spells, and nothing below it") {
  const auto proc = topmost_mount("/proc");
  REQUIRE(proc);
  CHECK(proc->fstype == "proc");
  CHECK_FALSE(topmost_mount("/proc/self"));
  CHECK_FALSE(topmost_mount("/no/such/mount"));
}

TEST_CASE("table_path makes a path absolute and resolves its parent's links, not the last name") {
  namespace stdfs = std::filesystem;
  const auto dir = stdfs::temp_directory_path() / ("regfs-mount-table-" + std::to_string(getpid()));
  stdfs::create_directories(dir / "real");
  stdfs::create_directory_symlink(dir / "real", dir / "link");
  stdfs::create_directory_symlink(dir / "real", dir / "real" / "last");
  const auto real = stdfs::canonical(dir / "real").string();

  CHECK(table_path((dir / "link" / "last").string()) == real + "/last");
  CHECK(table_path((dir / "link" / "mnt").string() + "//") == real + "/mnt");
  const auto cwd = stdfs::current_path();
  stdfs::current_path(dir);
  CHECK(table_path("link/mnt") == real + "/mnt");
  stdfs::current_path(cwd);
  stdfs::remove_all(dir);
}
