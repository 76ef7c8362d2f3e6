// A request on mirror mode's control socket (daemon/app/control.hpp),
// handled by the real ControlSocket::handle against a backend that records
// what it is asked and answers as the registrar does for the lines.
//
// Input: the request's bytes; the caller is root when the input's length is
// even, another user otherwise.
// Properties: the answer is one line, "OK" or "ERR ERRNO MESSAGE"; the
// backend is asked to write or remove only for a caller that may write, a
// valid service name and (for a write) append or replace with a body within
// Limits::max_write; OK only when the backend said yes.
#include <string>

#include "app/control.hpp"
#include "fuzz.hpp"

using namespace regfs;

namespace {

class Recorder : public fs::Backend {
 public:
  Abandon answer(fs::FileKind, const std::string&, const std::string&, AnswerFn done) override {
    done(Error{Errc::not_found, "no reads here"});
    return {};
  }
  std::size_t instance_count(std::string_view) const override { return 0; }
  std::vector<std::string> list() const override { return {}; }
  bool may_write(const fs::Caller& who) const override { return who.uid == 0; }
  Status write(const std::string& service, std::string_view text, bool append) override {
    ++calls;
    last_service = service;
    last_body = std::string(text);
    last_append = append;
    auto specs =
        is_removal(text) ? parse_removal(text, Limits{}) : parse_registration(text, Limits{});
    if (!specs) return specs.error();
    if (specs->empty()) return Error{Errc::invalid_line, "no endpoint in the write"};
    return ok_status();
  }
  Status remove(const std::string& service) override {
    ++calls;
    last_service = service;
    return service.size() % 2 == 0 ? ok_status() : Status(Error{Errc::not_found, service});
  }

  int calls = 0;
  std::string last_service, last_body;
  bool last_append = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view request = fuzz::text(data, size);
  fs::Caller who;
  who.uid = size % 2 == 0 ? 0 : 1000;
  Recorder backend;
  const std::string answer = ControlSocket::handle(request, who, backend);

  FUZZ_CHECK(!answer.empty() && answer.back() == '\n');
  FUZZ_CHECK(answer.find('\n') == answer.size() - 1);
  FUZZ_CHECK(answer == "OK\n" || answer.starts_with("ERR "));
  FUZZ_CHECK(backend.calls <= 1);
  if (answer == "OK\n") FUZZ_CHECK(backend.calls == 1);
  if (backend.calls == 1) {
    FUZZ_CHECK(who.uid == 0);
    FUZZ_CHECK(valid_service_name(backend.last_service));
    FUZZ_CHECK(request.starts_with("WRITE " + backend.last_service) ||
               request.starts_with("REMOVE " + backend.last_service));
    FUZZ_CHECK(backend.last_body.size() <= Limits{}.max_write);
  }
  return 0;
}
