// A join file read from a shared directory (`--join file:DIR`): the first
// line is a peer's gossip address, read as daemon/gossip/peer_finder.cpp's
// file_sources() reads it (std::getline, then transport::parse_addr).
//
// Properties: an accepted address is an IP address and a port, and written
// back (format_addr) it parses to the same address and port.
#include <sstream>
#include <string>

#include "fuzz.hpp"
#include "transport/transport.hpp"

using namespace regfs;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(fuzz::text(data, size)));
  std::string addr;
  std::getline(in, addr);
  const auto parsed = transport::parse_addr(addr);
  if (!parsed) return 0;
  FUZZ_CHECK(addr.find('\n') == std::string::npos);
  const std::string again = transport::format_addr(parsed->first, parsed->second);
  const auto round = transport::parse_addr(again);
  FUZZ_CHECK(round.has_value());
  FUZZ_CHECK(round->first == parsed->first && round->second == parsed->second);
  return 0;
}
