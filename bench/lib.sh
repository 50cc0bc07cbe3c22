# Shared pieces of the bench/ and tests/mailserver/ scripts: sandboxes that run a
# Fail2ban-compatible server (Fail2ban itself or logban) in a private network
# namespace on a private copy of a config tree.
#
# usage (from a bash script, after `cd` to the repo root):
#   . bench/lib.sh
#   sb_new SB TAG [CONFDIR]        # sandbox dir in $SB: CONFDIR (default /etc/fail2ban)
#                                  # copied to $SB/etc, fail2ban.local pointing the socket,
#                                  # pid file, database and log inside $SB, a fresh netns
#   sb_put "$SB" jail.local <<EOF  # write any file under $SB/etc
#   sb_start "$SB" "$SERVER" "$CLIENT"   # `SERVER -c .. -s .. -p .. -xf start` in the netns,
#                                        # in the background; waits for `CLIENT ping`
#   sb_client "$SB" status sshd    # CLIENT -c $SB/etc -s $SB/run/server.sock ...
#   sb_nft "$SB" list ruleset      # nft inside the namespace
#   sb_stop "$SB" / sb_kill "$SB"  # `stop` (then TERM, KILL) / kill -9
# Every sandbox is destroyed on exit (server stopped, leftovers in its namespace
# killed, namespace and its nft tables deleted, directory removed unless KEEP=1).
#
# SERVER and CLIENT are command lines split on blanks, e.g. "fail2ban-server" or
# "target/release/logban server". Fail2ban's tools run on /usr/bin/python3 (their
# shebang); `python3` here is only used for small helpers.

LIB_SANDBOXES=()

die() {
    echo "${0##*/}: $*" >&2
    exit 2
}

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, nftables)"
    command -v nft >/dev/null || die "nft not found (apt-get install nftables)"
    command -v ip >/dev/null || die "ip not found (apt-get install iproute2)"
}

# Seconds since the epoch with microseconds.
now() { echo "$EPOCHREALTIME"; }

# since T0 [T1]: seconds from T0 to T1 (default now), 3 decimals.
since() { awk -v a="$1" -v b="${2:-$EPOCHREALTIME}" 'BEGIN{printf "%.3f", b-a}'; }

# ratio A B: A/B with one decimal, "-" when B is 0 or missing.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b+0 > 0) printf "%.1f", a/b; else print "-"}'; }

# genlog OUT LINES [RATIO] [SEED] [START]: Fail2ban-style mail log from genlog.py
# (../shared/tools relative to the repo root, else /work/shared/tools, or $GENLOG).
genlog() {
    local g=${GENLOG:-../shared/tools/genlog.py}
    [ -f "$g" ] || g=/work/shared/tools/genlog.py
    [ -f "$g" ] || die "genlog.py not found (set GENLOG)"
    python3 "$g" "$2" "${3:-0.05}" "${4:-7}" "${5:-now}" >"$1"
}

# is_fail2ban "CMD": true when the command line runs Fail2ban's own server/client.
is_fail2ban() { case "${1%% *}" in *fail2ban-*) return 0 ;; *) return 1 ;; esac; }

# cmd_ok "CMD": true when the command's program exists.
cmd_ok() { command -v "${1%% *}" >/dev/null 2>&1; }

# sb_new VAR TAG [CONFDIR]: makes a sandbox and stores its directory in VAR.
sb_new() {
    local var=$1 tag=$2 conf=${3:-/etc/fail2ban} dir ns
    [ -d "$conf" ] || die "config dir $conf not found (apt-get install fail2ban, or pass one)"
    dir=$(mktemp -d "/tmp/lbb-$tag.XXXXXX")
    LIB_SANDBOXES+=("$dir")
    ns="lbb-$tag-${dir##*.}"
    mkdir -p "$dir/run" "$dir/lib"
    cp -a "$conf/." "$dir/etc"
    echo "$ns" >"$dir/netns"
    ip netns add "$ns" || die "ip netns add $ns failed"
    ip -n "$ns" link set lo up
    sb_fail2ban_local "$dir"
    printf -v "$var" '%s' "$dir"
}

# sb_fail2ban_local SB [LINE...]: (re)writes etc/fail2ban.local with the sandbox's
# socket, pid file, database and log target, plus the given `key = value` lines.
sb_fail2ban_local() {
    local sb=$1
    shift
    {
        echo "[Definition]"
        echo "logtarget = $sb/server.log"
        echo "socket = $sb/run/server.sock"
        echo "pidfile = $sb/run/server.pid"
        echo "dbfile = $sb/lib/fail2ban.sqlite3"
        printf '%s\n' "$@"
    } >"$sb/etc/fail2ban.local"
}

# sb_put SB RELPATH: writes stdin to $SB/etc/RELPATH.
sb_put() {
    mkdir -p "$(dirname "$1/etc/$2")"
    cat >"$1/etc/$2"
}

sb_ns() { cat "$1/netns" 2>/dev/null || true; }

# sb_exec SB CMD...: runs CMD inside the sandbox's network namespace.
sb_exec() {
    local sb=$1
    shift
    ip netns exec "$(sb_ns "$sb")" "$@"
}

sb_nft() {
    local sb=$1
    shift
    sb_exec "$sb" nft "$@"
}

# sb_client SB ARG...: the sandbox's client command against its socket. The client
# runs outside the namespace (the socket is a file), which keeps polling cheap.
sb_client() {
    local sb=$1 c
    shift
    read -ra c <"$sb/client_cmd"
    "${c[@]}" -c "$sb/etc" -s "$sb/run/server.sock" "$@"
}

# sb_launch SB "SERVER" "CLIENT": starts the server in the foreground, in the
# background of this script, inside the namespace; records the start time.
sb_launch() {
    local sb=$1 s
    echo "$2" >"$sb/server_cmd"
    echo "${3:?client command}" >"$sb/client_cmd"
    read -ra s <<<"$2"
    now >"$sb/started"
    ip netns exec "$(sb_ns "$sb")" "${s[@]}" -c "$sb/etc" -s "$sb/run/server.sock" \
        -p "$sb/run/server.pid" -xf start >>"$sb/server.out" 2>&1 </dev/null &
    echo $! >"$sb/server.ppid"
    disown $! # no job notice when a test kills it
}

# sb_wait_ping SB [TIMEOUT]: waits until `ping` answers (exit 0). On timeout prints
# the server's output and fails.
sb_wait_ping() {
    local sb=$1 end
    end=$(awk -v t="${2:-60}" -v n="$EPOCHREALTIME" 'BEGIN{printf "%.6f", n+t}')
    until sb_client "$sb" ping >/dev/null 2>&1; do
        if ! sb_alive "$sb" || awk -v e="$end" -v n="$EPOCHREALTIME" 'BEGIN{exit !(n>e)}'; then
            echo "server in $sb did not answer ping; its output:" >&2
            tail -n 20 "$sb/server.out" "$sb/server.log" >&2 2>/dev/null
            return 1
        fi
        sleep 0.05
    done
}

sb_start() {
    sb_launch "$@"
    sb_wait_ping "$1" "${4:-60}"
}

# sb_pid SB: the server's process id (the launched process; it stays in the
# foreground), else the pid file's.
sb_pid() {
    local p
    p=$(cat "$1/server.ppid" 2>/dev/null)
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
        echo "$p"
    elif [ -s "$1/run/server.pid" ]; then
        cat "$1/run/server.pid"
    fi
}

sb_alive() {
    local p
    p=$(sb_pid "$1")
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

# sb_wait_exit SB SECONDS: waits for the server process to end.
sb_wait_exit() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        sb_alive "$1" || return 0
        sleep 0.05
    done
    return 1
}

# sb_stop SB [TIMEOUT]: `stop` through the client, then TERM and KILL if needed.
sb_stop() {
    local sb=$1 t=${2:-30} p c
    [ -f "$sb/client_cmd" ] || return 0
    if sb_alive "$sb"; then
        read -ra c <"$sb/client_cmd"
        timeout "$t" "${c[@]}" -c "$sb/etc" -s "$sb/run/server.sock" stop >/dev/null 2>&1 || true
        sb_wait_exit "$sb" "$t" && return 0
        p=$(sb_pid "$sb")
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null
        sb_wait_exit "$sb" 5 && return 0
        p=$(sb_pid "$sb")
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
        sb_wait_exit "$sb" 5
    fi
    return 0
}

# sb_kill SB: kill -9 the server (as a crash or a container kill would).
sb_kill() {
    local p
    p=$(sb_pid "$1")
    [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    sb_wait_exit "$1" 10
}

# sb_destroy SB: stops the server, kills what is left in its namespace (only this
# sandbox's processes live there), deletes the namespace with its nft tables.
sb_destroy() {
    local sb=$1 ns p
    [ -d "$sb" ] || return 0
    sb_stop "$sb" 20
    ns=$(sb_ns "$sb" 2>/dev/null)
    if [ -n "$ns" ] && ip netns list | grep -qw "^$ns"; then
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns exec "$ns" nft flush ruleset 2>/dev/null || true
        ip netns del "$ns" || true
    fi
    if [ -n "${KEEP:-}" ]; then
        echo "kept $sb" >&2
    else
        rm -rf "$sb"
    fi
}

lib_cleanup() {
    local sb
    for sb in "${LIB_SANDBOXES[@]}"; do sb_destroy "$sb"; done
    LIB_SANDBOXES=()
}
trap lib_cleanup EXIT
trap 'exit 130' INT TERM

# jail_counts SB JAIL: "TOTAL_FAILED TOTAL_BANNED" from `status JAIL`, or nothing
# when the command fails.
jail_counts() {
    sb_client "$1" status "$2" 2>/dev/null | awk -F'\t' '
        /Total failed:/ {f=$2} /Total banned:/ {b=$2}
        END {if (f != "" && b != "") print f, b}' || true
}

# banned_list SB JAIL: the jail's banned addresses, one a line, sorted (the
# admin script's grep on `status JAIL`).
banned_list() {
    sb_client "$1" status "$2" 2>/dev/null | grep -oP '(?<=Banned IP list:\s).+' |
        tr ' ' '\n' | sed '/^$/d' | sort || true
}

# wait_counts SB QUIET TIMEOUT JAIL...: polls `status JAIL` for every jail in turn,
# as fast as the client answers, until the counts (Total failed, Total banned)
# have been unchanged and non-zero for QUIET seconds, or TIMEOUT seconds have
# passed since the server was started. Every sample goes to $SB/poll.log
# ("JAIL START END FAILED BANNED"), the final counts to $SB/counts ("JAIL FAILED
# BANNED" lines). Prints "LOWER UPPER ROUND": the moment every jail reached its
# final counts lies between LOWER (start of the last sample that still showed
# other counts) and UPPER (end of the first sample that showed them), in seconds
# from the server's start; ROUND is the mean time of one polling round.
wait_counts() {
    local sb=$1 quiet=$2 limit=$3
    shift 3
    local t0 ts te c j key last="" changed rounds=0
    t0=$(cat "$sb/started")
    changed=$t0
    : >"$sb/poll.log"
    while :; do
        key=""
        for j in "$@"; do
            ts=$EPOCHREALTIME
            c=$(jail_counts "$sb" "$j")
            te=$EPOCHREALTIME
            [ -n "$c" ] || c="- -"
            echo "$j $ts $te $c" >>"$sb/poll.log"
            key+="$c "
        done
        rounds=$((rounds + 1))
        if [ "$key" != "$last" ]; then
            last=$key
            changed=$te
        fi
        if [[ $key != *-* && $key =~ [1-9] ]] &&
            awk -v a="$changed" -v b="$EPOCHREALTIME" -v q="$quiet" 'BEGIN{exit !(b-a>=q)}'; then
            break
        fi
        if awk -v a="$t0" -v b="$EPOCHREALTIME" -v q="$limit" 'BEGIN{exit !(b-a>=q)}'; then
            echo "warning: counts in $sb not settled after ${limit}s" >&2
            break
        fi
        if ! sb_alive "$sb"; then
            echo "warning: the server in $sb exited; its output:" >&2
            tail -n 5 "$sb/server.out" >&2
            break
        fi
    done
    awk -v t0="$t0" -v rounds="$rounds" -v counts="$sb/counts" '
        { end = $3; n[$1]++; j[$1, n[$1]] = $0; fin[$1] = $4 " " $5; if (!($1 in seen)) { seen[$1]; order[++k] = $1 } }
        END {
            lo = t0; hi = t0
            for (o = 1; o <= k; o++) {
                q = order[o]; first = 0
                for (i = n[q]; i >= 1; i--) {
                    split(j[q, i], f, " ")
                    if (f[4] " " f[5] != fin[q]) { if (f[2] > lo) lo = f[2]; break }
                    first = f[3]
                }
                if (first > hi) hi = first
                print q, fin[q] > counts
            }
            printf "%.3f %.3f %.3f\n", lo - t0, hi - t0, (end - t0) / rounds
        }' "$sb/poll.log"
}

# addresses N: N distinct addresses, one a line: first the three IPv4
# documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, hosts
# .1-.254), then private 10.0.0.0/8 (every other address, so none are adjacent).
addresses() {
    awk -v n="$1" 'BEGIN{
        split("192.0.2 198.51.100 203.0.113", doc, " ")
        for (d = 1; d <= 3 && k < n; d++) for (h = 1; h <= 254 && k < n; h++) { print doc[d] "." h; k++ }
        for (i = 0; k < n; i += 2) { printf "10.%d.%d.%d\n", int(i/65536)%256, int(i/256)%256, i%256 + 1; k++ }
    }'
}

# set_count SB SET [FAMILY TABLE]: number of elements in an nft set (0 when the
# set or table does not exist).
set_count() {
    sb_nft "$1" -j list set "${3:-inet}" "${4:-f2b-table}" "$2" 2>/dev/null | python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    print(0); sys.exit()
n = 0
for o in doc.get("nftables", []):
    if "set" in o:
        n += len(o["set"].get("elem", []))
print(n)' || true
}

# mailserver_conf SB BANACTION: the mail-server layout of
# /work/shared/reference/mailserver.md in the sandbox: its jail.local (with
# BANACTION), an empty filter.d/custom.conf, action.d/nftables-common.local with
# blocktype drop and sets declared with `flags interval` (so subnets can be
# banned), dovecot and postfix reading $SB/mail.log (paths-overrides.local), and
# no jail.d/defaults-debian.conf (whose sshd jail the mail server does not run).
mailserver_conf() {
    local sb=$1
    rm -f "$sb/etc/jail.d/defaults-debian.conf"
    : >"$sb/mail.log"
    sb_put "$sb" jail.local <<EOF
[DEFAULT]
bantime = 1w
findtime = 1w
maxretry = 6
ignoreip = 127.0.0.1/8
banaction = $2
[dovecot]
enabled = true
[postfix]
enabled = true
mode = extra
[custom]
enabled = true
bantime = 180d
port = smtp,pop3,pop3s,imap,imaps,submission,submissions,sieve
EOF
    echo "[Definition]" | sb_put "$sb" filter.d/custom.conf
    printf '[DEFAULT]\nsyslog_mail = %s\n' "$sb/mail.log" | sb_put "$sb" paths-overrides.local
    sb_put "$sb" action.d/nftables-common.local <<'EOF'
[Init]
blocktype = drop

[Definition]
# the set declaration of action.d/nftables.conf with `flags interval` added
_nft_add_set = <nftables> add set <table_family> <table> <addr_set> \{ type <addr_type>\; flags interval\; \}
              <_nft_for_proto-<type>-iter>
              <nftables> add rule <table_family> <table> <chain> %(rule_stat)s
              <_nft_for_proto-<type>-done>
EOF
}

# mailserver_start VAR TAG I BANACTION: a sandbox (its directory in VAR) with
# mailserver_conf and BANACTION, side I's server started in it and answering.
mailserver_start() {
    sb_new "$1" "$2"
    mailserver_conf "${!1}" "$4"
    sb_start "${!1}" "${SERVERS[$3]}" "${CLIENTS[$3]}"
}

# The jails that read the generated mail log (ingest.sh, decisions.sh).
MAIL_JAILS=(sshd dovecot postfix postfix-sasl)

# mail_bench LINES: the start of a script comparing the servers on the
# generated mail log: root and tools checked, the servers chosen (sides), a
# work directory in W and a mail log of LINES lines (genlog.py, 5% failures,
# seed $SEED or 7, ending now) in MAIL_LOG, announced on stdout.
mail_bench() {
    need_root
    sides
    work_dir W
    MAIL_LOG=$W/mail.log
    genlog "$MAIL_LOG" "$1" 0.05 "${SEED:-7}" now
    echo "# log: $1 lines (genlog.py seed ${SEED:-7}, 5% failures, ending now)"
}

# mail_side VAR TAG I [LINE...]: a sandbox (its directory in VAR) running
# server I of sides, with MAIL_JAILS reading MAIL_LOG (backend auto, postfix
# in mode extra) and no action; the LINEs (`key = value`) go to [DEFAULT].
mail_side() {
    local var=$1 tag=$2 i=$3 j
    shift 3
    sb_new "$var" "$tag"
    {
        echo "[DEFAULT]"
        printf '%s\n' "$@"
        echo "action ="
        for j in "${MAIL_JAILS[@]}"; do
            printf '[%s]\nenabled = true\nlogpath = %s\nbackend = auto\n' "$j" "$MAIL_LOG"
            if [ "$j" = postfix ]; then echo "mode = extra"; fi
        done
    } | sb_put "${!var}" jail.local
    sb_launch "${!var}" "${SERVERS[i]}" "${CLIENTS[i]}"
}

# row LABEL VALUE...: a line of a side-by-side table: LABEL in ROW_LABEL
# columns (30), each value right-aligned in ROW_WIDTH (12).
row() {
    printf "%-${ROW_LABEL:-30}s" "$1"
    shift
    printf " %${ROW_WIDTH:-12}s" "$@"
    echo
}

# row_of LABEL MAP [SUFFIX]: the row of MAP[NAME]SUFFIX for each of NAMES (MAP
# names an associative array keyed by side name).
row_of() {
    local -n vals=$2
    local n v=()
    for n in "${NAMES[@]}"; do v+=("${vals[$n]}${3:-}"); done
    row "$1" "${v[@]}"
}

# work_dir VAR: a scratch directory removed on exit.
work_dir() {
    local d
    d=$(mktemp -d /tmp/lbb-work.XXXXXX)
    LIB_SANDBOXES+=("$d")
    printf -v "$1" '%s' "$d"
}

# sides: the servers a side-by-side script compares, in NAMES, SERVERS, CLIENTS:
# the reference REF_SERVER/REF_CLIENT (default Fail2ban's) and the candidate
# SERVER/CLIENT (default logban's release build, built first unless BUILD=0).
# ONLY=ref or ONLY=cand runs one of them.
sides() {
    local logban="target/release/logban"
    REF_SERVER=${REF_SERVER:-fail2ban-server}
    REF_CLIENT=${REF_CLIENT:-fail2ban-client}
    SERVER=${SERVER:-$logban server}
    CLIENT=${CLIENT:-$logban client}
    NAMES=() SERVERS=() CLIENTS=()
    if [ "${ONLY:-}" != cand ]; then
        NAMES+=(fail2ban) SERVERS+=("$REF_SERVER") CLIENTS+=("$REF_CLIENT")
    fi
    if [ "${ONLY:-}" != ref ]; then
        if [ "${SERVER%% *}" = "$logban" ] && [ "${BUILD:-1}" = 1 ]; then
            cargo build --release -q || die "cargo build --release failed"
        fi
        if is_fail2ban "$SERVER"; then NAMES+=(fail2ban#2); else NAMES+=(logban); fi
        SERVERS+=("$SERVER") CLIENTS+=("$CLIENT")
    fi
    local c
    for c in "${SERVERS[@]}" "${CLIENTS[@]}"; do
        cmd_ok "$c" || die "command not found: $c"
    done
    echo "# servers: $(for i in "${!NAMES[@]}"; do printf '%s=[%s | %s] ' "${NAMES[i]}" "${SERVERS[i]}" "${CLIENTS[i]}"; done)"
}

# sb_cpu SB: CPU seconds (user + system, all threads and reaped children) the
# server has used so far; less sensitive to a loaded machine than wall time.
sb_cpu() {
    local p
    p=$(sb_pid "$1")
    [ -n "$p" ] || return 0
    awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / hz}' "/proc/$p/stat"
}

# sb_rss SB: the server's resident set size in KiB (VmRSS).
sb_rss() {
    local p
    p=$(sb_pid "$1")
    [ -n "$p" ] || return 0
    awk '/^VmRSS:/ {print $2}' "/proc/$p/status"
}

# wait_set SB SET N TIMEOUT T0: polls the nft set (table inet f2b-table) until it
# holds N elements; prints the seconds from T0 to the first poll that saw them,
# or "timeout(COUNT)" after TIMEOUT seconds.
wait_set() {
    local sb=$1 set=$2 want=$3 limit=$4 t0=$5 c
    while :; do
        c=$(set_count "$sb" "$set")
        if [ "$c" -ge "$want" ]; then
            since "$t0"
            return 0
        fi
        if awk -v a="$t0" -v b="$EPOCHREALTIME" -v q="$limit" 'BEGIN{exit !(b-a>=q)}'; then
            echo "timeout($c)"
            return 1
        fi
        sleep 0.02
    done
}
