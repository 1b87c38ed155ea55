#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Real TCP connections through a chain of failovers: 50 long-lived connections echo lines
# across holdfast (net_af_packet on veths between two namespaces, pmem: checkpoints) while
# the primary is killed -9 KILLS times (default 4) at random moments; each time the standby
# takes over and a new standby is started behind it. Every connection must live through
# every takeover and echo right (clients_echo.py checks each line), and each must echo
# through the new primary before the next kill.
#
#   clients_failover.sh [KILLS]
#
# Prints kill -> standby ready, kill -> first echo after the takeover and kill -> every
# connection echoed again (min/p50/max). The hosts retransmit as a tuned LAN stack would
# (route rto_min 10ms, thin-stream linear timeouts), so the figures show the firewall's gap
# more than TCP's backoff; the connections send in turn, some always afresh.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"
KILLS=${1:-4}
CONNS=50
PERIOD_MS=500
PORT=7000

topology
for ns in "$NS_C" "$NS_S"; do
  ip netns exec "$ns" sysctl -qw net.ipv4.tcp_thin_linear_timeouts=1
done
in_c ip route replace 198.18.0.0/15 dev c0 src "$CLI_IP" rto_min 10ms
in_s ip route replace 198.18.0.0/15 dev s0 src "$SRV_IP" rto_min 10ms
cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt pmem:$T/state.pmu
policy drop
rule accept from inside proto tcp dport $PORT
CONF

ip netns exec "$NS_S" /usr/bin/python3 "$SRC/test/integration/clients_echo.py" server \
  "$SRV_IP" $PORT >"$T/echo-server.log" 2>&1 &
PIDS+=($!)
# Each holdfast on the other lcore from the one before: a standby shares no core with the
# primary's busy worker (as it would not in production).
HF_LCORE=0 # read by start_hf
start_hf "$T/holdfast.conf"
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast not ready"
primary=$HF_PID
primary_log=$HF_LOG
primary_prefix=$HF_PREFIX
wait_for 20 listening "$NS_S" $PORT || fail "the echo server did not listen"

start_standby() {
  HF_LCORE=$((HF_N % 2)) # read by start_hf
  start_hf "$T/holdfast.conf" --standby
  standby=$HF_PID
  standby_log=$HF_LOG
  standby_prefix=$HF_PREFIX
  HF_PID=$primary HF_LOG=$primary_log HF_PREFIX=$primary_prefix
}
standby_follows() {
  log_has "$standby_log" "holdfast: standby" && return 0
  gone "$standby" && fail "standby $k exited: $(grep -v '^EAL' "$standby_log" | tail -5)"
  return 1
}
start_standby

ip netns exec "$NS_C" /usr/bin/python3 "$SRC/test/integration/clients_echo.py" client \
  "$SRV_IP" $PORT $CONNS $PERIOD_MS "$T/status" "$T/echoes" 2>"$T/echo-client.log" &
client=$!
PIDS+=("$client")
status() { cat "$T/status" 2>/dev/null || echo "alive 0 broken 0 oldest 0"; }
# Every connection open, none broken, each echoed since time $1 (epoch seconds).
all_echoed_since() {
  local alive broken oldest
  read -r _ alive _ broken _ oldest < <(status)
  [ "$broken" -eq 0 ] || fail "a connection broke: $(cat "$T/echo-client.log")"
  gone "$client" && fail "the client exited: $(cat "$T/echo-client.log")"
  [ "$alive" -eq $CONNS ] && awk -v o="$oldest" -v t="$1" 'BEGIN { exit !(o > t) }'
}
wait_for 30 all_echoed_since 0 || fail "not every connection echoed: $(status)"
established=$(in_c ss -tnH state established "dport = :$PORT" | wc -l)
[ "$established" -eq $CONNS ] || fail "$established of $CONNS connections established"

: >"$T/kills"
for k in $(seq "$KILLS"); do
  wait_for 60 standby_follows || fail "standby $k did not follow: $(tail -5 "$standby_log")"
  # A random moment of the stream, 0.2 to 1.2 s after the standby follows.
  sleep "0.$((RANDOM % 10 + 2))"
  tracked=$(hf_conns)
  [ "$tracked" -ge $CONNS ] || fail "kill $k: the primary tracks $tracked connections"
  # A standby that took over beside a live primary is a split brain, whatever it forwards.
  ! log_has "$standby_log" "taking over" ||
    fail "kill $k: the standby took over while the primary was alive:" \
      "$(grep "taking over" "$standby_log")"
  t_kill=$EPOCHREALTIME
  kill -9 "$primary"
  { wait "$primary" || true; } 2>/dev/null # reaped: gone; nothing it sent is still coming
  t_dead=$EPOCHREALTIME
  HF_PID=$standby HF_LOG=$standby_log HF_PREFIX=$standby_prefix
  # Looked for every 5 ms (wait_for's 50 ms would blur kill -> ready), 30 s at most.
  for _ in $(seq 6000); do
    hf_ready "$HF_LOG" && break
    sleep 0.005
  done
  t_ready=$EPOCHREALTIME
  hf_ready "$HF_LOG" || fail "kill $k: the standby did not take over"
  echo "$t_kill $t_dead $t_ready" >>"$T/kills"
  primary=$standby primary_log=$standby_log primary_prefix=$standby_prefix
  wait_for 30 all_echoed_since "$t_dead" ||
    fail "kill $k: not every connection echoed through the new primary: $(status)"
  took=$(grep -oE "took over in [0-9.]+ ms" "$primary_log" || true)
  ms=$(awk -v a="$t_kill" -v b="$t_ready" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
  echo "kill $k: ready $ms ms after it ($took); every connection echoed since"
  if [ "$k" -lt "$KILLS" ]; then start_standby; fi
done

kill "$client"
wait "$client" || fail "the client saw a connection break: $(cat "$T/echo-client.log")"
restored=$(hf_conns)
echo "clients failover: $CONNS connections echoing through $KILLS kill -9 failovers" \
  "(pmem:), every one alive and right; the last primary tracks $restored"
/usr/bin/python3 "$SRC/test/integration/clients_echo.py" report "$T/kills" "$T/echoes" $CONNS ||
  fail "the echo log does not show every connection after every kill"
