// One reader of the cluster benchmark (bench/cluster_bench.py), as a plain
// client on a node would read: for each path on stdin, open, read, close,
// then print the CLOCK_MONOTONIC time (seconds, as Python's time.monotonic())
// at which the read returned, or "-" when it failed. A compiled reader keeps
// the measurement's own cost per node to two syscalls' worth of CPU, where a
// Python reader spends more than the daemon it measures.
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <string>
#include <unistd.h>

int main() {
  char line[4096];
  while (std::fgets(line, sizeof line, stdin) != nullptr) {
    std::string path(line);
    if (!path.empty() && path.back() == '\n') path.pop_back();
    char buf[4096];
    const int fd = ::open(path.c_str(), O_RDONLY);
    const bool ok = fd >= 0 && ::read(fd, buf, sizeof buf) > 0;
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    if (fd >= 0) ::close(fd);
    if (ok) {
      std::printf("%lld.%09ld\n", static_cast<long long>(ts.tv_sec), ts.tv_nsec);
    } else {
      std::printf("-\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
