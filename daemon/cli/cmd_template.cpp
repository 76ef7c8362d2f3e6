// regfs template [--once] [--wait MIN[:MAX]] IN:OUT[:COMMAND]...
//
// Renders each Mustache template IN (template.hpp) over the healthy instances
// of the services it names into OUT, replaced atomically, and runs COMMAND
// (with /bin/sh -c) when the text of OUT changed. Renders at start, then
// after changes: at once, or with --wait once the changes have paused for MIN
// (at the latest MAX after the first one). Waits through ChangeWaiter:
// nothing runs while nothing changes.
#include <cerrno>
#include <cstring>
#include <iostream>
#include <set>

#include "change_waiter.hpp"
#include "cli.hpp"
#include "command.hpp"
#include "quiet.hpp"
#include "template.hpp"

namespace regfs::cli {
namespace {

constexpr std::size_t kMaxTemplateBytes = 1 << 20;

struct Job {
  TemplateSpec spec;
  Template tmpl;
  std::string said;  // the last problem reported, said again only when it changes
};

void report(Job& job, const std::string& message) {
  if (message == job.said) return;
  if (!message.empty()) std::cerr << "regfs: template " << job.spec.in << ": " << message << "\n";
  job.said = message;
}

// Renders every job over `answers` (what .all/<service> answered, in the
// order of `services`). Returns 0, or the exit code of the last failure.
int render_all(const Context& ctx, std::vector<Job>& jobs, const std::vector<std::string>& services,
               const std::vector<Answer>& answers) {
  StatusIndex status;
  bool any_healthy = false;
  for (const auto& a : answers) any_healthy = any_healthy || a.err == 0;
  if (any_healthy) {
    std::string raw;
    if (read_file(ctx.path(".status.json"), raw) == 0) status = index_status(raw);
  }
  std::map<std::string, ServiceData> data;
  std::map<std::string, int> unreadable;  // service -> errno, other than ENOENT/EHOSTDOWN
  for (std::size_t i = 0; i < services.size(); ++i) {
    const Answer& a = answers[i];
    ServiceData& d = data[services[i]];
    d.registered = a.err != ENOENT;
    if (a.err == 0) d.healthy = parse_all_answer(a.text, status, services[i]);
    if (a.err != 0 && a.err != ENOENT && a.err != EHOSTDOWN) {
      unreadable[services[i]] = a.err;
    }
  }
  int rc = kOk;
  for (auto& job : jobs) {
    std::string problem;
    for (const auto& name : job.tmpl.services()) {
      if (const auto it = unreadable.find(name); it != unreadable.end()) {
        problem = "reading " + name + ": " + std::strerror(it->second) + " (OUT left as it is)";
      }
    }
    if (!problem.empty()) {
      report(job, problem);
      rc = kError;
      continue;
    }
    const auto text = job.tmpl.render(data);
    if (!text) {
      const Errc code = text.error().code;
      report(job, text.error().detail + (code == Errc::invalid_line ? "" : " (OUT left as it is)"));
      rc = code == Errc::not_found ? kNotFound : code == Errc::host_down ? kHostDown : kInvalid;
      continue;
    }
    report(job, "");
    std::string current;
    if (read_file(job.spec.out, current) == 0 && current == *text) continue;
    if (const int err = replace_file(job.spec.out, *text)) {
      std::cerr << "regfs: template " << job.spec.in << ": writing " << job.spec.out << ": "
                << std::strerror(err) << "\n";
      rc = kError;
      continue;
    }
    if (job.spec.command.empty()) continue;
    const int exit_status = run_shell(job.spec.command);
    if (exit_status < 0) {
      std::cerr << "regfs: template " << job.spec.in
                << ": cannot run /bin/sh: " << std::strerror(errno) << "\n";
      rc = kError;
    } else if (exit_status != 0) {
      std::cerr << "regfs: template " << job.spec.in << ": '" << job.spec.command << "' "
                << describe_status(exit_status) << "\n";
      rc = kError;
    }
  }
  return rc;
}

int gone(const Context& ctx, int err) {
  if (err == ENOSYS) {
    std::cerr << "regfs: template: a service has nothing to poll (not registered, or nothing "
                 "healthy), and the daemon at "
              << ctx.mount << " has no .events to say when it is\n";
    return kError;
  }
  std::cerr << "regfs: template: the registry at " << ctx.mount
            << " is gone (regfsd stopped or unmounted)"
            << (err == ENODEV ? std::string() : std::string(": ") + std::strerror(err)) << "\n";
  return kNoDaemon;
}

}  // namespace

int cmd_template(const Context& ctx, const std::vector<std::string>& args) {
  static const char* usage =
      "usage: regfs template [--once] [--wait MIN[:MAX]] IN:OUT[:COMMAND]...";
  bool once = false;
  WaitSpec wait;
  std::vector<Job> jobs;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--once") {
      once = true;
    } else if (args[i] == "--wait" && i + 1 < args.size()) {
      auto w = parse_wait(args[++i]);
      if (!w) return fail_usage("template: " + w.error().detail);
      wait = *w;
    } else if (args[i].starts_with("-")) {
      return fail_usage(usage);
    } else {
      auto spec = parse_template_spec(args[i]);
      if (!spec) return fail_usage("template: " + spec.error().detail);
      jobs.push_back(Job{*spec, {}, {}});
    }
  }
  if (jobs.empty()) return fail_usage(usage);
  if (!ctx.mirror.empty()) return fail_usage("template needs the mount", kError);

  // Every template parses before anything is written.
  std::set<std::string> names;
  for (auto& job : jobs) {
    std::string text;
    if (const int err = read_file(job.spec.in, text)) {
      std::cerr << "regfs: template " << job.spec.in << ": " << std::strerror(err) << "\n";
      return kError;
    }
    if (text.size() > kMaxTemplateBytes) {
      return fail_usage("template " + job.spec.in + ": larger than 1 MiB", kInvalid);
    }
    auto parsed = Template::parse(text);
    if (!parsed)
      return fail_usage("template " + job.spec.in + ": " + parsed.error().detail, kInvalid);
    job.tmpl = std::move(*parsed);
    names.insert(job.tmpl.services().begin(), job.tmpl.services().end());
  }
  const std::vector<std::string> services(names.begin(), names.end());
  std::vector<std::string> paths;
  for (const auto& s : services) paths.push_back(".all/" + s);

  ChangeWaiter waiter(ctx, false);
  std::vector<Answer> answers;
  if (const int err = waiter.read(paths, answers, once)) return gone(ctx, err);
  const int first = render_all(ctx, jobs, services, answers);
  if (once) return first;

  Quiet quiet(wait.min, wait.max);
  while (true) {
    int err = 0;
    const auto deadline = quiet.pending() ? std::optional<Time>(quiet.due()) : std::nullopt;
    const auto wake = waiter.wait(deadline, err);
    if (wake == ChangeWaiter::Wake::signal) return kOk;
    if (wake == ChangeWaiter::Wake::error)
      return err == ENOTCONN ? gone(ctx, err) : fail("template", err);
    if (wake == ChangeWaiter::Wake::changed) {
      // Read again: that is what arms the next wake-up, and the answers are
      // the latest for the render that is owed.
      if (const int e = waiter.read(paths, answers)) return gone(ctx, e);
      quiet.changed(steady_now());
    }
    if (quiet.pending() && quiet.due() <= steady_now()) {
      render_all(ctx, jobs, services, answers);
      quiet.rendered();
    }
  }
}

}  // namespace regfs::cli
