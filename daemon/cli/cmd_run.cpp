// regfs run --name SERVICE [--port PORT|auto] [--check CHECK]
//           [--requires SVC[,SVC...] [--requires-timeout SECONDS]] -- COMMAND...
//
// Waits for the required services, starts the command, registers its port
// once its check passes, forwards signals, deregisters on exit and exits with
// the command's code (128+signal if a signal ended it).
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <iostream>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "cli.hpp"
#include "core/instance.hpp"

namespace regfs::cli {
namespace {

volatile sig_atomic_t g_child = 0;

void forward(int sig) {
  if (g_child > 0) ::kill(g_child, sig);
}

using Clock = std::chrono::steady_clock;

// Socket inodes of `pid` and its descendants.
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

std::uint16_t find_listening_port(pid_t pid) {
  std::vector<std::uint64_t> inodes;
  socket_inodes(pid, inodes);
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::string text;
    if (read_file(table, text) != 0) continue;
    if (auto ports = listening_ports(text, inodes); !ports.empty()) return ports.front();
  }
  return 0;
}

// A local check of the child's port, bounded to 500 ms.
bool check_passes(std::uint16_t port, const Check& check) {
  if (check.kind == Check::Kind::none) return true;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  pollfd p{fd, POLLOUT, 0};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ||
      (errno == EINPROGRESS && ::poll(&p, 1, 500) == 1)) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    ok = soerr == 0;
  }
  if (ok && check.kind == Check::Kind::http) {
    const std::string req = "GET " + check.path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                            std::to_string(port) + "\r\nConnection: close\r\n\r\n";
    ok = ::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
    char buf[64] = {};
    p.events = POLLIN;
    ok = ok && ::poll(&p, 1, 500) == 1 && ::recv(fd, buf, sizeof buf - 1, 0) >= 12 &&
         std::strncmp(buf, "HTTP/1.", 7) == 0 && (buf[9] == '2' || buf[9] == '3');
  }
  ::close(fd);
  return ok;
}

int wait_for(const Context& ctx, const std::vector<std::string>& services, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  for (const auto& svc : services) {
    while (true) {
      std::string out;
      const int err = read_file(ctx.path(svc), out);
      if (err == 0) break;
      if (err == ENOTCONN) return fail("run: waiting for " + svc, err);
      if (Clock::now() >= deadline) {
        std::cerr << "regfs: run: required service " << svc << " not available after " << seconds
                  << " s\n";
        return kTimedOut;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return kOk;
}

}  // namespace

int cmd_run(const Context& ctx, const std::vector<std::string>& args) {
  static const char* usage =
      "usage: regfs run --name SERVICE [--port PORT|auto] [--check CHECK] "
      "[--requires SVC[,SVC...] [--requires-timeout SECONDS]] -- COMMAND...";
  std::string name, port_arg = "auto", check_arg = "tcp";
  std::vector<std::string> requires_list;
  double requires_timeout = 60;
  std::size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--name" && has_value) {
      name = args[++i];
    } else if (args[i] == "--port" && has_value) {
      port_arg = args[++i];
    } else if (args[i] == "--check" && has_value) {
      check_arg = args[++i];
    } else if (args[i] == "--requires" && has_value) {
      std::string list = args[++i];
      for (std::size_t pos = 0; pos <= list.size();) {
        const auto comma = std::min(list.find(',', pos), list.size());
        if (comma > pos) requires_list.push_back(list.substr(pos, comma - pos));
        pos = comma + 1;
      }
    } else if (args[i] == "--requires-timeout" && has_value) {
      requires_timeout = std::strtod(args[++i].c_str(), nullptr);
    } else {
      return fail_usage(usage);
    }
  }
  if (name.empty() || i + 1 >= args.size()) return fail_usage(usage);
  if (!valid_service_name(name)) return fail_usage("run: invalid service name '" + name + "'", kInvalid);
  for (const auto& svc : requires_list) {
    if (!valid_service_name(svc)) return fail_usage("run: invalid required service '" + svc + "'", kInvalid);
  }
  auto check = parse_check(check_arg);
  if (!check) return fail_usage("run: " + check->path + check.error().detail, kInvalid);
  std::uint16_t port = 0;
  if (port_arg != "auto") {
    auto ep = parse_endpoint(":" + port_arg);
    if (!ep) return fail_usage("run: --port takes 1-65535 or auto", kInvalid);
    port = ep->port;
  }

  if (const int rc = wait_for(ctx, requires_list, requires_timeout)) return rc;

  std::vector<char*> argv;
  for (std::size_t j = i + 1; j < args.size(); ++j) argv.push_back(const_cast<char*>(args[j].c_str()));
  argv.push_back(nullptr);
  const pid_t child = ::fork();
  if (child < 0) return fail("run: fork", errno);
  if (child == 0) {
    ::execvp(argv[0], argv.data());
    std::cerr << "regfs: run: cannot run " << argv[0] << ": " << std::strerror(errno) << "\n";
    ::_exit(127);
  }
  g_child = child;
  struct sigaction sa{};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaction(sig, &sa, nullptr);

  bool registered = false;
  int status = 0;
  while (true) {
    const pid_t done = ::waitpid(child, &status, registered ? 0 : WNOHANG);
    if (done == child) break;
    if (done < 0 && errno != EINTR) break;
    if (registered) continue;
    if (port == 0) port = find_listening_port(child);
    if (port != 0 && check_passes(port, *check)) {
      const std::string line = ":" + std::to_string(port) + " check=" + to_string(*check) + "\n";
      if (const int err = write_file(ctx.path(name), line, false)) {
        fail("run: register " + name, err);
      } else {
        std::cerr << "regfs: run: registered " << name << " on port " << port << "\n";
      }
      registered = true;
      continue;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (registered && ::unlink(ctx.path(name).c_str()) != 0 && errno != ENOENT) {
    fail("run: deregister " + name, errno);
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : kError;
}

}  // namespace regfs::cli
