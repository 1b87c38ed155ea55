#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Rules changed while traffic flows (issue 17), with real clients across holdfast on
# af_packet veths, two workers. A rate-limited download streams the whole time.
#   nft    holdfast follows `rules nft:inet:hf` in its namespace: `nft add rule` opens new
#          connections to a port within LIMIT_MS, `nft delete rule` closes it again; a rule
#          holdfast cannot enforce (a set lookup) is refused, named in the log, and the rules
#          in force keep deciding; deleting the rule the download came in by stops new
#          downloads but not the one running.
#   sighup the rules are holdfast.conf's: an edited file and SIGHUP do the same; a file
#          that does not parse is refused (file:line named) and the old rules stay.
# In both, the download completes with its sha256, and holdfast dropped no frame for any
# reason but the rules' (new connections refused): established flows lost nothing.
source "$(dirname "$0")/ofi_lib.sh"
source "$(dirname "$0")/clients_lib.sh"
mode=${1:-nft}
case "$mode" in nft | sighup) ;; *) fail "unknown mode $mode" ;; esac
HF_LCORE=0,1
HF_QPAIRS=2
LIMIT_MS=2000
SIZE_MB=40

topology
mkdir -p "$T/www"
head -c "${SIZE_MB}M" /dev/urandom >"$T/www/big"
echo small >"$T/www/small"
want=$(sha256sum <"$T/www/big" | cut -d' ' -f1)
for port in 8080 9001; do
  ip netns exec "$NS_S" /usr/bin/python3 -m http.server $port --bind "$SRV_IP" \
    --directory "$T/www" >"$T/http-$port.log" 2>&1 &
  PIDS+=($!)
done

cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt none
CONF
if [ "$mode" = nft ]; then
  echo "rules nft:inet:hf" >>"$T/holdfast.conf"
  in_f nft -f - <<'NFT'
table inet hf {
  chain filter {
    type filter hook forward priority 0; policy drop;
    tcp dport 8080 accept
  }
}
NFT
else
  rules_conf() { # the config with the rule lines given
    { grep -v '^rule\|^policy' "$T/holdfast.conf"; echo "policy drop"; printf '%s\n' "$@"; } \
      >"$T/holdfast.conf.new"
    mv "$T/holdfast.conf.new" "$T/holdfast.conf"
  }
  rules_conf "rule accept from inside proto tcp dport 8080"
fi

start_hf "$T/holdfast.conf"
wait_for 30 hf_ready "$HF_LOG" || fail "holdfast not ready"
wait_for 20 listening "$NS_S" 8080 || fail "http.server 8080 did not listen"
wait_for 20 listening "$NS_S" 9001 || fail "http.server 9001 did not listen"

tel() { # command -> its JSON data
  /usr/bin/python3 "$SRC/test/integration/telemetry.py" \
    "/var/run/dpdk/$HF_PREFIX/dpdk_telemetry.v2" "$1" 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin)['$1']))"
}
rules_field() { tel /holdfast/rules | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
generation() { rules_field generation; }
# Frames holdfast dropped for any reason but a rule's verdict (drop_policy).
other_drops() {
  tel /holdfast/stats | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(v for k, v in d.items() if k.startswith("drop_") and k != "drop_policy"))'
}
# A new connection to PORT: does it open (and fetch) within a short wait?
opens() { in_c curl -sS -o /dev/null --connect-timeout 0.3 --max-time 2 "http://$SRV_IP:$1/small" 2>/dev/null; }
refused() { ! opens "$1"; }
# until_ms LIMIT CMD...: CMD succeeds within LIMIT ms (checked every 50 ms); prints the ms.
until_ms() {
  local limit=$1 t0 now
  shift
  t0=$(now_ms)
  until "$@"; do
    now=$(now_ms)
    [ $((now - t0)) -gt "$limit" ] && return 1
    sleep 0.05
  done
  echo $(($(now_ms) - t0))
}
gen_is() { [ "$(generation)" = "$1" ]; }
refused_is() { [ "$(rules_field refused)" = "$1" ]; }

wait_for 10 opens 8080 || fail "8080 does not open with the rules at start"
refused 9001 || fail "9001 opened with no rule for it"
[ "$(generation)" = 1 ] || fail "generation at start: $(generation)"

# The long-lived flow: a download paced to outlast every change below.
ip netns exec "$NS_C" curl -sS --max-time 120 --limit-rate 2M -o "$T/got" \
  "http://$SRV_IP:8080/big" 2>"$T/curl.log" &
curl_pid=$!
PIDS+=("$curl_pid")
got_bytes() { stat -c %s "$T/got" 2>/dev/null || echo 0; }
started() { [ "$(got_bytes)" -gt 1048576 ]; }
wait_for 30 started || fail "the download did not start: $(cat "$T/curl.log")"

hup() { kill -HUP "$HF_PID"; }
# Open 9001: a rule added.
t0=$(now_ms)
if [ "$mode" = nft ]; then
  in_f nft add rule inet hf filter tcp dport 9001 accept
else
  rules_conf "rule accept from inside proto tcp dport 8080" \
    "rule accept from inside proto tcp dport 9001"
  hup
fi
ms_open=$(until_ms $LIMIT_MS opens 9001) || fail "9001 did not open within $LIMIT_MS ms: $(tail -3 "$HF_LOG")"
wait_for 10 gen_is 2 || fail "generation after the add: $(generation)"
hits=$(tel /holdfast/rules | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(h for r, h in zip(d["rule"], d["hits"]) if "dport 9001" in r))')
[ "$hits" -ge 1 ] || fail "the 9001 rule counted no hit: $(tel /holdfast/rules)"
echo "$mode: rule added -> new connections to 9001 open after $ms_open ms (rule hits $hits)"

# Close 9001 again: the rule deleted.
if [ "$mode" = nft ]; then
  handle=$(in_f nft -a list chain inet hf filter | grep -E 'dport 9001 accept # handle' |
    grep -oE '[0-9]+$')
  in_f nft delete rule inet hf filter handle "$handle"
else
  rules_conf "rule accept from inside proto tcp dport 8080"
  hup
fi
ms_close=$(until_ms $LIMIT_MS refused 9001) || fail "9001 still opens $LIMIT_MS ms after the delete"
wait_for 10 gen_is 3 || fail "generation after the delete: $(generation)"
echo "$mode: rule deleted -> new connections to 9001 refused after $ms_close ms"

# A change holdfast cannot enforce: refused, named; the rules in force keep deciding.
if [ "$mode" = nft ]; then
  in_f nft add rule inet hf filter tcp dport '{ 9001, 9002 }' accept
  bad=$(in_f nft -a list chain inet hf filter | grep -E '9002 } accept # handle' | grep -oE '[0-9]+$')
  name="nft inet hf/filter handle $bad"
else
  rules_conf "rule accept from inside proto tcp dport 8080" \
    "rule accept from inside proto tcp dport 9001-99999"
  hup
  name="holdfast.conf:"
fi
wait_for 10 refused_is 1 || fail "the change was not refused: $(tel /holdfast/rules)"
log_has "$HF_LOG" "change refused" || fail "no refusal in the log"
grep "change refused" "$HF_LOG" | grep -q -- "$name" || fail "the refusal does not name '$name': $(grep 'change refused' "$HF_LOG")"
echo "$mode: refused: $(grep "change refused" "$HF_LOG" | tail -1 | sed 's/^holdfast: rules: //')"
[ "$(generation)" = 3 ] || fail "a refused change changed the generation: $(generation)"
refused 9001 || fail "9001 opens after a refused change: the refused rule is in force"
opens 8080 || fail "8080 no longer opens after a refused change"
rules_field last_error | grep -q -- "$name" || fail "telemetry's last_error does not name '$name'"

# Taking the refused rule back is a change again, enforceable.
if [ "$mode" = nft ]; then
  in_f nft delete rule inet hf filter handle "$bad"
else
  rules_conf "rule accept from inside proto tcp dport 8080"
  hup
fi
wait_for 10 gen_is 4 || fail "the table back to enforceable did not come in force: $(generation)"

# The rule the download came in by goes: new downloads are refused, the running one is an
# established connection and passes on its state.
gone "$curl_pid" && fail "the download ended before its rule went (too fast to test)"
if [ "$mode" = nft ]; then
  handle=$(in_f nft -a list chain inet hf filter | grep -E 'dport 8080 accept # handle' |
    grep -oE '[0-9]+$')
  in_f nft delete rule inet hf filter handle "$handle"
else
  rules_conf
  hup
fi
ms_8080=$(until_ms $LIMIT_MS refused 8080) || fail "8080 still opens $LIMIT_MS ms after its rule went"
at_delete=$(got_bytes)
echo "$mode: the download's rule deleted at $((at_delete / 1048576)) MB -> new connections to 8080 refused after $ms_8080 ms"
gone "$curl_pid" && fail "the download ended before its rule went (too fast to test)"
wait "$curl_pid" || fail "the download failed after its rule went: $(cat "$T/curl.log")"
have=$(sha256sum <"$T/got" | cut -d' ' -f1)
[ "$have" = "$want" ] || fail "checksum mismatch: $(got_bytes) bytes"
drops=$(other_drops)
[ "$drops" = 0 ] || fail "holdfast dropped $drops frames for reasons other than the rules: $(tel /holdfast/stats)"
echo "$mode: the download ($SIZE_MB MB) completed across 4 rule generations and a refusal, sha256 matches, 0 frames dropped but by the rules ($(rules_field reloads) reloads, $(rules_field refused) refused)"

# A clean stop: the rules' control thread ends with the workers.
kill -TERM "$HF_PID"
wait_for 20 gone "$HF_PID" || fail "holdfast ignored SIGTERM"
rc=0
wait "$HF_PID" || rc=$?
[ $rc -eq 0 ] || fail "holdfast exited $rc after SIGTERM"
