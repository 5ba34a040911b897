# Shell helpers shared by smoke.sh, measure-migration.sh and measure-balloon.sh:
# booting the cached QEMU guest, its sockets (bl-agent on ttyS1, QMP), and cleanup.
# Sourced, not run. The sourcing script sets ROOT and defines die() and log() first;
# then it sets VM_BASE, the directory under which each VM NAME keeps its sockets and
# logs ($VM_BASE/NAME), before starting one.
#
# Provides: CACHE, RUNQ, PIDS, lib_check (the boot set and socat), kill_all, now_ms,
# now_us, qemu_start, connect, agent, run_ok, agent_line, ping_agent, qmp, qmp_open.

CACHE="${REAL_GUEST_QEMU_CACHE:-$ROOT/.cache/real-guest-qemu}"
RUNQ="$ROOT/scripts/real-guest/qemu/run-qemu.sh"
PIDS=()

# lib_check: the boot set is in the cache, and socat is here (installed with apt-get if not).
lib_check() {
  local f
  for f in bzImage initrd.cpio bin/bl-pdeathsig qemu/usr/bin/qemu-system-x86_64; do
    [ -e "$CACHE/$f" ] || die "$CACHE/$f missing: run scripts/real-guest/build-qemu-image.sh first"
  done
  if ! command -v socat >/dev/null; then
    log "installing Debian's socat"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat >/dev/null 2>&1 \
      || die "package socat cannot be installed with apt-get"
  fi
}

# kill_all: every process the script started (QEMUs, socats), by PID.
kill_all() {
  local p
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
}

now_us() { local t="${EPOCHREALTIME/./}"; echo $(( 10#$t )); }
now_ms() { echo $(( $(now_us) / 1000 )); }

# qemu_start NAME MIB [QEMU ARGS...]: a 1-vCPU TCG guest of MIB MiB booting the cached
# kernel and initramfs, console to $VM_BASE/NAME/console.log, the agent's serial and QMP
# as sockets there, then the caller's arguments (devices, -incoming ...). Sets
# QEMU_PID and PID_<NAME>; returns once both sockets exist (1 if QEMU died first).
qemu_start() {
  local name="$1" mib="$2"; shift 2
  local d="$VM_BASE/$name"
  mkdir -p "$d"
  "$RUNQ" -accel tcg -m "$mib" -smp 1 -nographic -monitor none -nic none -no-reboot \
    -kernel "$CACHE/bzImage" -initrd "$CACHE/initrd.cpio" -append "console=ttyS0 panic=-1" \
    -chardev "file,id=con0,path=$d/console.log" -serial chardev:con0 \
    -chardev "socket,id=agent0,path=$d/ttyS1.sock,server=on,wait=off" -serial chardev:agent0 \
    -chardev "socket,id=qmp0,path=$d/qmp.sock,server=on,wait=off" -mon chardev=qmp0,mode=control \
    "$@" </dev/null >"$d/qemu.out" 2>&1 &
  QEMU_PID=$!
  PIDS+=("$QEMU_PID")
  eval "PID_$name=$QEMU_PID"
  local i
  for i in $(seq 1 100); do
    [ -S "$d/ttyS1.sock" ] && [ -S "$d/qmp.sock" ] && return 0
    kill -0 "$QEMU_PID" 2>/dev/null || { cat "$d/qemu.out" >&2; return 1; }
    sleep 0.1
  done
  return 1
}

# connect NAME WHAT: a socat to $VM_BASE/NAME/WHAT.sock through two FIFOs; sets the
# fds W_<NAME>_<WHAT> (to QEMU) and R_<NAME>_<WHAT> (from it).
connect() {
  local d="$VM_BASE/$1" w r
  mkfifo "$d/$2.in" "$d/$2.out"
  socat -b 65536 - "UNIX-CONNECT:$d/$2.sock" <"$d/$2.in" >"$d/$2.out" 2>"$d/$2.socat.err" &
  PIDS+=($!)
  exec {w}>"$d/$2.in"
  exec {r}<"$d/$2.out"
  eval "W_$1_$2=$w R_$1_$2=$r"
}

# agent_line NAME TIMEOUT: one line from NAME's agent into $LINE (1 on timeout).
agent_line() {
  local r; eval "r=\$R_$1_ttyS1"
  IFS= read -r -t "$2" -u "$r" LINE
}

# agent NAME TIMEOUT COMMAND: runs COMMAND in the guest (bl-agent's RUN frame); sets $STATUS and $OUT.
ID=0
agent() {
  local w r hdr n
  eval "w=\$W_$1_ttyS1 r=\$R_$1_ttyS1"
  ID=$((ID + 1))
  printf 'RUN c%d %d\n%s' "$ID" "${#3}" "$3" >&"$w"
  while :; do
    IFS= read -r -t "$2" -u "$r" hdr || { OUT="(no reply within $2 s)"; STATUS=999; return 1; }
    case "$hdr" in "OUT c$ID "*) break ;; "ERR c$ID "*) OUT="$hdr"; STATUS=998; return 1 ;; esac
  done
  set -- $hdr
  STATUS="$3"; n="$4"; OUT=""
  if [ "$n" -gt 0 ]; then
    IFS= read -r -N "$n" -t 30 -u "$r" OUT || { OUT="(short reply)"; STATUS=997; return 1; }
  fi
  OUT="${OUT%$'\n'}"
}
run_ok() { # NAME TIMEOUT COMMAND: agent, dying unless it exits 0
  agent "$@" && [ "$STATUS" = 0 ] || die "guest command failed ($3): status=$STATUS $OUT"
}

ping_agent() { # NAME TIMEOUT
  local w; eval "w=\$W_$1_ttyS1"
  ID=$((ID + 1))
  printf 'PING p%d\n' "$ID" >&"$w"
  while agent_line "$1" "$2"; do [ "$LINE" = "PONG p$ID" ] && return 0; done
  return 1
}

# qmp NAME TIMEOUT JSON: the reply line (events skipped) into $REPLY_JSON.
qmp() {
  local w r line
  eval "w=\$W_$1_qmp r=\$R_$1_qmp"
  printf '%s\n' "$3" >&"$w"
  while IFS= read -r -t "$2" -u "$r" line; do
    case "$line" in *'"return"'*|*'"error"'*) REPLY_JSON="$line"; return 0 ;; esac
  done
  REPLY_JSON="(no reply within $2 s)"
  return 1
}
qmp_open() { # NAME: connects QMP, reads the greeting, negotiates capabilities
  local r line; connect "$1" qmp; eval "r=\$R_$1_qmp"
  IFS= read -r -t 10 -u "$r" line || return 1 # greeting
  qmp "$1" 10 '{"execute":"qmp_capabilities"}'
}
