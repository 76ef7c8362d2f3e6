#include "control.hpp"

#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fs/errno_map.hpp"

namespace regfs {

namespace asio = boost::asio;
using asio::local::stream_protocol;

namespace {

constexpr std::size_t kMaxRequest = 64 * 1024 + 256;

std::string err(int e, const std::string& message) {
  return "ERR " + std::to_string(e) + " " + message + "\n";
}

// The caller's supplementary groups, from /proc (SO_PEERCRED has only uid and gid).
std::vector<gid_t> supplementary_groups(pid_t pid) {
  std::vector<gid_t> groups;
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (f == nullptr) return groups;
  char line[4096];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "Groups:", 7) != 0) continue;
    char* p = line + 7;
    while (true) {
      char* end = nullptr;
      const unsigned long g = std::strtoul(p, &end, 10);
      if (end == p) break;
      groups.push_back(static_cast<gid_t>(g));
      p = end;
    }
  }
  std::fclose(f);
  return groups;
}

struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(asio::io_context& io) : socket(io) {}
  stream_protocol::socket socket;
  std::array<char, 4096> chunk{};
  std::string request;
  std::string answer;
};

}  // namespace

std::string ControlSocket::handle(std::string_view request, const fs::Caller& who,
                                  fs::Backend& backend) {
  const auto nl = request.find('\n');
  const std::string_view head = request.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? std::string_view{} : request.substr(nl + 1);
  const auto sp1 = head.find(' ');
  const std::string_view verb = head.substr(0, sp1);
  std::string_view rest = sp1 == std::string_view::npos ? std::string_view{} : head.substr(sp1 + 1);
  const auto sp2 = rest.find(' ');
  const std::string service(rest.substr(0, sp2));
  const std::string_view mode = sp2 == std::string_view::npos ? std::string_view{} : rest.substr(sp2 + 1);

  if (verb != "WRITE" && verb != "REMOVE") return err(EINVAL, "unknown request");
  if (!valid_service_name(service)) return err(EINVAL, "invalid service name");
  if (!backend.may_write(who)) return err(EACCES, "not root and not in the writers' group");
  Status st = ok_status();
  if (verb == "REMOVE") {
    st = backend.remove(service);
  } else {
    if (mode != "append" && mode != "replace") return err(EINVAL, "WRITE needs append or replace");
    if (body.size() > Limits{}.max_write) return err(EFBIG, "registration too large");
    st = backend.write(service, body, mode == "append");
  }
  if (!st.ok()) return err(fs::to_errno(st.error().code), st.error().detail);
  return "OK\n";
}

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(asio::io_context& io,
                                                           const std::string& path,
                                                           fs::Backend& backend) {
  ::unlink(path.c_str());  // a socket left by an earlier run
  auto c = std::unique_ptr<ControlSocket>(new ControlSocket(io, path, backend));
  boost::system::error_code ec;
  c->acceptor_.open(stream_protocol(), ec);
  if (!ec) c->acceptor_.bind(stream_protocol::endpoint(path), ec);
  if (!ec) c->acceptor_.listen(64, ec);
  if (ec) return Error{Errc::io, "control socket " + path + ": " + ec.message()};
  ::chmod(path.c_str(), 0666);  // anyone may ask; credentials decide
  c->accept();
  return c;
}

ControlSocket::ControlSocket(asio::io_context& io, std::string path, fs::Backend& backend)
    : io_(io), acceptor_(io), path_(std::move(path)), backend_(backend) {}

ControlSocket::~ControlSocket() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  ::unlink(path_.c_str());
}

void ControlSocket::accept() {
  auto conn = std::make_shared<Conn>(io_);
  acceptor_.async_accept(conn->socket, [this, conn](const boost::system::error_code& ec) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      auto read_more = std::make_shared<std::function<void()>>();
      *read_more = [this, conn, read_more] {
        conn->socket.async_read_some(asio::buffer(conn->chunk), [this, conn, read_more](
                                                                    const boost::system::error_code& rec,
                                                                    std::size_t n) {
          conn->request.append(conn->chunk.data(), n);
          if (conn->request.size() > kMaxRequest) {
            conn->answer = err(EFBIG, "request too large");
          } else if (rec == asio::error::eof) {
            ucred cred{};
            socklen_t len = sizeof cred;
            ::getsockopt(conn->socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len);
            fs::Caller who{cred.uid, cred.gid, supplementary_groups(cred.pid)};
            conn->answer = handle(conn->request, who, backend_);
          } else if (!rec) {
            return (*read_more)();
          } else {
            return;
          }
          *read_more = nullptr;  // break the cycle
          asio::async_write(conn->socket, asio::buffer(conn->answer),
                            [conn](const boost::system::error_code&, std::size_t) {});
        });
      };
      (*read_more)();
    }
    accept();
  });
}

}  // namespace regfs
