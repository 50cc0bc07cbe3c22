#!/usr/bin/env bash
# Memory under a flood of unique attackers: a log where N distinct addresses
# fail once each (none reaches maxretry), read by one jail; VmRSS and the peak
# (VmHWM) once every line is counted, with the failure table capped.
#
# usage: bench/flood.sh [N]
#   N           distinct failing addresses, one line each (default 1000000)
#   env CAP     the jail's failure-table cap, logban's `logban.maxfailures`
#               (default: unset, the built-in 100000)
#   env USERLEN fail as `invalid user` with a name of this many characters
#               (lines of about USERLEN + 100 bytes; default: `root`)
#   env TIMEOUT give up after this many seconds (900)
#   env SETTLE  seconds to wait after that before reading VmRSS again (12:
#               logban hands freed memory back on its 10 s maintenance tick)
#   env ONLY    default `cand` (logban only); ONLY= runs Fail2ban too, which
#               holds every address (no cap) and takes minutes per 100k lines
#   env SERVER/CLIENT, REF_SERVER/REF_CLIENT as in the other scripts
# Prints, per server: the time until `Total failed` reached N, Currently
# failed (what the table holds), VmRSS then and SETTLE seconds later, and the
# peak (VmHWM), in MiB. For logban also the cap's bound: a fixed 25 MiB (the
# program, its reader and filter queues, failures in flight) plus 512 bytes
# per ticket the cap allows (a ticket with its one matched line measured
# ~380 bytes). Exits 1 when a server did not count every line or logban's
# peak exceeds the bound.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
n=${1:-1000000}
ONLY=${ONLY-cand}
export ONLY

sides
work_dir W
log=$W/auth.log
# sshd lines stamped now, addresses 10.x.y.z (every one distinct).
user=root
if [ -n "${USERLEN:-}" ]; then user="invalid user $(head -c "$USERLEN" /dev/zero | tr '\0' u)"; fi
awk -v n="$n" -v user="$user" -v stamp="$(date '+%b %e %H:%M:%S')" 'BEGIN {
    for (i = 0; i < n; i++)
        printf "%s host sshd[%d]: Failed password for %s from 10.%d.%d.%d port 22 ssh2\n",
            stamp, 1000 + i % 30000, user, int(i / 65536) % 256, int(i / 256) % 256, i % 256
}' >"$log"
echo "# log: $n lines, $n distinct addresses failing once ($(du -m "$log" | cut -f1) MB)"

fail=0
for i in "${!NAMES[@]}"; do
    name=${NAMES[i]}
    sb_new SB "flood$i"
    rm -f "$SB/etc/jail.d/defaults-debian.conf"
    {
        echo "[DEFAULT]"
        echo "action ="
        echo "[sshd]"
        echo "enabled = true"
        echo "logpath = $log"
        echo "maxretry = 3"
        echo "findtime = 1d"
        echo "ignoreself = false"
        if [ -n "${CAP:-}" ] && ! is_fail2ban "${SERVERS[i]}"; then echo "logban.maxfailures = $CAP"; fi
    } | sb_put "$SB" jail.local
    sb_start "$SB" "${SERVERS[i]}" "${CLIENTS[i]}"
    t0=$(cat "$SB/started")
    end=$(awk -v t="$t0" -v l="${TIMEOUT:-900}" 'BEGIN{printf "%.3f", t+l}')
    total=0
    while :; do
        read -r cur total < <(sb_client "$SB" status sshd 2>/dev/null | awk -F'\t' '
            /Currently failed:/ {c=$2} /Total failed:/ {t=$2} END {print c+0, t+0}') || true
        [ "${total:-0}" -ge "$n" ] && break
        if awk -v e="$end" -v now="$EPOCHREALTIME" 'BEGIN{exit !(now>e)}'; then
            echo "warning: $name counted $total of $n lines in ${TIMEOUT:-900}s" >&2
            break
        fi
        sleep 0.2
    done
    took=$(since "$t0")
    pid=$(sb_pid "$SB")
    mib() { awk -v k="$1:" '$1 == k {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
    rss=$(mib VmRSS)
    sleep "${SETTLE:-12}"
    settled=$(mib VmRSS)
    hwm=$(mib VmHWM)
    printf '%-10s counted %s/%s in %ss; Currently failed %s; VmRSS %s MiB, %s MiB %ss later; peak (VmHWM) %s MiB\n' \
        "$name" "$total" "$n" "$took" "$cur" "$rss" "$settled" "${SETTLE:-12}" "$hwm"
    [ "$total" -ge "$n" ] || fail=1
    if ! is_fail2ban "${SERVERS[i]}"; then
        bound=$(awk -v c="${CAP:-100000}" 'BEGIN{printf "%.1f", 25 + c * 512 / 1048576}')
        if awk -v p="$hwm" -v b="$bound" 'BEGIN{exit !(p <= b)}'; then
            echo "$name peak $hwm MiB is under the cap's bound $bound MiB (25 MiB + ${CAP:-100000} x 512 B): PASS"
        else
            echo "$name peak $hwm MiB exceeds the cap's bound $bound MiB (25 MiB + ${CAP:-100000} x 512 B): FAIL"
            fail=1
        fi
    fi
    sb_destroy "$SB"
done
exit $fail
