// regfs, the command line: shared pieces of the subcommands.
//
// The command line talks to the daemon only through the mount, with plain
// file operations, exactly as any other reader or writer would.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace regfs::cli {

// Exit codes (docs/INTERFACES.md).
enum Exit : int {
  kOk = 0,
  kError = 1,
  kUsage = 2,
  kNotFound = 3,
  kHostDown = 4,
  kTimedOut = 5,
  kDenied = 6,
  kInvalid = 7,
  kNoDaemon = 8,
};

// The one place errno becomes an exit code.
Exit exit_for_errno(int err);

// Prints "regfs: WHAT: strerror(err)" and returns the exit code for err.
int fail(const std::string& what, int err);
// Prints "regfs: MESSAGE" and returns `code`.
int fail_usage(const std::string& message, int code = kUsage);

struct Context {
  std::string mount;   // --mount, REGFS_MOUNT, default /registry
  std::string mirror;  // --mirror, REGFS_MIRROR: Fargate mode, no mount
  // Where a name is read: the mount, or the mirror directory in Fargate mode.
  std::string path(std::string_view name) const {
    return (mirror.empty() ? mount : mirror) + "/" + std::string(name);
  }
};

// Fargate mode: sends one request to the daemon's control socket in the
// mirror directory; returns errno (0 on success) and prints the daemon's message.
int control_request(const Context& ctx, const std::string& request);

// Columns aligned with two spaces between them; the first row is the header.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// A listening TCP socket, as /proc/net/tcp and /proc/net/tcp6 show it.
struct Listener {
  bool ipv6 = false;
  std::array<std::uint8_t, 16> address{};  // network byte order; IPv4 uses the first 4
  std::uint16_t port = 0;

  bool wildcard() const;  // 0.0.0.0 or ::
  bool loopback() const;  // 127.0.0.0/8 or ::1
  // "127.0.0.1", "::1": the address as a host, IPv6 without brackets.
  std::string host() const;
  friend auto operator<=>(const Listener&, const Listener&) = default;
};

// The listening sockets in /proc/net/tcp{,6} text owned by the given socket
// inodes, in the table's order. Pure: the caller reads the files.
std::vector<Listener> listening_sockets(std::string_view proc_net_tcp,
                                        const std::vector<std::uint64_t>& inodes);

int cmd_get(const Context& ctx, const std::vector<std::string>& args);
int cmd_register(const Context& ctx, const std::vector<std::string>& args);
int cmd_deregister(const Context& ctx, const std::vector<std::string>& args);
int cmd_status(const Context& ctx, const std::vector<std::string>& args);
int cmd_members(const Context& ctx, const std::vector<std::string>& args);
int cmd_keygen(const Context& ctx, const std::vector<std::string>& args);
int cmd_run(const Context& ctx, const std::vector<std::string>& args);
int cmd_watch(const Context& ctx, const std::vector<std::string>& args);
int cmd_template(const Context& ctx, const std::vector<std::string>& args);

// Reads a whole file; returns errno (0 on success).
int read_file(const std::string& path, std::string& out);
// Writes `text` with one write(); returns errno (0 on success).
int write_file(const std::string& path, const std::string& text, bool append);
// Replaces `path` with `text` atomically: a temporary file in the same
// directory, then rename(), so a reader sees the old text or the new, never
// a mix. Keeps the mode of the file it replaces (0644 for a new one). Returns
// errno (0 on success); on failure `path` is untouched and no temporary
// file is left.
int replace_file(const std::string& path, const std::string& text);

}  // namespace regfs::cli
