#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli.hpp"

namespace regfs::cli {

Exit exit_for_errno(int err) {
  switch (err) {
    case 0: return kOk;
    case ENOENT: return kNotFound;
    case EHOSTDOWN: return kHostDown;
    case ETIMEDOUT:
    case EINTR: return kTimedOut;
    case EACCES:
    case EPERM: return kDenied;
    case EINVAL:
    case ENAMETOOLONG:
    case ENOSPC:
    case EFBIG: return kInvalid;
    case ENOTCONN: return kNoDaemon;
    default: return kError;
  }
}

int fail(const std::string& what, int err) {
  std::cerr << "regfs: " << what << ": " << std::strerror(err) << "\n";
  return exit_for_errno(err);
}

int fail_usage(const std::string& message, int code) {
  std::cerr << "regfs: " << message << "\n";
  return code;
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
  return out.str();
}

bool Listener::wildcard() const {
  const std::size_t n = ipv6 ? 16 : 4;
  return std::all_of(address.begin(), address.begin() + static_cast<std::ptrdiff_t>(n),
                     [](std::uint8_t b) { return b == 0; });
}

bool Listener::loopback() const {
  if (!ipv6) return address[0] == 127;
  return std::all_of(address.begin(), address.begin() + 15, [](std::uint8_t b) { return b == 0; }) &&
         address[15] == 1;
}

std::string Listener::host() const {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(ipv6 ? AF_INET6 : AF_INET, address.data(), text, sizeof text);
  return text;
}

std::vector<Listener> listening_sockets(std::string_view text,
                                        const std::vector<std::uint64_t>& inodes) {
  // "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
  // local_address is hex: the address as the kernel's 32-bit words (each in
  // host byte order), a colon, the port.
  std::vector<Listener> found;
  std::istringstream in{std::string(text)};
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, local, remote, state, queues, timer, retransmit, uid, timeout, inode;
    if (!(fields >> sl >> local >> remote >> state >> queues >> timer >> retransmit >> uid >>
          timeout >> inode)) {
      continue;
    }
    if (state != "0A") continue;  // TCP_LISTEN
    const auto colon = local.find(':');
    if (colon != 8 && colon != 32) continue;
    if (local.find_first_not_of("0123456789abcdefABCDEF:") != std::string::npos) continue;
    Listener l;
    l.ipv6 = colon == 32;
    for (std::size_t word = 0; word < colon / 8; ++word) {
      const auto value =
          static_cast<std::uint32_t>(std::strtoul(local.substr(word * 8, 8).c_str(), nullptr, 16));
      std::memcpy(l.address.data() + word * 4, &value, 4);
    }
    const std::string port_hex = local.substr(colon + 1);
    const unsigned long port = port_hex.size() == 4 ? std::strtoul(port_hex.c_str(), nullptr, 16) : 0;
    if (port == 0 || port > 65535) continue;
    l.port = static_cast<std::uint16_t>(port);
    const unsigned long long ino = std::strtoull(inode.c_str(), nullptr, 10);
    if (std::find(inodes.begin(), inodes.end(), ino) != inodes.end()) found.push_back(l);
  }
  return found;
}

int control_request(const Context& ctx, const std::string& request) {
  const std::string path = ctx.mirror + "/.regfsd.sock";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return ENAMETOOLONG;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    ::close(fd);
    return e == ENOENT || e == ECONNREFUSED ? ENOTCONN : e;
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::write(fd, request.data() + sent, request.size() - sent);
    if (n <= 0) {
      const int e = errno;
      ::close(fd);
      return e;
    }
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[512];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (answer.starts_with("OK")) return 0;
  // "ERR ERRNO MESSAGE"
  char* end = nullptr;
  const long e = answer.size() > 4 ? std::strtol(answer.c_str() + 4, &end, 10) : 0;
  if (end != nullptr && *end == ' ') std::cerr << "regfs: " << std::string(end + 1);
  return e > 0 ? static_cast<int>(e) : EIO;
}

int read_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  out.clear();
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return err;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return 0;
}

int write_file(const std::string& path, const std::string& text, bool append) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC),
                        0644);
  if (fd < 0) return errno;
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = n < 0 ? errno : 0;
  ::close(fd);
  return err;
}

int replace_file(const std::string& path, const std::string& text) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string temp = (slash == std::string::npos ? std::string() : dir) + "." + base + ".regfs-XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st{};
  const mode_t mode = ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
  int err = ::fchmod(fd, mode) != 0 ? errno : 0;
  std::size_t done = 0;
  while (err == 0 && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(temp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) ::unlink(temp.c_str());
  return err;
}

}  // namespace regfs::cli
