//! The command line that talks to the server over the control socket and prints
//! what fail2ban-client prints.

pub mod output;
