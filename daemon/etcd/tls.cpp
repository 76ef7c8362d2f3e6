#include "tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace regfs::etcd {

namespace ssl = boost::asio::ssl;

namespace {

Error bad(const std::string& option, const std::string& file, const std::string& why) {
  return Error{Errc::invalid_line, option + ": " + file + ": " + why};
}

// OpenSSL's reason for the last failure ("no start line", "key values
// mismatch"), or `fallback`.
std::string openssl_reason(const boost::system::error_code& ec, const char* fallback) {
  const unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (e != 0) {
    if (const char* r = ERR_reason_error_string(e)) return r;
  }
  return ec ? ec.message() : fallback;
}

// Opened first so that a missing or unreadable file says so in plain words.
bool readable(const std::string& file, std::string& why) {
  std::ifstream in(file);
  if (in) return true;
  why = std::strerror(errno);
  return false;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_context(const TlsFiles& files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx->set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  std::string why;
  if (files.ca.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec)
      return Error{Errc::invalid_line,
                   "--store-ca: cannot load the system's CA certificates: " + ec.message()};
  } else {
    if (!readable(files.ca, why)) return bad("--store-ca", files.ca, why);
    ctx->load_verify_file(files.ca, ec);
    if (ec)
      return bad("--store-ca", files.ca,
                 "no PEM CA certificate (" + openssl_reason(ec, "unreadable") + ")");
  }
  if (files.cert.empty() != files.key.empty()) {
    return Error{Errc::invalid_line, "--store-cert and --store-key go together"};
  }
  if (!files.cert.empty()) {
    if (!readable(files.cert, why)) return bad("--store-cert", files.cert, why);
    ctx->use_certificate_chain_file(files.cert, ec);
    if (ec)
      return bad("--store-cert", files.cert,
                 "no PEM certificate (" + openssl_reason(ec, "unreadable") + ")");
    if (!readable(files.key, why)) return bad("--store-key", files.key, why);
    ctx->use_private_key_file(files.key, ssl::context::pem, ec);
    if (ec) {
      // OpenSSL 3 refuses a key that does not match the certificate here.
      const std::string reason = openssl_reason(ec, "unreadable");
      const bool mismatch = reason.find("mismatch") != std::string::npos;
      return bad("--store-key", files.key,
                 (mismatch ? "not the key of " + files.cert : std::string("no PEM private key")) +
                     " (" + reason + ")");
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return bad("--store-key", files.key,
                 "not the key of " + files.cert + " (" + openssl_reason({}, "mismatch") + ")");
    }
  }
  ERR_clear_error();
  return ctx;
}

}  // namespace regfs::etcd
