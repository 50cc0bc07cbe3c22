#!/usr/bin/env bash
# Times `logban regex` beside Fail2ban's `fail2ban-regex` on a generated mail log
# and checks that both print the same `Lines:` summary.
#
# usage: bench/regex.sh [LINES] [FILTER...]
#   defaults: 200000 lines (genlog.py seed 7, 5% failures, ending 2026-11-20),
#   filters postfix[mode=extra] dovecot sshd, config /etc/fail2ban.
# Prints one row per filter: wall seconds (median of 3) for each, the ratio, and
# whether the summaries agree. Exits non-zero if any summary differs.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
lines=${1:-200000}
shift || true
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=("postfix[mode=extra]" dovecot sshd)
conf=${CONF:-/etc/fail2ban}

cargo build --release -q
bin=target/release/logban
work_dir work
log=$work/mail.log
genlog "$log" "$lines" 0.05 7 2026-11-20T00:00:00

# median wall time of 3 runs (bash's clock: no process started around the
# run); the last run's stdout is kept in $work/out
median3() {
    local t=()
    for _ in 1 2 3; do
        local s e
        s=$EPOCHREALTIME
        "$@" > "$work/out" 2>/dev/null || true
        e=$EPOCHREALTIME
        t+=("$(awk -v a="$s" -v b="$e" 'BEGIN{print b-a}')")
    done
    printf '%s\n' "${t[@]}" | sort -g | sed -n 2p
}

fail=0
printf '%-22s %10s %10s %8s  %s\n' filter fail2ban logban ratio summary
for f in "${filters[@]}"; do
    tf=$(median3 fail2ban-regex -c "$conf" "$log" "$f")
    sf=$(grep -m1 '^Lines:' "$work/out" || echo "no summary")
    tl=$(median3 "$bin" regex -c "$conf" "$log" "$f")
    sl=$(grep -m1 '^Lines:' "$work/out" || echo "no summary")
    ratio=$(awk -v a="$tf" -v b="$tl" 'BEGIN{print a/b}')
    same=same
    if [ "$sf" != "$sl" ]; then same="DIFFERENT: fail2ban '$sf' logban '$sl'"; fail=1; fi
    printf '%-22s %9.3fs %9.3fs %7.1fx  %s\n' "$f" "$tf" "$tl" "$ratio" "$same"
    [ "$same" = same ] && echo "    $sl"
done
exit $fail
