#!/usr/bin/env bash
# Idle memory side by side: VmRSS of each server running the mail-server jails,
# once its start has settled.
#
# usage: bench/rss.sh
#   env SETTLE  seconds to wait after the first answered ping (5)
#   env SERVER/CLIENT          candidate (default target/release/logban server|client)
#   env REF_SERVER/REF_CLIENT  reference (default fail2ban-server|fail2ban-client)
#   env ONLY=ref|cand          run only one
# Each server runs bench/lib.sh mailserver_conf (dovecot, postfix, custom with
# nftables-allports, an empty mail log) in its own network namespace; VmRSS is
# read from /proc/PID/status of the server process (the pid the sandbox
# started, which is also its pid file's), SETTLE seconds after it answered ping.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root

sides
declare -A rss
for i in "${!NAMES[@]}"; do
    n=${NAMES[i]}
    mailserver_start SB "rss$i" "$i" nftables-allports
    sleep "${SETTLE:-5}"
    rss[$n]=$(sb_rss "$SB")
    sb_destroy "$SB"
done
for n in "${NAMES[@]}"; do
    printf '%-12s VmRSS %7s KiB (%.1f MiB)\n' "$n" "${rss[$n]}" "$(awk -v k="${rss[$n]}" 'BEGIN{print k/1024}')"
done
