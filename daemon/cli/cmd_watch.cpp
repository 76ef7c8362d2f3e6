// regfs watch SERVICE [--all] [-- COMMAND...]
//
// Prints a service's answer at start and whenever it changes (one line each),
// or runs COMMAND with the answer in its environment and, when the answer
// changes, stops it (SIGTERM) and starts it again, as envconsul does. Waits
// through ChangeWaiter: nothing runs while nothing changes.
#include <sys/wait.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <optional>

#include "change_waiter.hpp"
#include "cli.hpp"
#include "core/instance.hpp"
#include "template.hpp"
#include "watch.hpp"

namespace regfs::cli {

WatchView watch_view(const Answer& all, const Answer& one) {
  WatchView v;
  if (all.err == ENOENT) {
    v.state = "missing";
    return v;
  }
  if (all.err == EHOSTDOWN) {
    v.state = "down";
    return v;
  }
  if (all.err != 0) {
    v.state = "error";
    v.err = all.err;
    return v;
  }
  std::size_t pos = 0;
  while (pos < all.text.size()) {
    const auto nl = std::min(all.text.find('\n', pos), all.text.size());
    if (nl > pos) v.endpoints.push_back(all.text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  if (v.endpoints.empty()) {
    v.state = "down";
    return v;
  }
  v.state = "healthy";
  std::string chosen = one.err == 0 ? one.text : std::string();
  while (!chosen.empty() && (chosen.back() == '\n' || chosen.back() == '\r')) chosen.pop_back();
  v.endpoint = chosen.empty() ? v.endpoints.front() : chosen;
  return v;
}

std::string watch_line(const WatchView& view, bool all) {
  if (!all) return view.endpoint;
  std::string line;
  for (const auto& ep : view.endpoints) {
    if (!line.empty()) line += ' ';
    line += ep;
  }
  return line;
}

Environment watch_environment(const std::string& service, const WatchView& view) {
  std::string host, port;
  if (auto inst = instance_from_endpoint(view.endpoint)) {
    host = inst->host;
    port = std::to_string(inst->port);
  }
  return {{"REGFS_SERVICE", service},
          {"REGFS_STATE", view.state},
          {"REGFS_ENDPOINT", view.endpoint},
          {"REGFS_ENDPOINTS", watch_line(view, true)},
          {"REGFS_HOST", host},
          {"REGFS_PORT", port}};
}

namespace {

constexpr Duration kStopGrace = std::chrono::seconds(10);

// The mount went away, or cannot tell of a registration.
int gone(const Context& ctx, const std::string& what, int err) {
  if (err == ENOSYS) {
    std::cerr << "regfs: " << what
              << ": nothing to poll (not registered, or nothing healthy), and the daemon at "
              << ctx.mount << " has no .events to say when it is\n";
    return kError;
  }
  std::cerr << "regfs: " << what << ": the registry at " << ctx.mount
            << " is gone (regfsd stopped or unmounted)"
            << (err == ENODEV ? std::string() : std::string(": ") + std::strerror(err)) << "\n";
  return kNoDaemon;
}

}  // namespace

int cmd_watch(const Context& ctx, const std::vector<std::string>& args) {
  static const char* usage = "usage: regfs watch SERVICE [--all] [-- COMMAND...]";
  std::string service;
  bool all = false;
  std::vector<std::string> command;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {
      command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      if (command.empty()) return fail_usage(usage);
      break;
    }
    if (args[i] == "--all") {
      all = true;
    } else if (service.empty() && !args[i].starts_with("-")) {
      service = args[i];
    } else {
      return fail_usage(usage);
    }
  }
  if (service.empty()) return fail_usage(usage);
  if (!valid_service_name(service))
    return fail_usage("watch: invalid service name '" + service + "'", kInvalid);
  if (!ctx.mirror.empty()) return fail_usage("watch needs the mount", kError);

  const std::string what = "watch " + service;
  ChangeWaiter waiter(ctx, !command.empty());
  pid_t child = -1;
  std::optional<std::string> printed;  // the last line printed
  std::optional<Environment> started;  // the environment the running command got
  std::string said;                    // the last state reported on stderr
  while (true) {
    std::vector<Answer> answers;
    if (const int err = waiter.read({".all/" + service}, answers)) {
      if (child > 0) stop_command(child, kStopGrace);
      return gone(ctx, what, err);
    }
    Answer one;
    if (answers[0].err == 0) one.err = read_file(ctx.path(service), one.text);
    const WatchView view = watch_view(answers[0], one);
    if (view.state != said) {
      if (view.state == "missing") std::cerr << "regfs: " << what << ": not registered\n";
      if (view.state == "down") std::cerr << "regfs: " << what << ": no healthy instance\n";
      if (view.state == "error")
        std::cerr << "regfs: " << what << ": " << std::strerror(view.err) << "\n";
      said = view.state;
    }
    if (view.state != "error") {
      if (command.empty()) {
        const std::string line = watch_line(view, all);
        if (line != printed) {
          std::cout << line << "\n" << std::flush;
          printed = line;
        }
      } else {
        const Environment env = watch_environment(service, view);
        if (env != started) {
          if (child > 0) stop_command(child, kStopGrace);
          child = start_command(command, env);
          if (child < 0) {
            const int err = errno;
            return fail(what + ": cannot start " + command.front(), err);
          }
          started = env;
        }
      }
    }
    while (true) {
      int err = 0;
      const auto wake = waiter.wait(std::nullopt, err);
      if (wake == ChangeWaiter::Wake::changed) break;
      if (wake == ChangeWaiter::Wake::signal) {
        if (child > 0) stop_command(child, kStopGrace);
        return kOk;
      }
      if (wake == ChangeWaiter::Wake::child) {
        int status = 0;
        if (child > 0 && ::waitpid(child, &status, WNOHANG) == child) {
          if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            std::cerr << "regfs: " << what << ": " << command.front() << " "
                      << describe_status(status) << "\n";
          }
          child = -1;
        }
        continue;
      }
      if (wake == ChangeWaiter::Wake::error) {
        if (child > 0) stop_command(child, kStopGrace);
        if (err == ENOTCONN) return gone(ctx, what, err);
        return fail(what, err);
      }
    }
  }
}

}  // namespace regfs::cli
