#!/usr/bin/env bash
# The calling rule, in shell, with no client library:
#
#   call the endpoint you have; if the connection fails or the endpoint answers
#   "not found", read /registry/<service> again and retry once; if that fails,
#   it has failed.
#
#   client.sh [--mount DIR] [--seconds N] [--interval S] SERVICE PATH
# Prints one line per failed call and a JSON summary at the end (the same
# summary as client.py and Client.java).
set -uo pipefail

mount=/registry seconds=10 interval=0.05
while (($#)); do
  case $1 in
    --mount) mount=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    -*) echo "client.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
if (($# != 2)); then
  echo "usage: client.sh [--mount DIR] [--seconds N] [--interval S] SERVICE PATH" >&2
  exit 2
fi
service=$1 path=$2

calls=0 ok=0 rereads=0 failed=0 endpoints=() endpoint=

errors=$(mktemp) && trap 'rm -f "$errors"' EXIT

lookup() { # a health-checked host:port; when there is none, why says why
  # read, a builtin, in this shell's own process: the daemon knows the
  # endpoint it handed this process, so this re-read makes it check that one
  # again first (docs/INTERFACES.md, Re-reads); a new process (cat) would
  # look like a first read. The redirection fails when the open fails
  # (EHOSTDOWN: nothing healthy; ENOENT: not registered), where bash's
  # $(<file) would hide that as an empty endpoint.
  endpoint=
  if ! { IFS= read -r endpoint <"$mount/$service"; } 2>"$errors"; then
    why=$(<"$errors")
    why=${why:-"no answer for $service"}
    return 1
  fi
  [[ -n $endpoint ]] || { why="empty answer for $service"; return 1; }
  local e
  for e in "${endpoints[@]}"; do [[ $e == "$endpoint" ]] && return 0; done
  endpoints+=("$endpoint")
}

call() { # -f: a 404 ("not found") is a failure like a refused connection
  curl -fsS --max-time 2 -o /dev/null "http://$endpoint$path" 2>&1
}

end=$((SECONDS + ${seconds%.*}))
while ((SECONDS < end)); do
  calls=$((calls + 1))
  if [[ -n $endpoint ]] && call >/dev/null; then
    ok=$((ok + 1))
  else
    [[ -n $endpoint ]] && rereads=$((rereads + 1))
    why=
    if lookup && why=$(call); then
      ok=$((ok + 1))
    else
      failed=$((failed + 1))
      echo "call failed twice: $why"
    fi
  fi
  sleep "$interval"
done

list=
((${#endpoints[@]})) && list=$(printf '"%s",' "${endpoints[@]}")
printf '{"calls": %d, "ok": %d, "rereads": %d, "failed": %d, "endpoints": [%s]}\n' \
  "$calls" "$ok" "$rereads" "$failed" "${list%,}"
