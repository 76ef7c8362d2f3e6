#!/usr/bin/env bash
# The Debian package: builds it from REGFS_BUILD, then checks what it holds and
# that what it installs works — the binaries run, the unit file passes
# systemd-analyze, and regfsd started the way the unit starts it (settings
# only from an environment file) serves a mount.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${REGFS_BUILD:-$root/build}
work=$(mktemp -d /tmp/regfs-package.XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
  fusermount3 -uz "$work/mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package test: $*" >&2; exit 1; }

rm -f "$build"/regfs_*.deb
deb=$("$root/packaging/build-deb.sh" "$build")
[[ -f $deb ]] || fail "no package built"

info=$(dpkg-deb --info "$deb")
for want in "Package: regfs" "Version: " "Architecture: amd64"; do
  grep -q "$want" <<<"$info" || fail "control lacks '$want'"
done
depends=$(dpkg-deb --field "$deb" Depends)
for lib in fuse3 libfuse3-3 libsodium23 libstdc++6; do
  grep -qw "$lib" <<<"$depends" || fail "Depends lacks $lib: $depends"
done
[[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) == /etc/default/regfsd ]] ||
  fail "/etc/default/regfsd is not a conffile"

contents=$(dpkg-deb --contents "$deb" | awk '{print $NF}')
for f in ./usr/bin/regfsd ./usr/bin/regfs ./usr/lib/systemd/system/regfsd.service \
  ./etc/default/regfsd ./usr/share/doc/regfs/README.md \
  ./usr/share/doc/regfs/examples/clients/client.sh ./usr/share/doc/regfs/examples/clients/Client.java; do
  grep -qxF "$f" <<<"$contents" || fail "package lacks $f"
done
# Only the examples' sources: nothing that running them leaves behind.
strays=$(grep -E '__pycache__|\.pyc$|\.class$|node_modules' <<<"$contents" || true)
[[ -z $strays ]] || fail "package holds build leftovers: $strays"

dpkg-deb -x "$deb" "$work/root"
bin=$work/root/usr/bin

# The version comes from one place, the project's CMakeLists.txt.
version=$(sed -n 's/^project(regfs VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
[[ -n $version ]] || fail "no project version in CMakeLists.txt"
[[ $(dpkg-deb --field "$deb" Version) == "$version" ]] || fail "package version is not $version"
[[ $("$bin/regfsd" --version) == "regfsd $version" ]] || fail "regfsd --version: $("$bin/regfsd" --version)"
[[ $("$bin/regfs" --version) == "regfs $version" ]] || fail "regfs --version: $("$bin/regfs" --version)"

# The reference pages: where man finds them, rendered without warnings, naming the version.
for page in regfsd.8 regfs.1; do
  name=${page%.*} section=${page##*.}
  file=./usr/share/man/man$section/$page.gz
  grep -qxF "$file" <<<"$contents" || fail "package lacks $file"
  [[ $(MANPATH=$work/root/usr/share/man man -w "$section" "$name") == "$work/root/${file#./}" ]] ||
    fail "man -w $name does not find the packaged page"
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$work/root/${file#./}" 2>&1 >/dev/null)
  [[ -z $warnings ]] || fail "$page: $warnings"
  LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$work/root/${file#./}" 2>/dev/null | grep -q "regfs $version" ||
    fail "$page does not name version $version"
done
"$bin/regfsd" --help | grep -q -- "--mount" || fail "regfsd --help"
"$bin/regfs" keygen | grep -Eq '^[A-Za-z0-9+/]{43}=$' || fail "regfs keygen"

unit=$work/root/usr/lib/systemd/system/regfsd.service
if command -v systemd-analyze >/dev/null; then
  # verify resolves ExecStart against the real root; point it at the package's.
  sed "s|/usr/bin/regfsd|$bin/regfsd|" "$unit" >"$work/regfsd.service"
  systemd-analyze verify "$work/regfsd.service" 2>&1 | grep -v "^$" | grep -iv "network-online\|Failed to prepare\|Unit .* not found" && fail "systemd-analyze verify" || true
fi
grep -qx "ExecStart=/usr/bin/regfsd" "$unit" || fail "unit ExecStart"
grep -qx "EnvironmentFile=-/etc/default/regfsd" "$unit" || fail "unit EnvironmentFile"

# Start regfsd as the unit does: no arguments, settings from the default file
# (every line commented out) plus the few a test needs.
cp "$work/root/etc/default/regfsd" "$work/env"
grep -v '^#' "$work/env" | grep -q . && fail "default file sets something: keep it all comments"
cat >>"$work/env" <<EOV
REGFS_MOUNT=$work/mnt
REGFS_STATE_DIR=$work/state
REGFS_BIND=127.0.0.1:0
REGFS_NODE_NAME=pkg
EOV
(set -a; . "$work/env"; exec "$bin/regfsd") 2>"$work/regfsd.log" &
pid=$!
for _ in $(seq 100); do
  grep -qs regfs_reads_total "$work/mnt/.metrics" && break
  kill -0 "$pid" 2>/dev/null || fail "regfsd exited: $(cat "$work/regfsd.log")"
  sleep 0.1
done
"$bin/regfs" --mount "$work/mnt" register pkg-test 127.0.0.1:9 --check none ||
  fail "register through the packaged regfs"
[[ $(cat "$work/mnt/pkg-test") == 127.0.0.1:9 ]] || fail "read back"
kill -TERM "$pid"
wait "$pid" || fail "regfsd did not exit cleanly on SIGTERM"
pid=
grep -qs " $work/mnt " /proc/mounts && fail "still mounted after SIGTERM"
echo "package test: $(basename "$deb") ok ($(du -k "$deb" | cut -f1) KiB)"
