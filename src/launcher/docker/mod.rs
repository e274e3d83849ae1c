//! Container launcher: runs `PY` modules in containers through the engine's command
//! line, one thread per module: fetch the program folder, create and start the
//! container attached to piped stdio, bridge stdin and output, report how it ended,
//! and remove the container and the work folder in any case. Also the engine-wide
//! chores: one stats poll for all modules, and the sweep of containers left by a
//! crashed run.
//!
//! Not for: command lines and parsing engine output (`cli.rs`), or replies to the
//! orchestrator (the supervisor builds them from the events).

pub mod cli;
