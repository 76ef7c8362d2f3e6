#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <cerrno>
#include <unistd.h>

#include "state_store.hpp"

using namespace regfs;
namespace fs = std::filesystem;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/regfs-state-test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};
InstanceSpec spec(const std::string& line) { return *parse_line(line, Limits{}); }
}  // namespace

TEST_CASE("save, load, remove round trip") {
  TempDir t;
  auto store = StateStore::open(t.path.string());
  REQUIRE(store.ok());
  REQUIRE(store->save("web", {spec("10.0.0.1:80"), spec(":8080 check=http:/health")}).ok());
  REQUIRE(store->save("db", {spec("[::1]:5432 check=none")}).ok());
  auto loaded = StateStore::open(t.path.string())->load();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 2);
  CHECK(loaded->at("web").size() == 2);
  CHECK(loaded->at("web")[1].check.path == "/health");
  CHECK(loaded->at("db")[0].endpoint.host == "::1");
  REQUIRE(store->save("web", {}).ok());
  CHECK(store->load()->count("web") == 0);
  CHECK(store->save("web", {}).ok());  // removing twice is fine
}

TEST_CASE("leftovers and bad files never stop a start") {
  TempDir t;
  REQUIRE(StateStore::open(t.path.string())->save("good", {spec("10.0.0.1:80")}).ok());
  std::ofstream(t.path / "services" / ".half.tmp") << "10.0.0.9:80\n";
  std::ofstream(t.path / "services" / "corrupt") << "not an endpoint\n";
  std::ofstream(t.path / "services" / "bad name") << "10.0.0.1:80\n";
  auto store = StateStore::open(t.path.string());
  REQUIRE(store.ok());
  CHECK_FALSE(fs::exists(t.path / "services" / ".half.tmp"));
  auto loaded = store->load();
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == 1);
  CHECK(loaded->count("good") == 1);
}

TEST_CASE("a service whose name ends in .tmp survives a restart") {
  TempDir t;
  REQUIRE(StateStore::open(t.path.string())->save("backup.tmp", {spec("10.0.0.1:80")}).ok());
  auto loaded = StateStore::open(t.path.string())->load();
  REQUIRE(loaded.ok());
  CHECK(loaded->count("backup.tmp") == 1);
}

TEST_CASE("generation grows across starts") {
  TempDir t;
  auto a = StateStore::open(t.path.string());
  const auto g1 = a->next_generation();
  const auto g2 = StateStore::open(t.path.string())->next_generation();
  REQUIRE(g1.ok());
  REQUIRE(g2.ok());
  CHECK(*g2 == *g1 + 1);
}

// Found by tests/fuzz/state_file.cpp: the start after 2^64-1 got generation 0.
TEST_CASE("the start after the last generation there is fails instead of wrapping to 0") {
  TempDir t;
  std::ofstream(t.path / "generation") << "18446744073709551614\n";
  auto last = StateStore::open(t.path.string())->next_generation(1000);
  REQUIRE(last.ok());
  CHECK(*last == std::numeric_limits<std::uint64_t>::max());
  auto after = StateStore::open(t.path.string())->next_generation(1000);
  REQUIRE_FALSE(after.ok());
  CHECK(after.error().code == Errc::io);
  CHECK(after.error().detail.find("last generation") != std::string::npos);
}

TEST_CASE("an unusable directory is an io error") {
  TempDir t;
  std::ofstream(t.path / "file") << "x";
  auto store = StateStore::open((t.path / "file" / "state").string());
  REQUIRE_FALSE(store.ok());
  CHECK(store.error().code == Errc::io);
  CHECK(store.error().detail.find("file") != std::string::npos);
}

TEST_CASE("a change whose directory fsync fails leaves the previous state on disk") {
  TempDir t;
  auto store = StateStore::open(t.path.string());
  REQUIRE(store.ok());
  REQUIRE(store->save("web", {spec("10.0.0.1:80")}).ok());
  int failures = 0;
  // Only the first fsync of the directory fails: the one after the rename.
  store->set_fault_hook([&](StateStore::Fault f) {
    return f == StateStore::Fault::dir_fsync && failures++ == 0 ? EIO : 0;
  });
  auto reloaded = [&] { return *StateStore::open(t.path.string())->load(); };

  SECTION("replace") {
    const auto st = store->save("web", {spec("10.0.0.2:80")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::io);
    const auto loaded = reloaded();
    REQUIRE(loaded.count("web") == 1);
    CHECK(loaded.at("web").at(0).endpoint.host == "10.0.0.1");
  }
  SECTION("create") {
    REQUIRE_FALSE(store->save("db", {spec("10.0.0.3:5432")}).ok());
    CHECK(reloaded().count("db") == 0);
  }
  SECTION("remove") {
    REQUIRE_FALSE(store->save("web", {}).ok());
    CHECK(reloaded().count("web") == 1);
  }
  CHECK(failures == 2);  // the failed fsync and the one after putting the previous file back
  // No temp file is left to be read as a service.
  for (const auto& e : fs::directory_iterator(t.path / "services")) {
    CHECK_FALSE(e.path().filename().string().starts_with("."));
  }
}
