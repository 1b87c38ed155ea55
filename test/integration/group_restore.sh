#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Redundancy groups over ckptsrv on tcp loopback. The same checkpoint (20 000 pairs x 3
# generations) is written through a single server and through rs(4,2), xor(4) and
# mirror(3); then, for every way of losing as many members as the code tolerates (a dead
# member is an address nobody answers on; two are also killed -9 for real), the restored
# records must be line for line those of the single server. Then: a corrupted subsegment is
# detected and rebuilt; more losses than tolerated fail with a clear error and restore
# nothing; a replaced (empty) server is rebuilt and the group survives losing two others.
source "$(dirname "$0")/ofi_lib.sh"
CTL="$BUILD/ckptsrv/ckptctl"

PAIRS=20000
GENS=3
printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_SECRET_FILE="$T/secret"

declare -a ADDR PID
start_member() { # start_member I: ckptsrv I on a fresh store (a new port unless it had one)
  local i=$1
  [ -n "${ADDR[$i]:-}" ] || ADDR[$i]="ofi+tcp://127.0.0.1:$(free_port)"
  start_server "m$i-$RANDOM" --pmem "$T/store$i" --size 96M --secret-file "$T/secret" \
    --listen "${ADDR[$i]}"
  PID[$i]=$SRV_PID
}
for i in 0 1 2 3 4 5; do start_member "$i"; done

# group CODE I...: the target of a group over members I... ("x" names a dead address).
dead="ofi+tcp://127.0.0.1:$(free_port)"
group() {
  local code=$1 list="" i
  shift
  for i in "$@"; do
    if [ "$i" = x ]; then list+=",$dead"; else list+=",${ADDR[$i]}"; fi
  done
  echo "group:$code=${list#,}"
}
# records TARGET REGION OUT: what a restore hands over, one line per record.
records() {
  "$CTL" --target "$1" --secret-file "$T/secret" dump "$2" >"$3.raw" 2>"$3.log" || return 1
  grep -v '^#' "$3.raw" >"$3" || true
}

"$LOAD" write "${ADDR[0]}" single $PAIRS $GENS >"$T/single.acks" 2>"$T/single.log" ||
  fail "write to a single server"
records "${ADDR[0]}" single "$T/want" || fail "dump of the single server"
[ "$(wc -l <"$T/want")" -eq $PAIRS ] || fail "single server holds $(wc -l <"$T/want") records"

# check CODE REGION LOST...: restore with the members in LOST dead, compare with the want.
check() {
  local code=$1 region=$2 n=$3 i
  shift 3
  local members=()
  for ((i = 0; i < n; i++)); do
    if [[ " $* " == *" $i "* ]]; then members+=(x); else members+=("$i"); fi
  done
  records "$(group "$code" "${members[@]}")" "$region" "$T/got" ||
    fail "$code without members $*: restore failed: $(tail -3 "$T/got.log")"
  cmp -s "$T/want" "$T/got" || fail "$code without members $*: records differ"
}

write_group() { # write_group CODE REGION MEMBERS...
  local code=$1 region=$2
  shift 2
  "$LOAD" write "$(group "$code" "$@")" "$region" $PAIRS $GENS --batched \
    >"$T/$region.acks" 2>"$T/$region.log" || fail "$code: write failed: $(tail -3 "$T/$region.log")"
  grep 'slices durable' "$T/$region.log"
}

write_group "rs(4,2)" rs 0 1 2 3 4 5
check "rs(4,2)" rs 6
for a in 0 1 2 3 4 5; do
  for b in 0 1 2 3 4 5; do
    [ $a -lt $b ] && check "rs(4,2)" rs 6 $a $b
  done
done
echo "rs(4,2): every loss of two members restores the same records"

write_group "xor(4)" xor 0 1 2 3 4
for a in 0 1 2 3 4; do check "xor(4)" xor 5 $a; done
echo "xor(4): every loss of one member restores the same records"

# 40 generations through member rings that hold about 10: the log wraps, compaction keeps
# the newest of every pair, and a member lost afterwards costs nothing.
"$LOAD" write "$(group "xor(4)" 0 1 2 3 4)" wrap $PAIRS 40 >"$T/wrap.acks" 2>"$T/wrap.log" ||
  fail "xor(4): long write failed: $(tail -3 "$T/wrap.log")"
"$LOAD" verify "$(group "xor(4)" 0 1 x 3 4)" wrap "$T/wrap.acks" --all 40 2>"$T/wrap-verify.log" ||
  fail "xor(4): after compaction, without member 2: $(tail -3 "$T/wrap-verify.log")"
"$CTL" --target "$(group "xor(4)" 0 1 2 3 4)" --secret-file "$T/secret" health wrap >"$T/wrap.health"
span=$(sed -n 's/^span: \([0-9]*\)\.\..*/\1/p' "$T/wrap.health")
[ "${span:-0}" -gt 0 ] || fail "the log never compacted (tail still 0)"
# Each pair is rewritten before the ring comes round: the cleaner frees the old part of the
# ring without copying (a snapshot of every pair at each pass would copy ~20 %).
read -r written relogged < <(sed -n 's/.* segments, \([0-9]*\) record bytes, \([0-9]*\) of them logged again.*/\1 \2/p' "$T/wrap.log")
[ -n "${written:-}" ] || fail "ckpt_load printed no group figures: $(tail -3 "$T/wrap.log")"
[ $((relogged * 100)) -le $((written * 2)) ] ||
  fail "the cleaner logged $relogged of $written record bytes again (more than 2 %)"
echo "xor(4): cleaning logged again $relogged of $written record bytes"
# 18 000 slices written once and 2 000 rewritten 200 times: the ring comes round twice, so
# the cleaner must log the long-lived ones again; every acknowledged slice is still there,
# also without a member.
"$LOAD" write "$(group "xor(4)" 0 1 2 3 4)" cold $PAIRS 200 --hot 2000 >"$T/cold.acks" \
  2>"$T/cold.log" || fail "xor(4): hot/cold write failed: $(tail -3 "$T/cold.log")"
"$LOAD" verify "$(group "xor(4)" 0 x 2 3 4)" cold "$T/cold.acks" 2>"$T/cold-verify.log" ||
  fail "xor(4): long-lived slices lost to cleaning: $(tail -3 "$T/cold-verify.log")"
relogged=$(sed -n 's/.* record bytes, \([0-9]*\) of them logged again.*/\1/p' "$T/cold.log")
[ "${relogged:-0}" -gt 0 ] || fail "the cleaner never logged a long-lived slice again"
echo "xor(4): long-lived slices survive the ring coming round ($relogged bytes logged again)"
echo "xor(4): a log compacted past its ring size restores every pair's newest generation"

write_group mirror mirror 0 1 2
for a in 0 1 2; do
  lost=()
  for b in 0 1 2; do [ $b -ne $a ] && lost+=($b); done
  check mirror mirror 3 "${lost[@]}"
done
echo "mirror(3): every loss of two members restores the same records"

# A subsegment's chunk corrupted in member 2's store: detected, rebuilt from parity.
python3 - "$T/store2" <<'PY' || fail "no subsegment found to corrupt"
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    at = m.find(b"HFSG")
    if at < 0:
        sys.exit(1)
    m[at + 64 + 10] ^= 0xff
    m.flush()
PY
"$CTL" --target "$(group "rs(4,2)" 0 1 2 3 4 5)" --secret-file "$T/secret" health rs \
  >"$T/health" 2>"$T/health.log" && fail "health does not report the damaged subsegment"
cat "$T/health"
grep -q '^member 2: .* ok missing=1 damaged=1' "$T/health" || fail "damage not on member 2"
grep -q 'degraded=1 lost=0' "$T/health" || fail "not one degraded segment"
check "rs(4,2)" rs 6 4
grep -q 'CRC fails on member(s) 2' "$T/got.log" || fail "the damaged subsegment was not reported"
echo "a corrupted subsegment is detected and rebuilt"

# Three of six gone (two dead, one damaged where the segment needs it): a clear error, and
# not one record handed over.
if records "$(group "rs(4,2)" 0 x 2 3 x 5)" rs "$T/got2"; then
  echo "restore without members 1 and 4 and with member 2 damaged succeeded" >&2
  fail "too many losses were not refused"
fi
[ ! -s "$T/got2" ] || fail "records were handed over from a group that lost too much"
grep -q 'segment at ring position [0-9]*: 3 of 6 subsegments good, 4 needed; missing or damaged on member(s) 1 (.*), 2 (.*), 4 (.*)' "$T/got2.log" ||
  fail "the error does not name the segment and members: $(cat "$T/got2.log")"
if records "$(group "xor(4)" x x 2 3 4)" xor "$T/got3"; then fail "xor(4) restored without two members"; fi
[ ! -s "$T/got3" ] || fail "records handed over by xor(4) without two members"
grep -q '3 of 5 members answer, xor needs at least 4' "$T/got3.log" || fail "unclear xor error"
echo "more losses than tolerated: a clear error, nothing restored"

# Member 3 replaced by an empty server at the same address, rebuilt, then members 0 and 5
# killed -9: the group still restores everything.
kill -9 "${PID[3]}"
wait_for 10 gone "${PID[3]}" || fail "member 3 survived kill -9"
rm -f "$T/store3"
start_member 3
"$CTL" --target "$(group "rs(4,2)" 0 1 2 3 4 5)" --secret-file "$T/secret" rebuild rs \
  >"$T/rebuild" 2>"$T/rebuild.log" || fail "rebuild failed: $(tail -3 "$T/rebuild.log")"
cat "$T/rebuild"
grep -q '^rebuild: 100%' "$T/rebuild" || fail "no progress up to 100%"
kill -9 "${PID[0]}" "${PID[5]}"
wait_for 10 gone "${PID[0]}" && wait_for 10 gone "${PID[5]}" || fail "members survived kill -9"
check "rs(4,2)" rs 6
"$CTL" --target "$(group "rs(4,2)" 0 1 2 3 4 5)" --secret-file "$T/secret" health rs \
  >"$T/health2" 2>&1 || true
grep -q '^member 3: .* ok missing=0 damaged=0' "$T/health2" || fail "member 3 not whole: $(cat "$T/health2")"
grep -q '^member 0: .* down' "$T/health2" || fail "member 0 not shown down"
echo "PASS: rs(4,2), xor(4), mirror(3) restore through their losses; corruption rebuilt; rebuild of a replaced server"
