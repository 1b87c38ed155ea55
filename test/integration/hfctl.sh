#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# hfctl against a running holdfast with two workers (-l 0,1, af_packet ports with two queue
# pairs between network namespaces), real connections held open across it, checkpointing
# to pmem:
# - every command answers; `metrics` parses as Prometheus text (python3-prometheus-client's
#   own parser) and its figures are holdfast's telemetry's; a wrong prefix fails with exit
#   1 and says why;
# - `hfctl conns` lists exactly the connections the test opened (TCP over IPv4 and IPv6,
#   some half-closed, an assured and an unreplied UDP flow): protocol, addresses, ports and
#   state; both workers' connections; the filters (addresses in CIDR, ports, protocol,
#   state, worker) narrow to what they must; pages of 1 and 5 list the same as the default;
#   /holdfast/conns refuses malformed parameters with a reason;
# - after a kill -9 and a restart, the same connections are listed, each as restored.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"
HFCTL="$SRC/app/hfctl"
HF_LCORE=0,1
HF_QPAIRS=2

topology ipv6
cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt pmem:$T/state.pmu
policy drop
rule accept from inside proto tcp dport 8080
rule accept from inside proto udp dport 5353
CONF
start_hf "$T/holdfast.conf"
ip netns exec "$NS_S" /usr/bin/python3 "$SRC/test/integration/conns_peer.py" serve \
  "$SRV_IP" "$SRV_IP6" >"$T/serve.log" 2>&1 &
PIDS+=($!)
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast did not start"
grep -q "2 workers" "$HF_LOG" || fail "holdfast does not run two workers: $(grep forwarding "$HF_LOG")"
wait_for 20 listening "$NS_S" 8080 || fail "the server did not listen"
ip netns exec "$NS_C" /usr/bin/python3 "$SRC/test/integration/conns_peer.py" open \
  "$CLI_IP" "$SRV_IP" "$CLI_IP6" "$SRV_IP6" "$T/opened" >"$T/open.log" 2>&1 &
CLIENT=$!
PIDS+=("$CLIENT")
opened() {
  [ -s "$T/opened" ] && return 0
  kill -0 "$CLIENT" 2>/dev/null || fail "the client failed: $(cat "$T/open.log")"
  return 1
}
wait_for 30 opened || fail "the connections did not open"

# hfctl conns: the listing, the table, each worker's, pages, filters and refusals; then
# every other command, and metrics parsed as Prometheus text and compared with the
# telemetry. hfctl_check.py runs hfctl's main() for each command line, in one process (a
# Python start is 0.3 s here).
/usr/bin/python3 "$SRC/test/integration/hfctl_check.py" listing,commands "$HFCTL" \
  "$HF_PREFIX" "$T/opened" || fail "hfctl"

# A restart restores them: the same listing, every connection marked restored.
kill_and_recover restart "$T/holdfast.conf"
/usr/bin/python3 "$SRC/test/integration/hfctl_check.py" restored "$HFCTL" "$HF_PREFIX" \
  "$T/opened" || fail "hfctl conns after a restart"
kill -INT "$HF_PID"
wait_for 30 gone "$HF_PID" || fail "holdfast did not stop"
echo "PASS: hfctl reads a running holdfast; conns lists and filters exactly what is open; metrics parse and match"
