# SPDX-License-Identifier: BSD-3-Clause
# Shared by the ckptsrv integration tests: a scratch dir, process bookkeeping with a trap
# that kills everything started, free ports, and bounded waits (never a bare sleep).
set -euo pipefail

: "${BUILD:?BUILD must point at the build tree}"
CKPTSRV="$BUILD/ckptsrv/ckptsrv"
LOAD="$BUILD/test/integration/ckpt_load"
PROBE="$BUILD/test/integration/ckpt_probe"
T=$(mktemp -d /tmp/hf-ofi-test.XXXXXX)
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -9 "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
    # libfabric's shm provider names its segment /dev/shm/<pid>:0:0; a process killed -9
    # cannot remove its own.
    rm -f "/dev/shm/$p:"*
  done
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in "$T"/*.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
  done
  exit 1
}

# A TCP port nobody listens on right now (the kernel picks it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for SECONDS CMD...: poll CMD every 50 ms until it succeeds or time runs out.
wait_for() {
  local limit=$(( $1 * 20 )) i=0
  shift
  until "$@"; do
    i=$((i + 1))
    [ $i -ge $limit ] && return 1
    sleep 0.05
  done
}

log_has() { grep -q -- "$2" "$1" 2>/dev/null; }
lines_at_least() {
  local n
  n=$(grep -c "^$2" "$1" 2>/dev/null || true)
  [ "${n:-0}" -ge "$3" ]
}
gone() { ! kill -0 "$1" 2>/dev/null; }

# start_server NAME ARGS...: run ckptsrv in the background, logging to $T/NAME.log, and
# wait until it serves. Sets SRV_PID.
start_server() {
  local name=$1
  shift
  "$CKPTSRV" "$@" 2>"$T/$name.log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  wait_for 20 log_has "$T/$name.log" "serving store" || fail "ckptsrv $name did not start"
}

# term_and_reap PID WHAT [SECONDS]: SIGTERM PID, which must be gone within SECONDS (10)
# and have exited 0.
term_and_reap() {
  kill -TERM "$1"
  wait_for "${3:-10}" gone "$1" || fail "$2 ignored SIGTERM"
  local rc=0
  wait "$1" || rc=$?
  [ $rc -eq 0 ] || fail "$2 exited $rc after SIGTERM"
}

# stop_server LOG: SIGTERM the server started last; it must exit 0 after a clean shutdown,
# with no sanitizer report in LOG.
stop_server() {
  term_and_reap "$SRV_PID" server
  log_has "$1" "shutting down" || fail "no clean shutdown"
  if log_has "$1" "Sanitizer"; then fail "sanitizer report in the server log"; fi
}
