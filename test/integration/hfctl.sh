#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# hfctl against a running holdfast (a replayed capture, checkpointing to pmem:): every
# command answers; `metrics` parses as Prometheus text (python3-prometheus-client's own
# parser) and its figures are holdfast's telemetry's; a wrong prefix fails with exit 1
# and says why.
source "$(dirname "$0")/ofi_lib.sh"
prefix="hfctl$$"
HFCTL="$SRC/app/hfctl"
trap 'rm -rf "/var/run/dpdk/$prefix"; cleanup' EXIT

/usr/bin/python3 "$SRC/test/integration/gen_restart.py" "$T" >/dev/null
cat >"$T/holdfast.conf" <<CONF
pair 0 1 inside 0
max-conns 4096
ckpt pmem:$T/state.pmu
rule accept from inside proto tcp dport 80
rule accept from inside proto tcp dport 21
rule accept from inside proto udp dport 53
CONF
"$BUILD/holdfast" --no-huge -m 256 --no-pci -l 0 --file-prefix "$prefix" \
  --vdev "net_pcap0,rx_pcap=$T/a/in0.pcap,tx_pcap=$T/a/out0.pcap" \
  --vdev "net_pcap1,rx_pcap=$T/a/in1.pcap,tx_pcap=$T/a/out1.pcap" \
  -- --config "$T/holdfast.conf" >"$T/hf.log" 2>&1 &
HF_PID=$!
PIDS+=("$HF_PID")
wait_for 30 log_has "$T/hf.log" "^holdfast: ready" || fail "holdfast did not start"
# Every frame of the capture in, and its connections' slices durable.
settled() {
  "$HFCTL" --prefix "$prefix" json /holdfast/ckpt | /usr/bin/python3 -c '
import json, sys
k = json.load(sys.stdin)["/holdfast/ckpt"]
sys.exit(0 if k["slices_tcp"] > 0 and k["not_durable"] == 0 else 1)'
}
wait_for 30 settled || fail "no slices checkpointed"
sleep 0.5 # the rest of the capture

for c in stats "stats --worker 0" workers conns ckpt standby rules; do
  # shellcheck disable=SC2086
  "$HFCTL" --prefix "$prefix" $c >"$T/out" 2>"$T/err" || fail "hfctl $c: $(cat "$T/err")"
  [ -s "$T/out" ] || fail "hfctl $c printed nothing"
  echo "--- hfctl $c"; cat "$T/out"
done
grep -q "^role  *primary" <("$HFCTL" --prefix "$prefix" standby) || fail "standby: no primary role"
grep -q "recovery point: 0 slice changes not durable yet" <("$HFCTL" --prefix "$prefix" ckpt) ||
  fail "ckpt: no recovery point"
if "$HFCTL" --prefix "nobody$$" stats >/dev/null 2>"$T/err"; then
  fail "hfctl answered for a holdfast that does not run"
fi
grep -q "no holdfast answers at /var/run/dpdk/nobody$$/" "$T/err" || fail "no reason: $(cat "$T/err")"

"$HFCTL" --prefix "$prefix" metrics >"$T/metrics" || fail "hfctl metrics"
/usr/bin/python3 - "$T/metrics" "/var/run/dpdk/$prefix/dpdk_telemetry.v2" "$SRC" <<'PY' ||
import sys
from prometheus_client.parser import text_string_to_metric_families
sys.path.insert(0, sys.argv[3] + "/test/integration")
from telemetry import query

fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def total(name, **labels):
    """The sum of a family's samples with these labels (a counter's _total ones only)."""
    f = fams[name]
    return sum(s.value for s in f.samples
               if (f.type != "counter" or s.name.endswith("_total")) and
               all(s.labels.get(k) == v for k, v in labels.items()))
st = query(sys.argv[2], "/holdfast/stats")["/holdfast/stats"]
k = query(sys.argv[2], "/holdfast/ckpt")["/holdfast/ckpt"]
c = query(sys.argv[2], "/holdfast/conns")["/holdfast/conns"]
r = query(sys.argv[2], "/holdfast/rules")["/holdfast/rules"]
checks = [
    ("pass", total("holdfast_pass"), st["pass"]),
    ("port 0 rx", total("holdfast_port_rx_packets", port="0"), st["port0_rx"]),
    ("policy drops", total("holdfast_drop_packets", reason="policy"), st["drop_policy"]),
    ("tcp slices", total("holdfast_ckpt_slices", module="tcp"), k["slices_tcp"]),
    ("connections", total("holdfast_connections"), c["total"]),
    ("not durable", total("holdfast_ckpt_not_durable"), k["not_durable"]),
    ("rule hits", total("holdfast_rule_hits"), sum(r["hits"])),
    ("rules", len([s for s in fams["holdfast_rule_hits"].samples
                   if s.name.endswith("_total")]), r["rules"]),
]
bad = 0
for what, got, want in checks:
    print("metrics %s: %s (telemetry %s)" % (what, got, want))
    bad |= got != want or (what in ("pass", "tcp slices", "rule hits") and want == 0)
print("%d metric families, types: %s" % (len(fams), sorted({f.type for f in fams.values()})))
sys.exit(bad)
PY
  fail "metrics do not match the telemetry"
kill -INT "$HF_PID"
wait_for 30 gone "$HF_PID" || fail "holdfast did not stop"
echo "PASS: hfctl reads a running holdfast; metrics parse and match"
