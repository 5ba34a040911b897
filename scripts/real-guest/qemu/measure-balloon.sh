#!/usr/bin/env bash
# Measures, on this machine, where the wall time of a balloon inflate and deflate
# goes on the cached QEMU 10 + Linux 6.1 guest under TCG (docs/fidelity.md,
# "Balloon inflate and deflate under TCG"): the guest's own work (the vCPU thread)
# against the host's (QEMU's main loop thread, which runs
# virtio_balloon_handle_output without an iothread), per page.
#
#   scripts/real-guest/qemu/measure-balloon.sh [SIZE_MIB...]     (default: 64 256 512)
#
# One fresh 1 GiB QEMU per size (virtio-balloon-pci with deflate-on-oom=on, no
# free-page-hint, no iothread: what scenarios/real/qemu-inflate.yaml runs), then
# REPEAT cycles (default 3) of: QMP balloon to RAM - SIZE, poll query-balloon every
# POLL_MS (default 2) until `actual` is there; balloon to all of RAM, poll the same
# way. Around every phase the CPU time of each QEMU thread is read from
# /proc/<pid>/task/*/schedstat (ns on the CPU; -name debug-threads=on names the
# vCPU thread "CPU 0/TCG"), and the guest's balloon_inflate/balloon_deflate vmstat
# counters are read afterwards (through the agent, not during the phase). An
# "idle" phase of the same polling with nothing to do, before the first cycle,
# measures what polling and the idle guest cost by themselves.
#
# Prints one JSON object per line on stdout; progress goes to stderr.
#
# Environment: REAL_GUEST_QEMU_CACHE (the cache), REPEAT, POLL_MS, IDLE_MS
# (default 500), MEASURE_KEEP=1 keeps the scratch directory. Needs socat (installed
# with apt-get if missing). The QEMU and socket helpers are lib.sh's.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
REPEAT="${REPEAT:-3}"
POLL_MS="${POLL_MS:-2}"
POLL_S="0.$(printf '%03d' "$POLL_MS")"
IDLE_MS="${IDLE_MS:-500}"
RAM_MIB=1024

die() { echo "measure-balloon: error: $*" >&2; exit 1; }
log() { echo "measure-balloon: $*" >&2; }

# shellcheck source=lib.sh
. "$ROOT/scripts/real-guest/qemu/lib.sh"
lib_check

SCRATCH="$(mktemp -d /tmp/bl-measure-balloon.XXXXXX)"
cleanup() {
  kill_all
  if [ "${MEASURE_KEEP:-0}" = 1 ]; then log "kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

# start_vm: the VM "vm" in $RUN/vm, the device as scenarios/real/qemu-inflate.yaml has it; QPID is QEMU's pid.
QPID=""
start_vm() {
  qemu_start vm "$RAM_MIB" -name bl,debug-threads=on -device virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-hint=off || return 1
  QPID=$QEMU_PID
}

# cpu_snapshot: ns on the CPU per QEMU thread class (vcpu, main, other) into CPU_VCPU,
# CPU_MAIN, CPU_OTHER; ns runnable but waiting for a CPU (schedstat's second field)
# of the vCPU and main threads into WAIT_VCPU, WAIT_MAIN.
cpu_snapshot() {
  local t comm ns wait rest
  CPU_VCPU=0; CPU_MAIN=0; CPU_OTHER=0; WAIT_VCPU=0; WAIT_MAIN=0
  for t in /proc/"$QPID"/task/*; do
    IFS= read -r comm <"$t/comm" 2>/dev/null || continue
    read -r ns wait rest <"$t/schedstat" 2>/dev/null || continue
    case "$comm" in
      "CPU "*) CPU_VCPU=$(( CPU_VCPU + ns )); WAIT_VCPU=$(( WAIT_VCPU + wait )) ;;
      qemu-system-x86*) CPU_MAIN=$(( CPU_MAIN + ns )); WAIT_MAIN=$(( WAIT_MAIN + wait )) ;;
      *) CPU_OTHER=$(( CPU_OTHER + ns )) ;;
    esac
  done
}

actual_mib() { # ACTUAL: the guest's logical size query-balloon reports, in MiB (no subshell: polled)
  qmp vm 10 '{"execute":"query-balloon"}' || die "query-balloon: $REPLY_JSON"
  [[ "$REPLY_JSON" =~ \"actual\":\ *([0-9]+) ]] || die "query-balloon: $REPLY_JSON"
  ACTUAL=$(( BASH_REMATCH[1] / 1048576 ))
}

vmstat_balloon() { # balloon_inflate balloon_deflate
  run_ok vm 30 'grep -E "^balloon_(inflate|deflate) " /proc/vmstat'
  echo "$OUT" | awk '{v[$1]=$2} END {print v["balloon_inflate"]+0, v["balloon_deflate"]+0}'
}

# phase NAME TARGET_MIB PAGES CYCLE: balloon to TARGET_MIB and poll until there.
phase() {
  local name="$1" target="$2" pages="$3" cycle="$4" v0 v1 polls=0 a
  v0="$(vmstat_balloon)"
  cpu_snapshot; local m0=$CPU_MAIN c0=$CPU_VCPU o0=$CPU_OTHER wv0=$WAIT_VCPU wm0=$WAIT_MAIN
  local t0=${EPOCHREALTIME/./}
  qmp vm 10 "{\"execute\":\"balloon\",\"arguments\":{\"value\":$(( target * 1048576 ))}}" || die "balloon: $REPLY_JSON"
  while :; do
    read -r -t "$POLL_S" -u "$NEVER" _ || true
    polls=$((polls + 1))
    actual_mib
    [ "$ACTUAL" = "$target" ] && break
    [ $(( ${EPOCHREALTIME/./} - t0 )) -lt 120000000 ] || die "$name: actual $ACTUAL MiB after 120 s, target $target"
  done
  local t1=${EPOCHREALTIME/./}
  cpu_snapshot
  v1="$(vmstat_balloon)"
  set -- $v0 $v1
  printf '{"experiment":"balloon","phase":"%s","cycle":%d,"pages":%d,"wall_us":%d,"polls":%d,"cpu_ns":{"vcpu":%d,"main":%d,"other":%d},"runq_wait_ns":{"vcpu":%d,"main":%d},"vmstat":{"balloon_inflate":%d,"balloon_deflate":%d}}\n' \
    "$name" "$cycle" "$pages" $(( t1 - t0 )) "$polls" $(( CPU_VCPU - c0 )) $(( CPU_MAIN - m0 )) $(( CPU_OTHER - o0 )) $(( WAIT_VCPU - wv0 )) $(( WAIT_MAIN - wm0 )) $(( $3 - $1 )) $(( $4 - $2 ))
}

idle_phase() {
  local polls=0 t0 t1
  cpu_snapshot; local m0=$CPU_MAIN c0=$CPU_VCPU o0=$CPU_OTHER wv0=$WAIT_VCPU wm0=$WAIT_MAIN
  t0=${EPOCHREALTIME/./}
  while [ $(( ${EPOCHREALTIME/./} - t0 )) -lt $(( IDLE_MS * 1000 )) ]; do
    read -r -t "$POLL_S" -u "$NEVER" _ || true
    polls=$((polls + 1))
    actual_mib
  done
  t1=${EPOCHREALTIME/./}
  cpu_snapshot
  printf '{"experiment":"balloon","phase":"idle","wall_us":%d,"polls":%d,"cpu_ns":{"vcpu":%d,"main":%d,"other":%d},"runq_wait_ns":{"vcpu":%d,"main":%d}}\n' \
    $(( t1 - t0 )) "$polls" $(( CPU_VCPU - c0 )) $(( CPU_MAIN - m0 )) $(( CPU_OTHER - o0 )) $(( WAIT_VCPU - wv0 )) $(( WAIT_MAIN - wm0 ))
}

run_size() {
  local size="$1" i
  RUN="$SCRATCH/s$size"
  VM_BASE="$RUN"
  mkdir -p "$RUN"
  log "size $size MiB: boot"
  start_vm || die "qemu did not start: $(tail -n 3 "$RUN/vm/qemu.out" 2>/dev/null)"
  connect vm ttyS1
  qmp_open vm || die "qmp_capabilities: $REPLY_JSON"
  local deadline=$(( $(now_us) + 120000000 ))
  while :; do
    if agent_line vm 1 && [ "$LINE" = READY ]; then break; fi
    [ "$(now_us)" -lt "$deadline" ] || die "no READY from the guest's agent"
  done
  sleep 3 # let boot's stragglers finish
  mkfifo "$RUN/never"
  exec {NEVER}<>"$RUN/never"
  idle_phase
  for i in $(seq 1 "$REPEAT"); do
    log "size $size MiB: cycle $i"
    phase inflate $(( RAM_MIB - size )) $(( size * 256 )) "$i"
    phase deflate "$RAM_MIB" $(( size * 256 )) "$i"
  done
  kill_all
}

LD_LIBRARY_PATH="$CACHE/qemu/usr/lib/x86_64-linux-gnu:$CACHE/qemu/lib/x86_64-linux-gnu" \
  "$CACHE/qemu/usr/bin/qemu-system-x86_64" --version | head -n 1 | sed 's/^/measure-balloon: /' >&2
[ $# -gt 0 ] || set -- 64 256 512
for s in "$@"; do run_size "$s"; done
