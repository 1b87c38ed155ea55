#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Real IPv6 clients through holdfast running the shipped config/holdfast.conf as it is (its
# rules, policy and FTP port; only max-conns and the checkpoint file come from the command
# line): the hosts find each other by neighbour discovery across holdfast, with no static
# neighbour entries.
#   - HTTP: curl -6 downloads 40 MB from python3 http.server on port 80; holdfast is killed
#     -9 a quarter of the way in and started again; the download completes, sha256 matches.
#   - FTP (pyftpdlib, port 21): EPSV and EPRT downloads, each with a kill -9 and restart
#     between the command and its data connection; checksums match.
#   - Issue 12: after those data connections used their expectations, holdfast is killed -9
#     and restarted once more; a new connection to each used data port (client to the
#     EPSV port, server to the EPRT port) is dropped by the policy (connect times out)
#     instead of passing as related.
# At the end: neighbour discovery passed and counted (nd), none of it dropped by the policy.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"
SIZE_MB=40

topology ipv6
mkdir -p "$T/www" "$T/ftp"
head -c "${SIZE_MB}M" /dev/urandom >"$T/www/big"
head -c 8M /dev/urandom >"$T/ftp/file"
want_http=$(sha256sum <"$T/www/big" | cut -d' ' -f1)
want_ftp=$(sha256sum <"$T/ftp/file" | cut -d' ' -f1)
CONF="$SRC/config/holdfast.conf"
hf() { start_hf "$CONF" --max-conns 4096 --ckpt "pmem:$T/state.pmu"; }

ip netns exec "$NS_S" /usr/bin/python3 -m http.server 80 --bind "$SRV_IP6" \
  --directory "$T/www" >"$T/http.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_S" /usr/bin/python3 -m pyftpdlib -i "$SRV_IP6" -p 21 -d "$T/ftp" \
  >"$T/ftpd.log" 2>&1 &
PIDS+=($!)
hf
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast not ready"
listening6() { ip netns exec "$NS_S" ss -ltnH "sport = :$1" | grep -q "$SRV_IP6"; }
wait_for 20 listening6 80 || fail "http.server did not listen"
wait_for 20 listening6 21 || fail "pyftpdlib did not listen"
url="http://[$SRV_IP6]:80/big"
reach() { # a HEAD request: the hosts found each other (neighbour discovery) and port 80 opens
  in_c curl -6 -sS --max-time 10 -o /dev/null -I "$url" 2>"$T/curl-head.log" ||
    fail "$1: no IPv6 connection through holdfast with the shipped rules: $(cat "$T/curl-head.log")"
}
reach "at the start"

# HTTP through a kill -9 and a restart.
ip netns exec "$NS_C" curl -6 -sS --max-time 60 --limit-rate 16M -o "$T/got" "$url" \
  2>"$T/curl.log" &
curl_pid=$!
PIDS+=("$curl_pid")
got_bytes() { stat -c %s "$T/got" 2>/dev/null || echo 0; }
quarter() { [ "$(got_bytes)" -ge $((SIZE_MB * 1024 * 1024 / 4)) ]; }
wait_for 60 quarter || fail "the download did not reach a quarter: $(cat "$T/curl.log")"
gone "$curl_pid" && fail "the download ended before the kill (too fast to test)"
at_kill=$(got_bytes)
kill -9 "$HF_PID"
t_kill=$(now_ms)
hf
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast did not come back"
t_ready=$(now_ms)
wait "$curl_pid" || fail "curl failed after the restart: $(cat "$T/curl.log")"
[ "$(sha256sum <"$T/got" | cut -d' ' -f1)" = "$want_http" ] || fail "http: checksum mismatch"
echo "http over IPv6: $SIZE_MB MB, kill -9 at $((at_kill / 1048576)) MB, ready again after" \
  "$((t_ready - t_kill)) ms; sha256 matches"

# FTP: EPSV and EPRT, each with a kill -9 and restart between the command and the data.
declare -A used
for mode in EPSV EPRT; do
  coproc STEP { ip netns exec "$NS_C" /usr/bin/python3 "$SRC/test/integration/ftp_step.py" \
    "$SRV_IP6" "$CLI_IP6" "$mode" file 2>"$T/step-$mode.log"; }
  PIDS+=("$STEP_PID")
  read -r -t 30 word port <&"${STEP[0]}" || fail "$mode: no announcement: $(cat "$T/step-$mode.log")"
  [ "$word" = announced ] || fail "$mode: $word $port"
  used[$mode]=$port
  kill -9 "$HF_PID"
  hf
  wait_for 30 hf_ready "$HF_LOG" || fail "holdfast did not come back"
  echo go >&"${STEP[1]}"
  read -r -t 60 sum <&"${STEP[0]}" || fail "$mode after the restart: $(cat "$T/step-$mode.log")"
  [ "$sum" = "$want_ftp" ] || fail "$mode after the restart: checksum"
  wait "$STEP_PID" || fail "$mode: the client failed"
  echo "ftp over IPv6, $mode to port $port with kill -9 between the command and the data:" \
    "checksum matches"
done

# The used expectations must not come back with a restart. The hosts forget each other
# first: what follows needs neighbour discovery across the restarted holdfast again.
kill -9 "$HF_PID"
hf
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast did not come back"
in_c ip -6 neigh flush dev c0
in_s ip -6 neigh flush dev s0
reach "after the last restart"
probe() { # namespace, address, port: 'timeout' (dropped) or what else happened
  ip netns exec "$1" /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6)
s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as e:
    print(e.strerror)' "$2" "$3"
}
r=$(probe "$NS_C" "$SRV_IP6" "${used[EPSV]}")
[ "$r" = timeout ] || fail "a new connection to the used EPSV port ${used[EPSV]} passed ($r)"
r=$(probe "$NS_S" "$CLI_IP6" "${used[EPRT]}")
[ "$r" = timeout ] || fail "a new connection to the used EPRT port ${used[EPRT]} passed ($r)"
# ...because holdfast dropped it: the server did find the client
in_s ip -6 neigh show "$CLI_IP6" | grep -q lladdr ||
  fail "the server never resolved the client: $(in_s ip -6 neigh show)"
echo "after another kill -9 and restart, new connections to the used data ports" \
  "(EPSV ${used[EPSV]}, EPRT ${used[EPRT]}) are dropped"

kill -INT "$HF_PID"
wait "$HF_PID" || fail "holdfast exited non-zero"
nd=$(grep -oE "nd [0-9]+" "$HF_LOG" | grep -oE "[0-9]+" || echo 0)
[ "$nd" -gt 0 ] || fail "no neighbour discovery counted: $(cat "$HF_LOG")"
echo "neighbour discovery: $nd messages passed and counted in the last run;" \
  "$(grep -oE 'drop policy [0-9]+' "$HF_LOG" || echo 'no policy drop') (the two probes)"
