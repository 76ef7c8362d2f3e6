// How fast a change on this node wakes a poll() waiter and a .events reader,
// against inotify on a tmpfs file written the same way, and what idle
// watchers cost the daemon (bench/watch.sh runs it; docs/BENCHMARKS.md).
//
//   watch_bench MOUNT DAEMON_PID REFERENCE_FILE ENDPOINT ITERATIONS WATCHERS IDLE_SECONDS
//
// MOUNT/svc must hold one instance. Each iteration adds ENDPOINT to svc or
// removes it again (open, write, close: one change each), the waiter already
// waiting in the daemon (its gauge in .metrics says so); the latency is from
// just before the writer's open() to the waiter's return.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <pthread.h>
#include <string>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::string mount;

long metric(const std::string& name) {
  std::ifstream in(mount + "/.metrics");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::atol(line.c_str() + name.size() + 1);
  }
  return -1;
}

void wait_metric(const std::string& name, long at_least) {
  for (int i = 0; i < 100000 && metric(name) < at_least; ++i) ::usleep(100);
}

void write_file(const std::string& path, const std::string& text, int flags) {
  const int fd = ::open(path.c_str(), O_WRONLY | flags);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    std::perror(path.c_str());
    std::exit(1);
  }
  ::close(fd);
}

// Waits until thread `tid` of this process sleeps (in the read() it was about to make).
void wait_sleeping(pid_t tid) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  for (int i = 0; i < 100000; ++i) {
    std::ifstream in(path);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    const auto paren = s.rfind(')');
    if (paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] == 'S') return;
    std::this_thread::yield();
  }
}

double median_us(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
double pct_us(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
}

double us_since(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

// The change: add or remove `endpoint` in svc.
void change(const std::string& endpoint, int i) {
  write_file(mount + "/svc", (i % 2 == 0 ? "" : "-") + endpoint + " check=none\n", O_APPEND);
}

void report(const char* what, const std::vector<double>& v) {
  std::printf("%-34s median %8.1f us   p90 %8.1f us   (n=%zu)\n", what, median_us(v), pct_us(v, 0.9),
              v.size());
}

std::vector<double> bench_poll(const std::string& endpoint, int iterations) {
  std::vector<double> out;
  for (int i = 0; i < iterations; ++i) {
    const int fd = ::open((mount + "/svc").c_str(), O_RDONLY);
    char buf[512];
    if (fd < 0 || ::read(fd, buf, sizeof buf) < 0) std::exit(1);
    std::atomic<bool> woke{false};
    Clock::time_point t1;
    std::thread waiter([&] {
      pollfd p{fd, POLLPRI, 0};
      ::poll(&p, 1, 10000);
      t1 = Clock::now();
      woke = (p.revents & (POLLPRI | POLLERR)) == (POLLPRI | POLLERR);
    });
    wait_metric("regfs_poll_waiting", 1);
    const auto t0 = Clock::now();
    change(endpoint, i);
    waiter.join();
    ::close(fd);
    if (!woke) {
      std::fprintf(stderr, "poll did not report the change\n");
      std::exit(1);
    }
    out.push_back(us_since(t0, t1));
  }
  return out;
}

std::vector<double> bench_events(const std::string& endpoint, int iterations) {
  std::vector<double> out;
  const int fd = ::open((mount + "/.events").c_str(), O_RDONLY);
  if (fd < 0) std::exit(1);
  for (int i = 0; i < iterations; ++i) {
    Clock::time_point t1;
    ssize_t got = 0;
    std::thread reader([&] {
      char buf[65536];
      got = ::read(fd, buf, sizeof buf);
      t1 = Clock::now();
    });
    wait_metric("regfs_event_readers_waiting", 1);
    const auto t0 = Clock::now();
    change(endpoint, i);
    reader.join();
    if (got <= 0) {
      std::fprintf(stderr, ".events read failed\n");
      std::exit(1);
    }
    out.push_back(us_since(t0, t1));
  }
  ::close(fd);
  return out;
}

std::vector<double> bench_inotify(const std::string& file, int iterations) {
  std::vector<double> out;
  write_file(file, "", O_CREAT | O_TRUNC);
  const int in = ::inotify_init1(0);
  ::inotify_add_watch(in, file.c_str(), IN_MODIFY);
  for (int i = 0; i < iterations; ++i) {
    Clock::time_point t1;
    std::atomic<pid_t> tid{0};
    std::thread waiter([&] {
      char buf[4096];
      tid = static_cast<pid_t>(::syscall(SYS_gettid));
      (void)::read(in, buf, sizeof buf);
      t1 = Clock::now();
    });
    while (tid == 0) std::this_thread::yield();
    wait_sleeping(tid);
    const auto t0 = Clock::now();
    write_file(file, "127.0.0.1:9 check=none\n", O_APPEND);
    waiter.join();
    out.push_back(us_since(t0, t1));
  }
  ::close(in);
  return out;
}

struct Usage {
  double cpu_s = 0;
  long rss_kb = 0;
};
Usage usage(int pid) {
  Usage u;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(stat)), {});
  const auto close_paren = s.rfind(')');
  std::vector<std::string> fields;
  std::size_t pos = close_paren + 2;
  while (pos < s.size()) {
    const auto next = s.find(' ', pos);
    fields.push_back(s.substr(pos, next - pos));
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  // fields[0] is field 3 (state): utime is field 14, stime 15.
  u.cpu_s = (std::atof(fields[11].c_str()) + std::atof(fields[12].c_str())) / ::sysconf(_SC_CLK_TCK);
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) u.rss_kb = std::atol(line.c_str() + 6);
  }
  return u;
}

void idle(int pid, int watchers, int seconds) {
  const Usage base = usage(pid);
  // poll(): one epoll over `watchers` opens of svc, each with EPOLLPRI.
  const int ep = ::epoll_create1(0);
  std::vector<int> fds;
  for (int i = 0; i < watchers; ++i) {
    const int fd = ::open((mount + "/svc").c_str(), O_RDONLY);
    if (fd < 0) {
      std::perror("open svc");
      std::exit(1);
    }
    epoll_event ev{};
    ev.events = EPOLLPRI;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    fds.push_back(fd);
  }
  wait_metric("regfs_poll_waiting", watchers);
  // .events: `watchers` threads, each blocked in read() of its own open.
  std::vector<pthread_t> threads;
  std::vector<int> streams;
  pthread_attr_t attr;
  ::pthread_attr_init(&attr);
  ::pthread_attr_setstacksize(&attr, 64 * 1024);
  for (int i = 0; i < watchers; ++i) {
    const int fd = ::open((mount + "/.events").c_str(), O_RDONLY);
    if (fd < 0) {
      std::perror("open .events");
      std::exit(1);
    }
    streams.push_back(fd);
    pthread_t t;
    ::pthread_create(
        &t, &attr,
        [](void* arg) -> void* {
          char buf[4096];
          (void)::read(static_cast<int>(reinterpret_cast<intptr_t>(arg)), buf, sizeof buf);
          return nullptr;
        },
        reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
    threads.push_back(t);
  }
  wait_metric("regfs_event_readers_waiting", watchers);
  const Usage loaded = usage(pid);
  ::sleep(static_cast<unsigned>(seconds));
  const Usage after = usage(pid);
  std::printf("idle: %d poll() watchers (epoll, EPOLLPRI) + %d .events readers blocked in read()\n",
              watchers, watchers);
  std::printf("  daemon RSS: %ld kB before, %ld kB with them: %.0f bytes per watcher (of %d)\n",
              base.rss_kb, loaded.rss_kb,
              1024.0 * static_cast<double>(loaded.rss_kb - base.rss_kb) / (2 * watchers), 2 * watchers);
  std::printf("  daemon CPU over %d s idle with them: %.3f s\n", seconds, after.cpu_s - loaded.cpu_s);
  std::fflush(stdout);
  // End the blocked readers: closing does not, a change does (one line each).
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr,
                 "usage: watch_bench MOUNT DAEMON_PID REFERENCE_FILE ENDPOINT ITERATIONS WATCHERS "
                 "IDLE_SECONDS\n");
    return 2;
  }
  mount = argv[1];
  const int pid = std::atoi(argv[2]);
  const std::string reference = argv[3];
  const std::string endpoint = argv[4];
  const int iterations = std::atoi(argv[5]);
  const int watchers = std::atoi(argv[6]);
  const int seconds = std::atoi(argv[7]);
  report("poll() waiter, change on this node", bench_poll(endpoint, iterations));
  report(".events reader, change on this node", bench_events(endpoint, iterations));
  report("inotify on tmpfs (reference)", bench_inotify(reference, iterations));
  std::fflush(stdout);
  idle(pid, watchers, seconds);
}
