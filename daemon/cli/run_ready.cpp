#include "run_ready.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <iterator>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <tuple>
#include <unistd.h>

namespace regfs::cli {
namespace {

// Socket inodes of `pid` and its descendants (a bounded depth of them).
void socket_inodes(pid_t pid, std::vector<std::uint64_t>& out, int depth = 0) {
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(fd_dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      char target[64] = {};
      const std::string link = fd_dir + "/" + e->d_name;
      const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n > 9 && std::strncmp(target, "socket:[", 8) == 0) {
        out.push_back(std::strtoull(target + 8, nullptr, 10));
      }
    }
    ::closedir(d);
  }
  if (depth > 4) return;
  std::string children;
  const std::string task = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children";
  if (read_file(task, children) == 0) {
    for (std::size_t pos = 0; pos < children.size();) {
      char* end = nullptr;
      const long child = std::strtol(children.c_str() + pos, &end, 10);
      if (end == children.c_str() + pos) break;
      socket_inodes(static_cast<pid_t>(child), out, depth + 1);
      pos = static_cast<std::size_t>(end - children.c_str());
    }
  }
}

std::vector<Listener> listeners_of(pid_t pid) {
  std::vector<std::uint64_t> inodes;
  socket_inodes(pid, inodes);
  std::vector<Listener> found;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::string text;
    if (read_file(table, text) != 0) continue;
    for (const auto& l : listening_sockets(text, inodes)) found.push_back(l);
  }
  return found;
}

int rank(const Listener& l) { return l.wildcard() ? 0 : l.loopback() ? 2 : 1; }

// A local check of one listener, bounded to 500 ms: where it listens (a
// wildcard listener through its family's loopback address).
bool check_passes(const Listener& l, const Check& check) {
  if (check.kind == Check::Kind::none) return true;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string host;
  if (l.ipv6) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(l.port);
    if (l.wildcard()) {
      a.sin6_addr = in6addr_loopback;
    } else {
      std::memcpy(&a.sin6_addr, l.address.data(), 16);
    }
    std::memcpy(&addr, &a, sizeof a);
    addr_len = sizeof a;
    host.append("[").append(l.wildcard() ? "::1" : l.host()).append("]");
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(l.port);
    if (l.wildcard()) {
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
      std::memcpy(&a.sin_addr, l.address.data(), 4);
    }
    std::memcpy(&addr, &a, sizeof a);
    addr_len = sizeof a;
    host = l.wildcard() ? "127.0.0.1" : l.host();
  }
  const int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  pollfd p{fd, POLLOUT, 0};
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), addr_len) == 0 ||
      (errno == EINPROGRESS && ::poll(&p, 1, 500) == 1)) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    ok = soerr == 0;
  }
  if (ok && check.kind == Check::Kind::http) {
    std::string req = "GET ";
    req.append(check.path).append(" HTTP/1.1\r\nHost: ").append(host).append(":");
    req.append(std::to_string(l.port)).append("\r\nConnection: close\r\n\r\n");
    ok = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
    char buf[64] = {};
    p.events = POLLIN;
    ok = ok && ::poll(&p, 1, 500) == 1 && ::recv(fd, buf, sizeof buf - 1, 0) >= 12 &&
         std::strncmp(buf, "HTTP/1.", 7) == 0 && (buf[9] == '2' || buf[9] == '3');
  }
  ::close(fd);
  return ok;
}

}  // namespace

std::vector<Listener> in_check_order(std::vector<Listener> listeners) {
  std::sort(listeners.begin(), listeners.end(), [](const Listener& a, const Listener& b) {
    return std::make_tuple(rank(a), a.ipv6, a.address, a.port) <
           std::make_tuple(rank(b), b.ipv6, b.address, b.port);
  });
  listeners.erase(std::unique(listeners.begin(), listeners.end()), listeners.end());
  return listeners;
}

std::string endpoint_for(const Listener& l) {
  std::string out;
  if (l.wildcard()) {
    // registered under this node's advertised address
  } else if (l.ipv6) {
    out.append("[").append(l.host()).append("]");
  } else {
    out = l.host();
  }
  out.append(":").append(std::to_string(l.port));
  return out;
}

Readiness look_for_ready(pid_t pid, std::uint16_t port, const Check& check) {
  std::vector<Listener> listeners = listeners_of(pid);
  if (port != 0) {
    std::erase_if(listeners, [&](const Listener& l) { return l.port != port; });
    if (listeners.empty()) {
      // Not among the command's own sockets (another process may hold it):
      // try it on loopback, registered under the advertised address.
      Listener v4, v6;
      v4.port = v6.port = port;
      v6.ipv6 = true;
      listeners = {v4, v6};
    }
  }
  Readiness r;
  for (const auto& l : listeners) r.ports.push_back(l.port);
  std::sort(r.ports.begin(), r.ports.end());
  r.ports.erase(std::unique(r.ports.begin(), r.ports.end()), r.ports.end());

  std::string chosen;
  for (const std::uint16_t p : r.ports) {
    std::vector<Listener> of_port;
    std::copy_if(listeners.begin(), listeners.end(), std::back_inserter(of_port),
                 [&](const Listener& l) { return l.port == p; });
    for (const auto& l : in_check_order(std::move(of_port))) {
      if (check_passes(l, check)) {
        r.passing.push_back(p);
        chosen = endpoint_for(l);
        break;
      }
    }
  }
  if (r.passing.size() == 1) r.endpoint = chosen;
  return r;
}

}  // namespace regfs::cli
