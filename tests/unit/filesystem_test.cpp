// The FUSE adapter with a scripted kernel: every request must get exactly one
// reply, whatever the backend does (answers, throws, answers and throws).
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "fs/filesystem.hpp"

using namespace regfs;
using namespace regfs::fs;

namespace {

// What the adapter replied to each request: an errno (0 for a success reply).
std::map<fuse_req_t, std::vector<int>> g_replies;  // guarded by g_mu
fuse_ctx g_ctx{};
fuse_ino_t g_created = 0;  // the inode of the last create

// The kernel's lock on /: a lookup there holds it (shared) until its reply,
// and an invalidation of an entry there takes it (exclusively), so it waits
// for every such lookup to be answered.
std::mutex g_mu;
std::condition_variable g_cv;
std::set<fuse_req_t> g_holding_root;  // guarded by g_mu
int g_invalidations = 0;              // guarded by g_mu; sent

int record(fuse_req_t req, int err) {
  {
    std::lock_guard lock(g_mu);
    g_replies[req].push_back(err);
    g_holding_root.erase(req);
  }
  g_cv.notify_all();
  return 0;
}

void lookup_in_root(Filesystem& fs, fuse_req_t req, const char* name) {
  {
    std::lock_guard lock(g_mu);
    g_holding_root.insert(req);
  }
  fs.lookup(req, kRootIno, name);
}

}  // namespace

// libfuse's side, as the adapter sees it.
int fuse_reply_err(fuse_req_t req, int err) { return record(req, err); }
void fuse_reply_none(fuse_req_t req) { record(req, 0); }
int fuse_reply_entry(fuse_req_t req, const fuse_entry_param*) { return record(req, 0); }
int fuse_reply_create(fuse_req_t req, const fuse_entry_param* e, const fuse_file_info*) {
  g_created = e->ino;
  return record(req, 0);
}
int fuse_reply_attr(fuse_req_t req, const struct stat*, double) { return record(req, 0); }
int fuse_reply_readlink(fuse_req_t req, const char*) { return record(req, 0); }
int fuse_reply_write(fuse_req_t req, size_t) { return record(req, 0); }
int fuse_reply_buf(fuse_req_t req, const char*, size_t) { return record(req, 0); }
size_t fuse_add_direntry(fuse_req_t, char*, size_t, const char*, const struct stat*, off_t) { return 0; }
const fuse_ctx* fuse_req_ctx(fuse_req_t) { return &g_ctx; }
int fuse_req_getgroups(fuse_req_t, int, gid_t[]) { return 0; }
void fuse_req_interrupt_func(fuse_req_t, fuse_interrupt_func_t, void*) {}
int fuse_req_interrupted(fuse_req_t) { return 0; }
int fuse_reply_poll(fuse_req_t req, unsigned) { return record(req, 0); }
int fuse_lowlevel_notify_poll(fuse_pollhandle*) { return 0; }
void fuse_pollhandle_destroy(fuse_pollhandle*) {}
int fuse_lowlevel_notify_inval_entry(fuse_session*, fuse_ino_t, const char*, size_t) {
  std::unique_lock lock(g_mu);
  // Bounded, so that a wrong order fails the test instead of hanging it.
  if (!g_cv.wait_for(lock, std::chrono::seconds(5), [] { return g_holding_root.empty(); })) {
    return -ETIMEDOUT;
  }
  ++g_invalidations;
  return 0;
}

namespace {

// A backend that registers what it is told and answers dot-files as scripted.
class ScriptedBackend final : public Backend {
 public:
  enum class Mode { answer, throw_before, throw_after, hold };
  Mode mode = Mode::answer;
  Duration cache_for = Duration::zero();  // of the answers given
  std::vector<AnswerFn> held;  // Mode::hold: answered by the test
  int abandoned = 0;

  Abandon answer(FileKind, const std::string&, const std::string&, AnswerFn done) override {
    switch (mode) {
      case Mode::answer: done(Answer{"{}\n", cache_for, false}); return {};
      case Mode::throw_before: throw std::runtime_error("invalid UTF-8 byte");
      case Mode::throw_after:
        done(Answer{"{}\n", Duration::zero(), false});
        throw std::runtime_error("after the answer");
      case Mode::hold: held.push_back(std::move(done)); return [this] { ++abandoned; };
    }
    return {};
  }
  std::size_t instance_count(std::string_view) const override { return 0; }
  std::vector<std::string> list() const override { return {}; }
  bool may_write(const Caller&) const override { return true; }
  Status write(const std::string&, std::string_view, bool) override { return ok_status(); }
  Status remove(const std::string&) override { return ok_status(); }
};

fuse_req_t request(int n) {
  static char storage[64];
  return reinterpret_cast<fuse_req_t>(&storage[n]);
}

std::vector<int> replies(fuse_req_t req) {
  std::lock_guard lock(g_mu);
  return g_replies[req];
}

}  // namespace

TEST_CASE("a backend that throws leaves no request parked or unanswered") {
  g_replies.clear();
  ScriptedBackend backend;
  Filesystem fs(backend, MountOptions{});

  backend.mode = ScriptedBackend::Mode::throw_before;
  fs.lookup(request(1), kRootIno, ".status.json");
  CHECK(replies(request(1)) == std::vector<int>{EIO});
  CHECK(fs.parked() == 0);

  // The next lookup of the same name is decided, not queued behind the first.
  backend.mode = ScriptedBackend::Mode::answer;
  fs.lookup(request(2), kRootIno, ".status.json");
  CHECK(replies(request(2)) == std::vector<int>{0});

  // Thrown after answering: the one reply stands, no second one.
  backend.mode = ScriptedBackend::Mode::throw_after;
  fs.lookup(request(3), kRootIno, ".status.json");
  CHECK(replies(request(3)) == std::vector<int>{0});
  CHECK(fs.parked() == 0);

  // Writes still go through.
  fuse_file_info fi{};
  fs.create(request(4), kRootIno, "web", &fi);
  REQUIRE(replies(request(4)) == std::vector<int>{0});
  backend.mode = ScriptedBackend::Mode::throw_before;
  fs.lookup(request(5), kRootIno, ".metrics");
  CHECK(replies(request(5)) == std::vector<int>{EIO});
  fs.write(request(6), g_created, "1.2.3.4:80\n", 11, 0, 0);
  CHECK(replies(request(6)) == std::vector<int>{0});

  // Nothing is left for shutdown to fail.
  fs.fail_pending();
  for (const auto& [req, got] : g_replies) CHECK(got.size() == 1);
}

TEST_CASE("readers that share a decision each get one reply; interrupted ones end the work") {
  g_replies.clear();
  ScriptedBackend backend;
  backend.mode = ScriptedBackend::Mode::hold;
  Filesystem fs(backend, MountOptions{});

  fs.lookup(request(1), kRootIno, ".status.json");
  fs.lookup(request(2), kRootIno, ".status.json");
  CHECK(backend.held.size() == 1);  // shared
  CHECK(fs.parked() == 2);
  backend.held.front()(Answer{"{}\n", Duration::zero(), false});
  CHECK(replies(request(1)) == std::vector<int>{0});
  CHECK(replies(request(2)) == std::vector<int>{0});
  CHECK(fs.parked() == 0);

  // Both readers of a second decision interrupted: the backend is told to stop.
  fs.lookup(request(3), kWaitIno, "never");
  fs.lookup(request(4), kWaitIno, "never");
  fs.interrupted(request(3));
  CHECK(backend.abandoned == 0);  // one still waits
  fs.interrupted(request(4));
  CHECK(backend.abandoned == 1);
  CHECK(replies(request(3)) == std::vector<int>{EINTR});
  CHECK(replies(request(4)) == std::vector<int>{EINTR});
  CHECK(fs.parked() == 0);
  // A late answer to the abandoned decision reaches nobody.
  backend.held.back()(Error{Errc::timed_out, "never"});
  CHECK(replies(request(4)) == std::vector<int>{EINTR});

  // Shutdown fails what is parked, once.
  fs.lookup(request(5), kWaitIno, "later");
  fs.fail_pending();
  CHECK(replies(request(5)) == std::vector<int>{EIO});
  CHECK(fs.parked() == 0);
}

TEST_CASE("shutdown answers parked lookups before it waits for the invalidations they block") {
  g_replies.clear();
  ScriptedBackend backend;
  Filesystem fs(backend, MountOptions{});
  Notifier notifier(nullptr);  // the scripted kernel needs no session
  fs.set_notifier(&notifier);

  // `other` is answered with an entry the kernel may keep: a change drops it.
  backend.cache_for = std::chrono::seconds(1);
  lookup_in_root(fs, request(1), "other");
  REQUIRE(replies(request(1)) == std::vector<int>{0});
  // A reader parked on `slow` (a check that does not answer) holds the lock
  // of / in the kernel, so the invalidation `other`'s change queues waits.
  backend.mode = ScriptedBackend::Mode::hold;
  lookup_in_root(fs, request(2), "slow");
  REQUIRE(fs.parked() == 1);
  fs.service_changed("other");

  CHECK(fs.shut_down(std::chrono::seconds(2)));
  CHECK(replies(request(2)) == std::vector<int>{EIO});
  {
    std::lock_guard lock(g_mu);
    CHECK(g_invalidations == 1);
  }
  fs.set_notifier(nullptr);
}

TEST_CASE("Readers: the last endpoint per process and service, the least recently used dropped") {
  Readers readers;
  CHECK(readers.last(7, "web").empty());
  readers.handed(7, "web", "10.0.0.1:80");
  readers.handed(7, "web", "10.0.0.2:80");
  readers.handed(8, "web", "10.0.0.3:80");
  CHECK(readers.last(7, "web") == "10.0.0.2:80");
  CHECK(readers.last(8, "web") == "10.0.0.3:80");
  CHECK(readers.last(7, "api").empty());
  // Full: each new pair drops the pair handed out longest ago.
  for (pid_t p = 100; readers.remembered() < Readers::kHandouts; ++p) readers.handed(p, "web", "x:1");
  readers.handed(7, "web", "10.0.0.4:80");  // 7 is the most recent now; 8 the oldest
  readers.handed(99, "web", "10.0.0.5:80");
  CHECK(readers.remembered() == Readers::kHandouts);
  CHECK(readers.last(8, "web").empty());
  CHECK(readers.last(7, "web") == "10.0.0.4:80");
  CHECK(readers.last(99, "web") == "10.0.0.5:80");
}

TEST_CASE("Readers: a thread counts as its process; pid 0 (not visible) stays 0") {
  Readers readers;
  const auto now = Readers::Clock::now();
  CHECK(readers.process_of(0, now) == 0);
  CHECK(readers.process_of(::getpid(), now) == ::getpid());
  pid_t thread = 0;
  std::mutex mu;
  std::condition_variable cv;
  bool looked = false;
  std::thread t([&] {
    {
      std::lock_guard lock(mu);
      thread = static_cast<pid_t>(::gettid());
    }
    cv.notify_all();
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return looked; });  // alive while it is looked up
  });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return thread != 0; });
  }
  CHECK(thread != ::getpid());
  CHECK(readers.process_of(thread, now) == ::getpid());
  {
    std::lock_guard lock(mu);
    looked = true;
  }
  cv.notify_all();
  t.join();
  // Looked up once, then from the cache (the thread is gone).
  CHECK(readers.process_of(thread, now) == ::getpid());
}
