#!/usr/bin/env bash
# Build the real guest's boot set (BIOS, i386 kernel, initramfs) for v86 from
# Debian's packages only, into the git-ignored cache .cache/real-guest/.
#
#   bios.bin      seabios's /usr/share/seabios/bios.bin
#   bzImage       linux-image-6.1.0-<N>-686-unsigned:i386's /boot/vmlinuz-*
#                 (newest <N> the archive has)
#   initrd.cpio   uncompressed newc cpio: busybox-static:i386 and the six virtio
#                 modules; /init mounts proc/sys/devtmpfs, loads them in order
#                 and runs a shell on ttyS0 (prompt "guest# ")
#   manifest.json packages and versions, file sizes and sha256
#
# Idempotent: when the manifest names the same package versions and every file
# it lists is present with its size, nothing is done. Needs root (or sudo) for
# dpkg --add-architecture / apt-get update / apt-get install cpio.
# Environment: REAL_GUEST_CACHE overrides the cache directory.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${REAL_GUEST_CACHE:-$ROOT/.cache/real-guest}"
MODULES=(virtio virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_balloon)

die() { echo "build-image: error: $*" >&2; exit 1; }
log() { echo "build-image: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "not root and no sudo: dpkg/apt-get need root"
  SUDO="sudo"
fi
command -v apt-get >/dev/null || die "apt-get not found: this script needs a Debian (bookworm) host"
command -v node >/dev/null || die "node not found (it writes and checks manifest.json)"

updated=0
apt_update() {
  if [ "$updated" -eq 0 ]; then
    log "apt-get update"
    # Some index files failing (e.g. a mirror mid-sync) is not fatal: the
    # look-ups below name the package that cannot be had.
    $SUDO apt-get update -qq >&2 || log "warning: apt-get update reported errors; carrying on with the lists it has"
    updated=1
  fi
}

if ! dpkg --print-foreign-architectures | grep -qx i386; then
  log "dpkg --add-architecture i386"
  $SUDO dpkg --add-architecture i386
  apt_update
fi

# Newest linux-image-6.1.0-<N>-686-unsigned in the archive (i386).
find_kernel() {
  apt-cache pkgnames linux-image-6.1.0- 2>/dev/null \
    | sed -n 's/^\(linux-image-6\.1\.0-[0-9][0-9]*-686-unsigned\)\(:i386\)\{0,1\}$/\1/p' \
    | sort -uV | tail -n 1
}
KPKG="$(find_kernel)"
if [ -z "$KPKG" ]; then apt_update; KPKG="$(find_kernel)"; fi
[ -n "$KPKG" ] || die "package linux-image-6.1.0-<N>-686-unsigned:i386 not found in the apt archive (is bookworm main in sources.list?)"

# Candidate version of package $1 ("name:arch"), or empty.
candidate() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' || true; }

PKGS=("$KPKG:i386" "busybox-static:i386" "seabios")
declare -A VER
for p in "${PKGS[@]}"; do
  v="$(candidate "$p")"
  if [ -z "$v" ]; then apt_update; v="$(candidate "$p")"; fi
  [ -n "$v" ] || die "package $p cannot be had from the apt archive (apt-cache policy shows no candidate)"
  VER[$p]="$v"
done

mkdir -p "$CACHE"
MANIFEST="$CACHE/manifest.json"

# This script's own hash: a change to how the set is built rebuilds it.
BUILDER="$(sha256sum "$0" | cut -c1-16)"

# Up to date? Same builder, same package versions, every listed file present with its size.
if [ -f "$MANIFEST" ] && node - "$MANIFEST" "$CACHE" "$BUILDER" "${PKGS[0]}=${VER[${PKGS[0]}]}" "${PKGS[1]}=${VER[${PKGS[1]}]}" "${PKGS[2]}=${VER[${PKGS[2]}]}" <<'JS'
const fs = require('node:fs'), path = require('node:path');
const [manifestPath, cache, builder, ...want] = process.argv.slice(2);
const m = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
if (m.builder !== builder) process.exit(1);
const have = new Set(m.packages.map((p) => `${p.name}=${p.version}`));
if (!want.every((w) => have.has(w))) process.exit(1);
for (const [name, f] of Object.entries(m.files)) {
  const p = path.join(cache, name);
  if (!fs.existsSync(p) || fs.statSync(p).size !== f.bytes) process.exit(1);
}
JS
then
  log "up to date: $CACHE ($KPKG ${VER[${PKGS[0]}]})"
  exit 0
fi

# Debian's cpio builds the initramfs.
if ! command -v cpio >/dev/null; then
  log "installing Debian's cpio"
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cpio >/dev/null || die "package cpio cannot be installed with apt-get"
fi

# binutils' objcopy reads the modules' .modinfo (their load order).
if ! command -v objcopy >/dev/null; then
  log "installing Debian's binutils"
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq binutils >/dev/null || die "package binutils cannot be installed with apt-get"
fi

DEBS="$CACHE/debs"
mkdir -p "$DEBS"
declare -A DEB
for p in "${PKGS[@]}"; do
  name="${p%%:*}"
  v="${VER[$p]}"
  # apt-get download writes name_version-with-%3a_arch.deb
  existing="$(ls "$DEBS/${name}_${v//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)"
  if [ -z "$existing" ]; then
    log "apt-get download $p=$v"
    ( cd "$DEBS" && apt-get download -q "$p=$v" >&2 ) \
      || die "package $p=$v cannot be downloaded from the apt archive"
    existing="$(ls "$DEBS/${name}_${v//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)"
    [ -n "$existing" ] || die "package $p: apt-get download left no .deb in $DEBS"
  fi
  DEB[$p]="$existing"
done

WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
for p in "${PKGS[@]}"; do
  d="$WORK/pkg/${p%%:*}"
  mkdir -p "$d"
  dpkg-deb -x "${DEB[$p]}" "$d" || die "package $p: dpkg-deb cannot extract ${DEB[$p]}"
done
KROOT="$WORK/pkg/$KPKG"

# The kernel.
vmlinuz="$(ls "$KROOT"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)"
[ -n "$vmlinuz" ] || die "package $KPKG has no /boot/vmlinuz-*"
KREL="${vmlinuz##*/vmlinuz-}"

# The BIOS.
bios="$WORK/pkg/seabios/usr/share/seabios/bios.bin"
[ -f "$bios" ] || die "package seabios has no /usr/share/seabios/bios.bin"

# The initramfs.
IR="$WORK/initramfs"
mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc,lib/modules}
bb="$WORK/pkg/busybox-static/bin/busybox"
[ -f "$bb" ] || die "package busybox-static:i386 has no /bin/busybox"
cp "$bb" "$IR/bin/busybox"
ln -s busybox "$IR/bin/sh"
for m in "${MODULES[@]}"; do
  f="$(find "$KROOT/lib/modules/$KREL" \( -name "$m.ko" -o -name "$m.ko.xz" \) | head -n 1)"
  [ -n "$f" ] || die "package $KPKG has no module $m.ko or $m.ko.xz"
  case "$f" in
    *.ko.xz)
      command -v xz >/dev/null || { apt_update; $SUDO apt-get install -y -qq xz-utils >&2 || die "package xz-utils cannot be installed with apt-get"; }
      xz -dc "$f" > "$IR/lib/modules/$m.ko" ;;
    *) cp "$f" "$IR/lib/modules/$m.ko" ;;
  esac
done
# Load order: each module after the ones its .modinfo "depends=" names (Debian's
# kernels have moved virtio_ring ahead of virtio between 6.1 builds: never assume).
mod_depends() {
  objcopy -O binary --only-section=.modinfo "$IR/lib/modules/$1.ko" "$WORK/$1.modinfo" 2>/dev/null \
    || die "package $KPKG: cannot read .modinfo of $1.ko (is binutils installed?)"
  tr '\0' '\n' < "$WORK/$1.modinfo" | sed -n 's/^depends=//p' | tr ',' ' '
}
declare -A DEPS PLACED
for m in "${MODULES[@]}"; do DEPS[$m]="$(mod_depends "$m")"; done
ORDER=()
while [ "${#ORDER[@]}" -lt "${#MODULES[@]}" ]; do
  progress=0
  for m in "${MODULES[@]}"; do
    [ -z "${PLACED[$m]:-}" ] || continue
    ok=1
    for d in ${DEPS[$m]}; do
      [ -n "${DEPS[$d]+set}" ] || die "module $m (package $KPKG) depends on $d, which is not one of ${MODULES[*]}"
      [ -n "${PLACED[$d]:-}" ] || ok=0
    done
    if [ "$ok" -eq 1 ]; then ORDER+=("$m"); PLACED[$m]=1; progress=1; fi
  done
  [ "$progress" -eq 1 ] || die "module dependency cycle among ${MODULES[*]} (package $KPKG)"
done
log "virtio module order: ${ORDER[*]}"
# A console node for the kernel to open before devtmpfs is mounted (when mknod
# is allowed here; /init reopens the console after mounting devtmpfs anyway).
mknod -m 600 "$IR/dev/console" c 5 1 2>/dev/null || true
cat > "$IR/init" <<INIT
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
for m in ${ORDER[*]}; do
  insmod /lib/modules/\$m.ko || echo "init: insmod \$m failed"
done
# Only errors and warnings on the console from here on (dmesg has the rest).
echo 5 > /proc/sys/kernel/printk
export HOME=/root PS1='guest# '
cd /root
echo "init: ready"
while true; do setsid cttyhack sh; done
INIT
chmod 755 "$IR/init"
# Reproducible: fixed mtimes, sorted names, renumbered inodes (a v86 state
# snapshot is valid only for the exact images it was taken with).
find "$IR" -exec touch -h -d @0 {} +
( cd "$IR" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible ) > "$WORK/initrd.cpio" \
  || die "cpio failed to write the initramfs"

install -m 644 "$vmlinuz" "$CACHE/bzImage"
install -m 644 "$bios" "$CACHE/bios.bin"
install -m 644 "$WORK/initrd.cpio" "$CACHE/initrd.cpio"

node - "$CACHE" "$KREL" "${ORDER[*]}" "$BUILDER" \
  "${PKGS[0]}=${VER[${PKGS[0]}]}" "${PKGS[1]}=${VER[${PKGS[1]}]}" "${PKGS[2]}=${VER[${PKGS[2]}]}" <<'JS'
const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
const [cache, kernelRelease, modules, builder, ...pkgs] = process.argv.slice(2);
const files = {};
for (const name of ['bios.bin', 'bzImage', 'initrd.cpio']) {
  const buf = fs.readFileSync(path.join(cache, name));
  files[name] = { bytes: buf.length, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
}
const manifest = {
  source: 'Debian apt archive',
  builder,
  kernel_release: kernelRelease,
  modules: modules.split(' '),
  packages: pkgs.map((s) => { const i = s.indexOf('='); return { name: s.slice(0, i), version: s.slice(i + 1) }; }),
  files,
};
fs.writeFileSync(path.join(cache, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
JS
log "built $CACHE ($KPKG ${VER[${PKGS[0]}]}, kernel $KREL)"
