#!/usr/bin/env bash
# Smoke test of the QEMU boot set that build-qemu-image.sh put in the cache:
# boots the guest under QEMU 10 (TCG), talks to bl-agent on ttyS1 and to QMP, and
# checks the balloon, bl-mem, bl_alloc and one loopback migration. Prints one
# line per check with its wall time; exits non-zero at the first failure (with
# the console's last lines). Needs socat (installed with apt-get if missing).
#
#   scripts/real-guest/qemu/smoke.sh
#
# Environment: REAL_GUEST_QEMU_CACHE (the cache), SMOKE_TIMEOUT (whole run,
# default 600 s), SMOKE_KEEP=1 keeps the scratch directory (logs, sockets).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
TOTAL_TIMEOUT="${SMOKE_TIMEOUT:-600}"

die() { echo "smoke: error: $*" >&2; exit 1; }
log() { echo "smoke: $*" >&2; }

# shellcheck source=lib.sh
. "$ROOT/scripts/real-guest/qemu/lib.sh"
lib_check

SCRATCH="$(mktemp -d /tmp/bl-smoke.XXXXXX)"
VM_BASE="$SCRATCH"
WATCHDOG=""
cleanup() {
  [ -z "$WATCHDOG" ] || kill -TERM "$WATCHDOG" 2>/dev/null || true
  kill_all
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then log "kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT
trap 'echo "smoke: error: timed out after ${TOTAL_TIMEOUT}s" >&2; exit 1' USR1
( trap 'kill "$s" 2>/dev/null; exit 0' TERM; sleep "$TOTAL_TIMEOUT" & s=$!; wait "$s"; kill -USR1 $$ 2>/dev/null ) &
WATCHDOG=$!

T_CHECK=0
begin() { T_CHECK="$(now_ms)"; }
ok() { printf 'ok   %-44s %7d ms  %s\n' "$1" $(( $(now_ms) - T_CHECK )) "${2:-}"; }
fail() {
  printf 'FAIL %-44s %7d ms  %s\n' "$1" $(( $(now_ms) - T_CHECK )) "${2:-}"
  local c
  for c in "$SCRATCH"/*/console.log; do
    [ -f "$c" ] && { echo "--- last lines of $c"; tail -n 25 "$c"; }
  done
  exit 1
}

# ------------------------------------------------------------------ QEMU
# start_vm NAME [EXTRA QEMU ARGS...]: sockets and logs in $SCRATCH/NAME.
start_vm() {
  local name="$1"; shift
  qemu_start "$name" 1024 -object iothread,id=iot0 \
    -device virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-hint=on,iothread=iot0 "$@"
}
json_num() { echo "$1" | sed -n "s/.*\"$2\": *\([0-9][0-9]*\).*/\1/p" | head -n 1; }
json_str() { echo "$1" | sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p" | head -n 1; }

# ------------------------------------------------------------------ checks
echo "smoke: $(LD_LIBRARY_PATH="$CACHE/qemu/usr/lib/x86_64-linux-gnu:$CACHE/qemu/lib/x86_64-linux-gnu" "$CACHE/qemu/usr/bin/qemu-system-x86_64" --version | head -n 1)"

begin
start_vm src || fail "start qemu (source)" "$(tail -n 3 "$SCRATCH/src/qemu.out" 2>/dev/null)"
connect src ttyS1
qmp_open src || fail "qmp_capabilities (source)" "$REPLY_JSON"
ready=0
deadline=$(( $(now_ms) + 120000 ))
while [ "$(now_ms)" -lt "$deadline" ]; do
  if agent_line src 1; then [ "$LINE" = READY ] && { ready=1; break; }; fi
  kill -0 "$PID_src" 2>/dev/null || break
done
[ "$ready" = 1 ] || fail "boot to agent READY" "no READY on ttyS1"
ok "boot to agent READY" "$(grep -m 1 'bl-init: ready' "$SCRATCH/src/console.log" || true)"

begin
ping_agent src 10 || fail "agent PING" "no PONG"
ok "agent PING" "PONG"

begin
agent src 30 'test -e /sys/bus/virtio/drivers/virtio_balloon/virtio0 && cat /sys/bus/virtio/devices/virtio0/features' \
  && [ "$STATUS" = 0 ] || fail "virtio_balloon bound (virtio0)" "status=$STATUS $OUT"
ok "virtio_balloon bound (virtio0)" "features=$OUT"

begin
agent src 30 'cat /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag /proc/sys/vm/min_free_kbytes; grep MemTotal /proc/meminfo' \
  && [ "$STATUS" = 0 ] || fail "guest defaults" "status=$STATUS $OUT"
ok "guest defaults" "$(echo "$OUT" | tr '\n' ' ' | tr -s ' ')"

begin
qmp src 10 '{"execute":"balloon","arguments":{"value":805306368}}' || fail "balloon to 768 MiB" "$REPLY_JSON"
inflate=0
deadline=$(( $(now_ms) + 120000 ))
while [ "$(now_ms)" -lt "$deadline" ]; do
  agent src 30 'grep "^balloon_inflate " /proc/vmstat' || fail "balloon to 768 MiB" "agent: $OUT"
  inflate="${OUT#balloon_inflate }"
  [ "$inflate" -ge 65536 ] && break
  sleep 0.2
done
[ "$inflate" = 65536 ] || fail "balloon to 768 MiB" "balloon_inflate=$inflate (want 65536)"
qmp src 10 '{"execute":"query-balloon"}'
actual="$(json_num "$REPLY_JSON" actual)"
[ "$actual" = 805306368 ] || fail "balloon to 768 MiB" "query-balloon: $REPLY_JSON"
ok "balloon to 768 MiB" "balloon_inflate=$inflate actual=$actual"

begin
agent src 60 'bl-mem smoke fault 64M && bl-mem smoke free 0.5 alternate && bl-mem smoke exit' \
  && [ "$STATUS" = 0 ] || fail "bl-mem fault 64M, free 0.5 alternate, exit" "status=$STATUS $OUT"
ok "bl-mem fault 64M, free 0.5 alternate, exit" "$(echo "$OUT" | tr '\n' '|')"

begin
agent src 60 'C=/sys/kernel/debug/bl_alloc/ctl; echo "alloc smoke 9 GFP_HIGHUSER_MOVABLE|__GFP_NOWARN 64" > $C && cat $C && echo "free smoke 0.5 random:1" > $C && cat $C && echo freeall > $C && cat $C' \
  && [ "$STATUS" = 0 ] || fail "bl_alloc order-9 alloc/free" "status=$STATUS $OUT"
case "$OUT" in *"op=alloc tag=smoke order=9 requested=64 succeeded="*"op=free tag=smoke"*) ;; *) fail "bl_alloc order-9 alloc/free" "$OUT" ;; esac
ok "bl_alloc order-9 alloc/free" "$(echo "$OUT" | tr '\n' '|')"

# Migration to a second QEMU on this machine.
begin
PORT=$(( 20000 + RANDOM % 20000 ))
start_vm dst -incoming "tcp:127.0.0.1:$PORT" || fail "start qemu (destination)" "$(tail -n 3 "$SCRATCH/dst/qemu.out" 2>/dev/null)"
connect dst ttyS1
qmp_open dst || fail "qmp_capabilities (destination)" "$REPLY_JSON"
ok "start destination qemu" "-incoming tcp:127.0.0.1:$PORT"

begin
qmp src 10 '{"execute":"migrate-set-parameters","arguments":{"max-bandwidth":1073741824,"downtime-limit":300}}' \
  || fail "migrate" "$REPLY_JSON"
qmp src 10 "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"tcp:127.0.0.1:$PORT\"}}" || fail "migrate" "$REPLY_JSON"
case "$REPLY_JSON" in *'"error"'*) fail "migrate" "$REPLY_JSON" ;; esac
status=""
deadline=$(( $(now_ms) + 180000 ))
while [ "$(now_ms)" -lt "$deadline" ]; do
  qmp src 10 '{"execute":"query-migrate"}' || fail "migrate" "query-migrate: $REPLY_JSON"
  status="$(json_str "$REPLY_JSON" status)"
  case "$status" in completed|failed|cancelled) break ;; esac
  sleep 0.2
done
if [ "$status" != completed ]; then
  qmp src 5 '{"execute":"migrate_cancel"}' || true
  fail "migrate" "status=$status $REPLY_JSON"
fi
ok "migrate (loopback)" "total-time=$(json_num "$REPLY_JSON" total-time)ms downtime=$(json_num "$REPLY_JSON" downtime)ms transferred=$(json_num "$REPLY_JSON" transferred) duplicate=$(json_num "$REPLY_JSON" duplicate) normal=$(json_num "$REPLY_JSON" normal)"

sleep 3 # let the destination guest run a while before asking it
begin
ping_agent dst 20 || fail "destination agent PING" "no PONG on the destination's ttyS1"
agent dst 60 'bl-mem after fault 16M && bl-mem after exit >/dev/null && grep -E "^balloon_(inflate|deflate) " /proc/vmstat | tr "\n" " "; cat /proc/uptime' \
  && [ "$STATUS" = 0 ] || fail "destination guest alive" "status=$STATUS $OUT"
qmp dst 10 '{"execute":"query-balloon"}'
ok "destination guest alive" "$(echo "$OUT" | tr '\n' ' ') query-balloon actual=$(json_num "$REPLY_JSON" actual)"

begin
qmp src 5 '{"execute":"quit"}' || true
qmp dst 5 '{"execute":"quit"}' || true
ok "quit both" ""
echo "smoke: all checks passed"
