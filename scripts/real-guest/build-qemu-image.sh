#!/usr/bin/env bash
# Build the boot set for a real x86-64 Linux 6.1 guest under QEMU 10 (TCG) from
# Debian's packages only, into the git-ignored cache .cache/real-guest-qemu/.
#
#   bzImage            linux-image-6.1.0-<N>-cloud-amd64's /boot/vmlinuz-* (newest
#                      <N> in the system's apt lists; downloaded, not installed)
#   config-<release>   that kernel's config (for reference)
#   initrd.cpio        uncompressed newc cpio, reproducible: busybox-static and its
#                      applet links, the six virtio modules (load order from their
#                      depends), virtio_blk (loaded only for the scratch disk; ext4,
#                      jbd2, mbcache, crc16 and crc32c are built into the cloud
#                      kernel, its modules.builtin says), bl_alloc.ko, bl-agent,
#                      bl-mem, bl-file, /init (scripts/real-guest/qemu/init)
#   guest/             the same bl-agent, bl-mem, bl-file, bl_alloc.ko, for reference
#   bin/bl-pdeathsig   host wrapper: the command it runs dies with its parent
#   qemu/              QEMU 10 from bookworm-backports, extracted (not installed):
#                      qemu-system-x86, -common, -data, seabios, ipxe-qemu and the
#                      shared libraries this host lacks (resolved through the
#                      packages' Depends, checked with ldd)
#   apt/               private apt state (sources.list with bookworm, -updates,
#                      -security and -backports; its lists and cache)
#   debs/              the downloaded .deb files
#   manifest.json      packages with versions, files with size and sha256, the
#                      qemu version and how to launch it, the kernel release
#
# Launch QEMU with scripts/real-guest/qemu/run-qemu.sh (or the env it documents).
# Idempotent: when manifest.json names the same root package versions and the
# same helper sources, and every file it lists has its size and sha256, nothing
# is done. Needs root (or sudo) for apt-get (update, install of cpio, gcc, make,
# e2fsprogs — the host's mke2fs and e2fsck make each run's scratch disk — and
# linux-headers-6.1.0-<N>-cloud-amd64 to build bl_alloc.ko).
# Environment: REAL_GUEST_QEMU_CACHE overrides the cache directory;
# REAL_GUEST_DEBIAN_MIRROR / REAL_GUEST_DEBIAN_SECURITY the archive URLs of the
# private sources list (default: the ones the system's apt lists use).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SRC="$ROOT/scripts/real-guest/qemu"
CACHE="${REAL_GUEST_QEMU_CACHE:-$ROOT/.cache/real-guest-qemu}"
VIRTIO_MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon)
# For the scratch disk (/init loads them only with bl.scratch=1); the file system
# itself (ext4, jbd2, mbcache, crc16, crc32c_generic) is built in.
SCRATCH_MODULES=(virtio_blk)
SCRATCH_BUILTIN=(ext4 jbd2 mbcache crc16 crc32c_generic)
ARCH=amd64
TRIPLET=x86_64-linux-gnu

die() { echo "build-qemu-image: error: $*" >&2; exit 1; }
log() { echo "build-qemu-image: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: apt-get needs root"
  SUDO="sudo"
fi
command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian (bookworm) host"
command -v node >/dev/null || die "node not found (it writes and checks manifest.json)"
[ "$(dpkg --print-architecture)" = "$ARCH" ] || die "this script builds for an $ARCH host (dpkg says $(dpkg --print-architecture))"

# ---------------------------------------------------------------- apt helpers
# apt-get update that tolerates failures: a few tries with a pause, then carry on
# with the lists that did update (the look-ups below name what cannot be had).
# $1: a label, then the apt-get options.
apt_update_tolerant() {
  local label="$1"; shift
  local out try
  out="$(mktemp)"
  for try in 1 2 3; do
    # apt-get update exits 0 when an index fails to download ("W: Failed to
    # fetch ..."): count that as a failure too.
    if $SUDO apt-get "$@" update -qq >"$out" 2>&1 && ! grep -qE '^(E:|W: Failed to fetch|W: Some index files failed)' "$out"; then
      rm -f "$out"; return 0
    fi
    log "warning: $label apt-get update failed (try $try of 3): $(grep -m 1 -E '^(E|W):' "$out" || tail -n 1 "$out")"
    [ "$try" -lt 3 ] && sleep 5
  done
  rm -f "$out"
  log "warning: $label apt-get update reported errors; carrying on with the lists it has"
}

sys_updated=0
sys_update() {
  if [ "$sys_updated" -eq 0 ]; then
    log "apt-get update"
    apt_update_tolerant system
    sys_updated=1
  fi
}

# apt-cache on the system's lists, with a binary cache of its own in the cache
# directory (hosts built from Docker images disable /var/cache/apt/pkgcache.bin,
# and rebuilding it costs ~0.6 s per call).
mkdir -p "$CACHE/apt/syscache"
SYSC=(-o "Dir::Cache=$CACHE/apt/syscache" -o "Dir::Cache::pkgcache=pkgcache.bin" -o "Dir::Cache::srcpkgcache=")
scache() { apt-cache "${SYSC[@]}" "$@"; }


# Newest linux-image-6.1.0-<N>-cloud-amd64 (the image itself, not -dbg/-unsigned).
find_kernel() {
  scache pkgnames linux-image-6.1.0- 2>/dev/null \
    | grep -E '^linux-image-6\.1\.0-[0-9]+-cloud-amd64$' \
    | sort -V | tail -n 1
}

# The private apt configuration (for QEMU 10 from bookworm-backports).
APTDIR="$CACHE/apt"
PAPT=(-o "Dir::Etc::SourceList=$APTDIR/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
      -o "Dir::State::Lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
      -o "APT::Sandbox::User=root" -o "Debug::NoLocking=1" -o "APT::Architecture=$ARCH"
      -o "APT::Architectures::=$ARCH" -o "Dir::Cache::pkgcache=pkgcache.bin"
      -o "Dir::Cache::srcpkgcache=")

priv_setup() {
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
  # Written once (or when REAL_GUEST_DEBIAN_MIRROR / _SECURITY ask for another).
  if [ -f "$APTDIR/sources.list" ] && [ -z "${REAL_GUEST_DEBIAN_MIRROR:-}${REAL_GUEST_DEBIAN_SECURITY:-}" ]; then return 0; fi
  local mirror security keyring="" opt
  mirror="${REAL_GUEST_DEBIAN_MIRROR:-$(scache policy 2>/dev/null | awk '$3 == "bookworm/main" { print $2; exit }')}"
  security="${REAL_GUEST_DEBIAN_SECURITY:-$(scache policy 2>/dev/null | awk '$3 == "bookworm-security/main" { print $2; exit }')}"
  mirror="${mirror:-http://deb.debian.org/debian}"
  security="${security:-http://deb.debian.org/debian-security}"
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] && keyring="/usr/share/keyrings/debian-archive-keyring.gpg"
  opt="[arch=$ARCH${keyring:+ signed-by=$keyring}]"
  local want
  want="$(printf 'deb %s %s bookworm main\ndeb %s %s bookworm-updates main\ndeb %s %s bookworm-security main\ndeb %s %s bookworm-backports main\n' \
    "$opt" "$mirror" "$opt" "$mirror" "$opt" "$security" "$opt" "$mirror")"
  if [ ! -f "$APTDIR/sources.list" ] || [ "$(cat "$APTDIR/sources.list")" != "$want" ]; then
    printf '%s\n' "$want" > "$APTDIR/sources.list"
    rm -rf "$APTDIR/lists" && mkdir -p "$APTDIR/lists/partial"
  fi
}

priv_updated=0
priv_update() {
  if [ "$priv_updated" -eq 0 ]; then
    log "apt-get update (private lists: bookworm, -updates, -security, -backports)"
    apt_update_tolerant private "${PAPT[@]}"
    priv_updated=1
  fi
}
pcache() { apt-cache "${PAPT[@]}" "$@"; }

# Newest version of package $1 in the private lists that satisfies "$2 $3" (a
# dpkg relation such as ">= 1.2"; none when $2 is empty), or empty.
priv_best() {
  local best="" v
  while read -r v; do
    [ -n "$v" ] || continue
    if [ -n "$2" ] && ! dpkg --compare-versions "$v" "$2" "$3"; then continue; fi
    if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best="$v"; fi
  done < <(pcache madison "$1" 2>/dev/null | awk -F'|' -v n="$1" '{ gsub(/ /, "", $1); gsub(/ /, "", $2); if ($1 == n) print $2 }')
  echo "$best"
}

# ---------------------------------------------------------------- root packages
[ -n "$(find_kernel)" ] || sys_update
KPKG="$(find_kernel)"
[ -n "$KPKG" ] || die "package linux-image-6.1.0-<N>-cloud-amd64 not found in the apt archive (is bookworm main in the sources?)"
KREL="${KPKG#linux-image-}"
KABI="$(echo "$KREL" | sed -n 's/^6\.1\.0-\([0-9]*\)-cloud-amd64$/\1/p')"
HPKG="linux-headers-$KREL"

declare -A VER
SYS_PKGS=("$KPKG" "busybox-static" "$HPKG")
sys_candidates() { # one apt-cache call for all: "name version" lines
  scache policy "${SYS_PKGS[@]}" 2>/dev/null | awk '/^[^ ]/ { sub(/:$/, ""); n = $1 } /^ *Candidate:/ { if ($2 != "(none)") print n, $2 }'
}
cands="$(sys_candidates)"
if [ "$(echo "$cands" | grep -c .)" -lt "${#SYS_PKGS[@]}" ]; then sys_update; cands="$(sys_candidates)"; fi
for p in "${SYS_PKGS[@]}"; do
  v="$(echo "$cands" | awk -v n="$p" '$1 == n { print $2 }')"
  [ -n "$v" ] || die "package $p cannot be had from the apt archive (apt-cache policy shows no candidate)"
  VER[$p]="$v"
done
[ "${VER[$KPKG]}" = "${VER[$HPKG]}" ] || die "package $HPKG has version ${VER[$HPKG]} but $KPKG has ${VER[$KPKG]}"

mkdir -p "$CACHE"
priv_setup
QVER="$(priv_best qemu-system-x86 "" "")"
if [ -z "$QVER" ]; then priv_update; QVER="$(priv_best qemu-system-x86 "" "")"; fi
[ -n "$QVER" ] || die "package qemu-system-x86 cannot be had from bookworm-backports (private lists in $APTDIR/lists)"
case "$QVER" in
  1:9.*|1:1[0-9].*|9.*|1[0-9].*) ;;
  *) priv_update; QVER="$(priv_best qemu-system-x86 "" "")"
     case "$QVER" in 1:9.*|1:1[0-9].*|9.*|1[0-9].*) ;;
       *) die "package qemu-system-x86 >= 9 cannot be had (newest is $QVER; is bookworm-backports reachable?)" ;; esac ;;
esac
VER[qemu-system-x86]="$QVER"
ROOTS=("$KPKG=${VER[$KPKG]}" "busybox-static=${VER[busybox-static]}" "$HPKG=${VER[$HPKG]}" "qemu-system-x86=$QVER")

# Hash of everything that goes into the helpers and the initramfs.
sources_sha256() {
  ( cd "$ROOT" && printf '%s\n' scripts/real-guest/build-qemu-image.sh scripts/real-guest/qemu/init \
      scripts/real-guest/qemu/*.c scripts/real-guest/qemu/*.h scripts/real-guest/qemu/bl_alloc/bl_alloc.c scripts/real-guest/qemu/bl_alloc/Kbuild \
      | LC_ALL=C sort | xargs sha256sum ) | sha256sum | cut -d' ' -f1
}
SRCHASH="$(sources_sha256)"

QTREE="$CACHE/qemu"
QBIN="$QTREE/usr/bin/qemu-system-x86_64"
QLIBPATH="$QTREE/usr/lib/$TRIPLET:$QTREE/lib/$TRIPLET"
qemu_missing_libs() {
  LD_LIBRARY_PATH="$QLIBPATH" ldd "$QBIN" 2>/dev/null | awk '/not found/ { print $1 }'
}

MANIFEST="$CACHE/manifest.json"
# Up to date? Same roots and sources, every listed file present with its size and
# sha256, and the QEMU binary still finds all its libraries on this host.
if [ -f "$MANIFEST" ] && [ -x "$QBIN" ] && [ -z "$(qemu_missing_libs)" ] && node - "$MANIFEST" "$CACHE" "$SRCHASH" "${ROOTS[@]}" <<'JS'
const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
const [manifestPath, cache, srcHash, ...want] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
if (m.sources_sha256 !== srcHash) process.exit(1);
const have = new Set((m.roots || []).map((p) => `${p.name}=${p.version}`));
if (want.length !== have.size || !want.every((w) => have.has(w))) process.exit(1);
for (const [name, f] of Object.entries(m.files)) {
  const p = path.join(cache, name);
  if (!fs.existsSync(p) || fs.statSync(p).size !== f.bytes) process.exit(1);
  if (crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex') !== f.sha256) process.exit(1);
}
JS
then
  log "up to date: $CACHE ($KPKG ${VER[$KPKG]}, qemu-system-x86 $QVER)"
  echo "$CACHE"
  exit 0
fi

# ---------------------------------------------------------------- build tools
need_install=()
command -v cpio >/dev/null || need_install+=(cpio)
command -v gcc >/dev/null || need_install+=(gcc)
command -v make >/dev/null || need_install+=(make)
command -v objcopy >/dev/null || need_install+=(binutils)
{ command -v mke2fs >/dev/null && command -v e2fsck >/dev/null; } || need_install+=(e2fsprogs)
[ -f /usr/include/stdio.h ] || need_install+=(libc6-dev)
[ -f "/usr/src/linux-headers-$KREL/Makefile" ] || need_install+=("$HPKG")
if [ "${#need_install[@]}" -gt 0 ]; then
  log "apt-get install ${need_install[*]}"
  ilog="$(mktemp)"
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >"$ilog" 2>&1; then
    sys_update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_install[@]}" >"$ilog" 2>&1 || {
      cat "$ilog" >&2
      die "package(s) ${need_install[*]} cannot be installed with apt-get"
    }
  fi
  rm -f "$ilog"
fi

# ---------------------------------------------------------------- downloads
DEBS="$CACHE/debs"
mkdir -p "$DEBS"
declare -A DEB
# fetch NAME VERSION system|private
fetch_deb() {
  local name="$1" v="$2" where="$3" existing opts=()
  [ "$where" = private ] && opts=("${PAPT[@]}")
  existing="$(ls "$DEBS/${name}_${v//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)"
  if [ -z "$existing" ]; then
    log "apt-get download $name=$v${opts:+ (private lists)}"
    if ! ( cd "$DEBS" && apt-get "${opts[@]}" -o APT::Sandbox::User=root download -qq "$name=$v" >/dev/null 2>&1 ); then
      # stale lists (a version gone from the mirror): update once and retry
      if [ "$where" = private ]; then priv_update; else sys_update; fi
      ( cd "$DEBS" && apt-get "${opts[@]}" -o APT::Sandbox::User=root download -q "$name=$v" >&2 ) \
        || die "package $name=$v cannot be downloaded from the apt archive"
    fi
    existing="$(ls "$DEBS/${name}_${v//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)"
    [ -n "$existing" ] || die "package $name: apt-get download left no .deb in $DEBS"
  fi
  DEB[$name]="$existing"
}
fetch_deb "$KPKG" "${VER[$KPKG]}" system
fetch_deb busybox-static "${VER[busybox-static]}" system

# QEMU and the packages it needs that this host does not have: follow Depends and
# Pre-Depends from qemu-system-x86=$QVER; a dependency the host has installed in
# a version that satisfies it is skipped; otherwise apt's candidate in the
# private lists (bookworm's) is fetched if it satisfies it, else the newest
# version that does (backports', e.g. seabios >> 1.16.3). Recommends
# (qemu-block-extra, the GUI modules) are not followed.
declare -A QPKG       # name -> version to extract into the qemu tree
declare -A SEEN
QORDER=()
host_ok() { # name op version  -> 0 if installed and satisfying
  local st have
  st="$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null || true)"
  [ "${st%%|*}" = "ii " ] || return 1
  have="${st#*|}"
  [ -z "$2" ] || dpkg --compare-versions "$have" "$2" "$3"
}
host_provides() { # virtual name installed?
  dpkg-query -W -f='${db:Status-Abbrev}|${Provides}\n' 2>/dev/null \
    | awk -F'|' -v n="$1" '$1 == "ii " { k = split($2, a, /, */); for (i = 1; i <= k; i++) { sub(/ .*/, "", a[i]); if (a[i] == n) { f = 1 } } } END { exit !f }'
}
# apt's candidate (bookworm's, backports being pinned at 100) when it satisfies
# the relation, else the newest version that does (e.g. seabios from backports).
priv_pick() {
  local c
  c="$(pcache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true)"
  if [ -n "$c" ] && { [ -z "$2" ] || dpkg --compare-versions "$c" "$2" "$3"; }; then echo "$c"; return; fi
  priv_best "$@"
}
resolve() { # name version needed-by
  local name="$1" v="$2" deps alt a n op want chosen
  [ -z "${SEEN[$name]:-}" ] || return 0
  SEEN[$name]=1
  QPKG[$name]="$v"
  QORDER+=("$name")
  deps="$(pcache show "$name=$v" 2>/dev/null | awk '/^(Pre-)?Depends:/ { sub(/^[^:]*: */, ""); print }' | paste -sd, -)"
  [ -n "$deps" ] || return 0
  local IFS=','
  for alt in $deps; do
    chosen=""
    local IFS='|'
    for a in $alt; do
      a="$(echo "$a" | sed 's/^ *//; s/ *$//')"
      n="$(echo "$a" | sed 's/[ (].*//; s/:any$//')"
      op="$(echo "$a" | sed -n 's/.*(\([<>=]*\) *\([^)]*\)).*/\1/p')"
      want="$(echo "$a" | sed -n 's/.*(\([<>=]*\) *\([^)]*\)).*/\2/p')"
      if host_ok "$n" "$op" "$want" || [ -n "${SEEN[$n]:-}" ]; then chosen="host"; break; fi
      if [ -z "$op" ] && host_provides "$n"; then chosen="host"; break; fi
      local best
      best="$(priv_pick "$n" "$op" "$want")"
      if [ -n "$best" ]; then chosen="$n=$best"; break; fi
    done
    IFS=','
    if [ -z "$chosen" ]; then
      die "package $(echo "$alt" | sed 's/^ *//') (needed by $name) cannot be had from the apt archive (private lists: bookworm, -updates, -security, -backports)"
    fi
    if [ "$chosen" != host ]; then resolve "${chosen%%=*}" "${chosen#*=}" "$name"; fi
  done
}
log "resolving qemu-system-x86 $QVER and its dependencies"
resolve qemu-system-x86 "$QVER" ""
for n in "${QORDER[@]}"; do fetch_deb "$n" "${QPKG[$n]}" private; done

# ---------------------------------------------------------------- extract
WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
extract() { # name dir
  mkdir -p "$2"
  dpkg-deb -x "${DEB[$1]}" "$2" || die "package $1: dpkg-deb cannot extract ${DEB[$1]}"
}
extract "$KPKG" "$WORK/kernel"
extract busybox-static "$WORK/busybox"
NEWQ="$WORK/qemu"
for n in "${QORDER[@]}"; do extract "$n" "$NEWQ"; done
# Absolute symlinks inside the tree (e.g. firmware links into /usr/share/seabios)
# point into the tree instead, as relative links.
while IFS= read -r -d '' l; do
  t="$(readlink "$l")"
  case "$t" in
    /*) ln -sfn "$(realpath -m -s --relative-to="$(dirname "$l")" "$NEWQ$t")" "$l" ;;
  esac
done < <(find "$NEWQ" -type l -print0)
# Only qemu-system-x86_64 is used: drop the other emulators and the docs.
rm -rf "$NEWQ/usr/bin/qemu-system-i386" "$NEWQ/usr/bin/qemu-system-x86_64-microvm" "$NEWQ/usr/share/doc" "$NEWQ/usr/share/man"
# Debian's QEMU looks for firmware in /usr/share/qemu, /usr/share/seabios and
# /usr/lib/ipxe/qemu; link the tree's seabios and ipxe images into its
# usr/share/qemu so that one -L finds them all (bios-256k.bin, vgabios-*.bin,
# efi-*.rom for NICs).
for f in "$NEWQ"/usr/share/seabios/* "$NEWQ"/usr/lib/ipxe/qemu/*; do
  [ -e "$f" ] || continue
  b="$NEWQ/usr/share/qemu/$(basename "$f")"
  [ -e "$b" ] || ln -s "$(realpath -m -s --relative-to="$NEWQ/usr/share/qemu" "$f")" "$b"
done
[ -x "$NEWQ/usr/bin/qemu-system-x86_64" ] || die "package qemu-system-x86 has no /usr/bin/qemu-system-x86_64"
missing="$(LD_LIBRARY_PATH="$NEWQ/usr/lib/$TRIPLET:$NEWQ/lib/$TRIPLET" ldd "$NEWQ/usr/bin/qemu-system-x86_64" | awk '/not found/ { print $1 }' | paste -sd' ' -)"
[ -z "$missing" ] || die "qemu-system-x86_64 lacks shared libraries $missing (no package of its Depends brought them)"
QVERSION="$(LD_LIBRARY_PATH="$NEWQ/usr/lib/$TRIPLET:$NEWQ/lib/$TRIPLET" QEMU_MODULE_DIR="$NEWQ/usr/lib/$TRIPLET/qemu" \
  "$NEWQ/usr/bin/qemu-system-x86_64" --version | head -n 1)" || die "qemu-system-x86_64 --version failed"
case "$QVERSION" in
  "QEMU emulator version 9."*|"QEMU emulator version 1"[0-9].*) ;;
  *) die "qemu-system-x86_64 --version says '$QVERSION', want 9.x or newer" ;;
esac
[ -f "$NEWQ/usr/share/qemu/bios-256k.bin" ] || die "package seabios/qemu-system-data: no usr/share/qemu/bios-256k.bin in the tree"

# ---------------------------------------------------------------- the kernel
KROOT="$WORK/kernel"
vmlinuz="$KROOT/boot/vmlinuz-$KREL"
[ -f "$vmlinuz" ] || die "package $KPKG has no /boot/vmlinuz-$KREL"
MODDIR="$KROOT/lib/modules/$KREL"
[ -d "$MODDIR" ] || die "package $KPKG has no /lib/modules/$KREL"
mkdir -p "$WORK/mods"
for m in "${SCRATCH_BUILTIN[@]}"; do
  grep -qE "/$m\.ko\$" "$MODDIR/modules.builtin" || die "package $KPKG: $m is not built in (modules.builtin); the scratch disk needs it"
done
ALL_MODULES=("${VIRTIO_MODULES[@]}" "${SCRATCH_MODULES[@]}")
for m in "${ALL_MODULES[@]}"; do
  f="$(find "$MODDIR" \( -name "$m.ko" -o -name "$m.ko.xz" \) | head -n 1)"
  [ -n "$f" ] || die "package $KPKG has no module $m.ko or $m.ko.xz"
  case "$f" in
    *.ko.xz)
      command -v xz >/dev/null || { sys_update; $SUDO apt-get install -y -qq xz-utils >&2 || die "package xz-utils cannot be installed with apt-get"; }
      xz -dc "$f" > "$WORK/mods/$m.ko" ;;
    *) cp "$f" "$WORK/mods/$m.ko" ;;
  esac
done
# Load order: a module after the ones it depends on (its .modinfo "depends=").
mod_depends() {
  objcopy -O binary --only-section=.modinfo "$WORK/mods/$1.ko" "$WORK/mods/$1.modinfo" 2>/dev/null \
    || die "package $KPKG: cannot read .modinfo of $1.ko"
  tr '\0' '\n' < "$WORK/mods/$1.modinfo" | sed -n 's/^depends=//p' | tr ',' ' '
}
declare -A DEPS
for m in "${ALL_MODULES[@]}"; do DEPS[$m]="$(mod_depends "$m")"; done
# place_modules VAR m...: the modules in an order where each comes after the ones it
# depends on (among all modules; those placed before count as loaded)
declare -A PLACED
place_modules() {
  local -n out="$1"; shift
  local want=("$@") m d ok progress
  out=()
  while [ "${#out[@]}" -lt "${#want[@]}" ]; do
    progress=0
    for m in "${want[@]}"; do
      [ -z "${PLACED[$m]:-}" ] || continue
      ok=1
      for d in ${DEPS[$m]}; do
        [ -n "${DEPS[$d]+set}" ] || die "module $m (package $KPKG) depends on $d, which is not one of ${ALL_MODULES[*]}"
        [ -n "${PLACED[$d]:-}" ] || ok=0
      done
      if [ "$ok" -eq 1 ]; then out+=("$m"); PLACED[$m]=1; progress=1; fi
    done
    [ "$progress" -eq 1 ] || die "module dependency cycle or missing dependency among ${want[*]} (package $KPKG)"
  done
}
place_modules ORDER "${VIRTIO_MODULES[@]}"
place_modules SCRATCH_ORDER "${SCRATCH_MODULES[@]}"
log "virtio module order: ${ORDER[*]}; scratch disk: ${SCRATCH_ORDER[*]} (depends: ${DEPS[virtio_blk]})"

# ---------------------------------------------------------------- helpers
mkdir -p "$WORK/bin" "$WORK/guest"
CFLAGS=(-O2 -Wall -Wextra)
gcc "${CFLAGS[@]}" -o "$WORK/bin/bl-pdeathsig" "$SRC/bl-pdeathsig.c" || die "gcc failed on bl-pdeathsig.c"
for h in bl-agent bl-mem bl-file; do
  gcc "${CFLAGS[@]}" -static -s -pthread -o "$WORK/guest/$h" "$SRC/$h.c" || die "gcc -static failed on $h.c"
done
mkdir -p "$WORK/bl_alloc"
cp "$SRC/bl_alloc/bl_alloc.c" "$SRC/bl_alloc/Kbuild" "$WORK/bl_alloc/"
# -ffile-prefix-map: no build path in the object, so the same .ko (build ID
# included) comes out of every build.
if ! make -C "/usr/src/linux-headers-$KREL" M="$WORK/bl_alloc" W=1 KCFLAGS="-ffile-prefix-map=$WORK/bl_alloc=bl_alloc" \
    modules >"$WORK/bl_alloc/build.log" 2>&1; then
  cat "$WORK/bl_alloc/build.log" >&2
  die "bl_alloc.ko does not build against package $HPKG"
fi
if grep -q 'warning:' "$WORK/bl_alloc/build.log"; then
  grep 'warning:' "$WORK/bl_alloc/build.log" >&2
  log "warning: bl_alloc.c compiles with warnings (above)"
fi
strip --strip-debug -o "$WORK/guest/bl_alloc.ko" "$WORK/bl_alloc/bl_alloc.ko"
vm="$(tr '\0' '\n' < <(objcopy -O binary --only-section=.modinfo "$WORK/guest/bl_alloc.ko" /dev/stdout) | sed -n 's/^vermagic=//p')"
case "$vm" in "$KREL "*) ;; *) die "bl_alloc.ko vermagic '$vm' does not match kernel $KREL" ;; esac

# ---------------------------------------------------------------- initramfs
IR="$WORK/initramfs"
mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,root,etc,lib/modules}
bb="$WORK/busybox/bin/busybox"
[ -x "$bb" ] || die "package busybox-static has no /bin/busybox"
cp "$bb" "$IR/bin/busybox"
# Applet links, made here (the host runs the same amd64 binary) not at boot.
while read -r applet; do
  [ -n "$applet" ] || continue
  [ "$applet" = bin/busybox ] && continue
  dir="$(dirname "$applet")"
  mkdir -p "$IR/$dir"
  [ -e "$IR/$applet" ] || ln -s "$(realpath -m -s --relative-to="/$dir" /bin/busybox)" "$IR/$applet"
done < <("$bb" --list-full | sort)
[ -e "$IR/bin/sh" ] || ln -s busybox "$IR/bin/sh"
for m in "${ORDER[@]}"; do cp "$WORK/mods/$m.ko" "$IR/lib/modules/$m.ko"; done
printf '%s\n' "${ORDER[@]}" > "$IR/lib/modules/order"
for m in "${SCRATCH_ORDER[@]}"; do cp "$WORK/mods/$m.ko" "$IR/lib/modules/$m.ko"; done
printf '%s\n' "${SCRATCH_ORDER[@]}" > "$IR/lib/modules/order.scratch"
cp "$WORK/guest/bl_alloc.ko" "$IR/lib/modules/bl_alloc.ko"
install -m 755 "$WORK/guest/bl-agent" "$IR/bin/bl-agent"
install -m 755 "$WORK/guest/bl-mem" "$IR/bin/bl-mem"
install -m 755 "$WORK/guest/bl-file" "$IR/bin/bl-file"
install -m 755 "$SRC/init" "$IR/init"
mknod -m 600 "$IR/dev/console" c 5 1 2>/dev/null || true
chmod 755 "$IR" "$IR"/*
chmod 1777 "$IR/tmp"
# Reproducible: fixed mtimes, sorted names, renumbered inodes, root-owned.
find "$IR" -exec touch -h -d @0 {} +
( cd "$IR" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible ) > "$WORK/initrd.cpio" \
  || die "cpio failed to write the initramfs"

# ---------------------------------------------------------------- install
rm -rf "$QTREE"
mv "$NEWQ" "$QTREE"
mkdir -p "$CACHE/bin" "$CACHE/guest"
install -m 755 "$WORK/bin/bl-pdeathsig" "$CACHE/bin/bl-pdeathsig"
install -m 755 "$WORK/guest/bl-agent" "$WORK/guest/bl-mem" "$WORK/guest/bl-file" "$CACHE/guest/"
install -m 644 "$WORK/guest/bl_alloc.ko" "$CACHE/guest/bl_alloc.ko"
install -m 644 "$vmlinuz" "$CACHE/bzImage"
rm -f "$CACHE"/config-*
install -m 644 "$KROOT/boot/config-$KREL" "$CACHE/config-$KREL"
install -m 644 "$WORK/initrd.cpio" "$CACHE/initrd.cpio"

PKGLIST=("$KPKG=${VER[$KPKG]}=system" "busybox-static=${VER[busybox-static]}=system" "$HPKG=${VER[$HPKG]}=system-installed")
for n in "${QORDER[@]}"; do PKGLIST+=("$n=${QPKG[$n]}=qemu-tree"); done
MKE2FS="$(command -v mke2fs)"; E2FSCK="$(command -v e2fsck)"
E2VER="$(dpkg-query -W -f='${Version}' e2fsprogs 2>/dev/null || "$MKE2FS" -V 2>&1 | head -n 1)"
node - "$CACHE" "$KREL" "$KABI" "$SRCHASH" "$QVERSION" "${ORDER[*]}" "${ROOTS[*]}" "${SCRATCH_ORDER[*]}" "$MKE2FS" "$E2FSCK" "$E2VER" "${PKGLIST[@]}" <<'JS'
const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
const [cache, release, abi, srcHash, qemuVersion, order, roots, scratchOrder, mke2fs, e2fsck, e2fsprogs, ...pkgs] = process.argv.slice(2);
const files = {};
const add = (name) => {
  const buf = fs.readFileSync(path.join(cache, name));
  files[name] = { bytes: buf.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
};
for (const name of ['bzImage', 'initrd.cpio', `config-${release}`, 'bin/bl-pdeathsig', 'guest/bl-agent', 'guest/bl-mem', 'guest/bl-file',
  'guest/bl_alloc.ko', 'qemu/usr/bin/qemu-system-x86_64', 'qemu/usr/share/qemu/bios-256k.bin']) add(name);
const split = (s) => { const i = s.indexOf('='); return { name: s.slice(0, i), version: s.slice(i + 1) }; };
const triplet = 'x86_64-linux-gnu';
const manifest = {
  source: 'Debian apt archive',
  kernel: { package: `linux-image-${release}`, release, abi: Number(abi), image: 'bzImage', config: `config-${release}` },
  modules: order.split(' '),
  guest_modules: ['bl_alloc'],
  scratch: {
    modules: scratchOrder.split(' '),
    mount: '/mnt/scratch',
    mke2fs, e2fsck, e2fsprogs,
    note: 'a virtio-blk disk with an ext4 the host makes per run (bl.scratch=1 on the kernel command line); ext4, jbd2, mbcache, crc16, crc32c are built in',
  },
  qemu: {
    version: qemuVersion,
    binary: 'qemu/usr/bin/qemu-system-x86_64',
    datadir: 'qemu/usr/share/qemu',
    firmware: 'qemu/usr/share/qemu/bios-256k.bin',
    env: { LD_LIBRARY_PATH: [`qemu/usr/lib/${triplet}`, `qemu/lib/${triplet}`], QEMU_MODULE_DIR: `qemu/usr/lib/${triplet}/qemu` },
    args: ['-L', 'qemu/usr/share/qemu'],
    pdeathsig: 'bin/bl-pdeathsig',
    note: 'paths are relative to the directory of this manifest',
  },
  roots: roots.split(' ').map(split),
  packages: pkgs.map((s) => {
    const i = s.indexOf('='), j = s.lastIndexOf('=');
    return { name: s.slice(0, i), version: s.slice(i + 1, j), use: s.slice(j + 1) };
  }),
  sources_sha256: srcHash,
  files,
};
fs.writeFileSync(path.join(cache, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
JS
log "built $CACHE ($KPKG ${VER[$KPKG]}, $QVERSION)"
echo "$CACHE"
