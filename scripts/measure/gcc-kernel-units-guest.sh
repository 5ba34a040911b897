#!/usr/bin/env bash
# Runs the cc1 of each measured unit inside Debian's Linux 6.1 (linux-image-6.1.0-57-cloud-amd64,
# the kernel the model follows) under QEMU/KVM, under strace, to see where 6.1 places cc1's
# anonymous mappings (the host that ran gcc-kernel-units.sh may run another kernel: mmap
# placement changed after 6.1, see docs/workloads.md). Run after gcc-kernel-units.sh.
#
#   bash scripts/measure/gcc-kernel-units-guest.sh
#
# The guest is an initramfs: busybox-static, cc1, strace and their shared libraries, and the
# files of the kernel tree that cc1 opened on the host (from the host's traces). Each unit's cc1
# command is the one `gcc -###` prints for kbuild's compile command. The traces come back
# through the second serial port as a base64 tar. Also sampled in the guest: cc1's
# AnonHugePages (smaps_rollup) every 0.2 s and its last /proc/PID/maps.
# Environment: KBUILD_ROOT (default /work/kbuild), UNITS (default guest-units.txt beside this script:
# TCG is slow), GUEST_ACCEL (default tcg; kvm where nested KVM works),
# GUEST_MEM (default 2048 MiB: GCC's GC heuristics are at their caps from 1 GiB of RAM on).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=${KBUILD_ROOT:-/work/kbuild}
units_file=${UNITS:-$here/guest-units.txt}
src=$root/linux-source-6.1
out=$root/measure
g=$root/guest
kver=6.1.0-57-cloud-amd64
mem=${GUEST_MEM:-2048}

apt-get install -y -q --no-install-recommends qemu-system-x86 busybox-static cpio >/dev/null
mkdir -p "$g"
if [ ! -f "$g/img/boot/vmlinuz-$kver" ]; then
  (cd "$g" && apt-get download "linux-image-$kver" && dpkg -x linux-image-"$kver"_*.deb img)
fi

rfs=$g/rootfs
rm -rf "$rfs"; mkdir -p "$rfs"/{bin,proc,sys,dev,tmp,out,units,usr/lib64,usr/lib/x86_64-linux-gnu}
ln -s usr/lib "$rfs/lib"; ln -s usr/lib64 "$rfs/lib64"
cp /bin/busybox "$rfs/bin/busybox"
# programs and their libraries, at their own paths (Debian's /lib is /usr/lib)
cc1=/usr/lib/gcc/x86_64-linux-gnu/12/cc1
for f in "$cc1" /usr/bin/strace; do
  mkdir -p "$rfs$(dirname "$f")"; cp "$f" "$rfs$f"
  for l in $(ldd "$f" | grep -o '/[^ ]*'); do
    r=$(readlink -f "$l"); d=/usr${l#/usr}; mkdir -p "$rfs$(dirname "$d")"; cp "$r" "$rfs$d"
  done
done

# the tree's files that cc1 opened on the host, and each unit's cc1 command (one argument a line)
node - "$out" "$units_file" "$rfs" "$src" <<'EOF'
const fs = require('node:fs'), path = require('node:path'), cp = require('node:child_process');
const [out, unitsFile, rfs, src] = process.argv.slice(2);
const units = fs.readFileSync(unitsFile, 'utf8').split('\n').map((s) => s.trim()).filter((s) => s && !s.startsWith('#'));
const files = new Set();
for (const u of units) {
  const key = u.replaceAll('/', '_');
  const dir = path.join(out, key);
  for (const f of fs.readdirSync(dir).filter((n) => /^st\.\d+$/.test(n))) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    if (!text.includes('/cc1"')) continue;
    for (const m of text.matchAll(/openat\(AT_FDCWD, "([^"]+)", O_RDONLY[^)]*\) = \d+/g)) {
      if (!m[1].startsWith('/')) files.add(path.normalize(m[1]));
    }
  }
  const cmd = fs.readFileSync(path.join(dir, 'cmd.txt'), 'utf8').trim();
  const res = cp.spawnSync('bash', ['-c', cmd.replace(/^gcc /, 'gcc -### ')], { cwd: src, encoding: 'utf8' });
  const line = res.stderr.split('\n').find((l) => /\/cc1"? /.test(l));
  if (!line) throw new Error(`no cc1 command for ${u}`);
  // -### quotes the arguments that need it, with backslash escapes inside the quotes
  const args = [];
  let cur = null, q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (q) { if (ch === '\\') cur += line[++i]; else if (ch === '"') q = false; else cur += ch; continue; }
    if (ch === ' ') { if (cur !== null) { args.push(cur); cur = null; } continue; }
    if (cur === null) cur = '';
    if (ch === '"') q = true; else cur += ch;
  }
  if (cur !== null) args.push(cur);
  fs.writeFileSync(path.join(rfs, 'units', key), `${args.join('\n')}\n`);
}
for (const f of files) {
  const dst = path.join(rfs, 'k', f);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(path.join(src, f), dst);
}
console.log(`${files.size} tree files, ${units.length} units`);
EOF
grep -v '^#' "$units_file" | sed 's|/|_|g' > "$rfs/units.order"
# directories of the dependency files cc1 writes (-MMD dir/.file.o.d)
for u in $(grep -v '^#' "$units_file"); do mkdir -p "$rfs/k/$(dirname "$u")"; done

cat > "$rfs/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
uname -r > /out/uname.txt
cat /proc/meminfo > /out/meminfo.txt
cat /sys/kernel/mm/transparent_hugepage/enabled > /out/thp.txt
cat /proc/sys/kernel/randomize_va_space > /out/randomize_va_space.txt
cd /k
stty -F /dev/ttyS1 raw -echo
for key in $(cat /units.order); do
  a=/units/$key
  mkdir -p /out/$key
  set --
  while IFS= read -r x; do set -- "$@" "$x"; done < "$a"
  # memory syscalls only: every traced call is slow under TCG (the host run has the file I/O)
  strace -f -ff -qq -ttt -e signal=none -e trace=%memory,execve -o /out/$key/st "$@" &
  sp=$!
  # AnonHugePages of cc1 every 0.2 s, and its maps at the last sample
  while kill -0 $sp 2>/dev/null; do
    for p in $(pidof cc1); do
      grep AnonHugePages /proc/$p/smaps_rollup >> /out/$key/thp.samples 2>/dev/null
      cat /proc/$p/maps > /out/$key/maps.tmp 2>/dev/null && mv /out/$key/maps.tmp /out/$key/maps.last
    done
    sleep 0.2
  done
  wait $sp; echo "rc $?" > /out/$key/rc
  # each unit's results as soon as it is done: a base64 tar between marker lines
  echo "BEGIN $key" > /dev/ttyS1
  (cd /out && tar cf - $key *.txt | base64) > /dev/ttyS1
  echo "END $key" > /dev/ttyS1
  echo "guest: $key done"
done
echo "guest: all done"
sync; poweroff -f
EOF
chmod +x "$rfs/init"
(cd "$rfs" && find . | cpio -o -H newc --quiet) > "$g/initrd.cpio"
echo "initrd $(stat -c %s "$g/initrd.cpio") bytes"

rm -f "$g/console.log" "$g/data.b64"
# TCG: KVM on a nested host may fail (it did on the machine of docs/workloads.md); placement does not depend on it
timeout 5400 qemu-system-x86_64 -accel "${GUEST_ACCEL:-tcg}" -cpu max -smp 1 -m "$mem" -nographic -no-reboot \
  -kernel "$g/img/boot/vmlinuz-$kver" -initrd "$g/initrd.cpio" \
  -append "console=ttyS0 rdinit=/init quiet panic=-1" \
  -serial "file:$g/console.log" -serial "file:$g/data.b64" -monitor none
rm -rf "$out/guest61"; mkdir -p "$out/guest61"
for key in $(grep '^BEGIN ' "$g/data.b64" | cut -d' ' -f2 | tr -d '\r'); do
  sed -n "/^BEGIN $key/,/^END $key/p" "$g/data.b64" | sed '1d;$d' | base64 -d -i | tar -C "$out/guest61" -xf -
done
echo "guest results in $out/guest61 ($(cat "$out/guest61/uname.txt"))"
node "$here/analyze-strace.mjs" "$out" "$here/units.txt" "$(cd "$here/../.." && pwd)"
