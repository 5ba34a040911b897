#!/usr/bin/env bash
# Measures, on this machine, what the model's `host.accel: tcg` is calibrated
# against (docs/fidelity.md, "TCG and KVM: dirty tracking"): the cached QEMU 10 +
# Linux 6.1 guest under TCG, one experiment at a time, each in fresh QEMUs that
# are killed when it ends.
#
#   scripts/real-guest/qemu/measure-migration.sh [EXPERIMENT...]
#
# Experiments (default: all of them, in this order):
#   rate              the guest's achievable dirtying rate: bl-mem write over 64 MiB
#                     at a rate far above what TCG can do; stores / wall time until
#                     the writer has caught up (no migration running)
#   fault             wall time per page of bl-mem fault 256M, 4 KiB pages
#                     (nohugepage: fault + clear_page) and THP (hugepage: the
#                     clearing, the fault amortised over 512 pages)
#   idle-nohint       migrate the idle 1 GiB guest, free-page-hint=off
#   idle-hint         the same with free-page-hint=on (and an iothread)
#   wR-nohint, wR-hint  a 64 MiB bl-mem writer dirtying R MiB/s (e.g. w16-hint)
#                     during the migration; the default set has R = 4, 16, 64, 256
#   dN-nohint, dN-hint  N MiB of data held by a bl-mem process that does not write
#                     (with idle-*, at MAX_BANDWIDTH=10737418240 this separates the
#                     migration thread's cost of a zero page from a data page's);
#                     not in the default set
#
# Prints one JSON object per line on stdout: the experiment, its settings and
# either the figures (rate, fault) or query-migrate's answer at completion (or at
# the timeout, then the migration is cancelled). Progress goes to stderr.
#
# Environment: REAL_GUEST_QEMU_CACHE (the cache), MEASURE_TIMEOUT (seconds a
# migration may take, default 120), MAX_BANDWIDTH (bytes/s, default QEMU's
# 134217728), DOWNTIME_LIMIT (ms, default 300), MEASURE_KEEP=1 keeps the scratch
# directory. Needs socat (installed with apt-get if missing), as smoke.sh does.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
MIG_TIMEOUT="${MEASURE_TIMEOUT:-120}"
MAX_BW="${MAX_BANDWIDTH:-134217728}"
DT_LIMIT="${DOWNTIME_LIMIT:-300}"

die() { echo "measure: error: $*" >&2; exit 1; }
log() { echo "measure: $*" >&2; }

# shellcheck source=lib.sh
. "$ROOT/scripts/real-guest/qemu/lib.sh"
lib_check

SCRATCH="$(mktemp -d /tmp/bl-measure.XXXXXX)"
cleanup() {
  kill_all
  if [ "${MEASURE_KEEP:-0}" = 1 ]; then log "kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

# ------------------------------------------------------------------ QEMU and its sockets
# start_vm NAME HINT(on|off) [EXTRA QEMU ARGS...]: sockets and logs in $RUN/NAME.
start_vm() {
  local name="$1" hint="$2" dev; shift 2
  if [ "$hint" = on ]; then
    dev=(-object iothread,id=iot0 -device virtio-balloon-pci,id=balloon0,free-page-hint=on,iothread=iot0)
  else
    dev=(-device virtio-balloon-pci,id=balloon0,free-page-hint=off)
  fi
  qemu_start "$name" 1024 "${dev[@]}" "$@"
}
json_str() { echo "$1" | sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }
kv() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; } # KEY's value in a bl-mem reply

# boot NAME HINT [EXTRA...]: start, connect, wait for the agent's READY.
boot() {
  local name="$1"
  start_vm "$@" || die "qemu ($name) did not start: $(tail -n 3 "$RUN/$name/qemu.out" 2>/dev/null)"
  connect "$name" ttyS1
  qmp_open "$name" || die "qmp_capabilities ($name): $REPLY_JSON"
  [ "$name" = src ] || return 0
  local r line deadline=$(( $(now_ms) + 120000 ))
  eval "r=\$R_${name}_ttyS1"
  while [ "$(now_ms)" -lt "$deadline" ]; do
    if IFS= read -r -t 1 -u "$r" line && [ "$line" = READY ]; then return 0; fi
  done
  die "no READY from the $name guest's agent"
}

# ------------------------------------------------------------------ experiments
exp_rate() {
  boot src off
  run_ok src 60 'bl-mem w fault 64M'
  # 64 GiB/s for 1 s: 16.7 M stores due, far more than TCG can do in 1 s; the
  # writer catches up in chunks (holding its lock) and stops when all are done.
  local bps=68719476736 ms=1000 t0 t1 stores
  stores=$(( bps * ms / 4096000 ))
  run_ok src 30 "bl-mem w write $bps $ms 1"
  t0="$(now_ms)"
  while :; do
    run_ok src 300 'bl-mem w stat'
    [ "$(kv "$OUT" writing)" = 0 ] && break
    [ $(( $(now_ms) - t0 )) -lt 300000 ] || die "the writer did not finish in 300 s"
    sleep 0.05
  done
  t1="$(now_ms)"
  local written; written="$(kv "$OUT" written)"
  printf '{"experiment":"rate","writer_bytes":67108864,"stores":%d,"written":%s,"wall_ms":%d,"pages_per_s":%d}\n' \
    "$stores" "$written" $(( t1 - t0 )) $(( written * 1000 / (t1 - t0) ))
}

exp_fault() {
  boot src off
  run_ok src 120 'bl-mem a fault 256M nohugepage'
  local small="$OUT"
  run_ok src 120 'bl-mem b fault 256M hugepage align=2M'
  local huge="$OUT"
  printf '{"experiment":"fault","pages":65536,"nohugepage_ms":%s,"nohugepage_anon_huge_kb":%s,"hugepage_ms":%s,"hugepage_anon_huge_kb":%s}\n' \
    "$(kv "$small" ms)" "$(kv "$small" anon_huge_kb)" "$(kv "$huge" ms)" "$(kv "$huge" anon_huge_kb)"
}

# exp_migrate NAME HINT WRITER_MIB_PER_S (0: no writer) [HELD_MIB]
exp_migrate() {
  local name="$1" hint="$2" rate="$3" held="${4:-0}"
  boot src "$hint"
  local writer='null'
  if [ "$held" -gt 0 ]; then
    run_ok src 120 "bl-mem d fault ${held}M"
    writer="{\"bytes\":$(( held * 1048576 )),\"rate_bytes_per_s\":0}"
  fi
  if [ "$rate" -gt 0 ]; then
    run_ok src 60 'bl-mem w fault 64M'
    run_ok src 30 "bl-mem w write $(( rate * 1048576 )) 3600000 1"
    writer="{\"bytes\":67108864,\"rate_bytes_per_s\":$(( rate * 1048576 ))}"
    sleep 2
  fi
  local port=$(( 20000 + RANDOM % 20000 ))
  boot dst "$hint" -incoming "tcp:127.0.0.1:$port"
  qmp src 10 "{\"execute\":\"migrate-set-parameters\",\"arguments\":{\"max-bandwidth\":$MAX_BW,\"downtime-limit\":$DT_LIMIT}}" \
    || die "migrate-set-parameters: $REPLY_JSON"
  qmp src 10 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$port\"}}" || die "migrate: $REPLY_JSON"
  case "$REPLY_JSON" in *'"error"'*) die "migrate: $REPLY_JSON" ;; esac
  local status="" deadline=$(( $(now_ms) + MIG_TIMEOUT * 1000 ))
  while :; do
    qmp src 10 '{"execute":"query-migrate"}' || die "query-migrate: $REPLY_JSON"
    status="$(json_str "$REPLY_JSON" status)"
    case "$status" in completed|failed|cancelled) break ;; esac
    [ "$(now_ms)" -lt "$deadline" ] || break
    sleep 0.1
  done
  local answer="$REPLY_JSON"
  case "$status" in completed|failed|cancelled) ;; *) qmp src 10 '{"execute":"migrate_cancel"}' || true ;; esac
  printf '{"experiment":"%s","free_page_hint":"%s","writer":%s,"max_bandwidth":%s,"downtime_limit":%s,"timeout_s":%s,"query_migrate":%s}\n' \
    "$name" "$hint" "$writer" "$MAX_BW" "$DT_LIMIT" "$MIG_TIMEOUT" "$answer"
}

run_one() {
  RUN="$SCRATCH/$1"
  VM_BASE="$RUN"
  mkdir -p "$RUN"
  log "$1"
  case "$1" in
    rate) exp_rate ;;
    fault) exp_fault ;;
    idle-nohint) exp_migrate "$1" off 0 ;;
    idle-hint) exp_migrate "$1" on 0 ;;
    w[0-9]*-nohint) local r="${1#w}"; exp_migrate "$1" off "${r%-nohint}" ;;
    w[0-9]*-hint) local r="${1#w}"; exp_migrate "$1" on "${r%-hint}" ;;
    d[0-9]*-nohint) local r="${1#d}"; exp_migrate "$1" off 0 "${r%-nohint}" ;;
    d[0-9]*-hint) local r="${1#d}"; exp_migrate "$1" on 0 "${r%-hint}" ;;
    *) die "unknown experiment $1 (rate, fault, idle-nohint, idle-hint, wR-nohint, wR-hint, dN-nohint, dN-hint)" ;;
  esac
  kill_all
}

LD_LIBRARY_PATH="$CACHE/qemu/usr/lib/x86_64-linux-gnu:$CACHE/qemu/lib/x86_64-linux-gnu" \
  "$CACHE/qemu/usr/bin/qemu-system-x86_64" --version | head -n 1 | sed 's/^/measure: /' >&2
[ $# -gt 0 ] || set -- rate fault idle-nohint idle-hint w4-nohint w4-hint w16-nohint w16-hint w64-nohint w64-hint w256-nohint w256-hint
for e in "$@"; do run_one "$e"; done
