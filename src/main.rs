//! The `logban` binary. Invoked through a link named `fail2ban-server`,
//! `fail2ban-client` or `fail2ban-regex` it behaves as that program; otherwise
//! the first argument picks the program (`logban server ...`).

fn main() {
    std::process::exit(logban::cli::main(std::env::args_os().collect()));
}
