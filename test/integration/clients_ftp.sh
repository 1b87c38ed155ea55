#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Real FTP through holdfast's FTP module: pyftpdlib serves on the outside, curl downloads
# from the inside in passive (EPSV, PASV) and active (EPRT, PORT) modes; two downloads are
# split by a kill -9 and restart of holdfast between the control command and the data
# (EPSV: the restored expectation admits the data connection; PORT: pyftpdlib connects at
# once, so the data connection itself is restored). Then the same holdfast with the FTP
# module off port 21 (ftp-ports 2121): active mode must fail, dropped by the policy,
# which proves the module's expectation is what admits it.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"

topology
mkdir -p "$T/ftp"
head -c 20M /dev/urandom >"$T/ftp/file"
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
  echo "ftp $name ($cmd): 20 MB, checksum matches"
}
fetch epsv EPSV
fetch pasv PASV --disable-epsv
fetch eprt EPRT -P "$CLI_IP"
fetch port "PORT " -P "$CLI_IP" --disable-eprt

# kill -9 and restart between the control command and the data connection.
for mode in EPSV PORT; do
  coproc STEP { ip netns exec "$NS_C" /usr/bin/python3 "$SRC/test/integration/ftp_step.py" \
    "$SRV_IP" "$CLI_IP" "$mode" file 2>"$T/step-$mode.log"; }
  PIDS+=("$STEP_PID")
  read -r -t 30 line <&"${STEP[0]}" || fail "$mode: no announcement: $(cat "$T/step-$mode.log")"
  case "$line" in announced*) ;; *) fail "$mode: $line" ;; esac
  established=$(in_c ss -tnH state established | wc -l)
  tracked=$(hf_conns)
  kill -9 "$HF_PID"
  t_kill=$(now_ms)
  start_hf "$T/holdfast-21.conf"
  wait_for 30 hf_ready "$HF_LOG" || fail "holdfast did not come back"
  t_ready=$(now_ms)
  restored=$(grep -oE "restored [0-9]+ connections" "$HF_LOG" | grep -oE "[0-9]+")
  echo go >&"${STEP[1]}"
  read -r -t 60 sum <&"${STEP[0]}" || fail "$mode after the restart: $(cat "$T/step-$mode.log")"
  [ "$sum" = "$want" ] || fail "$mode after the restart: checksum"
  wait "$STEP_PID" || fail "$mode: the client failed"
  echo "ftp $mode with kill -9 between the command and the data: checksum matches;" \
    "ready again after $((t_ready - t_kill)) ms; $established established at the client," \
    "$tracked tracked by holdfast (closing ones too), $restored restored"
  [ "$restored" -eq "$tracked" ] || fail "not every connection restored"
done

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
