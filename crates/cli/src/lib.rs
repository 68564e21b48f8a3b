//! The `sembed` command as a library: the argument definitions (`args`), each command's execution
//! (`commands`), and the input readers and output writers they share. `main.rs` only parses and
//! dispatches; the fuzz harnesses (crates/fuzz) call the readers and writers directly.

pub mod args;
pub mod commands;
pub mod hits;
pub mod input;
pub mod model;
pub mod output;
pub mod printer;
pub mod progress;
