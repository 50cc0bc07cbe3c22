//! Log sources: file followers (inotify with a polling fallback, rotation,
//! stored positions) and the systemd journal. Each log is read once for all the
//! jails that watch it.
