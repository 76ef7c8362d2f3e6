// Deliberate defects of the cluster core, for the tests that prove the
// simulator's checker catches each kind of mistake it exists to catch. A
// checker that has never been seen to fail is untested. Every switch is off
// by default and the daemon never sets one.
#pragma once

namespace regfs::cluster {

struct Faults {
  bool drop_tombstones = false;    // a removal erases the entry instead of remembering it
  bool restore_on_revive = false;  // a refuted death serves the origin's old entries again
  bool silent_changes = false;     // changes are applied but not reported (no invalidation)
  bool ignore_removals = false;    // removals from other nodes are not applied
  bool no_origin_cap = false;      // a remote origin may fill the store without bound
};

}  // namespace regfs::cluster
