#!/usr/bin/env bash
# Times bans into nftables: logban's native backend (50,000 IPv6 addresses in
# one call, unbans, restarts; tests/action_scale.rs, which also checks the
# outcomes) beside Fail2ban's way (one `nft add element` process per ban, into
# the mail server's `flags interval` set) for 500 addresses.
#
# usage: bench/firewall.sh [FAIL2BAN_COUNT]   (root: creates a network namespace)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-500}

echo "== logban (native nftables, release build)"
cargo test --release -q --test action_scale -- --nocapture 2>&1 | grep -E '^scale:|test result|panicked'

echo "== Fail2ban's actionban, one process per address ($count addresses)"
ns=lbbench-$$
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip netns exec "$ns" nft -f - <<'EOF'
add table inet f2b-table
add chain inet f2b-table f2b-chain { type filter hook input priority -1 ; }
add set inet f2b-table addr6-set-custom { type ipv6_addr; flags interval; }
add rule inet f2b-table f2b-chain tcp dport { 25, 110, 143, 465, 587, 993, 995, 4190 } ip6 saddr @addr6-set-custom drop
EOF
start=$(date +%s.%N)
for i in $(seq 1 "$count"); do
    ip netns exec "$ns" sh -c "nft add element inet f2b-table addr6-set-custom \\{ 2001:db8:2::$(printf %x "$i") \\}"
done
end=$(date +%s.%N)
n=$(ip netns exec "$ns" nft -j list set inet f2b-table addr6-set-custom |
    python3 -c 'import json,sys; d=json.load(sys.stdin)["nftables"]; print(len([x for x in d if "set" in x][0]["set"].get("elem", [])))')
awk -v a="$start" -v b="$end" -v n="$n" 'BEGIN { printf "fail2ban-style: %d addresses in the set after %.3f s (%.0f bans/s)\n", n, b - a, n / (b - a) }'
