#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A group writer brings members back by itself. rs(4,2) over six ckptsrv on tcp loopback; a
# writer keeps writing 20 000 pairs at a steady rate. Member 3 is killed -9 and started
# again EMPTY at the same address: the writer creates the region there and rebuilds it
# (the log shows 10 % .. 100 %). Member 2 is killed -9 and started again on its store: the
# writer adopts it and rebuilds what it missed. Then members 0 and 5 are killed: without
# them, a restore must still hand over every slice the writer acknowledged, at its last
# generation, so members 2 and 3 must hold every segment. A rebuild is spread over many
# polls (it reads a window per member per poll); the longest poll during one is printed,
# not judged (a timing is never a pass/fail test).
source "$(dirname "$0")/ofi_lib.sh"

PAIRS=20000
RATE=20000
SECONDS_WRITING=10
printf 'default %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
export HF_SECRET_FILE="$T/secret"

declare -a ADDR PID
start_member() { # start_member I: ckptsrv I on its store (created if missing), at its address
  local i=$1
  [ -n "${ADDR[$i]:-}" ] || ADDR[$i]="ofi+tcp://127.0.0.1:$(free_port)"
  start_server "m$i-$RANDOM" --pmem "$T/store$i" --size 96M --secret-file "$T/secret" \
    --listen "${ADDR[$i]}"
  PID[$i]=$SRV_PID
}
kill_member() {
  kill -9 "${PID[$1]}"
  wait_for 10 gone "${PID[$1]}" || fail "member $1 survived kill -9"
}
for i in 0 1 2 3 4 5; do start_member "$i"; done
target="group:rs(4,2)=${ADDR[0]},${ADDR[1]},${ADDR[2]},${ADDR[3]},${ADDR[4]},${ADDR[5]}"

W="$T/writer.log"
"$LOAD" write "$target" rs $PAIRS 1000 --batched --rate $RATE --seconds $SECONDS_WRITING \
  --until-whole 20 >"$T/acks" 2>"$W" &
WRITER=$!
PIDS+=("$WRITER")
wait_for 10 lines_at_least "$T/acks" ack $PAIRS || fail "the writer acknowledged too little"

# Replaced by an empty server at the same address, while the writer writes on.
kill_member 3
wait_for 10 log_has "$W" "member 3 (.*) lost" || fail "the writer did not notice member 3 die"
rm -f "$T/store3"
start_member 3
wait_for 10 log_has "$W" "member 3 (.*) had lost it: created again" ||
  fail "the writer did not create the region on the new member 3"
wait_for 10 log_has "$W" "rebuild 100% done" || fail "member 3 was not rebuilt"
log_has "$T/acks" '^done' && fail "the writer had stopped writing before member 3 was rebuilt"
# Progress by tenths (a poll may cross more than one), rising to 100 %.
steps=$(sed -n 's/.*rebuild \([0-9]*\)% done.*/\1/p' "$W")
[ "$(echo "$steps" | wc -l)" -ge 4 ] || fail "too few progress lines: $steps"
[ "$(echo "$steps" | sort -n -c 2>&1; echo "$steps" | tail -1)" = 100 ] ||
  fail "progress does not rise to 100 %: $steps"
echo "member 3 (empty) rejoined and rebuilt by the writer"

# Back on its own store: adopted, and what it missed is rebuilt.
kill_member 2
wait_for 10 log_has "$W" "member 2 (.*) lost" || fail "the writer did not notice member 2 die"
wait_for 10 log_has "$W" "member 2 (.*) still out" ||
  fail "the writer did not say why member 2 stays out"
start_member 2
wait_for 10 log_has "$W" "member 2 (.*) still holds it" || fail "member 2 was not adopted"
wait_for 10 lines_at_least "$W" ".*rebuild 100% done" 2 || fail "member 2 was not caught up"
echo "member 2 (its region kept) rejoined and caught up"

wait_for 30 gone "$WRITER" || fail "the writer did not end"
wait "$WRITER" || fail "the writer failed: $(tail -3 "$W")"
grep -E "ckpt.group|rebuild [0-9]+ over|longest poll" "$W"
longest=$(sed -n 's/.*; \([0-9.]*\) ms while rebuilding.*/\1/p' "$W")
polls=$(sed -n 's/.* ms while rebuilding (\([0-9]*\) polls.*/\1/p' "$W")
[ -n "$longest" ] && [ -n "$polls" ] || fail "the writer printed no poll times"
# Two rebuilds of megabytes at 256 KiB per member per poll: many polls, never one or two.
[ "$polls" -ge 8 ] || fail "the rebuilds ran in $polls polls: not spread over the writer's polls"
echo "longest poll while rebuilding: $longest ms, over $polls polls"
grep -q "3 members left" "$W" && fail "the writer ran short of members"

kill_member 0
kill_member 5
"$LOAD" verify "$target" rs "$T/acks" 2>"$T/verify.log" ||
  fail "without members 0 and 5: $(tail -5 "$T/verify.log")"
grep -q 'Connection refused\|does not answer' "$T/verify.log" || fail "members 0 and 5 not dead"
cat "$T/verify.log" | tail -1
last_gen=$(awk '$1 == "ack" { if ($3 > g) g = $3 } END { print g }' "$T/acks")
"$LOAD" verify "$target" rs "$T/acks" --all "$last_gen" 2>"$T/verify-all.log" ||
  fail "not every pair at generation $last_gen: $(tail -5 "$T/verify-all.log")"
echo "PASS: members that came back (empty, and with their region) rejoined the writer; restored without two others"
