//! Carries bans out: command actions from action.d (tags, parameters, family
//! sections, shell with attacker text passed only as data) and native firewall
//! backends (batched nftables, iptables/ipset, hosts.deny).
