#!/bin/sh
# Development check: runs the real fail2ban-server once with Fail2ban's stock
# configuration (/etc/fail2ban) and once with logban's defaults/, each in its
# own network namespace, bans and unbans addresses through every firewall
# action, and prints the difference between the firewall states they leave
# (nft ruleset, iptables/ip6tables rules, ipsets, hosts.deny).
#
# usage: sudo tools/compare-actions.sh [ACTION[:PARAM=VALUE] ...]
#   e.g. tools/compare-actions.sh nftables-multiport iptables-ipset:type=multiport
# Needs fail2ban, nftables, iptables, ipset, iproute2. Expected difference:
# only "flags interval" on logban's nftables sets.
set -u
actions=${*:-nftables-multiport nftables-allports iptables-multiport iptables-allports iptables-ipset:type=multiport hostsdeny}
work=$(mktemp -d /tmp/lb-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT

dump() { # NS FILE: the firewall state of namespace NS, without counters and handles
	{
		ip netns exec "$1" nft list ruleset
		ip netns exec "$1" iptables-save 2>/dev/null | grep -v '^[#:]'
		ip netns exec "$1" ip6tables-save 2>/dev/null | grep -v '^[#:]'
		ip netns exec "$1" ipset save 2>/dev/null | sed 's/ initval 0x[0-9a-f]*//' | sort
		cat "$2" 2>/dev/null
	} | sed -e 's/ # handle [0-9]*//' -e 's/\[[0-9]*:[0-9]*\]//'
}

run() { # NAME CONFDIR ACTION
	name=$1 conf=$2 action=${3%%:*} extra=
	case $3 in *:*) extra=", ${3#*:}" ;; esac
	dir=$work/$name-$action ns=lbcmp-$$-$name
	mkdir -p "$dir" && cp -r "$conf" "$dir/conf"
	printf '[Definition]\n' > "$dir/conf/filter.d/custom.conf"
	printf '[Definition]\nlogtarget = %s\nsocket = %s\npidfile = %s\ndbfile = :memory:\n' \
		"$dir/server.log" "$dir/sock" "$dir/pid" > "$dir/conf/fail2ban.local"
	rm -f "$dir/conf/jail.d/"*
	printf '[DEFAULT]\nenabled = false\n[t]\nenabled = true\nfilter = custom\nport = smtp,465,submission\naction = %s[name=t, port="smtp,465,submission", protocol="tcp", file="%s"%s]\n' \
		"$action" "$dir/hosts.deny" "$extra" > "$dir/conf/jail.local"
	ip netns add "$ns"
	ip netns exec "$ns" fail2ban-server -c "$dir/conf" -b start >/dev/null 2>&1
	cl="ip netns exec $ns fail2ban-client -c $dir/conf"
	for _ in 1 2 3 4 5 6 7 8 9 10; do $cl ping >/dev/null 2>&1 && break; sleep 0.5; done
	$cl set t banip 192.0.2.1 198.51.100.0/24 2001:db8::1 >/dev/null
	sleep 1
	echo "== banned"; dump "$ns" "$dir/hosts.deny"
	$cl set t unbanip 192.0.2.1 2001:db8::1 >/dev/null
	sleep 1
	echo "== unbanned"; dump "$ns" "$dir/hosts.deny"
	$cl stop >/dev/null
	sleep 1
	echo "== stopped"; dump "$ns" "$dir/hosts.deny"
	ip netns del "$ns"
}

here=$(cd "$(dirname "$0")/.." && pwd)
for a in $actions; do
	run stock /etc/fail2ban "$a" > "$work/stock.out"
	run logban "$here/defaults" "$a" > "$work/logban.out"
	echo "### $a"
	diff -u "$work/stock.out" "$work/logban.out" && echo "(same)"
	[ -n "${SHOW:-}" ] && cat "$work/logban.out"
done
