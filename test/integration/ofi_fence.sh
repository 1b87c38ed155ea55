#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Epochs and fencing through a real ckptsrv over ofi+tcp (issue 14): two clients racing
# ckpt_epoch_take from the same seen epoch, exactly one wins and the other gets ESTALE; a
# writer overtaken by a newer epoch is refused ESTALE on its lease renewal and its sync, its
# one-sided write after the take does not land (read back, then `ckptctl dump` of the store
# after the server stopped), a client bound to the old epoch cannot create or re-bind, and
# the server logs each fencing once.
source "$(dirname "$0")/ofi_lib.sh"
FENCE="$BUILD/test/integration/ckpt_fence"
CKPTCTL="$BUILD/ckptsrv/ckptctl"

rnd() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
printf 'alice %s\n' "$(rnd)" >"$T/secret"
port=$(free_port)
U="ofi+tcp://127.0.0.1:$port"
start_server srv --pmem "$T/store" --size 64M --secret-file "$T/secret" --listen "$U" \
  --log-level info
run() { HF_TENANT=alice HF_SECRET_FILE="$T/secret" "$FENCE" "$U" "$@"; }

for i in 1 2 3; do
  run race fw-race.0 >"$T/race$i.out" 2>"$T/race$i.log" ||
    fail "race $i: $(cat "$T/race$i.out")"
done
cat "$T/race3.out"
grep -q "epoch now 3" "$T/race3.out" || fail "three races did not move the epoch to 3"

run fence fw-fence.0 fw-fence.1 >"$T/fence.out" 2>"$T/fence.log" ||
  fail "fencing: $(cat "$T/fence.out")"
cat "$T/fence.out"
# One line per fenced session (the writer and the bound client), however often they ask.
n=$(grep -c "is fenced: epoch 2 was taken" "$T/srv.log" || true)
[ "$n" -eq 2 ] || fail "want 2 fencing lines in the server log, found $n"
log_has "$T/srv.log" "bound to epoch 1 of fw-fence.0, is fenced: epoch 2 was taken; 2 remote key" ||
  fail "the writer's key was not withdrawn"
log_has "$T/fence.log" "fenced: a newer epoch was taken" || fail "the writer was not told why"

stop_server "$T/srv.log"
# The store as the server left it: the records of pairs 1 (before the take) and 3 (the
# newcomer's), none of pair 2, and the fenced writer's payload nowhere in the file.
"$CKPTCTL" --pmem "$T/store" --tenant alice dump fw-fence.1 >"$T/dump.out" 2>"$T/dump.log" ||
  fail "ckptctl dump: $(cat "$T/dump.log")"
cat "$T/dump.out"
[ "$(grep -c '^pair=' "$T/dump.out")" -eq 2 ] && grep -q '^pair=1 ' "$T/dump.out" &&
  grep -q '^pair=3 ' "$T/dump.out" || fail "the data region does not hold pairs 1 and 3 only"
"$CKPTCTL" --pmem "$T/store" --tenant alice stat fw-fence.0 >"$T/stat.out" 2>&1 ||
  fail "ckptctl stat: $(cat "$T/stat.out")"
grep -q '^epoch: 2$' "$T/stat.out" || fail "ckptctl stat does not show epoch 2: $(cat "$T/stat.out")"
if grep -a -q "after-the-take" "$T/store"; then
  fail "the fenced writer's bytes are in the store file"
fi
echo "ofi_fence: ok"
