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
# until `nft -j list set inet f2b-table addr-set-custom` holds all N: both
# servers answer `banip` once their actions ran, so the set is not polled while
# the command runs (listing 50,000 elements costs about 0.4 s of CPU, which the
# server would miss on a small machine); when it holds all N right after the
# answer, the answer's time is the figure (an upper bound), else the set is
# polled on; the command must print N. Phase 2 stops the server (`stop` removes
# the table; the time until the process ended is printed), starts it again on
# the same database and times from its start until all N are back (see
# wait_all below: the figure is the end of the first poll that saw all N, the
# resolution is printed below it). The issue's target: the candidate's 50000 both times sooner
# than the reference's 500. Exits 1 when a phase times out or the printed count
# is wrong, 3 when STRICT=1 and the candidate is not sooner.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
counts=("${1:-500}" "${2:-50000}")
limit=${TIMEOUT:-600}

# wait_all SB SET N TIMEOUT T0: like wait_set (bench/lib.sh), without taking
# CPU from the server it measures: until the set exists it polls the ruleset
# without set elements (`nft -t list ruleset`, cheap), then it lists the set,
# pausing between listings as long as a listing took (listing 50,000 elements
# costs about 0.4 s of CPU). Prints "SECONDS RESOLUTION": the end of the first
# poll that saw all N, from T0, and how long before it the last poll that did
# not see them started (the moment lies in between).
wait_all() {
    local sb=$1 set=$2 want=$3 limit=$4 t0=$5 c ts te prev=$5 pause
    while :; do
        ts=$EPOCHREALTIME
        if sb_nft "$sb" -j -t list ruleset 2>/dev/null | grep -q "\"name\": \"$set\""; then
            c=$(set_count "$sb" "$set")
        else
            c=0
        fi
        te=$EPOCHREALTIME
        if [ "$c" -ge "$want" ]; then
            echo "$(since "$t0" "$te") $(since "$prev" "$te")"
            return 0
        fi
        if awk -v a="$t0" -v b="$te" -v q="$limit" 'BEGIN{exit !(b-a>=q)}'; then
            echo "timeout($c) -"
            return 1
        fi
        prev=$ts
        pause=$(awk -v a="$ts" -v b="$te" 'BEGIN{d=b-a; printf "%.3f", d < 0.02 ? 0.02 : d}')
        sleep "$pause"
    done
}

sides
work_dir W
declare -A ban ret printed back backres stop
fail=0
for i in "${!NAMES[@]}"; do
    n=${NAMES[i]}
    [ "${ONLY:-}" = cand ] && N=${counts[1]} || N=${counts[i]}
    addresses "$N" >"$W/addr"
    mailserver_start SB "banip$i" "$i" "${BANACTION:-nftables-allports}"

    t0=$(now)
    # shellcheck disable=SC2046 # one argument per address
    sb_client "$SB" set custom banip $(cat "$W/addr") >"$W/out" 2>&1 &
    cpid=$!
    wait "$cpid" || true
    ret[$n]=$(since "$t0")
    if [ "$(set_count "$SB" addr-set-custom)" -ge "$N" ]; then
        ban[$n]=${ret[$n]}
    else
        r=$(wait_all "$SB" addr-set-custom "$N" "$limit" "$t0") || fail=1
        read -r "ban[$n]" _ <<<"$r"
    fi
    printed[$n]=$(head -c 200 "$W/out")
    [ "${printed[$n]}" = "$N" ] || fail=1

    t0=$(now)
    sb_stop "$SB" "$limit"
    stop[$n]=$(since "$t0")
    if sb_nft "$SB" list table inet f2b-table >/dev/null 2>&1; then
        echo "note: $n left table inet f2b-table after stop; deleting it before the restart" >&2
        sb_nft "$SB" delete table inet f2b-table
    fi
    sb_launch "$SB" "${SERVERS[i]}" "${CLIENTS[i]}"
    r=$(wait_all "$SB" addr-set-custom "$N" "$limit" "$(cat "$SB/started")") || fail=1
    read -r "back[$n]" "backres[$n]" <<<"$r"
    sb_destroy "$SB"
    NS[i]=$N
done

row "" "${NAMES[@]}"
row "addresses" "${NS[@]}"
row_of "banip printed" printed
row_of "all in set after banip" ban s
row_of "  banip command returned" ret s
row_of "stop (until the process ended)" stop s
row_of "all back after restart" back s
row_of "  poll resolution" backres s
if [ ${#NAMES[@]} = 2 ] && [ $fail = 0 ]; then
    a=${NAMES[0]} b=${NAMES[1]}
    sooner() { awk -v x="$1" -v y="$2" 'BEGIN{print (x < y) ? "yes" : "no"}'; }
    s1=$(sooner "${ban[$b]}" "${ban[$a]}") s2=$(sooner "${back[$b]}" "${back[$a]}")
    echo "$b's ${NS[1]} sooner than $a's ${NS[0]}: banip $s1, restart $s2"
    if [ "${STRICT:-0}" = 1 ] && [ "$s1$s2" != yesyes ]; then fail=3; fi
fi
exit $fail
