// The read path, measured against references in the same run.
//
//   read_bench --iterations N --tmpfs FILE --one PATH [--multi PATH]
//              [--check PATH] [--dns 127.0.0.1:PORT NAME] [--case NAME PATH]...
//   read_bench --poll PATH SECONDS
//
// --case adds a case of open+read+close of PATH under NAME (repeatable; with
// it, --one may be left out). --poll reads PATH in a loop for SECONDS, as a
// busy reader does, and prints `reads N seconds S failures F`.
//
// Each case is N times open+read+close (or one DNS query over a connected UDP
// socket, or one pipe round trip), after a warm-up; prints median, p90 and p99
// in microseconds and the ratio of each median to the tmpfs median, as a
// markdown table. The cases take turns in ten rounds, so that a noisy stretch
// of the machine falls on all of them alike rather than on whichever ran then.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double median = 0, p90 = 0, p99 = 0;
  long failures = 0;
};

// One case of the table: what it does once, and the times it took.
struct Case {
  std::string name;
  int iterations;
  std::function<bool()> once;
  std::vector<double> us{};
  long failures = 0;
};

// Warms every case up, lets them take turns in `rounds` rounds, and sorts
// each case's times.
void measure(std::vector<Case>& cases, int rounds) {
  for (auto& c : cases) {
    for (int i = 0; i < std::min(c.iterations / 10, 1000); ++i) c.once();
    c.us.reserve(static_cast<std::size_t>(c.iterations));
  }
  for (int r = 0; r < rounds; ++r) {
    for (auto& c : cases) {
      const int n = c.iterations / rounds + (r < c.iterations % rounds ? 1 : 0);
      for (int i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        const bool ok = c.once();
        const auto t1 = Clock::now();
        if (!ok) ++c.failures;
        c.us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    }
  }
  for (auto& c : cases) std::sort(c.us.begin(), c.us.end());
}

// The percentiles of a measured (sorted) case.
Stats stats_of(const Case& c) {
  auto at = [&](double q) {
    return c.us[static_cast<std::size_t>(q * static_cast<double>(c.us.size() - 1))];
  };
  return {at(0.5), at(0.9), at(0.99), c.failures};
}

bool read_once(const char* path) {
  char buf[4096];
  const int fd = ::open(path, O_RDONLY);
  if (fd < 0) return false;
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0;
}

// A DNS query for an A record, built by hand (RFC 1035 section 4).
std::vector<unsigned char> dns_query(const std::string& name, std::uint16_t id) {
  const auto hi = static_cast<unsigned char>(id >> 8), lo = static_cast<unsigned char>(id);
  // id, recursion desired, one question
  std::vector<unsigned char> q = {hi, lo, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  std::size_t start = 0;
  while (start <= name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<unsigned char>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start),
             name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});  // root, type A, class IN
  return q;
}

// A process at the other end of two pipes that answers each byte with a byte
// and waits the way regfsd does: it keeps trying to read while bytes come
// within 50 µs of its last answer, and sleeps in poll() otherwise. One round
// trip to it is what one request to another process costs on this machine,
// the floor under a read that the daemon must be asked about.
class PollingPeer {
 public:
  PollingPeer() {
    int down[2], up[2];
    if (::pipe(down) != 0 || ::pipe(up) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      serve(down[0], up[1]);
      ::_exit(0);
    }
    ::close(down[0]);
    ::close(up[1]);
    to_ = down[1];
    from_ = up[0];
  }
  PollingPeer(const PollingPeer&) = delete;
  PollingPeer& operator=(const PollingPeer&) = delete;
  ~PollingPeer() {
    if (to_ >= 0) ::close(to_);  // the peer reads end-of-file and exits
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }

  bool round_trip() const {
    char b = 'x';
    return ::write(to_, &b, 1) == 1 && ::read(from_, &b, 1) == 1;
  }

 private:
  static void serve(int in, int out) {
    ::fcntl(in, F_SETFL, O_NONBLOCK);
    const auto give_up = Clock::now() + std::chrono::minutes(10);
    auto last = Clock::now();
    char b;
    while (Clock::now() < give_up) {
      const ssize_t n = ::read(in, &b, 1);
      if (n == 0) return;
      if (n == 1) {
        if (::write(out, &b, 1) != 1) return;
        last = Clock::now();
      } else if (Clock::now() - last > std::chrono::microseconds(50)) {
        pollfd p{in, POLLIN, 0};
        ::poll(&p, 1, 1000);
        last = Clock::now();
      }
    }
  }

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
};

}  // namespace

int main(int argc, char** argv) {
  int iterations = 20000;
  std::string tmpfs, one, multi, check, dns_addr, dns_name, poll;
  double poll_seconds = 0;
  std::vector<std::pair<std::string, std::string>> extra;  // --case NAME PATH
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--iterations") iterations = std::stoi(next());
    if (a == "--tmpfs") tmpfs = next();
    if (a == "--one") one = next();
    if (a == "--multi") multi = next();
    if (a == "--check") check = next();
    if (a == "--dns") {
      dns_addr = next();
      dns_name = next();
    }
    if (a == "--case") {
      auto name = next();
      extra.emplace_back(std::move(name), next());
    }
    if (a == "--poll") {
      poll = next();
      poll_seconds = std::stod(next());
    }
  }
  if (!poll.empty()) {
    const auto start = Clock::now();
    const auto until = start + std::chrono::duration<double>(std::min(poll_seconds, 600.0));
    long reads = 0, failures = 0;
    while (Clock::now() < until) {
      ++reads;
      if (!read_once(poll.c_str())) ++failures;
    }
    std::printf("reads %ld seconds %.3f failures %ld\n", reads,
                std::chrono::duration<double>(Clock::now() - start).count(), failures);
    return 0;
  }
  if (tmpfs.empty() || (one.empty() && extra.empty())) {
    std::fprintf(stderr,
                 "usage: read_bench --iterations N --tmpfs FILE --one PATH [--multi PATH] "
                 "[--check PATH] [--dns 127.0.0.1:PORT NAME] [--case NAME PATH]...\n"
                 "       read_bench --poll PATH SECONDS\n");
    return 2;
  }

  std::vector<Case> cases;
  cases.push_back({"tmpfs file (reference)", iterations, [&] { return read_once(tmpfs.c_str()); }});
  if (!one.empty()) {
    cases.push_back({"/registry/svc, 1 instance, fresh verdict", iterations,
                     [&] { return read_once(one.c_str()); }});
  }
  for (const auto& [name, path] : extra) {
    cases.push_back({name, iterations, [&path = path] { return read_once(path.c_str()); }});
  }
  if (!multi.empty()) {
    cases.push_back({"/registry/svc, 5 instances, rotating", iterations,
                     [&] { return read_once(multi.c_str()); }});
  }
  if (!check.empty()) {
    cases.push_back({"/registry/svc, on-demand check (--fresh 0)", std::min(iterations, 5000),
                     [&] { return read_once(check.c_str()); }});
  }
  int dns_fd = -1;
  std::uint16_t dns_id = 1;
  if (!dns_addr.empty()) {
    dns_fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    const auto colon = dns_addr.rfind(':');
    ::inet_pton(AF_INET, dns_addr.substr(0, colon).c_str(), &addr.sin_addr);
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(dns_addr.substr(colon + 1))));
    timeval tv{1, 0};
    ::setsockopt(dns_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::connect(dns_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    cases.push_back({"DNS A query to local dnsmasq (reference)", iterations, [&] {
                       const auto q = dns_query(dns_name, ++dns_id);
                       unsigned char reply[512];
                       if (::send(dns_fd, q.data(), q.size(), 0) < 0) return false;
                       const ssize_t n = ::recv(dns_fd, reply, sizeof reply, 0);
                       return n > 12 && reply[0] == q[0] && reply[1] == q[1] && reply[7] >= 1;
                     }});
  }
  const PollingPeer peer;
  cases.push_back({"pipe round trip to a polling process (reference)", iterations,
                   [&] { return peer.round_trip(); }});

  measure(cases, 10);
  if (dns_fd >= 0) ::close(dns_fd);

  std::printf("| case | median µs | p90 µs | p99 µs | median / tmpfs | failures |\n");
  std::printf("|---|---|---|---|---|---|\n");
  const double base = stats_of(cases.front()).median;
  for (const auto& c : cases) {
    const Stats s = stats_of(c);
    std::printf("| %s | %.1f | %.1f | %.1f | %.2fx | %ld |\n", c.name.c_str(), s.median, s.p90,
                s.p99, s.median / base, s.failures);
  }
  return 0;
}
