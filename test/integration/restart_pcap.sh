#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Connections survive a kill -9 of holdfast: it opens TCP, UDP and FTP connections (phase a)
# checkpointed into MODE's target, is killed -9 once every checkpoint is durable, starts
# again, and the same connections go on (phase b): their next packets pass with strict
# window checking, the FTP data connection announced before the crash opens, and what was
# invalid before is still dropped.
#
#   restart_pcap.sh pmem            the embedded pmem: file
#   restart_pcap.sh tcp | shm       ckptsrv over ofi+tcp / ofi+shm
#   restart_pcap.sh server-restart  ckptsrv (tcp) killed -9 after phase a and restarted on an
#                                   EMPTY store while holdfast runs: holdfast reconnects and
#                                   resynchronises every live slice, and the restart of
#                                   holdfast that follows restores from what it resent.
#   restart_pcap.sh server-late     holdfast (tcp) starts before its ckptsrv: it forwards without
#                                   it, connects within a second of the server serving
#                                   (issue 14: it had not, 10 s later), writes everything, and
#                                   the restart that follows restores it.
#   restart_pcap.sh standby-pmem | standby-tcp
#                                   a standby (holdfast --standby, phase b's ports) follows
#                                   the primary's log into its shadow table; the primary is
#                                   killed -9, its lease runs out, the standby takes over and
#                                   the connections go on through it.
#   restart_pcap.sh standby-command the same with a lease of a minute: the standby takes
#                                   over on SIGUSR1, not by waiting.
#   restart_pcap.sh standby-idle    standby-command over ckptsrv (tcp) with the shortest idle
#                                   timeout (5 s): primary and standby sit idle for 12 s
#                                   first (the lease renewed every 15 s), and no session of
#                                   theirs is closed as idle: every client they hold polls,
#                                   and so sends keepalives.
#   restart_pcap.sh group           a redundancy group, xor(2) over three ckptsrv (tcp): holdfast
#                                   is killed -9, then one member too; the restarted holdfast
#                                   restores from the other two (one chunk in three recovered
#                                   from parity) and goes on writing to them.
#   restart_pcap.sh standby-group   primary and standby both on that group; the primary is
#                                   killed -9 and one member too; the standby takes over when the
#                                   lease (renewed on every member) runs out, continues the
#                                   group's rings after the primary's last segment, and the
#                                   connections go on through it.
source "$(dirname "$0")/ofi_lib.sh"
mode=${1:-pmem}
prefix="hfrs$$"
HF_PID=
base_prefix=$prefix # the standby modes move $prefix on to the standby's
trap 'rm -rf "/var/run/dpdk/$base_prefix" "/var/run/dpdk/${base_prefix}sb"; cleanup' EXIT
tel() { /usr/bin/python3 "$SRC/test/integration/telemetry.py" "/var/run/dpdk/${2:-$prefix}/dpdk_telemetry.v2" "$1" 2>/dev/null || true; }
# One interpreter per poll: every frame of the phase in, every checkpoint durable, the
# target connected, and at least MIN reconnects behind it.
settled() { # total min_reconnects
  kill -0 "$HF_PID" 2>/dev/null || fail "holdfast exited early"
  /usr/bin/python3 - "$1" "$2" "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "$SRC" <<'PY'
import sys
sys.path.insert(0, sys.argv[4] + "/test/integration")
from telemetry import query
try:
    s = query(sys.argv[3], "/holdfast/stats")["/holdfast/stats"]
    k = query(sys.argv[3], "/holdfast/ckpt")["/holdfast/ckpt"]
    ok = (s["port0_rx"] + s["port1_rx"] >= int(sys.argv[1]) and k["not_durable"] == 0 and
          k["workers_disconnected"] == 0 and k["reconnects"] >= int(sys.argv[2]))
except Exception:  # not up yet
    ok = False
sys.exit(0 if ok else 1)
PY
}

/usr/bin/python3 "$SRC/test/integration/gen_restart.py" "$T" >/dev/null
port=$(free_port)
printf 'holdfast %s\n' "$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" >"$T/secret"
lease=500
idle=()
case "$mode" in
  pmem | standby-pmem) target="pmem:$T/state.pmu" ;;
  standby-command) target="pmem:$T/state.pmu" lease=60000 ;;
  tcp | server-restart | server-late | standby-tcp) target="ofi+tcp://127.0.0.1:$port" ;;
  standby-idle) target="ofi+tcp://127.0.0.1:$port" lease=60000 idle=(--idle-timeout-ms 5000) ;;
  shm) target="ofi+shm://hf-rs-$$" ;;
  group | standby-group)
    declare -a MEMBER MEMBER_PID
    for i in 0 1 2; do MEMBER[$i]="ofi+tcp://127.0.0.1:$(free_port)"; done
    target="group:xor(2)=$(IFS=,; echo "${MEMBER[*]}")"
    ;;
  *) fail "unknown mode $mode" ;;
esac
serve() { # store
  start_server srv --pmem "$1" --size 256M --secret-file "$T/secret" --allow-shm \
    --listen "ofi+tcp://127.0.0.1:$port" --listen "ofi+shm://hf-rs-$$" "${idle[@]}"
}
case "$target" in ofi*) [ "$mode" = server-late ] || serve "$T/store1.pmu" ;; esac
case "$target" in
group:*)
  for i in 0 1 2; do
    start_server "member$i" --pmem "$T/member$i.pmu" --size 256M --secret-file "$T/secret" \
      --listen "${MEMBER[$i]}"
    MEMBER_PID[$i]=$SRV_PID
  done
  ;;
esac
# Lose member 1 for good (its store stays, nobody serves it): the group goes on with two.
kill_member() {
  kill -9 "${MEMBER_PID[1]}"
  wait_for 10 gone "${MEMBER_PID[1]}" || fail "member 1 survived kill -9"
  echo "member 1 (${MEMBER[1]}) killed"
}
# After the last holdfast stopped: what it wrote to the two members left reads back whole
# through the group (the state a restore would get, and its log).
group_reads_back() {
  local r
  for r in holdfast-state.0 holdfast-state.0.log; do
    "$BUILD/ckptsrv/ckptctl" --target "$target" --secret-file "$T/secret" dump "$r" \
      >"$T/dump-$r" 2>"$T/dump-$r.log" || fail "$r does not read back: $(tail -3 "$T/dump-$r.log")"
    grep -q '^pair=' "$T/dump-$r" || fail "$r reads back empty"
    echo "$r: $(tail -1 "$T/dump-$r")"
  done
}

cat > "$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt $target
ckpt-secret-file $T/secret
ckpt-allow-shm $([ "$mode" = shm ] && echo yes || echo no)
lease-ms $lease
rule accept from inside proto tcp dport 80
rule accept from inside proto tcp dport 21
rule accept from inside proto udp dport 53
CONF

start_hf() { # phase [--standby]
  local p=$prefix
  [ -z "${2:-}" ] || p="${prefix}sb"
  "$BUILD/holdfast" --no-huge -m 256 --no-pci -l 0 --file-prefix "$p" \
    --vdev "net_pcap0,rx_pcap=$T/$1/in0.pcap,tx_pcap=$T/$1/out0.pcap" \
    --vdev "net_pcap1,rx_pcap=$T/$1/in1.pcap,tx_pcap=$T/$1/out1.pcap" \
    -- --config "$T/holdfast.conf" ${2:-} >"$T/hf-$1${2:+-standby}.log" 2>&1 &
  HF_PID=$!
  PIDS+=("$HF_PID")
}
# The standby's shadow table holds N connections (its telemetry answers before takeover).
shadow_has() { # n
  kill -0 "$SB_PID" 2>/dev/null || fail "the standby exited early"
  [ "$(tel /holdfast/conns "${prefix}sb" | /usr/bin/python3 -c 'import json,sys
try: print(json.load(sys.stdin)["/holdfast/conns"]["total"])
except Exception: print(-1)')" = "$1" ]
}
# SIGINT, and holdfast must be gone within 30 s with exit status 0 (a shutdown stuck inside
# a provider fails here, with its log, instead of holding the suite until its timeout).
stop_hf() {
  kill -INT "$HF_PID"
  wait_for 30 gone "$HF_PID" || fail "holdfast did not stop within 30 s of SIGINT"
  wait "$HF_PID" || fail "holdfast exited non-zero"
}
frames() { /usr/bin/python3 -c "from scapy.all import rdpcap; import sys; print(len(rdpcap(sys.argv[1])) + len(rdpcap(sys.argv[2])))" "$T/$1/in0.pcap" "$T/$1/in1.pcap"; }

start_hf a
fa=$(frames a); fb=$(frames b)
if [ "$mode" = server-late ]; then
  wait_for 30 log_has "$T/hf-a.log" "starting without it" || fail "holdfast did not start alone"
  sleep 2 # several attempts refused: the reconnect must not have backed off beyond reach
  t0=$(date +%s%3N)
  serve "$T/store1.pmu"
  t1=$(date +%s%3N)
  wait_for 30 log_has "$T/hf-a.log" "back after" || fail "holdfast never connected"
  t2=$(date +%s%3N)
  grep -E "back after" "$T/hf-a.log" | sed 's/^.*holdfast.ckpt: //'
  echo "server start-up $((t1 - t0)) ms; then holdfast connected within $((t2 - t1)) ms"
  [ $((t2 - t1)) -le 1500 ] || fail "connected $((t2 - t1)) ms after the server served"
  wait_for 30 settled "$fa" 1 || fail "no resync: $(tel /holdfast/ckpt)"
fi
wait_for 30 settled "$fa" 0 || fail "phase a did not settle: $(tel /holdfast/ckpt)"
echo "a: $(tel /holdfast/ckpt)"
# Issue 15: over ckptsrv and groups the worker (the main thread, lcore 0) handed every
# record over and never ran the target's I/O itself; the thread that did is hf-ckpt, a
# thread of its own. On pmem: (ckpt-lcore auto) the worker writes its own records: they are
# durable before its next burst.
/usr/bin/python3 - "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "$SRC" "$HF_PID" "$target" <<'PY' ||
import sys
sys.path.insert(0, sys.argv[2] + "/test/integration")
from telemetry import query
k = query(sys.argv[1], "/holdfast/ckpt")["/holdfast/ckpt"]
tid, pid = k["io_tid"], int(sys.argv[3])
comm = open("/proc/%d/task/%d/comm" % (pid, tid)).read().strip() if tid else ""
if sys.argv[4].startswith("pmem:"):
    ok = (k["io"] == "inline" and k["worker_io_passes"] > 0
          and k["slices_tcp"] + k["slices_udp"] > 0)
else:
    ok = (k["io"] == "thread hf-ckpt" and k["worker_io_passes"] == 0 and k["io_passes"] > 0
          and k["slices_tcp"] + k["slices_udp"] > 0 and tid != pid and comm == "hf-ckpt")
print("checkpoint I/O: %s, thread %d (%s), %d passes; by the worker: %d passes" %
      (k["io"], tid, comm, k["io_passes"], k["worker_io_passes"]))
sys.exit(0 if ok else 1)
PY
  fail "checkpoint I/O not where ckpt-lcore auto puts it for $target: $(tel /holdfast/ckpt)"
# libfabric is loaded by the first ofi+* connect, not at start: a pmem: firewall never pays
# its load (100-230 ms of libpsm_infinipath's clock calibration on every start).
case "$target" in
  pmem:*) ! grep -q libfabric "/proc/$HF_PID/maps" || fail "holdfast on pmem: loaded libfabric" ;;
  *) grep -q libfabric "/proc/$HF_PID/maps" || fail "holdfast on $target: libfabric not loaded"
     # ... and it loaded on a thread beside EAL init, not at the connect; the signal
     # handlers libinfinipath's constructor installs (SEGV, BUS, ILL, ABRT: they exit 1)
     # were put back by the join: holdfast catches none of them.
     grep -q "loaded beside the start" "$T/hf-a.log" || fail "libfabric was not preloaded"
     cgt=$(awk '/^SigCgt:/ {print $2}' "/proc/$HF_PID/status")
     for sig in 4 6 7 11; do
       (( (16#$cgt >> (sig - 1)) & 1 )) && fail "holdfast catches signal $sig (SigCgt $cgt)"
     done ;;
esac
# A start with fewer workers than holdfast allows looks for regions of more workers with one
# listing: it opened each name and logged an error for every one missing, on every start.
! grep -q "open region holdfast-state\.[0-9]*: No such file" "$T/hf-a.log" ||
  fail "the start logged errors for regions of workers it never had: $(grep -c 'open region' "$T/hf-a.log")"
# DPDK is linked in (meson option dpdk_static, the default): no librte_*.so mapped, so the
# EAL loaded none of the driver plugins a shared EAL loads at every start.
if /usr/bin/python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(open(sys.argv[1]))}; sys.exit(0 if o.get("dpdk_static")=="disabled" else 1)' \
    "$BUILD/meson-info/intro-buildoptions.json"; then
  echo "dpdk_static disabled in this build: shared DPDK expected"
else
  ! grep -q "librte_.*\.so" "/proc/$HF_PID/maps" ||
    fail "holdfast maps DPDK's shared libraries: $(grep -o 'librte_[^ ]*\.so[.0-9]*' "/proc/$HF_PID/maps" | sort -u | head -5 | tr '\n' ' ')"
fi
case "$mode" in
standby-*)
  PRIMARY=$HF_PID
  start_hf b --standby
  SB_PID=$HF_PID
  wait_for 30 log_has "$T/hf-b-standby.log" "holdfast: standby" || fail "no standby"
  wait_for 30 shadow_has 3 || fail "the standby's shadow table never held the 3 connections"
  [ "$(grep -c '^holdfast: ready' "$T/hf-b-standby.log")" = 0 ] || fail "standby forwards"
  if [ "$mode" = standby-idle ]; then
    sleep 12 # the condition under test: more than two idle timeouts with nothing to write
    if log_has "$T/srv.log" "sent nothing for"; then
      fail "a session was closed as idle: $(grep 'sent nothing for' "$T/srv.log" | head -3)"
    fi
  fi
  kill -9 "$PRIMARY"
  wait "$PRIMARY" 2>/dev/null || true
  [ "$mode" != standby-group ] || kill_member
  [ "$mode" != standby-command ] && [ "$mode" != standby-idle ] || kill -USR1 "$SB_PID"
  wait_for 30 log_has "$T/hf-b-standby.log" "holdfast: took over" || fail "no takeover"
  grep -E "took over|taking over" "$T/hf-b-standby.log" | sed 's/^.*holdfast: //'
  if [ "$mode" = standby-command ] || [ "$mode" = standby-idle ]; then
    # The command, or the primary's death noticed first (the kill came before it): not
    # the minute-long lease.
    log_has "$T/hf-b-standby.log" "taking over (command)\|taking over (death notice)" ||
      fail "neither by the command nor by death notice"
  else
    # Death notice where the target gives it (the primary's session or lock went with it),
    # else the lease running out.
    log_has "$T/hf-b-standby.log" "taking over (death notice)\|taking over (lease expired)" ||
      fail "not by the death notice nor the lease"
  fi
  prefix="${prefix}sb"
  wait_for 30 settled "$fb" 0 || fail "the new primary did not settle: $(tel /holdfast/ckpt)"
  if [ "$mode" = standby-idle ] && log_has "$T/hf-b-standby.log" "lost\|retrying"; then
    fail "the standby's checkpointers had to reconnect: $(grep 'lost\|retrying' "$T/hf-b-standby.log")"
  fi
  stop_hf
  /usr/bin/python3 "$SRC/test/integration/check_pcap.py" "$T/b" || fail "phase b verdicts"
  [ "$mode" != standby-group ] || group_reads_back
  echo "takeover over $mode: ok"
  exit 0
  ;;
esac
if [ "$mode" = server-restart ]; then
  kill -9 "$SRV_PID"
  wait_for 10 log_has "$T/hf-a.log" "lost" || fail "holdfast did not notice the server go"
  serve "$T/store2.pmu" # empty: only a resync can fill it
  wait_for 30 settled "$fa" 1 || fail "no resync: $(tel /holdfast/ckpt)"
  grep -E "lost|back after|behind our epoch|epoch [0-9]+ of" "$T/hf-a.log" | sed 's/^.*holdfast.ckpt: //'
fi
kill -9 "$HF_PID"
wait "$HF_PID" 2>/dev/null || true
[ "$mode" != group ] || kill_member
start_hf b
wait_for 30 settled "$fb" 0 || fail "phase b did not settle"
grep -E "restored [0-9]+ connections" "$T/hf-b.log" | sed 's/^.*holdfast.ckpt: //;s/^holdfast: //'
log_has "$T/hf-b.log" "restored 3 connections" || fail "expected 3 restored connections"
stop_hf
/usr/bin/python3 "$SRC/test/integration/check_pcap.py" "$T/b" || fail "phase b verdicts"
[ "$mode" != group ] || group_reads_back
echo "restart over $mode: ok"
