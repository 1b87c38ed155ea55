#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# ckptctl against a pmem: store whose every record ckptctl_fill wrote with known fields:
# ls, stat, dump and verify print exactly those values, inspection never consumes the log,
# a record in the wrong slot is reported misplaced (exit 1), one flipped byte in a slot is
# reported as exactly one invalid record (exit 1) and the older generation takes its
# place; the store's own faults (issue 11: an entry whose slot count wraps, overlapping
# entries) and a wrap marker where none can be fail verify with where they are (exit 1);
# the file's holder sees every tenant's regions; usage or connection errors exit 2.
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

# The whole store: its superblock and table, then every region (state is damaged above).
expect_rc 1 "$ctl" --pmem "$store" verify
expect_line "$out" "verify: store $store ok"
expect_line "$out" "verify: default/log ok"
grep -q "region 'default/state' FAILED: 1 invalid, 1 misplaced" <<<"$err" || fail "verify: $err"

# A CRC-valid table entry whose slot count times the slot size wraps (to 512) used to open,
# and verify said 0 records, ok: the store is refused, and verify says where and why.
cp "$store" "$dir/slots"
"$fill" --damage overflow-slots "$dir/slots"
expect_rc 1 "$ctl" --pmem "$dir/slots" verify state
grep -Fq "table entry 0 (region state of default, 65536 bytes at 69632): geometry (72057594037927938 slots of 256" <<<"$err" ||
  fail "verify of a wrapping slot count: $err"
grep -Fq "store $dir/slots FAILED: 1 fault(s)" <<<"$err" || fail "verify summary: $err"
expect_rc 1 "$ctl" --pmem "$dir/slots" verify
expect_rc 2 "$ctl" --pmem "$dir/slots" ls
grep -Fq "cannot connect to pmem:$dir/slots" <<<"$err" || fail "refused store: $err"

# Two entries on the same bytes.
cp "$store" "$dir/overlap"
"$fill" --damage overlap "$dir/overlap"
expect_rc 1 "$ctl" --pmem "$dir/overlap" verify
grep -Fq "table entries 0 (region state of default, bytes [69632, 135168)) and 1 (region log of default, bytes [73728, 106496)) overlap" <<<"$err" ||
  fail "verify of overlapping entries: $err"

# A wrap marker at ring position 0 once skipped a lap and verify said ok: now it is invalid.
cp "$store" "$dir/wrap"
"$fill" --damage wrap-at-zero "$dir/wrap"
expect_rc 1 "$ctl" --pmem "$dir/wrap" verify log
expect_line "$out" "valid=0 empty=0 invalid=1 superseded=0 misplaced=0 tombstones=0"
grep -q "region 'log' FAILED: 1 invalid, 0 misplaced" <<<"$err" || fail "verify stderr: $err"

# Names are per tenant; the file's holder sees every tenant's regions with their owners.
cp "$store" "$dir/two"
"$fill" --tenant2 "$dir/two"
expect_rc 0 "$ctl" --pmem "$dir/two" ls
expect_line "$out" "state owner=default mode=overwrite size=65536 slots=240 slot_size=256 journal=0 lease=alive"
expect_line "$out" "state owner=tenant2 mode=append size=16384 ring=12288 lease=expired"
expect_line "$out" "regions: 3"
expect_rc 2 "$ctl" --pmem "$dir/two" stat state
grep -q "region 'state' exists for owners default and tenant2" <<<"$err" || fail "ambiguous: $err"
expect_rc 0 "$ctl" --pmem "$dir/two" stat tenant2/state
expect_line "$out" "owner: tenant2"
expect_line "$out" "mode: append"
expect_rc 0 "$ctl" --pmem "$dir/two" stat log
expect_line "$out" "owner: default"
# A tenant sees its own namespace only: another's region is as missing as none.
expect_rc 0 "$ctl" --pmem "$dir/two" --tenant tenant2 ls
expect_line "$out" "regions: 1"
expect_rc 2 "$ctl" --pmem "$dir/two" --tenant tenant2 stat log
grep -q "region 'log': No such file or directory" <<<"$err" || fail "other tenant's: $err"

# Usage and connection errors: exit 2 and say what went wrong.
expect_rc 2 env -u CKPT_TARGET "$ctl" ls
grep -q "no target" <<<"$err" || fail "no-target message: $err"
expect_rc 2 "$ctl" --pmem "$store"
grep -q "no command" <<<"$err" || fail "no-command message: $err"
expect_rc 2 "$ctl" --pmem "$store" frobnicate
grep -q "unknown command 'frobnicate'" <<<"$err" || fail "unknown-command message: $err"
expect_rc 2 "$ctl" --target "ofi+tcp://127.0.0.1:1" verify
grep -q "wrong arguments for 'verify'" <<<"$err" || fail "missing-region message: $err"
expect_rc 2 "$ctl" --pmem "$store" stat nosuch
grep -q "region 'nosuch'" <<<"$err" || fail "unknown-region message: $err"
expect_rc 2 "$ctl" --pmem "$dir/absent" ls
grep -q "cannot connect to pmem:$dir/absent" <<<"$err" || fail "connect message: $err"
expect_rc 2 "$ctl" --target "bogus://x" ls
grep -q "cannot connect to bogus://x" <<<"$err" || fail "bad-scheme message: $err"
[ ! -e "$dir/absent" ] || fail "ckptctl created a store"

echo "ckptctl: all checks passed"
