#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# nft creates a table in a network namespace made for this test; holdfast's importer reads
# it back. Every supported construct round-trips; each unsupported one is refused by name.
set -euo pipefail
tool="$BUILD/test/integration/nft_import_tool"
ns="hf-nft-$$"
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
fail() { echo "FAIL: $*"; exit 1; }

ip netns exec "$ns" nft -f - <<'NFT'
table inet fw {
  chain cfwd {
    type filter hook forward priority 0; policy drop;
    iifname "inside" tcp dport 80 counter accept
    ip saddr 198.18.0.0/15 udp dport 53 accept
    ip6 daddr 2001:db8::/32 tcp dport 1000-2000 reject
    meta l4proto udp ip daddr 198.19.0.7 drop
    ip protocol icmp accept
    ip saddr 10.1.0.0/16 accept
  }
  chain cother { }
}
NFT
out=$(ip netns exec "$ns" "$tool" fw)
expected='policy drop
rule accept from inside proto tcp dport 80
rule accept proto udp src 198.18.0.0/15 dport 53
rule reject proto tcp dst 2001:db8::/32 dport 1000-2000
rule drop proto udp dst 198.19.0.7/32
rule accept family ip proto icmp
rule accept src 10.1.0.0/16'
if [ "$out" != "$expected" ]; then
  echo "imported:"; echo "$out"; echo "expected:"; echo "$expected"
  fail "import differs"
fi

# A policy accept chain in an ip-family table.
ip netns exec "$ns" nft -f - <<'NFT'
table ip edge {
  chain cf {
    type filter hook forward priority 0; policy accept;
    tcp sport 22 drop
  }
}
NFT
out=$(ip netns exec "$ns" "$tool" ip:edge)
[ "$out" = $'policy accept\nrule drop proto tcp sport 22' ] || fail "ip:edge gave: $out"

# Unsupported constructs are refused, naming the rule.
refuse() {
  local rule="$1" want="$2" out
  ip netns exec "$ns" nft flush ruleset
  ip netns exec "$ns" nft -f - <<NFT
table inet bad {
  chain cf {
    type filter hook forward priority 0;
    $rule
  }
  chain cother { }
}
NFT
  if out=$(ip netns exec "$ns" "$tool" bad 2>&1); then fail "'$rule' was accepted: $out"; fi
  case "$out" in
    *"nft inet bad/cf handle "*"$want"*) ;;
    *) fail "'$rule' refused with '$out', expected '$want'" ;;
  esac
}
refuse 'tcp dport { 80, 443 } accept' "expression 'lookup'"
refuse 'ip saddr != 10.0.0.0/8 accept' "negation"
refuse 'ct state established accept' "expression 'ct'"
refuse 'tcp dport 80 jump cother' "verdict other than"
refuse 'tcp dport 80 counter' "no verdict"
refuse 'iifname "eth0" accept' 'iifname other than'

# No such table, no forward chain.
ip netns exec "$ns" nft flush ruleset
if out=$(ip netns exec "$ns" "$tool" nosuch 2>&1); then fail "missing table accepted"; fi
case "$out" in *"nosuch"*) ;; *) fail "missing table: $out" ;; esac
ip netns exec "$ns" nft add table inet t
ip netns exec "$ns" nft add chain inet t in '{ type filter hook input priority 0; }'
if out=$(ip netns exec "$ns" "$tool" t 2>&1); then fail "no forward chain accepted"; fi
case "$out" in *"no base chain on the forward hook"*) ;; *) fail "no forward chain: $out" ;; esac
echo "nft import: ok"
