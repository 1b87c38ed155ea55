#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The idle timeout of authenticated sessions (ckptsrv/session.c), set to its least, 5 s: a
# session that says nothing after logging in (raw, from Python) is closed after 5 s and
# its handle released; so is a C client that neither writes nor polls. A client that polls
# sends keepalives (lib/ckpt/ofi_ctrl.c) and survives 16 s of idleness, writing before and
# after.
source "$(dirname "$0")/ofi_lib.sh"

rnd() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
printf 'silent %s\npolled %s\nquiet %s\n' "$(rnd)" "$(rnd)" "$(rnd)" >"$T/secret"
export HF_SECRET_FILE="$T/secret"
port=$(free_port)
U="ofi+tcp://127.0.0.1:$port"
start_server srv --pmem "$T/store" --size 64M --secret-file "$T/secret" --listen "$U" \
  --idle-timeout-ms 5000 --log-level info

python3 "$SRC/test/integration/silent_peers.py" idle "$port" "$T/secret" silent \
  >"$T/silent.out" 2>&1 &
silent=$!
HF_TENANT=polled "$PROBE" "$U" idle 16 >"$T/polled.out" 2>&1 &
polled=$!
HF_TENANT=quiet "$PROBE" "$U" quiet 8 >"$T/quiet.out" 2>&1 &
quiet=$!
PIDS+=("$silent" "$polled" "$quiet")
wait "$silent" || fail "silent session: $(cat "$T/silent.out")"
wait "$quiet" || fail "quiet client: $(cat "$T/quiet.out")"
wait "$polled" || fail "polled client was cut: $(cat "$T/polled.out")"
cat "$T/silent.out" "$T/quiet.out" "$T/polled.out"

ms=$(sed -n 's/closed by the server after \([0-9]*\) ms.*/\1/p' "$T/silent.out")
[ "${ms:-0}" -ge 4900 ] || fail "silent session closed after ${ms:-?} ms, before its 5 s"
[ "$ms" -le 7000 ] || fail "silent session closed after $ms ms, long after its 5 s"
for t in silent quiet; do
  log_has "$T/srv.log" "tenant $t from .* sent nothing for 5000 ms (idle-timeout-ms); session closed, 1 region handle(s) released" ||
    fail "the idle session of $t is not logged"
done
if log_has "$T/srv.log" "tenant polled from .* sent nothing"; then
  fail "the polled client's session was closed as idle"
fi
gone "$SRV_PID" && fail "server died"
stop_server "$T/srv.log"
echo "PASS: idle sessions are closed after the timeout, clients that poll are kept"
