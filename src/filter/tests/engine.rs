//! Engine behaviour with inline regexes and lines.
