#!/usr/bin/env bash
# Log ingestion side by side: how long each server takes, from its start until
# every jail's `Total failed` has reached its final value, on the same generated
# mail log, and whether the counts agree.
#
# usage: bench/ingest.sh [LINES]
#   LINES       log lines (default 100000): genlog.py LINES 0.05 SEED now
#   env SEED    genlog.py seed (7); QUIET: seconds without change that end the
#               wait (3); TIMEOUT: give up after this many seconds (600)
#   env SERVER/CLIENT          candidate (default target/release/logban server|client)
#   env REF_SERVER/REF_CLIENT  reference (default fail2ban-server|fail2ban-client)
#   env ONLY=ref|cand          run only one; STRICT=1 also fails below the
#                              issue's target (30x, on the conservative ratio)
# Jails sshd, dovecot, postfix (mode=extra), postfix-sasl all read the log, with
# maxretry huge (nothing is banned) and no action. The servers run one after the
# other, each in its own network namespace and sandbox. The time is measured by
# polling `status JAIL` for all jails in a loop (the round time, printed, is the
# resolution); the server's CPU time at that point is printed too (it depends
# less on other load on the machine). Exits 1 when any count differs, 3 when
# STRICT=1 and the conservative ratio is below 30x.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
mail_bench "${1:-100000}"

declare -A count lo hi round cpu
for i in "${!NAMES[@]}"; do
    n=${NAMES[i]}
    mail_side SB "ingest$i" "$i" "maxretry = 1000000000" "findtime = 1d"
    read -r lo[$n] hi[$n] round[$n] < <(wait_counts "$SB" "${QUIET:-3}" "${TIMEOUT:-600}" "${MAIL_JAILS[@]}")
    cpu[$n]=$(sb_cpu "$SB")
    while read -r j f _; do count[$n.$j]=$f; done <"$SB/counts"
    sb_destroy "$SB"
done

ROW_LABEL=18 ROW_WIDTH=16
fail=0
row "Total failed" "${NAMES[@]}"
for j in "${MAIL_JAILS[@]}"; do
    vals=()
    for n in "${NAMES[@]}"; do vals+=("${count[$n.$j]}"); done
    row "  $j" "${vals[@]}"
    if [[ " ${vals[*]} " == *" - "* ]]; then
        echo "    NO COUNT (server not answering)"
        fail=1
    fi
    if [ ${#NAMES[@]} = 2 ] && [ "${vals[0]}" != "${vals[1]}" ]; then
        echo "    DIFFERENT"
        fail=1
    fi
done
declare -A bounds
for n in "${NAMES[@]}"; do bounds[$n]="${lo[$n]}-${hi[$n]}"; done
row_of "time to counted" hi s
row_of "  bounds (s)" bounds
row_of "  poll round" round s
row_of "server CPU" cpu s
if [ ${#NAMES[@]} = 2 ]; then
    a=${NAMES[0]} b=${NAMES[1]}
    x=$(ratio "${hi[$a]}" "${hi[$b]}")
    low=$(ratio "${lo[$a]}" "${hi[$b]}")
    echo "ratio $a/$b: ${x}x (at least ${low}x: $a's lower bound over $b's upper; target >= 30x); counts: $([ $fail = 0 ] && echo same || echo DIFFERENT)"
    if [ $fail = 0 ] && [ "${STRICT:-0}" = 1 ] && awk -v x="$low" 'BEGIN{exit !(x < 30)}'; then
        fail=3
    fi
fi
exit $fail
