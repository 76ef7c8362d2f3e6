#!/usr/bin/env bash
# Builds the regfs container image as an OCI archive, from Debian packages alone
# (no image registry is needed):
#   packaging/image.sh [OUT]
# OUT defaults to BUILD_DIR/regfs_VERSION_oci.tar; prints its path. Load it with
# `podman load -i OUT` or `skopeo copy oci-archive:OUT docker://...`.
# Environment: REGFS_BUILD (build directory, default build/), REGFS_DEB (use
# this .deb instead of building one with packaging/build-deb.sh).
#
# The image is `buildah from scratch` plus:
#   - the .deb's programs and documentation (/usr/bin/regfsd, /usr/bin/regfs,
#     /usr/share/doc/regfs; not the systemd unit nor /etc/default/regfsd);
#   - exactly the shared libraries those programs and fusermount3 load, copied
#     from the installed Debian packages, and the dynamic loader;
#   - fusermount3 and /etc/fuse.conf (fuse3): libfuse mounts directly as root
#     and falls back to fusermount3 when the mount(2) is refused;
#   - busybox from busybox-static (one static binary, ~2 MB, its applets as
#     links): a shell for health checks (`CMD-SHELL`) and `docker exec`, and the
#     small tools (cat, wget, nc, httpd) that an application started in the same
#     container or a test needs;
#   - /etc/passwd, /etc/group, /etc/nsswitch.conf, the mountpoint /registry and
#     the state directory /var/lib/regfs;
#   - each Debian package's copyright file and the list of packages and versions
#     the image was assembled from (/usr/share/doc/regfs/image-packages).
# Entry point regfsd; configuration through REGFS_* variables, with the image's
# defaults REGFS_MOUNT=/registry, REGFS_STATE_DIR=/var/lib/regfs and
# REGFS_BIND=0.0.0.0:7946 (so a key, REGFS_KEY_FILE, or REGFS_INSECURE=1 must
# be given). Needs root (buildah's storage is kept in a temporary directory and
# removed afterwards).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${REGFS_BUILD:-$root/build}
version=$(sed -n 's/^project(regfs VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
out=${1:-$build/regfs_${version}_oci.tar}
fail() { echo "image: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "run as root (buildah from scratch and mounts)"
[[ -n $version ]] || fail "no project version in CMakeLists.txt"

for p in buildah busybox-static fuse3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    fail "Debian package $p is missing (packaging/install-deps.sh installs it)"
done

deb=${REGFS_DEB:-}
if [[ -z $deb ]]; then
  rm -f "$build"/regfs_*.deb
  deb=$("$root/packaging/build-deb.sh" "$build")
fi
[[ -f $deb ]] || fail "no package: $deb"

work=$(mktemp -d /tmp/regfs-image.XXXXXX)
bah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
ctr=
cleanup() {
  [[ -n $ctr ]] && "${bah[@]}" rm "$ctr" >/dev/null 2>&1
  # vfs layers are plain directories, but buildah may leave its run state mounted.
  umount -R "$work/run" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

rootfs=$work/rootfs
mkdir -p "$rootfs"
# Debian's merged /usr: the loader path in every binary is /lib64/..., the
# libraries' /lib/x86_64-linux-gnu/...
mkdir -p "$rootfs"/usr/{bin,lib,lib64} "$rootfs"/{etc,registry,var/lib/regfs,proc,sys,dev,run,tmp,root}
ln -s usr/bin "$rootfs/bin"
ln -s usr/bin "$rootfs/sbin"
ln -s bin "$rootfs/usr/sbin"
ln -s usr/lib "$rootfs/lib"
ln -s usr/lib64 "$rootfs/lib64"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root" "$rootfs/var/lib/regfs"

# The package's files, without what only systemd uses.
dpkg-deb -x "$deb" "$work/deb"
cp -a "$work/deb/usr/bin/regfsd" "$work/deb/usr/bin/regfs" "$rootfs/usr/bin/"
mkdir -p "$rootfs/usr/share/doc"
cp -a "$work/deb/usr/share/doc/regfs" "$rootfs/usr/share/doc/"
find "$rootfs/usr/share/doc/regfs" -name __pycache__ -prune -exec rm -rf {} +

cp -a /usr/bin/fusermount3 "$rootfs/usr/bin/"
cp -a /etc/fuse.conf "$rootfs/etc/"
cp -a /bin/busybox "$rootfs/usr/bin/busybox"
! ldd "$rootfs/usr/bin/busybox" >/dev/null 2>&1 || fail "/bin/busybox is not busybox-static's (it is linked dynamically)"
for applet in $("$rootfs/usr/bin/busybox" --list); do
  [[ -e $rootfs/usr/bin/$applet ]] || ln -s busybox "$rootfs/usr/bin/$applet"
done

# put PATH: copies the host file PATH into the rootfs at the same place,
# recreating every symbolic link met on the way (soname links, the loader's
# /lib64 link) so that the image resolves names exactly as the host does.
put() {
  local p=$1 n
  for ((n = 0; n < 16; n++)); do
    local dir base
    dir=$(realpath "$(dirname "$p")") base=$(basename "$p")
    [[ $dir == / ]] && dir=
    case "$dir" in /usr/*) ;; *) fail "library outside /usr: $dir/$base" ;; esac
    mkdir -p "$rootfs$dir"
    if [[ -L $dir/$base ]]; then
      local link
      link=$(readlink "$dir/$base")
      [[ -e $rootfs$dir/$base || -L $rootfs$dir/$base ]] || ln -s "$link" "$rootfs$dir/$base"
      [[ $link == /* ]] && p=$link || p=$dir/$link
    else
      [[ -e $rootfs$dir/$base ]] || cp -a "$dir/$base" "$rootfs$dir/$base"
      return 0
    fi
  done
  fail "too many links: $1"
}
# Every library the image's dynamic programs load, as the host's loader
# resolves them (the host has the very packages the image is built from).
libs=()
for bin in "$rootfs"/usr/bin/regfsd "$rootfs"/usr/bin/regfs "$rootfs"/usr/bin/fusermount3; do
  while read -r path; do libs+=("$path"); done < <(
    ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)
((${#libs[@]} > 0)) || fail "ldd found no libraries"
for lib in "${libs[@]}"; do put "$lib"; done

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat >"$rootfs/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF

# Where each file came from: the Debian packages and their copyright files.
{
  echo "regfs $version $(basename "$deb")"
  # dpkg knows each file by the path its package names (/bin/... or /usr/bin/...).
  pkgs=$(for f in "${libs[@]}" /usr/bin/fusermount3 /usr/bin/busybox; do
    real=$(realpath "$f")
    for p in "$f" "$real" "/${real#/usr/}"; do dpkg -S "$p" 2>/dev/null && break; done ||
      fail "no Debian package holds $f"
  done | cut -d: -f1 | sort -u)
  for pkg in $pkgs; do
    dpkg-query -W -f='${Package} ${Version}\n' "$pkg"
    if [[ -f /usr/share/doc/$pkg/copyright ]]; then
      mkdir -p "$rootfs/usr/share/doc/$pkg"
      cp /usr/share/doc/"$pkg"/copyright "$rootfs/usr/share/doc/$pkg/"
    fi
  done
} >"$rootfs/usr/share/doc/regfs/image-packages"

# The image: one layer holding the root filesystem above, and its config.
ctr=$("${bah[@]}" from scratch)
"${bah[@]}" add "$ctr" "$rootfs" / >/dev/null
"${bah[@]}" config \
  --entrypoint '["/usr/bin/regfsd"]' \
  --env PATH=/usr/bin:/bin \
  --env REGFS_MOUNT=/registry \
  --env REGFS_STATE_DIR=/var/lib/regfs \
  --env REGFS_BIND=0.0.0.0:7946 \
  --port 7946/udp --port 7946/tcp \
  --workingdir / --stop-signal SIGTERM \
  --os linux --arch "$(dpkg --print-architecture)" \
  --label org.opencontainers.image.title=regfs \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="regfs: a service registry as a FUSE filesystem" \
  "$ctr"
stamp=$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)
mkdir -p "$(dirname "$out")"
rm -f "$out"
"${bah[@]}" commit --quiet --format oci --disable-compression=false --timestamp "$stamp" "$ctr" "oci-archive:$out:regfs:$version" >/dev/null
echo "$out"
