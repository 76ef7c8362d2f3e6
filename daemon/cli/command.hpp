// Commands that `regfs watch` and `regfs template` start on a change.
#pragma once

#include <sys/types.h>
#include <string>
#include <utility>
#include <vector>

#include "core/time.hpp"

namespace regfs::cli {

using Environment = std::vector<std::pair<std::string, std::string>>;

// Starts `argv` (looked up in PATH) with `env` added to this process's
// environment. Returns its pid, or -1 with errno set. The command starts with
// default signal dispositions for the signals this process catches.
pid_t start_command(const std::vector<std::string>& argv, const Environment& env);

// Ends a started command: SIGTERM, then SIGKILL if it is still there after
// `grace`. Returns its wait status.
int stop_command(pid_t pid, Duration grace);

// Runs `/bin/sh -c COMMAND` and waits for it; returns its wait status, or -1
// with errno set when it cannot be started.
int run_shell(const std::string& command);

// "exited with 3", "killed by signal 9".
std::string describe_status(int status);

}  // namespace regfs::cli
