// regfs keygen: a new cluster key, base64, one line (a keyring file line).
#include <iostream>

#include "cli.hpp"
#include "transport/keyring.hpp"

namespace regfs::cli {

int cmd_keygen(const Context& /*ctx*/, const std::vector<std::string>& args) {
  if (!args.empty()) return fail_usage("usage: regfs keygen");
  std::cout << transport::Keyring::generate_key() << "\n";
  return kOk;
}

}  // namespace regfs::cli
