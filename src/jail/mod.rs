//! Failure counting and ban decisions: maxretry within findtime, bantime and
//! bantime.increment, ignoreip/ignoreself/ignorecommand, expiry.
