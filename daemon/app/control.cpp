#include "control.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/prometheus.hpp"
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

// One request: read until the client shuts its side, answer, close; or
// closed at its deadline. Tells the ControlSocket once, when it closes.
class ControlSocket::Conn : public std::enable_shared_from_this<Conn> {
 public:
  Conn(ControlSocket& owner, stream_protocol::socket socket, ucred cred)
      : owner_(&owner), socket_(std::move(socket)), deadline_(socket_.get_executor()), cred_(cred) {}

  void start() {
    deadline_.expires_after(kIdleTimeout);
    deadline_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted || self->done_) return;
      if (self->owner_ != nullptr) ++self->owner_->timeouts_;
      self->close();
    });
    read();
  }

  // Ends the connection (idempotent); pending handlers then complete with errors.
  void close() {
    if (done_) return;
    done_ = true;
    boost::system::error_code ignored;
    deadline_.cancel();
    socket_.close(ignored);
    if (owner_ != nullptr) owner_->closed(this, cred_.uid);
    owner_ = nullptr;
  }

  void detach() { owner_ = nullptr; }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(chunk_), [self = shared_from_this()](
                                                      const boost::system::error_code& ec, std::size_t n) {
      self->got(ec, n);
    });
  }

  void got(const boost::system::error_code& ec, std::size_t n) {
    if (done_ || owner_ == nullptr) return;
    request_.append(chunk_.data(), n);
    if (request_.size() > kMaxRequest) {
      answer_ = err(EFBIG, "request too large");
    } else if (ec == asio::error::eof) {
      fs::Caller who{cred_.uid, cred_.gid, supplementary_groups(cred_.pid)};
      answer_ = handle(request_, who, owner_->backend_);
    } else if (!ec) {
      return read();
    } else {
      return close();
    }
    asio::async_write(socket_, asio::buffer(answer_),
                      [self = shared_from_this()](const boost::system::error_code&, std::size_t) {
                        self->close();
                      });
  }

  ControlSocket* owner_;
  stream_protocol::socket socket_;
  asio::steady_timer deadline_;
  ucred cred_;
  std::array<char, 4096> chunk_{};
  std::string request_;
  std::string answer_;
  bool done_ = false;
};

Result<std::unique_ptr<ControlSocket>> ControlSocket::open(asio::io_context& io,
                                                           const std::string& path,
                                                           fs::Backend& backend, gid_t writers_gid) {
  ::unlink(path.c_str());  // a socket left by an earlier run (unlink never follows a link)
  auto c = std::unique_ptr<ControlSocket>(new ControlSocket(io, path, backend));
  boost::system::error_code ec;
  c->acceptor_.open(stream_protocol(), ec);
  if (!ec) {
    // Created with its final mode: no instant in which anyone else may connect.
    const mode_t old = ::umask(writers_gid != 0 ? 0117 : 0177);
    c->acceptor_.bind(stream_protocol::endpoint(path), ec);
    ::umask(old);
  }
  if (!ec && writers_gid != 0 && ::lchown(path.c_str(), static_cast<uid_t>(-1), writers_gid) != 0) {
    ec = boost::system::error_code(errno, boost::system::system_category());
  }
  if (!ec) c->acceptor_.listen(64, ec);
  if (ec) return Error{Errc::io, "control socket " + path + ": " + ec.message()};
  c->accept();
  return c;
}

ControlSocket::ControlSocket(asio::io_context& io, std::string path, fs::Backend& backend)
    : io_(io), acceptor_(io), pause_(io), path_(std::move(path)), backend_(backend) {}

ControlSocket::~ControlSocket() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  pause_.cancel();
  for (auto& [raw, weak] : conns_) {
    if (auto conn = weak.lock()) conn->detach();
  }
  for (auto& [raw, weak] : conns_) {
    if (auto conn = weak.lock()) conn->close();
  }
  ::unlink(path_.c_str());
}

std::string ControlSocket::metrics_text() const {
  PrometheusText out;
  out.gauge("regfs_control_connections", "Open connections to the control socket.", conns_.size());
  out.counter("regfs_control_refused_total",
              "Control connections closed at once: over the per-user or total bound.", refused_);
  out.counter("regfs_control_timeouts_total",
              "Control connections closed for want of a request in time.", timeouts_);
  out.counter("regfs_control_accept_errors_total",
              "Failed accepts on the control socket (each followed by a pause).", accept_errors_);
  return out.take();
}

void ControlSocket::accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, stream_protocol::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      // EMFILE, ENFILE, ENOBUFS...: the pending connection stays queued, so
      // accepting again at once would spin. Pause, longer each time.
      ++accept_errors_;
      backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
      pause_.expires_after(backoff_);
      pause_.async_wait([this](const boost::system::error_code& pec) {
        if (!pec) accept();
      });
      return;
    }
    backoff_ = std::chrono::milliseconds(0);
    accepted(std::move(socket));
    accept();
  });
}

void ControlSocket::accepted(stream_protocol::socket socket) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return;
  if (conns_.size() >= kMaxConnections || per_user_[cred.uid] >= kMaxPerUser) {
    ++refused_;
    const std::string answer = err(EAGAIN, "too many connections to the control socket");
    (void)::send(socket.native_handle(), answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (per_user_[cred.uid] == 0) per_user_.erase(cred.uid);
    return;  // the socket closes here
  }
  auto conn = std::make_shared<Conn>(*this, std::move(socket), cred);
  conns_.emplace(conn.get(), conn);
  ++per_user_[cred.uid];
  conn->start();
}

void ControlSocket::closed(Conn* conn, uid_t uid) {
  conns_.erase(conn);
  if (auto it = per_user_.find(uid); it != per_user_.end() && --it->second == 0) per_user_.erase(it);
}

}  // namespace regfs
