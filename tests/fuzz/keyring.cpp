// The keyring file (daemon/transport/keyring.hpp): base64 keys, one a line,
// blanks and '#' comments.
//
// Properties: an accepted keyring holds one key per key line (at least one);
// base64 that decodes re-encodes to the same text (it is canonical); a
// keyring made of the accepted text seals what it then opens.
#include <string>

#include "core/base64.hpp"
#include "fuzz.hpp"
#include "transport/keyring.hpp"

using namespace regfs;
using namespace regfs::transport;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::text(data, size);
  if (auto bytes = base64_decode(text)) {
    FUZZ_CHECK(bytes->size() <= text.size() / 4 * 3);
    FUZZ_CHECK(base64_encode(*bytes) == text);  // canonical: the same text again
  }
  auto ring = Keyring::parse(text);
  if (!ring) {
    FUZZ_CHECK(!ring.error().detail.empty());
    return 0;
  }
  FUZZ_CHECK(ring->size() >= 1);
  FUZZ_CHECK(ring->size() <= size / 44 + 1);  // a key is 44 base64 characters
  const std::uint8_t plain[] = {'R', 'G', 1};
  const auto sealed = ring->seal(SealKind::packet, 7, plain);
  auto opened = ring->open(SealKind::packet, sealed);
  FUZZ_CHECK(opened.ok() && opened->size() == sizeof plain);
  FUZZ_CHECK(!ring->open(SealKind::stream_body, sealed).ok());
  return 0;
}
