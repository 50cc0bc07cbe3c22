//! SQLite persistence in Fail2ban's schema (version 4): jails, log positions,
//! ban history and the active bans restored at start.
