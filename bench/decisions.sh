#!/usr/bin/env bash
# Ban decisions side by side: the same generated mail log, the same jails, and
# the banned list of every jail compared between the two servers.
#
# usage: bench/decisions.sh [LINES]
#   LINES       log lines (default 100000): genlog.py LINES 0.05 SEED now
#   env SEED (7), QUIET (3 s), TIMEOUT (600 s), SHOW (differences shown, 10)
#   env SERVER/CLIENT          candidate (default target/release/logban server|client)
#   env REF_SERVER/REF_CLIENT  reference (default fail2ban-server|fail2ban-client)
#   env ONLY=ref|cand          run only one
# Jails sshd, dovecot, postfix (mode=extra), postfix-sasl read the log with
# maxretry 2, findtime 1w, bantime 1w (no ban expires during the run) and no
# action, so bans are decisions only. Once every jail's Total failed and Total
# banned have settled, `status JAIL`'s Banned IP list is taken (sorted). Prints
# per jail the counts and the first differences; exits 1 when any list differs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
mail_bench "${1:-100000}"

declare -A failed banned
for i in "${!NAMES[@]}"; do
    n=${NAMES[i]}
    mail_side SB "decide$i" "$i" "maxretry = 2" "findtime = 1w" "bantime = 1w"
    wait_counts "$SB" "${QUIET:-3}" "${TIMEOUT:-600}" "${MAIL_JAILS[@]}" >/dev/null
    while read -r j f b; do
        failed[$n.$j]=$f
        banned_list "$SB" "$j" >"$W/$n.$j"
        banned[$n.$j]="$b total, $(wc -l <"$W/$n.$j") listed"
    done <"$SB/counts"
    sb_destroy "$SB"
done

fail=0
for j in "${MAIL_JAILS[@]}"; do
    echo "[$j]"
    for n in "${NAMES[@]}"; do
        printf '  %-12s Total failed %6s, banned %s\n' "$n" "${failed[$n.$j]}" "${banned[$n.$j]}"
        [ "${failed[$n.$j]}" != - ] || fail=1
    done
    [ ${#NAMES[@]} = 2 ] || continue
    a=$W/${NAMES[0]}.$j b=$W/${NAMES[1]}.$j
    if cmp -s "$a" "$b"; then
        echo "  banned lists: same"
    else
        fail=1
        echo "  banned lists: DIFFERENT ($(comm -23 "$a" "$b" | wc -l) only in ${NAMES[0]}, $(comm -13 "$a" "$b" | wc -l) only in ${NAMES[1]}); first differences (< ${NAMES[0]}, > ${NAMES[1]}):"
        diff "$a" "$b" | grep '^[<>]' | head -n "${SHOW:-10}" | sed 's/^/    /'
    fi
done
exit $fail
