#!/usr/bin/env bash
# Manual bans at scale side by side: one `set custom banip ADDR...` call, timed
# until every address is in the nft set, then a restart, timed until they are
# all back.
#
# usage: bench/banip.sh [N_REF] [N_CAND]
#   N_REF   addresses banned by the reference (default 500)
#   N_CAND  addresses banned by the candidate (default 50000)
#   env BANACTION (nftables-allports), TIMEOUT per phase (600 s)
#   env SERVER/CLIENT          candidate (default target/release/logban server|client)
#   env REF_SERVER/REF_CLIENT  reference (default fail2ban-server|fail2ban-client)
#   env ONLY=ref|cand          run only one; STRICT=1 also fails when the
#                              candidate is not sooner in both phases
# Each server runs the mail-server configuration (bench/lib.sh mailserver_conf:
# jails dovecot, postfix, custom with the empty filter; blocktype drop; sets with
# `flags interval`) in its own network namespace. Addresses come from the IPv4
# documentation ranges, then 10.0.0.0/8. Phase 1 times from issuing the command
# until `nft -j list set inet f2b-table addr-set-custom` holds all N (and checks
# that the command printed N); phase 2 stops the server (`stop` removes the
# table), starts it again on the same database and times from its start until
# all N are back. The issue's target: the candidate's 50000 both times sooner
# than the reference's 500. Exits 1 when a phase times out or the printed count
# is wrong, 3 when STRICT=1 and the candidate is not sooner.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
counts=("${1:-500}" "${2:-50000}")
limit=${TIMEOUT:-600}

sides
work_dir W
declare -A ban ret printed back
fail=0
for i in "${!NAMES[@]}"; do
    n=${NAMES[i]}
    [ "${ONLY:-}" = cand ] && N=${counts[1]} || N=${counts[i]}
    addresses "$N" >"$W/addr"
    sb_new SB "banip$i"
    mailserver_conf "$SB" "${BANACTION:-nftables-allports}"
    sb_start "$SB" "${SERVERS[i]}" "${CLIENTS[i]}"

    t0=$(now)
    # shellcheck disable=SC2046 # one argument per address
    sb_client "$SB" set custom banip $(cat "$W/addr") >"$W/out" 2>&1 &
    cpid=$!
    ban[$n]=$(wait_set "$SB" addr-set-custom "$N" "$limit" "$t0") || fail=1
    wait "$cpid" || true
    ret[$n]=$(since "$t0")
    printed[$n]=$(head -c 200 "$W/out")
    [ "${printed[$n]}" = "$N" ] || fail=1

    sb_stop "$SB" "$limit"
    if sb_nft "$SB" list table inet f2b-table >/dev/null 2>&1; then
        echo "note: $n left table inet f2b-table after stop; deleting it before the restart" >&2
        sb_nft "$SB" delete table inet f2b-table
    fi
    sb_launch "$SB" "${SERVERS[i]}" "${CLIENTS[i]}"
    back[$n]=$(wait_set "$SB" addr-set-custom "$N" "$limit" "$(cat "$SB/started")") || fail=1
    sb_destroy "$SB"
    NS[i]=$N
done

row() { # LABEL VALUE-PER-SERVER...
    printf '%-30s' "$1"
    shift
    printf ' %12s' "$@"
    echo
}
row "" "${NAMES[@]}"
row "addresses" "${NS[@]}"
v=()
for n in "${NAMES[@]}"; do v+=("${printed[$n]}"); done
row "banip printed" "${v[@]}"
v=()
for n in "${NAMES[@]}"; do v+=("${ban[$n]}s"); done
row "all in set after banip" "${v[@]}"
v=()
for n in "${NAMES[@]}"; do v+=("${ret[$n]}s"); done
row "  banip command returned" "${v[@]}"
v=()
for n in "${NAMES[@]}"; do v+=("${back[$n]}s"); done
row "all back after restart" "${v[@]}"
if [ ${#NAMES[@]} = 2 ] && [ $fail = 0 ]; then
    a=${NAMES[0]} b=${NAMES[1]}
    sooner() { awk -v x="$1" -v y="$2" 'BEGIN{print (x < y) ? "yes" : "no"}'; }
    s1=$(sooner "${ban[$b]}" "${ban[$a]}") s2=$(sooner "${back[$b]}" "${back[$a]}")
    echo "$b's ${NS[1]} sooner than $a's ${NS[0]}: banip $s1, restart $s2"
    if [ "${STRICT:-0}" = 1 ] && [ "$s1$s2" != yesyes ]; then fail=3; fi
fi
exit $fail
