// regfs get SERVICE [--all] [--wait SECONDS]
#include <cerrno>
#include <chrono>
#include <csignal>
#include <iostream>
#include <sys/time.h>
#include <unistd.h>

#include "cli.hpp"
#include "core/instance.hpp"

namespace regfs::cli {
namespace {

void on_alarm(int) {}  // only interrupts the blocked read

// Arms SIGALRM after `seconds` without SA_RESTART, so a blocked open/read
// returns EINTR (the daemon answers the kernel's interrupt).
void arm_alarm(double seconds) {
  struct sigaction sa{};
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, nullptr);
  itimerval t{};
  t.it_value.tv_sec = static_cast<time_t>(seconds);
  t.it_value.tv_usec = static_cast<suseconds_t>((seconds - static_cast<double>(t.it_value.tv_sec)) * 1e6);
  if (t.it_value.tv_sec == 0 && t.it_value.tv_usec == 0) t.it_value.tv_usec = 1;
  setitimer(ITIMER_REAL, &t, nullptr);
}

void disarm_alarm() {
  itimerval t{};
  setitimer(ITIMER_REAL, &t, nullptr);
}

}  // namespace

int cmd_get(const Context& ctx, const std::vector<std::string>& args) {
  std::string service;
  bool all = false;
  double wait = -1;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--all") {
      all = true;
    } else if (args[i] == "--wait" && i + 1 < args.size()) {
      char* end = nullptr;
      wait = std::strtod(args[++i].c_str(), &end);
      if (*end != '\0' || wait < 0) return fail_usage("get: --wait takes a number of seconds");
    } else if (service.empty() && !args[i].starts_with("-")) {
      service = args[i];
    } else {
      return fail_usage("usage: regfs get SERVICE [--all] [--wait SECONDS]");
    }
  }
  if (service.empty()) return fail_usage("usage: regfs get SERVICE [--all] [--wait SECONDS]");
  if (!valid_service_name(service)) return fail_usage("get: invalid service name '" + service + "'", kInvalid);

  std::string out;
  if (!ctx.mirror.empty()) {
    // Fargate mode: plain files; a service with nothing healthy has no file.
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::duration<double>(std::max(wait, 0.0));
    int err = 0;
    while ((err = read_file(ctx.path(all ? ".all/" + service : service), out)) == ENOENT &&
           clock::now() < deadline) {
      ::usleep(50000);
    }
    if (err == ENOENT && wait >= 0) return fail_usage("get " + service + ": nothing healthy within " + std::to_string(wait) + " s", kTimedOut);
    if (err != 0) return fail("get " + service + " (nothing registered, or nothing healthy)", err);
  } else if (wait < 0) {
    const int err = read_file(ctx.path(all ? ".all/" + service : service), out);
    if (err != 0) return fail("get " + service, err);
  } else {
    // .wait/ blocks in the daemon until something is healthy, up to its own
    // timeout; our alarm ends the wait at the time asked for.
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::duration<double>(wait);
    int err = ETIMEDOUT;
    while (clock::now() < deadline) {
      arm_alarm(std::chrono::duration<double>(deadline - clock::now()).count());
      err = read_file(ctx.path(".wait/" + service), out);
      disarm_alarm();
      if (err != ETIMEDOUT) break;
    }
    if (err == EINTR || err == ETIMEDOUT) {
      std::cerr << "regfs: get " << service << ": nothing healthy within " << wait << " s\n";
      return kTimedOut;
    }
    if (err != 0) return fail("get " + service, err);
    if (all) {
      if (const int e = read_file(ctx.path(".all/" + service), out)) return fail("get " + service, e);
    }
  }
  std::cout << out << std::flush;
  return kOk;
}

}  // namespace regfs::cli
