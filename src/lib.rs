//! logban: an intrusion-prevention daemon that reads Fail2ban's configuration.
//!
//! Data flows one way: [`source`] (log followers) -> [`filter`] (pattern matching,
//! dates) -> [`jail`] (failure counting, ban decisions) -> [`action`] (firewall
//! backends, command actions), with [`store`] (SQLite) beside the jail.
//! [`config`] builds every setting from a Fail2ban configuration tree;
//! [`server`] and [`client`] are the daemon, its control socket and the command line.

pub mod action;
pub mod cli;
pub mod client;
pub mod config;
pub mod filter;
pub mod jail;
pub mod regex_cli;
pub mod server;
pub mod source;
pub mod store;
pub mod util;
