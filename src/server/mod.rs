//! The daemon: starts the jails, wires sources to filters to jails to actions,
//! serves the control socket and writes Fail2ban-style log lines.

pub mod daemon;
pub mod log;
pub mod protocol;
