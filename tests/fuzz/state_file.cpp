// The state directory's files as a restart reads them
// (daemon/app/state_store.hpp): a service file, DIR/services/web, and the
// generation file, DIR/generation, written with the input's bytes into a
// scratch directory (under /dev/shm when there is one: a tmpfs, where the
// store's fsyncs cost nothing; removed at exit), then the real StateStore
// opens and loads it.
//
// Input: the service file's content, then optionally a NUL and the
// generation file's content.
// Properties: `web` loads exactly when its whole lines parse as a
// registration with at least one instance, and as those instances; a bad
// file never loses the other service (`api`, always valid); the next
// generation is at least the floor and, once recorded, the start after it
// gets a higher one (or, after the largest there is, an io error, never a
// wrap to 0).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <limits>
#include <string>

#include "app/state_store.hpp"
#include "fuzz.hpp"

using namespace regfs;

namespace {

const std::string& scratch() {
  static const std::string dir = [] {
    spdlog::set_level(spdlog::level::off);  // a warning per bad file
    const std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
    return base + "/regfs-fuzz-state-" + std::to_string(::getpid());
  }();
  static const bool cleanup = [] { return std::atexit([] { std::filesystem::remove_all(dir); }) == 0; }();
  (void)cleanup;
  return dir;
}

void put(const std::string& path, std::string_view content) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in = fuzz::text(data, size);
  const auto nul = in.find('\0');
  const std::string_view service = in.substr(0, nul);
  const bool has_generation = nul != std::string_view::npos;

  const std::string& dir = scratch();
  auto store = StateStore::open(dir);
  FUZZ_CHECK(store.ok());
  put(dir + "/services/web", service);
  put(dir + "/services/api", "10.0.0.9:80\n");
  if (has_generation) {
    put(dir + "/generation", in.substr(nul + 1));
  } else {
    std::filesystem::remove(dir + "/generation");
  }

  auto loaded = store->load();
  FUZZ_CHECK(loaded.ok());
  FUZZ_CHECK(loaded->count("api") == 1);
  // The store writes whole lines: of a file that ends inside a line (cut
  // short outside the store) the whole lines are restored.
  std::string_view kept = service;
  if (!kept.ends_with('\n')) {
    const auto last = kept.rfind('\n');
    kept = last == std::string_view::npos ? std::string_view{} : kept.substr(0, last + 1);
  }
  const auto expected = parse_registration(kept, Limits{});
  const bool web = expected.ok() && !expected->empty();
  FUZZ_CHECK(loaded->count("web") == (web ? 1u : 0u));
  if (web) FUZZ_CHECK(loaded->at("web") == *expected);

  constexpr std::uint64_t kFloor = 1000;
  auto first = store->next_generation(kFloor);
  if (!first.ok()) {  // the file held the largest generation there is
    FUZZ_CHECK(first.error().code == Errc::io &&
               first.error().detail.find("last generation") != std::string::npos);
    return 0;
  }
  FUZZ_CHECK(*first >= kFloor);
  auto second = StateStore::open(dir)->next_generation();
  if (*first == std::numeric_limits<std::uint64_t>::max()) {
    FUZZ_CHECK(!second.ok() && second.error().code == Errc::io);
  } else {
    FUZZ_CHECK(second.ok() && *second > *first);
  }
  return 0;
}
