// The read path, measured against references in the same run.
//
//   read_bench --iterations N --tmpfs FILE --one PATH [--multi PATH]
//              [--check PATH] [--dns 127.0.0.1:PORT NAME]
//
// Each case is N times open+read+close (or one DNS query over a connected UDP
// socket), after a warm-up; prints median, p90 and p99 in microseconds and the
// ratio of each median to the tmpfs median, as a markdown table.
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  double median = 0, p90 = 0, p99 = 0;
  long failures = 0;
};

template <typename Fn>
Stats measure(int iterations, Fn&& once) {
  for (int i = 0; i < std::min(iterations / 10, 1000); ++i) once();  // warm-up
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(iterations));
  Stats s;
  for (int i = 0; i < iterations; ++i) {
    const auto t0 = Clock::now();
    const bool ok = once();
    const auto t1 = Clock::now();
    if (!ok) ++s.failures;
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))]; };
  s.median = at(0.5);
  s.p90 = at(0.9);
  s.p99 = at(0.99);
  return s;
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
  std::vector<unsigned char> q = {static_cast<unsigned char>(id >> 8), static_cast<unsigned char>(id),
                                  0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  std::size_t start = 0;
  while (start <= name.size()) {
    auto dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    q.push_back(static_cast<unsigned char>(dot - start));
    q.insert(q.end(), name.begin() + static_cast<long>(start), name.begin() + static_cast<long>(dot));
    start = dot + 1;
  }
  q.insert(q.end(), {0, 0, 1, 0, 1});  // root, type A, class IN
  return q;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 20000;
  std::string tmpfs, one, multi, check, dns_addr, dns_name;
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
  }
  if (tmpfs.empty() || one.empty()) {
    std::fprintf(stderr, "usage: read_bench --iterations N --tmpfs FILE --one PATH [--multi PATH] "
                         "[--check PATH] [--dns 127.0.0.1:PORT NAME]\n");
    return 2;
  }

  struct Row {
    std::string name;
    Stats stats;
  };
  std::vector<Row> rows;
  const Stats base = measure(iterations, [&] { return read_once(tmpfs.c_str()); });
  rows.push_back({"tmpfs file (reference)", base});
  rows.push_back({"/registry/svc, 1 instance, fresh verdict", measure(iterations, [&] { return read_once(one.c_str()); })});
  if (!multi.empty()) {
    rows.push_back({"/registry/svc, 5 instances, rotating", measure(iterations, [&] { return read_once(multi.c_str()); })});
  }
  if (!check.empty()) {
    rows.push_back({"/registry/svc, on-demand check (--fresh 0)",
                    measure(std::min(iterations, 5000), [&] { return read_once(check.c_str()); })});
  }
  if (!dns_addr.empty()) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    const auto colon = dns_addr.rfind(':');
    ::inet_pton(AF_INET, dns_addr.substr(0, colon).c_str(), &addr.sin_addr);
    addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(dns_addr.substr(colon + 1))));
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    std::uint16_t id = 1;
    rows.push_back({"DNS A query to local dnsmasq (reference)", measure(iterations, [&] {
                      const auto q = dns_query(dns_name, ++id);
                      unsigned char reply[512];
                      if (::send(fd, q.data(), q.size(), 0) < 0) return false;
                      const ssize_t n = ::recv(fd, reply, sizeof reply, 0);
                      return n > 12 && reply[0] == q[0] && reply[1] == q[1] && reply[7] >= 1;
                    })});
    ::close(fd);
  }

  std::printf("| case | median µs | p90 µs | p99 µs | median / tmpfs | failures |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const auto& r : rows) {
    std::printf("| %s | %.1f | %.1f | %.1f | %.2fx | %ld |\n", r.name.c_str(), r.stats.median,
                r.stats.p90, r.stats.p99, r.stats.median / base.median, r.stats.failures);
  }
  return 0;
}
