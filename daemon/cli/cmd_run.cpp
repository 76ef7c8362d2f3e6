// regfs run --name SERVICE [--port PORT|auto] [--check CHECK]
//           [--requires SVC[,SVC...] [--requires-timeout SECONDS]] -- COMMAND...
//
// Waits for the required services, starts the command, registers its port
// once its check passes (run_ready.hpp), forwards signals, removes exactly the
// instance it registered on exit and exits with the command's code (128+signal
// if a signal ended it).
//
// Signals: the forwarded ones are blocked from before fork() until the
// command's pid is known, so one that arrives in between is forwarded, not
// lost and not fatal to run. The command starts with the signal mask and the
// dispositions run was started with (SIGCHLD at its default). run itself
// unblocks the signals it forwards, and sets SIGCHLD to its default, so that
// it learns the command's exit status even when started with SIGCHLD ignored.
// As PID 1 (a container's init) it also reaps the orphans the kernel hands it.
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "cli.hpp"
#include "core/instance.hpp"
#include "run_ready.hpp"

namespace regfs::cli {
namespace {

constexpr std::array kForwarded{SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

volatile sig_atomic_t g_child = 0;

void forward(int sig) {
  if (g_child > 0) ::kill(g_child, sig);
}

using Clock = std::chrono::steady_clock;

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

std::string port_list(const std::vector<std::uint16_t>& ports) {
  std::string out;
  for (const auto p : ports) {
    if (!out.empty()) out.append(", ");
    out.append(std::to_string(p));
  }
  return out;
}

// The command, started with the signal handling described at the top.
struct Started {
  pid_t pid = -1;
  int err = 0;
};

Started start(std::vector<char*>& argv) {
  sigset_t forwarded, original_mask;
  sigemptyset(&forwarded);
  for (const int sig : kForwarded) sigaddset(&forwarded, sig);
  sigprocmask(SIG_BLOCK, &forwarded, &original_mask);

  std::array<struct sigaction, kForwarded.size()> original{};
  struct sigaction sa{};
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  for (std::size_t k = 0; k < kForwarded.size(); ++k) sigaction(kForwarded[k], &sa, &original[k]);
  struct sigaction dfl{};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGCHLD, &dfl, nullptr);

  const pid_t child = ::fork();
  if (child == 0) {
    for (std::size_t k = 0; k < kForwarded.size(); ++k) sigaction(kForwarded[k], &original[k], nullptr);
    sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    ::execvp(argv[0], argv.data());
    std::cerr << "regfs: run: cannot run " << argv[0] << ": " << std::strerror(errno) << "\n";
    ::_exit(127);
  }
  const int err = child < 0 ? errno : 0;
  if (child > 0) g_child = child;
  sigset_t mask = original_mask;
  for (const int sig : kForwarded) sigdelset(&mask, sig);
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  return Started{child, err};
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
  const auto check = parse_check(check_arg);
  if (!check) return fail_usage("run: --check: " + check.error().detail, kInvalid);
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
  const Started child = start(argv);
  if (child.pid < 0) return fail("run: fork", child.err);

  bool looking = true;       // until the first registration attempt
  std::string registered;    // the endpoint this run added, if the daemon took it
  std::string said;          // the last "several ports" message: said again only when it changes
  int status = 0;
  bool have_status = false;
  while (true) {
    int st = 0;
    const pid_t done = ::waitpid(-1, &st, looking ? WNOHANG : 0);
    if (done == child.pid) {
      status = st;
      have_status = true;
      break;
    }
    if (done > 0) continue;  // an orphan handed to run as PID 1: reaped
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) {
      fail("run: waiting for the command", errno);
      break;
    }
    const Readiness ready = look_for_ready(child.pid, port, *check);
    if (!ready.endpoint.empty()) {
      looking = false;
      const std::string line = ready.endpoint + " check=" + to_string(*check) + "\n";
      if (const int err = write_file(ctx.path(name), line, true)) {
        fail("run: register " + name, err);
      } else {
        registered = ready.endpoint;
        std::cerr << "regfs: run: registered " << name << " at " << registered << "\n";
      }
      continue;
    }
    if (ready.passing.size() > 1) {
      std::string message = "run: the command listens on ports ";
      message.append(port_list(ready.ports))
          .append(" and more than one passes the check; name the one to register with --port");
      if (message != said) std::cerr << "regfs: " << message << "\n";
      said = std::move(message);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!registered.empty()) {
    // Remove exactly this instance: other instances of the service, on this
    // node too (another replica), stay.
    if (const int err = write_file(ctx.path(name), "-" + registered + "\n", true); err != 0 && err != ENOENT) {
      fail("run: deregister " + name, err);
    }
  }
  if (!have_status) return kError;
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : kError;
}

}  // namespace regfs::cli
