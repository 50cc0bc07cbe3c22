#!/usr/bin/env bash
# The nftables table side by side: the mail-server configuration with
# nftables-multiport and blocktype drop, the same bans issued to both servers,
# then `nft list table inet f2b-table` from each, compared.
#
# usage: bench/nft-table.sh
#   env SERVER/CLIENT          candidate (default target/release/logban server|client)
#   env REF_SERVER/REF_CLIENT  reference (default fail2ban-server|fail2ban-client)
#   env ONLY=ref|cand          run only one (prints its table)
#   env BANACTION              (nftables-multiport)
# The servers run one after the other, each in its own network namespace, on
# bench/lib.sh mailserver_conf (jail.local of mailserver.md, blocktype drop in
# action.d/nftables-common.local, sets declared with `flags interval`, empty
# filter.d/custom.conf). Bans: IPv4, IPv6, an IPv4 /24 and an IPv6 /64 in
# custom, two IPv4 in dovecot, an IPv4 and an IPv6 /64 in postfix, in that
# order; the listing is taken once every set holds its elements. Nothing is
# normalised: `nft list table` without -a prints no handles, and interval sets
# list their elements in address order. Exits 1 when the listings differ.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root

bans=(
    "custom 192.0.2.7"
    "custom 203.0.113.0/24"
    "custom 2001:db8::7"
    "custom 2001:db8:77::/64"
    "dovecot 198.51.100.4 198.51.100.5"
    "postfix 198.51.100.9"
    "postfix 2001:db8:5::/64"
)
# set -> elements expected once all bans are applied
sets=(addr-set-custom:2 addr6-set-custom:2 addr-set-dovecot:2 addr-set-postfix:1 addr6-set-postfix:1)

sides
work_dir W
fail=0
for i in "${!NAMES[@]}"; do
    n=${NAMES[i]}
    mailserver_start SB "nft$i" "$i" "${BANACTION:-nftables-multiport}"
    for b in "${bans[@]}"; do
        read -ra a <<<"$b"
        sb_client "$SB" set "${a[0]}" banip "${a[@]:1}" >/dev/null || { echo "$n: set ${a[0]} banip failed" >&2; fail=1; }
    done
    for s in "${sets[@]}"; do
        wait_set "$SB" "${s%:*}" "${s#*:}" 10 "$(now)" >/dev/null || { echo "$n: ${s%:*} did not reach ${s#*:} elements" >&2; fail=1; }
    done
    sb_nft "$SB" list table inet f2b-table >"$W/$n" 2>&1 || fail=1
    sb_destroy "$SB"
done

if [ ${#NAMES[@]} = 1 ]; then
    cat "$W/${NAMES[0]}"
elif diff -u --label "${NAMES[0]}" --label "${NAMES[1]}" "$W/${NAMES[0]}" "$W/${NAMES[1]}"; then
    echo "nft list table inet f2b-table: identical ($(wc -l <"$W/${NAMES[0]}") lines)"
else
    echo "nft list table inet f2b-table: DIFFERENT"
    fail=1
fi
exit $fail
