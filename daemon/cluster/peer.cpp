#include "cluster/peer.hpp"

#include "cluster/messages.hpp"
#include "core/instance.hpp"

namespace regfs::cluster {

bool valid_node_name(std::string_view name) { return valid_service_name(name); }

const char* to_string(MemberState s) {
  switch (s) {
    case MemberState::alive: return "alive";
    case MemberState::suspect: return "suspect";
    case MemberState::dead: return "dead";
    case MemberState::left: return "left";
  }
  return "unknown";
}

}  // namespace regfs::cluster
