//! sideload: the Silverline edge runtime. See README.md.

pub mod config;
pub mod launcher;
pub mod mqtt;
pub mod outbox;
pub mod program_files;
pub mod protocol;
pub mod stats;
pub mod supervisor;
