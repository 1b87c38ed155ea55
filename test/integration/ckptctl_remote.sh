#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ckptctl through ckptsrv: the store ckptctl_fill wrote is served over ofi+tcp and ofi+shm
# on loopback, and ckptctl shows exactly what it shows over pmem: (same regions, records
# and counts), peeks without consuming the log, refuses a wrong secret and shm without
# --allow-shm (exit 2 with the reason), and a client whose ofi_rxm buffer size is not the
# server's.
set -euo pipefail
BUILD=${BUILD:?BUILD must name the build directory}
ctl=$BUILD/ckptsrv/ckptctl
srv=$BUILD/ckptsrv/ckptsrv
fill=$BUILD/test/integration/ckptctl_fill

dir=$(mktemp -d /dev/shm/ckptctl-remote.XXXXXX)
srv_pid=""
# Stop the server: TERM, and KILL if it has not gone within 5 s; then what it left behind
# (libfabric's shm provider names its segment /dev/shm/<pid>:0:0 and a killed server
# cannot remove it).
stop_server() {
  local i
  [ -n "$srv_pid" ] || return 0
  kill "$srv_pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$srv_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$srv_pid" 2>/dev/null; then
    echo "ckptsrv ignored SIGTERM for 5 s; killing it" >&2
    kill -KILL "$srv_pid" 2>/dev/null || true
  fi
  wait "$srv_pid" 2>/dev/null || true
  rm -f "/dev/shm/$srv_pid:"*
  srv_pid=""
}
cleanup() {
  stop_server
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "FAIL: $*" >&2
  [ -f "$dir/ckptsrv.log" ] && tail -20 "$dir/ckptsrv.log" >&2
  exit 1
}

expect_line() {
  grep -Fxq -- "$2" <<<"$1" || { printf '%s\n' "$1" >&2; fail "missing line: $2"; }
}

expect_rc() {
  local want=$1 rc=0
  shift
  out=$("$@" 2>"$dir/stderr") || rc=$?
  err=$(cat "$dir/stderr")
  [ "$rc" -eq "$want" ] || { printf '%s\n%s\n' "$out" "$err" >&2; fail "exit $rc, not $want: $*"; }
}

"$fill" "$dir/store"
umask 077
printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$dir/secret"
printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$dir/wrong"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tcp=ofi+tcp://127.0.0.1:$port
shm=ofi+shm://hf-ctl-$$

"$srv" --pmem "$dir/store" --size 4M --listen "$tcp" --listen "$shm" \
  --secret-file "$dir/secret" --allow-shm 2>"$dir/ckptsrv.log" &
srv_pid=$!

# Readiness: the server has no ready file, so poll a listing for up to 10 s.
ready=0
for _ in $(seq 100); do
  kill -0 "$srv_pid" 2>/dev/null || fail "ckptsrv exited"
  if "$ctl" --target "$tcp" --secret-file "$dir/secret" ls >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" -eq 1 ] || fail "ckptsrv did not answer on $tcp within 10 s"

for target in "$tcp" "$shm"; do
  opts=(--target "$target" --secret-file "$dir/secret" --allow-shm)
  expect_rc 0 "$ctl" "${opts[@]}" ls
  expect_line "$out" "state owner=default mode=overwrite size=65536 slots=240 slot_size=256 journal=0 lease=alive"
  expect_line "$out" "log owner=default mode=append size=32768 ring=28672 lease=expired"
  expect_line "$out" "regions: 2"

  expect_rc 0 "$ctl" "${opts[@]}" stat log
  expect_line "$out" "head: 464"
  expect_line "$out" "tail: 0"

  expect_rc 0 "$ctl" "${opts[@]}" dump state
  for pair in 0 1 2 3 4 5 6 7 8 9; do
    expect_line "$out" "pair=$pair module=1 slice=2 conn=0x000000000000100$pair gen=2 key=10.0.0.1:100$pair > 10.0.0.2:80 tcp len=1$pair"
  done
  expect_line "$out" "# valid=10 empty=218 invalid=0 superseded=11 misplaced=0 tombstones=1"

  expect_rc 0 "$ctl" "${opts[@]}" dump log
  expect_line "$out" "pair=- module=3 slice=1 conn=0x0000000000002005 gen=5 key=[2001:db8::1]:2005 > [2001:db8::2]:21 tcp len=0 tombstone"
  [ "$(grep -vc '^#' <<<"$out")" -eq 5 ] || fail "$target: dump log: not 5 records"

  expect_rc 0 "$ctl" "${opts[@]}" verify state
  expect_line "$out" "valid=10 empty=218 invalid=0 superseded=11 misplaced=0 tombstones=1"
  expect_rc 0 "$ctl" "${opts[@]}" verify log
  expect_line "$out" "valid=5 empty=0 invalid=0 superseded=0 misplaced=0 tombstones=0"

  # Peeking left the log unread.
  expect_rc 0 "$ctl" "${opts[@]}" stat log
  expect_line "$out" "tail: 0"
done

expect_rc 2 "$ctl" --target "$tcp" --secret-file "$dir/wrong" ls
grep -q "cannot connect to $tcp" <<<"$err" || fail "wrong-secret message: $err"
expect_rc 2 "$ctl" --target "$shm" --secret-file "$dir/secret" ls
grep -q "cannot connect to $shm" <<<"$err" || fail "shm-without-allow message: $err"
expect_rc 2 "$ctl" --target "$tcp" --secret-file "$dir/secret" --tenant nobody ls
grep -q "tenant 'nobody'" <<<"$err" || fail "unknown-tenant message: $err"

# Client and server must use one ofi_rxm buffer size: rxm refuses the connection otherwise,
# and the first write would never complete. The server says its size in the WELCOME, and a
# client of another size stops at once, saying what to set.
FI_OFI_RXM_BUFFER_SIZE=16384 expect_rc 2 "$ctl" --target "$tcp" --secret-file "$dir/secret" ls
grep -q "the server's ofi_rxm buffer size is 2048, this process's 16384" <<<"$err" ||
  fail "rxm buffer size mismatch message: $err"
# shm has no rxm: nothing to match.
FI_OFI_RXM_BUFFER_SIZE=16384 expect_rc 0 "$ctl" --target "$shm" --secret-file "$dir/secret" \
  --allow-shm ls

echo "ckptctl_remote: all checks passed"
