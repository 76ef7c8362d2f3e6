// What a writer writes to /registry/<service> (daemon/core/instance.hpp):
// a registration, or a removal when it starts with '-'.
//
// Properties: what is accepted stays within the limits (instances per
// service, no duplicate endpoints, hosts that may travel, http paths that
// start with '/'); writing the accepted specs back (to_line) and parsing
// that gives the same specs; what tighter limits accept, the defaults accept
// as the same specs.
#include <string>

#include "core/host_port.hpp"
#include "core/instance.hpp"
#include "fuzz.hpp"

using namespace regfs;

namespace {

void check_specs(const std::vector<InstanceSpec>& specs, const Limits& limits) {
  FUZZ_CHECK(specs.size() <= limits.max_instances_per_service);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const InstanceSpec& s = specs[i];
    FUZZ_CHECK(s.endpoint.port != 0);
    FUZZ_CHECK(s.endpoint.host.empty() || valid_host(s.endpoint.host));
    FUZZ_CHECK(s.endpoint.host.size() <= kMaxHostName);
    if (s.check.kind == Check::Kind::http) {
      FUZZ_CHECK(!s.check.path.empty() && s.check.path.front() == '/');
      FUZZ_CHECK(s.check.path.size() <= kMaxCheckPath);
    } else {
      FUZZ_CHECK(s.check.path.empty());
    }
    for (std::size_t j = i + 1; j < specs.size(); ++j) FUZZ_CHECK(specs[j].endpoint != s.endpoint);
  }
}

// to_line, then parse: the same specs.
void check_round_trip(const std::vector<InstanceSpec>& specs, const Limits& limits) {
  std::string text;
  for (const auto& s : specs) {
    const std::string line = to_line(s);
    auto one = parse_line(line, limits);
    FUZZ_CHECK(one.ok());
    FUZZ_CHECK(*one == s);
    text += line + "\n";
  }
  auto again = parse_registration(text, limits);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == specs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::text(data, size);
  const Limits limits;
  Limits tight;
  tight.max_line = 48;
  tight.max_instances_per_service = 3;

  if (is_removal(text)) {
    auto removal = parse_removal(text, limits);
    if (removal) {
      check_specs(*removal, limits);
      for (const auto& s : *removal) FUZZ_CHECK(s.check == Check{});
    }
    return 0;
  }
  auto specs = parse_registration(text, limits);
  if (specs) {
    check_specs(*specs, limits);
    check_round_trip(*specs, limits);
  }
  if (auto small = parse_registration(text, tight)) {
    check_specs(*small, tight);
    FUZZ_CHECK(specs.ok() && *specs == *small);
  }
  // The pieces alone: an endpoint and an address written back parse the same.
  if (auto e = parse_endpoint(text)) FUZZ_CHECK(*parse_endpoint(to_string(*e)) == *e);
  // HostPort checks the shape only; the round trip holds for the hosts its
  // callers accept (valid_host; the transport's IP addresses are a subset).
  if (auto hp = HostPort::parse(text); hp && (hp->host.empty() || valid_host(hp->host))) {
    auto again = HostPort::parse(hp->to_string());
    FUZZ_CHECK(again.ok() && *again == *hp);
  }
  if (auto c = parse_check(text)) FUZZ_CHECK(*parse_check(to_string(*c)) == *c);
  return 0;
}
