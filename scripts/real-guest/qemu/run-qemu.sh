#!/usr/bin/env bash
# Run the QEMU 10 that build-qemu-image.sh extracted into the cache, through
# bl-pdeathsig (QEMU gets SIGKILL when the process that started this script dies).
#
#   scripts/real-guest/qemu/run-qemu.sh [QEMU ARGS...]
#
# What it does, for a launcher that wants to do it itself (CACHE = the cache
# directory, .cache/real-guest-qemu or $REAL_GUEST_QEMU_CACHE):
#   LD_LIBRARY_PATH=$CACHE/qemu/usr/lib/x86_64-linux-gnu:$CACHE/qemu/lib/x86_64-linux-gnu
#   QEMU_MODULE_DIR=$CACHE/qemu/usr/lib/x86_64-linux-gnu/qemu
#   exec $CACHE/bin/bl-pdeathsig $CACHE/qemu/usr/bin/qemu-system-x86_64 \
#        -L $CACHE/qemu/usr/share/qemu ARGS...
# (-L holds the firmware: bios-256k.bin, the default pc machine's SeaBIOS, is a
# link to the tree's usr/share/seabios/bios-256k.bin; vgabios and iPXE ROMs too.)
# exec keeps the PID: the caller's child is QEMU itself.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
CACHE="${REAL_GUEST_QEMU_CACHE:-$ROOT/.cache/real-guest-qemu}"
Q="$CACHE/qemu"
T=x86_64-linux-gnu
[ -x "$Q/usr/bin/qemu-system-x86_64" ] || { echo "run-qemu: error: no QEMU in $CACHE (run scripts/real-guest/build-qemu-image.sh)" >&2; exit 1; }
export LD_LIBRARY_PATH="$Q/usr/lib/$T:$Q/lib/$T${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export QEMU_MODULE_DIR="$Q/usr/lib/$T/qemu"
exec "$CACHE/bin/bl-pdeathsig" "$Q/usr/bin/qemu-system-x86_64" -L "$Q/usr/share/qemu" "$@"
