// What the etcd store reads from etcd's JSON gateway (daemon/etcd/codec.hpp):
// a watch stream cut into chunks anywhere, each line a watch message, and the
// same bytes as a range, lease, write or authenticate reply (all of them, or
// one, as the first byte picks), applied to a KeySpace.
//
// Properties: lines never exceed the splitter's bound and rejoin to the
// input's non-blank lines; base64 that decodes is canonical (encodes back to
// the same text); a token accepted from an authenticate reply can go into an
// HTTP header as it is (1-4096 bytes of printable ASCII, no space); every
// entry the KeySpace holds is exactly what instance_key/instance_value write
// for it.
#include <string>
#include <vector>

#include "etcd/codec.hpp"
#include "fuzz.hpp"

using namespace regfs;
using namespace regfs::etcd;

// Which replies each line is read as: all of them, or one, so that most runs
// pay for one JSON parse per line instead of five (under ASan the parser's
// allocations are most of a run's time).
enum Reader : unsigned { all, watch, range, lease, revision, auth, kReaders };

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size and the reader.
  const std::size_t chunk = data[0] % 17 + 1;
  const unsigned reader = data[0] / 17 % kReaders;
  const auto reads = [reader](Reader r) { return reader == all || reader == r; };
  const std::string_view in = fuzz::text(data + 1, size - 1);

  constexpr std::size_t kBound = 4096;
  LineSplitter split(kBound);
  std::vector<std::string> lines;
  bool ok = true;
  for (std::size_t i = 0; i < in.size() && ok; i += chunk) ok = split.feed(in.substr(i, chunk), lines);

  KeySpace keys("/regfs/");
  for (const auto& line : lines) {
    FUZZ_CHECK(line.size() <= kBound);
    FUZZ_CHECK(line.find('\n') == std::string::npos);
    if (reads(watch)) {
      if (auto m = parse_watch(line); m.ok()) keys.apply(m->events);
    }
    if (reads(range)) {
      if (auto r = parse_range(line); r.ok()) keys.reset(r->kvs);
    }
    if (reads(lease)) (void)parse_lease(line);
    if (reads(revision)) (void)parse_header_revision(line);
    if (reads(auth)) {
      if (auto token = parse_auth(line); token.ok()) {
        FUZZ_CHECK(!token->empty() && token->size() <= 4096);
        for (const char c : *token) FUZZ_CHECK(c > 0x20 && c < 0x7f);
      }
    }
    if (auto decoded = base64_decode(line)) FUZZ_CHECK(base64_encode(*decoded) == line);
  }
  if (ok) {
    // Joined again, the lines are the input's non-blank lines (a '\r' before
    // each '\n' dropped) up to the last newline.
    std::string expected;
    std::size_t start = 0;
    for (std::size_t nl = in.find('\n'); nl != std::string_view::npos; nl = in.find('\n', start)) {
      std::string_view l = in.substr(start, nl - start);
      if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
      if (!l.empty()) expected.append(l).append("\n");
      start = nl + 1;
    }
    std::string joined;
    for (const auto& l : lines) joined.append(l).append("\n");
    FUZZ_CHECK(joined == expected);
  }
  for (const auto& owner : keys.owners()) {
    for (const auto& service : keys.services_of(owner)) {
      for (const auto& spec : keys.instances(service, owner)) {
        const std::string key = instance_key("/regfs/", service, owner, spec.endpoint);
        const auto back = parse_entry("/regfs/", key, instance_value(owner, spec));
        FUZZ_CHECK(back.has_value() && back->spec == spec && back->owner == owner);
      }
    }
  }
  return 0;
}
