#!/usr/bin/env bash
# Replays the checks of /work/shared/reference/mailserver.md ("What its own test
# suite checks" and "The admin command it wraps") against a server in network
# namespaces: a mail-server namespace running the server, a small SMTP responder
# (smtp.py) that logs Postfix SASL failures, and an attacker namespace joined to
# it by a veth pair (192.0.2.1 / 2001:db8::1 the server, 192.0.2.2 / 2001:db8::2
# the attacker).
#
# usage: tests/mailserver/check.sh
#   env SERVER/CLIENT  the server and client command lines (default the release
#                      build of logban: "target/release/logban server|client",
#                      built first unless BUILD=0); for Fail2ban itself:
#                      SERVER=fail2ban-server CLIENT=fail2ban-client
#   env CONF           config tree to copy (/etc/fail2ban); KEEP=1 keeps the sandboxes
# Configuration: the mail server's layout (bench/lib.sh mailserver_conf) plus its
# test suite's overrides in jail.d/user-jail.local (bantime 1234, findtime 321,
# maxretry 2, banaction nftables-multiport) and loglevel DEBUG in fail2ban.local.
# Manual bans use documentation addresses (198.51.100.0/24, 203.0.113.0/24,
# 2001:db8::/32) where mailserver.md shows 192.0.66.x.
# Prints PASS or FAIL and a name per check; exits 1 if any check failed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
. bench/lib.sh
need_root

if [ -z "${SERVER:-}" ]; then
    SERVER="target/release/logban server" CLIENT="target/release/logban client"
    if [ "${BUILD:-1}" = 1 ]; then cargo build --release -q || die "cargo build --release failed"; fi
fi
CLIENT=${CLIENT:?set CLIENT with SERVER}
cmd_ok "$SERVER" || die "command not found: $SERVER"
cmd_ok "$CLIENT" || die "command not found: $CLIENT"
echo "# server: $SERVER; client: $CLIENT"

failures=0
pass() { echo "PASS $1"; }
fail() {
    echo "FAIL $1"
    shift
    [ $# -gt 0 ] && printf '     %s\n' "$@"
    failures=$((failures + 1))
}
# expect NAME WANT GOT: exact match
expect() {
    if [ "$3" = "$2" ]; then pass "$1"; else fail "$1" "want: $2" "got:  $3"; fi
}
# expect_has NAME NEEDLE HAYSTACK: fixed-string containment
expect_has() {
    if grep -qF -- "$2" <<<"$3"; then pass "$1"; else fail "$1" "want: ...$2..." "got:  $3"; fi
}
# eventually SECONDS CMD...: retries CMD until it succeeds (true) or time runs out
eventually() {
    local end
    end=$(awk -v t="$1" -v n="$EPOCHREALTIME" 'BEGIN{printf "%.6f", n+t}')
    shift
    until "$@"; do
        awk -v e="$end" -v n="$EPOCHREALTIME" 'BEGIN{exit !(n>e)}' && return 1
        sleep 0.1
    done
}
cli() { sb_client "$SB" "$@" 2>&1; }
nft_set() { sb_nft "$SB" list set inet f2b-table "$1" 2>&1; }
set_has() { nft_set "$1" | grep -qF -- "$2"; }
set_lacks() { ! set_has "$@"; }
listed() { banned_list "$SB" "$1" | grep -qxF -- "$2"; }
not_listed() { ! listed "$@"; }
smtp() { python3 "$here/smtp.py" "$@"; }
attacker() { sb_exec "$ATK" python3 "$here/smtp.py" "$@"; }

# --- namespaces, responder, server ---------------------------------------------
sb_new SB mail "${CONF:-/etc/fail2ban}"
sb_new ATK atk
mailserver_conf "$SB" nftables-allports
sb_fail2ban_local "$SB" "loglevel = DEBUG"
sb_put "$SB" jail.d/user-jail.local <<'EOF'
[DEFAULT]
bantime = 1234
findtime = 321
maxretry = 2
banaction = nftables-multiport
EOF
ip -n "$(sb_ns "$SB")" link add veth0 type veth peer name veth1 netns "$(sb_ns "$ATK")" ||
    die "cannot create the veth pair"
ip -n "$(sb_ns "$SB")" addr add 192.0.2.1/24 dev veth0
ip -n "$(sb_ns "$SB")" addr add 2001:db8::1/64 dev veth0 nodad
ip -n "$(sb_ns "$SB")" link set veth0 up
ip -n "$(sb_ns "$ATK")" addr add 192.0.2.2/24 dev veth1
ip -n "$(sb_ns "$ATK")" addr add 2001:db8::2/64 dev veth1 nodad
ip -n "$(sb_ns "$ATK")" link set veth1 up
port=587
sb_exec "$SB" python3 "$here/smtp.py" serve "$SB/mail.log" "$port" >"$SB/smtp.out" 2>&1 &
eventually 10 grep -q ready "$SB/smtp.out" || die "SMTP responder did not start: $(cat "$SB/smtp.out")"

if sb_start "$SB" "$SERVER" "$CLIENT" 60; then pass "server starts (-xf start) and ping exits 0"; else
    fail "server starts (-xf start) and ping exits 0"
    exit 1
fi

# --- admin command: jail list, get values, dump --------------------------------
expect "jail list (status | grep | cut -f2- | sed)" "custom  dovecot  postfix" \
    "$(cli status | grep "Jail list" | cut -f2- | sed 's/,/ /g')"
expect "get loglevel" "Current logging level is 'DEBUG'" "$(cli get loglevel)"
expect "get postfix bantime" "1234" "$(cli get postfix bantime)"
expect "get dovecot findtime" "321" "$(cli get dovecot findtime)"
expect "get postfix maxretry" "2" "$(cli get postfix maxretry)"
expect "get custom bantime (its own 180d beats the [DEFAULT] override)" "15552000" "$(cli get custom bantime)"
expect_has "-d dumps addaction" "['set', 'dovecot', 'addaction', 'nftables-multiport']" "$(cli -d)"

# --- SASL failures from the attacker namespace ---------------------------------
if attacker probe 192.0.2.1 "$port"; then pass "attacker reaches SMTP before any ban"; else
    fail "attacker reaches SMTP before any ban"
fi
# localhost's failures come first in the log: once the attacker is banned they
# have been read too, and must have been ignored.
sb_exec "$SB" python3 "$here/smtp.py" auth 127.0.0.1 "$port" 2 ||
    fail "localhost AUTH attempts answered 535"
if attacker auth 192.0.2.1 "$port" 2; then pass "attacker's two AUTH attempts answered 535"; else
    fail "attacker's two AUTH attempts answered 535"
fi
t0=$(now)
if eventually 10 listed postfix 192.0.2.2; then
    pass "two SASL failures ban 192.0.2.2 within 10 s ($(since "$t0")s)"
else
    fail "two SASL failures ban 192.0.2.2 within 10 s" "$(cli status postfix)" "$(tail -n 5 "$SB/mail.log")"
fi
expect "status postfix Banned IP list" "192.0.2.2" "$(cli status postfix | grep -oP '(?<=Banned IP list:\s).+')"
eventually 5 set_has addr-set-postfix "elements = { 192.0.2.2 }"
expect_has "nft set addr-set-postfix holds the attacker" "elements = { 192.0.2.2 }" "$(nft_set addr-set-postfix)"
if attacker probe 192.0.2.1 "$port"; then fail "attacker's TCP connection stopped"; else
    pass "attacker's TCP connection stopped"
fi
lh=""
for j in custom dovecot postfix; do listed "$j" 127.0.0.1 && lh+=" $j"; done
sb_nft "$SB" list table inet f2b-table | grep -q '127\.0\.0\.1' && lh+=" nft"
expect "localhost never banned (ignoreip 127.0.0.1/8)" "" "$lh"
expect "localhost's failures ignored (postfix Total failed counts the attacker's 2)" "2" \
    "$(cli status postfix | awk -F'\t' '/Total failed:/ {print $2}')"

# --- unbanip --------------------------------------------------------------------
expect "set postfix unbanip 192.0.2.2 prints 1" "1" "$(cli set postfix unbanip 192.0.2.2)"
expect "status postfix lists nobody after unbanip" "" "$(banned_list "$SB" postfix)"
if eventually 5 set_lacks addr-set-postfix 192.0.2.2 && attacker probe 192.0.2.1 "$port"; then
    pass "unbanned attacker reaches SMTP again"
else
    fail "unbanned attacker reaches SMTP again" "$(nft_set addr-set-postfix)"
fi

# --- IPv6 attacker --------------------------------------------------------------
attacker auth 2001:db8::1 "$port" 2 || fail "IPv6 AUTH attempts answered 535"
t0=$(now)
if eventually 10 listed postfix 2001:db8::2 && eventually 5 set_has addr6-set-postfix "2001:db8::2"; then
    pass "IPv6 SASL failures ban 2001:db8::2 in addr6-set-postfix ($(since "$t0")s)"
else
    fail "IPv6 SASL failures ban 2001:db8::2 in addr6-set-postfix" "$(cli status postfix)" "$(nft_set addr6-set-postfix)"
fi
if attacker probe 2001:db8::1 "$port"; then fail "attacker's IPv6 TCP connection stopped"; else
    pass "attacker's IPv6 TCP connection stopped"
fi

# --- manual bans: ban IP, subnet, IPv6 --------------------------------------------
expect "set custom banip 198.51.100.7 prints 1" "1" "$(cli set custom banip 198.51.100.7)"
expect "set custom banip 198.51.100.7 again prints 0" "0" "$(cli set custom banip 198.51.100.7)"
if listed custom 198.51.100.7 && eventually 5 set_has addr-set-custom 198.51.100.7; then
    pass "198.51.100.7 in status custom and in addr-set-custom"
else
    fail "198.51.100.7 in status custom and in addr-set-custom" "$(cli status custom)" "$(nft_set addr-set-custom)"
fi
expect "set custom banip 203.0.113.0/24 prints 1" "1" "$(cli set custom banip 203.0.113.0/24)"
eventually 5 set_has addr-set-custom 203.0.113.0/24
expect_has "subnet 203.0.113.0/24 in addr-set-custom" "203.0.113.0/24" "$(nft_set addr-set-custom)"
expect "set custom banip 2001:db8::66 prints 1" "1" "$(cli set custom banip 2001:db8::66)"
eventually 5 set_has addr6-set-custom 2001:db8::66
expect_has "IPv6 2001:db8::66 in addr6-set-custom" "2001:db8::66" "$(nft_set addr6-set-custom)"

# --- blocktype drop rule text ------------------------------------------------------
expect "set dovecot banip 198.51.100.9 prints 1" "1" "$(cli set dovecot banip 198.51.100.9)"
eventually 5 set_has addr-set-dovecot 198.51.100.9
expect_has "blocktype drop rule for dovecot" \
    "tcp dport { 110, 143, 465, 587, 993, 995, 4190 } ip saddr @addr-set-dovecot drop" \
    "$(sb_nft "$SB" list table inet f2b-table 2>&1)"

# --- unban: a CIDR unbans what it holds; the admin's unban loops over every jail -----
cli set dovecot banip 198.51.100.20 198.51.100.21 >/dev/null
expect "set dovecot unbanip 198.51.100.16/28 prints 2" "2" "$(cli set dovecot unbanip 198.51.100.16/28)"
expect "dovecot keeps 198.51.100.9 only" "198.51.100.9" "$(banned_list "$SB" dovecot)"
out=""
for j in $(cli status | grep "Jail list" | cut -f2- | sed 's/,/ /g'); do
    out+="$j=$(cli set "$j" unbanip 198.51.100.7) "
done
expect "unbanip 198.51.100.7 in every jail prints 1 for custom, 0 elsewhere" "custom=1 dovecot=0 postfix=0 " "$out"
if eventually 5 set_lacks addr-set-custom 198.51.100.7; then pass "198.51.100.7 left addr-set-custom"; else
    fail "198.51.100.7 left addr-set-custom" "$(nft_set addr-set-custom)"
fi

# --- reload: bans stay, in the status and in the firewall ---------------------------
# The admin raises maxretry (mailserver.md: "one line of config away"), reloads;
# nothing may be unbanned, not even for a moment (nft monitor watches the table).
before=$(for j in custom dovecot postfix; do banned_list "$SB" "$j"; done)
sed -i 's/^maxretry = 2$/maxretry = 3/' "$SB/etc/jail.d/user-jail.local"
sb_exec "$SB" nft monitor >"$SB/monitor.out" 2>&1 &
monitor=$!
sleep 0.3
# (stdout only: fail2ban-client warns on stderr while it reads the configuration)
expect "reload prints OK" "OK" "$(sb_client "$SB" reload 2>/dev/null)"
# A probe, so that the monitor is seen to catch deletions: ban and unban one more.
cli set custom banip 198.51.100.77 >/dev/null
eventually 5 set_has addr-set-custom 198.51.100.77
cli set custom unbanip 198.51.100.77 >/dev/null
eventually 5 set_lacks addr-set-custom 198.51.100.77
sleep 0.3
kill "$monitor" 2>/dev/null
wait "$monitor" 2>/dev/null
expect "get postfix maxretry after reload" "3" "$(cli get postfix maxretry)"
expect "reload keeps every jail's bans" "$before" "$(for j in custom dovecot postfix; do banned_list "$SB" "$j"; done)"
if set_has addr-set-custom 203.0.113.0/24 && set_has addr6-set-custom 2001:db8::66 &&
    set_has addr-set-dovecot 198.51.100.9 && set_has addr6-set-postfix 2001:db8::2; then
    pass "reload keeps the nft sets"
else
    fail "reload keeps the nft sets" "$(sb_nft "$SB" list table inet f2b-table 2>&1)"
fi
deleted=$(grep "delete element" "$SB/monitor.out")
if [ "$(grep -c . <<<"$deleted")" = 1 ] && grep -qF 198.51.100.77 <<<"$deleted"; then
    pass "reload deletes no set element (nft monitor sees only the probe's)"
else
    fail "reload deletes no set element (nft monitor sees only the probe's)" "$deleted"
fi

# --- stop, restart, kill -9 ---------------------------------------------------------
restored() {
    listed custom 203.0.113.0/24 && listed custom 2001:db8::66 && listed dovecot 198.51.100.9 &&
        listed postfix 2001:db8::2 && not_listed custom 198.51.100.7 &&
        set_has addr-set-custom 203.0.113.0/24 && set_has addr6-set-custom 2001:db8::66 &&
        set_has addr-set-dovecot 198.51.100.9 && set_has addr6-set-postfix 2001:db8::2 &&
        set_lacks addr-set-custom 198.51.100.7
}
expect "stop prints Shutdown successful" "Shutdown successful" "$(cli stop)"
if sb_wait_exit "$SB" 30; then pass "server exits after stop"; else fail "server exits after stop"; fi
if sb_nft "$SB" list table inet f2b-table >/dev/null 2>&1; then
    fail "stop removes table inet f2b-table" "$(sb_nft "$SB" list table inet f2b-table)"
else
    pass "stop removes table inet f2b-table"
fi
if cli ping >/dev/null; then fail "ping fails once stopped"; else pass "ping fails once stopped"; fi

if sb_start "$SB" "$SERVER" "$CLIENT" 60 && eventually 30 restored; then
    pass "restart restores the bans (status and nft sets)"
else
    fail "restart restores the bans (status and nft sets)" "$(cli status custom)" "$(sb_nft "$SB" list table inet f2b-table 2>&1)"
fi
if attacker probe 2001:db8::1 "$port"; then fail "restored IPv6 ban stops the attacker"; else
    pass "restored IPv6 ban stops the attacker"
fi

sb_kill "$SB"
if sb_start "$SB" "$SERVER" "$CLIENT" 60 && eventually 30 restored; then
    pass "restarts cleanly after kill -9 (stale socket, bans back)"
else
    fail "restarts cleanly after kill -9 (stale socket, bans back)" "$(tail -n 5 "$SB/server.out")"
fi
expect "stop prints Shutdown successful" "Shutdown successful" "$(cli stop)"

echo "# $failures failed"
[ $failures = 0 ]
