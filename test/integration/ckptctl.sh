#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ckptctl against a pmem: store whose every record ckptctl_fill wrote with known fields:
# ls, stat, dump and verify print exactly those values, inspection never consumes the log,
# a record in the wrong slot is reported misplaced (exit 1), one flipped byte in a slot is
# reported as exactly one invalid record (exit 1) and the older generation takes its
# place, and usage or connection errors exit 2 with a message.
set -euo pipefail
BUILD=${BUILD:?BUILD must name the build directory}
# ckptctl is built in the server's folder (build/ckptsrv/ckptctl) once ckptsrv is; before
# that, at the top of the build tree.
ctl=$BUILD/ckptsrv/ckptctl
[ -f "$ctl" ] || ctl=$BUILD/ckptctl
fill=$BUILD/test/integration/ckptctl_fill

dir=$(mktemp -d /dev/shm/ckptctl-test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
store=$dir/store

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# expect_line OUTPUT LINE: LINE is one whole line of OUTPUT.
expect_line() {
  grep -Fxq -- "$2" <<<"$1" || { printf '%s\n' "$1" >&2; fail "missing line: $2"; }
}

# expect_rc RC CMD...: CMD exits with RC; its stdout is left in $out, stderr in $err.
expect_rc() {
  local want=$1 rc=0
  shift
  out=$("$@" 2>"$dir/stderr") || rc=$?
  err=$(cat "$dir/stderr")
  [ "$rc" -eq "$want" ] || { printf '%s\n%s\n' "$out" "$err" >&2; fail "exit $rc, not $want: $*"; }
}

"$fill" "$store"

# ls: one line per region, then the store's space.
expect_rc 0 "$ctl" --pmem "$store" ls
expect_line "$out" "state owner=default mode=overwrite size=65536 slots=240 slot_size=256 journal=0 lease=alive"
expect_line "$out" "log owner=default mode=append size=32768 ring=28672 lease=expired"
expect_line "$out" "regions: 2"
grep -Eq '^store: total=4194304 free=[0-9]+$' <<<"$out" || fail "no store line in: $out"

# stat of an overwrite region: geometry and lease.
expect_rc 0 "$ctl" --target "pmem:$store" stat state
expect_line "$out" "mode: overwrite"
expect_line "$out" "size: 65536"
expect_line "$out" "slot_table_offset: 4096"
expect_line "$out" "slot_size: 256"
expect_line "$out" "slots: 240"
expect_line "$out" "pairs: 120"
grep -q '^lease: alive until ' <<<"$out" || fail "lease not alive: $out"
file_offset=$(sed -n 's/^file_offset: //p' <<<"$out")
[ -n "$file_offset" ] || fail "stat printed no file_offset"

# stat of the log: 4 records of 96 bytes and a tombstone of 80, nothing read yet.
expect_rc 0 "$ctl" --pmem "$store" stat log
expect_line "$out" "mode: append"
expect_line "$out" "head: 464"
expect_line "$out" "tail: 0"
expect_line "$out" "unread: 464"
expect_line "$out" "lease: expired (never renewed)"

# The store alone.
expect_rc 0 "$ctl" --pmem "$store" stat
expect_line "$out" "regions: 2"
expect_line "$out" "store_total: 4194304"

# dump state: the latest generation of pairs 0..9; pair 10's latest is a tombstone.
expect_rc 0 "$ctl" --pmem "$store" dump state
for pair in 0 1 2 3 4 5 6 7 8 9; do
  expect_line "$out" "pair=$pair module=1 slice=2 conn=0x000000000000100$pair gen=2 key=10.0.0.1:100$pair > 10.0.0.2:80 tcp len=1$pair"
done
[ "$(grep -vc '^#' <<<"$out")" -eq 10 ] || fail "dump state: not 10 records: $out"
expect_line "$out" "# valid=10 empty=218 invalid=0 superseded=11 misplaced=0 tombstones=1"

# dump log twice: peeking leaves every record unread.
for round in 1 2; do
  expect_rc 0 "$ctl" --pmem "$store" dump log
  for n in 1 2 3 4; do
    expect_line "$out" "pair=- module=3 slice=1 conn=0x000000000000200$n gen=$n key=[2001:db8::1]:200$n > [2001:db8::2]:21 tcp len=20"
  done
  expect_line "$out" "pair=- module=3 slice=1 conn=0x0000000000002005 gen=5 key=[2001:db8::1]:2005 > [2001:db8::2]:21 tcp len=0 tombstone"
  [ "$(grep -vc '^#' <<<"$out")" -eq 5 ] || fail "dump log round $round: not 5 records"
done
expect_rc 0 "$ctl" --pmem "$store" stat log
expect_line "$out" "tail: 0"

# verify a clean store.
expect_rc 0 "$ctl" --pmem "$store" verify state
expect_line "$out" "valid=10 empty=218 invalid=0 superseded=11 misplaced=0 tombstones=1"
expect_rc 0 "$ctl" --pmem "$store" verify log
expect_line "$out" "valid=5 empty=0 invalid=0 superseded=0 misplaced=0 tombstones=0"

# A valid record in the wrong slot: not handed over, counted misplaced, verify fails.
"$fill" --misplace "$store"
expect_rc 1 "$ctl" --pmem "$store" verify state
expect_line "$out" "valid=10 empty=217 invalid=0 superseded=11 misplaced=1 tombstones=1"
grep -q "region 'state' FAILED: 0 invalid, 1 misplaced" <<<"$err" || fail "verify stderr: $err"
expect_rc 0 "$ctl" --pmem "$store" dump state
grep -q "conn=0x000000000000103c" <<<"$out" && fail "misplaced record handed over: $out"

# Flip one payload byte of pair 0's generation 2, which lives in slot 2 * 0 + (2 & 1) = 0.
off=$((file_offset + 4096 + 0 * 256 + 75))
byte=$(od -An -tu1 -j "$off" -N1 "$store" | tr -d ' ')
printf "$(printf '\\%03o' $((byte ^ 0xff)))" | dd of="$store" bs=1 seek="$off" conv=notrunc status=none

expect_rc 1 "$ctl" --pmem "$store" verify state
expect_line "$out" "valid=10 empty=217 invalid=1 superseded=10 misplaced=1 tombstones=1"
grep -q "region 'state' FAILED: 1 invalid, 1 misplaced" <<<"$err" || fail "verify stderr: $err"
# The torn slot's older copy is what a restore gets.
expect_rc 0 "$ctl" --pmem "$store" dump state
expect_line "$out" "pair=0 module=1 slice=2 conn=0x0000000000001000 gen=1 key=10.0.0.1:1000 > 10.0.0.2:80 tcp len=10"

# Usage and connection errors: exit 2 and say what went wrong.
expect_rc 2 env -u CKPT_TARGET "$ctl" ls
grep -q "no target" <<<"$err" || fail "no-target message: $err"
expect_rc 2 "$ctl" --pmem "$store"
grep -q "no command" <<<"$err" || fail "no-command message: $err"
expect_rc 2 "$ctl" --pmem "$store" frobnicate
grep -q "unknown command 'frobnicate'" <<<"$err" || fail "unknown-command message: $err"
expect_rc 2 "$ctl" --pmem "$store" verify
grep -q "wrong arguments for 'verify'" <<<"$err" || fail "missing-region message: $err"
expect_rc 2 "$ctl" --pmem "$store" stat nosuch
grep -q "region 'nosuch'" <<<"$err" || fail "unknown-region message: $err"
expect_rc 2 "$ctl" --pmem "$dir/absent" ls
grep -q "cannot connect to pmem:$dir/absent" <<<"$err" || fail "connect message: $err"
expect_rc 2 "$ctl" --target "bogus://x" ls
grep -q "cannot connect to bogus://x" <<<"$err" || fail "bad-scheme message: $err"
[ ! -e "$dir/absent" ] || fail "ckptctl created a store"

echo "ckptctl: all checks passed"
