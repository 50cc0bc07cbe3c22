#!/usr/bin/env bash
# Wall time of one `CLIENT status` (and `status postfix`) against a running
# server, Fail2ban's and logban's side by side: both servers run the mail-server
# configuration (mailserver_conf, nftables-allports) in their own sandbox, then
# each client is run RUNS times in turn (the two alternate, so that load from
# other processes hits both alike); the median and the 10th/90th percentiles are
# printed, and the ratio of the medians.
#
# usage: bench/client.sh [RUNS]        (default 101)
#   env: REF_SERVER/REF_CLIENT, SERVER/CLIENT, ONLY, BUILD (see bench/README.md)
#   Two ways to call the client: with `-s SOCKET` (no configuration to read for
#   the socket; what scripts that know the socket do), and with `-c DIR` only
#   (the socket read from the configuration, as `fail2ban-client status` typed
#   by an admin). STRICT=1 fails unless every ratio is at least 10.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
runs=${1:-101}
sides

declare -A SB
for i in "${!NAMES[@]}"; do
    name=${NAMES[i]}
    mailserver_start box "client-$i" "$i" nftables-allports || die "$name did not start"
    SB[$name]=$box
done

# time_one SB HOW ARGS...: seconds one client call takes (its output dropped;
# a call that fails stops the script).
time_one() {
    local sb=$1 how=$2 c t0 t1 rc
    shift 2
    read -ra c <"$sb/client_cmd"
    t0=$EPOCHREALTIME
    if [ "$how" = socket ]; then
        "${c[@]}" -c "$sb/etc" -s "$sb/run/server.sock" "$@" >/dev/null 2>&1
    else
        "${c[@]}" -c "$sb/etc" "$@" >/dev/null 2>&1
    fi
    rc=$?
    t1=$EPOCHREALTIME
    [ $rc = 0 ] || die "${c[*]} $* failed (exit $rc) in $sb"
    awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.6f\n", b-a}'
}

# stats FILE: "median p10 p90" in milliseconds.
stats() {
    sort -g "$1" | awk '{v[NR]=$1} END {
        m = v[int((NR+1)/2)]; lo = v[int(NR*0.1)+1]; hi = v[int(NR*0.9)]
        printf "%.2f %.2f %.2f\n", m*1000, lo*1000, hi*1000 }'
}

work_dir W
failed=0
printf '%-34s %-10s %12s %12s %12s\n' "command" "side" "median ms" "p10 ms" "p90 ms"
for how in socket config; do
    for cmd in "status" "status postfix"; do
        for name in "${NAMES[@]}"; do : >"$W/$name"; done
        for ((r = 0; r < runs; r++)); do
            for name in "${NAMES[@]}"; do
                # shellcheck disable=SC2086
                time_one "${SB[$name]}" "$how" $cmd >>"$W/$name"
            done
        done
        declare -A MED=()
        for name in "${NAMES[@]}"; do
            read -r med lo hi < <(stats "$W/$name")
            MED[$name]=$med
            printf '%-34s %-10s %12s %12s %12s\n' "$cmd ($how)" "$name" "$med" "$lo" "$hi"
        done
        if [ ${#NAMES[@]} = 2 ]; then
            r=$(ratio "${MED[${NAMES[0]}]}" "${MED[${NAMES[1]}]}")
            printf '%-34s %-10s %12s\n' "$cmd ($how)" "ratio" "${r}x"
            if [ -n "${STRICT:-}" ] && awk -v r="$r" 'BEGIN{exit !(r < 10)}'; then failed=1; fi
        fi
    done
done
exit $failed
