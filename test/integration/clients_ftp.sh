#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Real FTP through holdfast's FTP module: pyftpdlib serves on the outside, curl downloads
# from the inside in passive (EPSV, PASV) and active (EPRT, PORT) modes; two downloads are
# split by a kill -9 and restart of holdfast between the control command and the data
# (EPSV: the restored expectation admits the data connection; PORT: pyftpdlib connects at
# once, so the data connection itself is restored). Then the same holdfast with the FTP
# module off port 21 (ftp-ports 2121): active mode must fail, dropped by the policy,
# which proves the module's expectation is what admits it.
#   clients_ftp.sh workers: the same with two workers (issue 16): 12 smaller downloads in
#   the four modes, whose data connections land on either worker whatever worker owns
#   their control connection: each is admitted by the expectation exactly once, and the
#   restart between EPSV and the data connection with two workers again.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"
mode=${1:-one}
case "$mode" in one | workers) ;; *) fail "unknown mode $mode" ;; esac
size=20M
rounds=1
kills="EPSV PORT"
if [ "$mode" = workers ]; then
  HF_LCORE=0,1
  HF_QPAIRS=2
  size=1M
  rounds=3
  kills=EPSV
fi

topology
mkdir -p "$T/ftp"
head -c "$size" /dev/urandom >"$T/ftp/file"
want=$(sha256sum <"$T/ftp/file" | cut -d' ' -f1)
conf() { # ftp-ports
  cat >"$T/holdfast-$1.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt pmem:$T/state-$1.pmu
ftp-ports $1
policy drop
rule accept from inside proto tcp dport 21
CONF
}
conf 21
conf 2121
ip netns exec "$NS_S" /usr/bin/python3 -m pyftpdlib -i "$SRV_IP" -p 21 -d "$T/ftp" \
  >"$T/ftpd.log" 2>&1 &
PIDS+=($!)
start_hf "$T/holdfast-21.conf"
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast not ready"
wait_for 20 listening "$NS_S" 21 || fail "pyftpdlib did not listen"

fetch() { # name curl-args...: download, check the command curl used and the checksum
  local name=$1 cmd=$2
  shift 2
  rm -f "$T/got"
  in_c curl -sS -v --max-time 30 "$@" -o "$T/got" "ftp://$SRV_IP/file" 2>"$T/curl-$name.log" ||
    fail "curl $name: $(grep -E '^(curl|< [45])' "$T/curl-$name.log")"
  grep -q "^> $cmd" "$T/curl-$name.log" || fail "curl $name did not use $cmd"
  [ "$(sha256sum <"$T/got" | cut -d' ' -f1)" = "$want" ] || fail "curl $name: checksum"
  [ "$rounds" -gt 1 ] || echo "ftp $name ($cmd): $size, checksum matches"
}
stat() { # key: holdfast's total of a /holdfast/stats counter
  /usr/bin/python3 "$SRC/test/integration/telemetry.py" \
    "/var/run/dpdk/$HF_PREFIX/dpdk_telemetry.v2" /holdfast/stats |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["/holdfast/stats"][sys.argv[1]])' "$1"
}
for r in $(seq "$rounds"); do
  fetch epsv EPSV
  fetch pasv PASV --disable-epsv
  fetch eprt EPRT -P "$CLI_IP"
  fetch port "PORT " -P "$CLI_IP" --disable-eprt
done
if [ "$mode" = workers ]; then
  grep -q "2 workers" "$HF_LOG" || fail "holdfast does not run two workers"
  related=$(stat conn_related)
  cross=$(stat related_cross)
  told=$(stat expect_used_elsewhere)
  held=$(stat held)
  held_dropped=$(stat held_dropped)
  echo "ftp with two workers: $((rounds * 4)) downloads of $size, every checksum matches;" \
    "$related data connections admitted by an expectation, $cross of them at the worker" \
    "not owning the control connection, whose owner learnt of $told; $held SYNs held" \
    "until that owner's checkpoint had it ($held_dropped dropped after waiting 10 ms)"
  [ "$related" -eq $((rounds * 4)) ] || fail "$related data connections admitted, $((rounds * 4)) made"
  [ "$cross" -gt 0 ] || fail "no data connection landed on the other worker"
  [ "$told" -eq "$cross" ] || fail "$cross used at the other worker, $told settled"
  [ "$held" -eq "$cross" ] || fail "$cross used at the other worker, $held of their SYNs held"
fi

# kill -9 and restart between the control command and the data connection.
for kmode in $kills; do
  coproc STEP { ip netns exec "$NS_C" /usr/bin/python3 "$SRC/test/integration/ftp_step.py" \
    "$SRV_IP" "$CLI_IP" "$kmode" file 2>"$T/step-$kmode.log"; }
  PIDS+=("$STEP_PID")
  read -r -t 30 line <&"${STEP[0]}" || fail "$kmode: no announcement: $(cat "$T/step-$kmode.log")"
  case "$line" in announced*) ;; *) fail "$kmode: $line" ;; esac
  established=$(in_c ss -tnH state established | wc -l)
  tracked=$(hf_conns)
  kill -9 "$HF_PID"
  t_kill=$(now_ms)
  start_hf "$T/holdfast-21.conf"
  wait_for 30 hf_ready "$HF_LOG" || fail "holdfast did not come back"
  t_ready=$(now_ms)
  restored=$(grep -oE "restored [0-9]+ connections" "$HF_LOG" | grep -oE "[0-9]+")
  echo go >&"${STEP[1]}"
  read -r -t 60 sum <&"${STEP[0]}" || fail "$kmode after the restart: $(cat "$T/step-$kmode.log")"
  [ "$sum" = "$want" ] || fail "$kmode after the restart: checksum"
  wait "$STEP_PID" || fail "$kmode: the client failed"
  echo "ftp $kmode with kill -9 between the command and the data: checksum matches;" \
    "ready again after $((t_ready - t_kill)) ms; $established established at the client," \
    "$tracked tracked by holdfast (closing ones too), $restored restored"
  [ "$restored" -eq "$tracked" ] || fail "not every connection restored"
done

[ "$mode" = one ] || exit 0

# The FTP module off port 21: no expectation, and active mode fails.
kill -INT "$HF_PID"
wait "$HF_PID" || fail "holdfast exited non-zero"
start_hf "$T/holdfast-2121.conf"
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast (ftp-ports 2121) not ready"
rc=0
in_c curl -sS --max-time 8 -P "$CLI_IP" -o "$T/got" "ftp://$SRV_IP/file" 2>"$T/curl-noftp.log" || rc=$?
[ "$rc" -ne 0 ] || fail "active FTP passed without the FTP module's expectation"
kill -INT "$HF_PID"
wait "$HF_PID" || fail "holdfast exited non-zero"
grep -qE "drop policy [1-9]" "$HF_LOG" || fail "no policy drop counted: $(cat "$HF_LOG")"
echo "ftp active without the module's expectation: fails (curl exit $rc);" \
  "$(grep -oE 'drop policy [0-9]+' "$HF_LOG")"
