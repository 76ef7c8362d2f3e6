// regfs template: the Mustache template over the registry (pure: no files,
// no clock; the caller reads the mount and hands the answers in).
//
// A template names services as `service:NAME` (a section over the healthy
// instances of NAME, an empty list when there are none) or `service:NAME!`
// (the same, and the template is not rendered while NAME has no healthy
// instance). Inside such a section each instance offers endpoint, host, port,
// owner, check, service, index (0-based), first and last. Any other name is
// an error, so a misspelt field fails loudly instead of rendering empty.
// Nothing is HTML-escaped: `{{x}}` and `{{{x}}}` print the same text, since
// what is rendered is a configuration file. docs/INTERFACES.md has the whole
// language.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/time.hpp"

namespace regfs::cli {

// One healthy instance as the template sees it.
struct TemplateInstance {
  std::string endpoint;  // "10.0.3.17:8080", "[::1]:8080"
  std::string host;      // "10.0.3.17", "::1" (no brackets)
  std::uint16_t port = 0;
  std::string owner;  // the node that registered it ("" when not known)
  std::string check;  // "tcp", "http:/health", "none" ("" when not known)
};

// What the mount answered for one service.
struct ServiceData {
  bool registered = false;                // false: the name does not exist (ENOENT)
  std::vector<TemplateInstance> healthy;  // sorted by endpoint
};

class Template {
 public:
  // Parses `text`; an error names what is wrong (an unclosed section, a bad
  // service name after `service:`, a partial) and where when it can.
  static Result<Template> parse(std::string_view text);

  // Every service the template names, and those it marks required.
  const std::set<std::string>& services() const { return services_; }
  const std::set<std::string>& required() const { return required_; }

  // Renders over `data` (a service absent from it counts as not registered).
  // Errors: Errc::not_found / Errc::host_down when a required service is not
  // registered / has no healthy instance; Errc::invalid_line for a name the
  // template language does not have.
  Result<std::string> render(const std::map<std::string, ServiceData>& data) const;

 private:
  // render() without the required services' check.
  Result<std::string> render_any(const std::map<std::string, ServiceData>& data) const;

  std::string text_;
  std::set<std::string> services_;
  std::set<std::string> required_;
};

// "10.0.3.17:8080" / "[::1]:8080" into an instance (owner and check empty);
// an error for anything else.
Result<TemplateInstance> instance_from_endpoint(std::string_view endpoint);

// Owner and check of each instance in a `.status.json` document, by service
// and endpoint. A document that does not parse gives an empty index.
struct InstanceInfo {
  std::string owner;
  std::string check;
};
using StatusIndex = std::map<std::string, std::map<std::string, InstanceInfo>>;
StatusIndex index_status(std::string_view status_json);

// The healthy instances in an `.all/<service>` answer (one endpoint a line),
// sorted by endpoint, with owner and check from `status`. Lines that are not
// endpoints are skipped.
std::vector<TemplateInstance> parse_all_answer(std::string_view all, const StatusIndex& status,
                                               const std::string& service);

// One IN:OUT[:COMMAND] argument of `regfs template`. IN and OUT cannot
// contain ':'; COMMAND is the rest (run with /bin/sh -c).
struct TemplateSpec {
  std::string in;
  std::string out;
  std::string command;
};
Result<TemplateSpec> parse_template_spec(std::string_view arg);

// --wait MIN[:MAX] ("200ms", "200ms:2s"; MAX defaults to 4 x MIN, as
// consul-template's does). MAX below MIN is an error.
struct WaitSpec {
  Duration min{0};
  Duration max{0};
};
Result<WaitSpec> parse_wait(std::string_view arg);

}  // namespace regfs::cli
