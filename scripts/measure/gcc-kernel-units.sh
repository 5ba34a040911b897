#!/usr/bin/env bash
# Measures how GCC uses memory compiling units of a Linux 6.1 x86_64_defconfig build.
# See docs/workloads.md for what is measured and the results.
#
#   bash scripts/measure/gcc-kernel-units.sh            # everything (install, unpack, configure, measure, analyse)
#   SKIP_SETUP=1 bash scripts/measure/gcc-kernel-units.sh   # the tree is already configured and the units built
#
# Environment: KBUILD_ROOT (default /work/kbuild) holds the unpacked tree and the raw
# measurements (KBUILD_ROOT/measure/<unit>/); UNITS (default units.txt beside this script).
# Needs root for apt-get (Debian 12). It does not run in CI.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
root=${KBUILD_ROOT:-/work/kbuild}
units_file=${UNITS:-$here/units.txt}
src=$root/linux-source-6.1
out=$root/measure

if [ -z "${SKIP_SETUP:-}" ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-source-6.1 gcc make bc flex bison \
    libelf-dev libssl-dev dwarves strace time xz-utils
  mkdir -p "$root"
  if [ ! -d "$src" ]; then tar -C "$root" -xf /usr/src/linux-source-6.1.tar.xz; fi
  make -C "$src" x86_64_defconfig
  make -C "$src" -j2 scripts prepare
  # build each unit once through kbuild: its generated prerequisites, and its .cmd file
  # (the exact compile command kbuild used)
  # shellcheck disable=SC2046
  make -C "$src" -j2 $(grep -v '^#' "$units_file")
fi

mkdir -p "$out"
{
  echo "date $(date -u +%FT%TZ)"
  echo "uname $(uname -r)"
  echo "gcc $(gcc --version | head -1)"
  echo "as $(as --version | head -1)"
  echo "libc $(dpkg-query -W -f='${Version}' libc6)"
  echo "linux-source $(dpkg-query -W -f='${Version}' linux-source-6.1)"
  echo "strace $(strace -V | head -1)"
  echo "thp_enabled $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
  echo "randomize_va_space $(cat /proc/sys/kernel/randomize_va_space)"
  echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-) x $(nproc)"
} > "$out/machine.txt"

cd "$src"
for u in $(grep -v '^#' "$units_file"); do
  d=$(dirname "$u"); f=$(basename "$u")
  key=${u//\//_}
  w=$out/$key
  rm -rf "$w"; mkdir -p "$w"
  # the compile command kbuild recorded, without the objtool step that follows it
  full=$(sed -n "s|^cmd_$u := ||p" "$d/.$f.cmd")
  cmd=${full%%; ./tools/objtool*}
  post=${full#"$cmd"}; post=${post#; }
  printf '%s\n' "$cmd" > "$w/cmd.txt"
  # 1. timing run: /usr/bin/time on the whole compile, and (through gcc -wrapper) on cc1 and as each
  wcmd="gcc -wrapper /usr/bin/time,-v,-a,-o,$w/sub.time ${cmd#gcc }"
  cat /proc/loadavg > "$w/loadavg.before"
  /usr/bin/time -v -o "$w/total.time" bash -c "$wcmd"
  cat /proc/loadavg > "$w/loadavg.after"
  stat -c %s "$u" > "$w/object.bytes"
  # 2. traced run: every memory syscall, exec, open, read and write of every process, one file per pid
  strace -f -ff -qq -ttt -s 0 -e signal=none \
    -e trace=%memory,execve,openat,open,read,pread64,write,close \
    -o "$w/st" bash -c "$cmd"
  stat -c %s "$u" > "$w/object.bytes.traced"
  # leave the object as kbuild makes it: kbuild's objtool step rewrites it in place
  if [ -n "$post" ]; then bash -c "$post" >/dev/null; fi
  echo "measured $u"
done

# what-if: two units with the GC parameters GCC's heuristics (ggc-common.cc) give a 512 MiB
# machine (RAM/8 = 64 MiB, 30% + 70% x RAM/1 GiB = 65%) instead of this machine's caps
small="--param=ggc-min-heapsize=65536 --param=ggc-min-expand=65"
for u in mm/page_alloc.o net/wireless/nl80211.o; do
  key=${u//\//_}
  w=$out/smallram/$key
  rm -rf "$w"; mkdir -p "$w"
  cmd=$(cat "$out/$key/cmd.txt")
  /usr/bin/time -v -o "$w/total.time" bash -c "gcc $small -wrapper /usr/bin/time,-v,-a,-o,$w/sub.time ${cmd#gcc }"
  strace -f -ff -qq -ttt -s 0 -e signal=none -e trace=%memory,execve -o "$w/st" bash -c "gcc $small ${cmd#gcc }"
  rm -f "$u"; make -s "$u" >/dev/null
done

node "$here/analyze-strace.mjs" "$out" "$units_file" "$repo"
