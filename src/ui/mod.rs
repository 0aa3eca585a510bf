//! The terminal UI (ratatui + crossterm): a live call list, ladders with anomalies flagged in
//! place, message, SDP, diff and diagnosis panes, statistics and help. `model` turns calls
//! into rows, `app` holds the state and the key table, `view` draws, `term` runs it on a real
//! terminal with a background loader. Everything but `term` is pure and is tested with
//! ratatui's `TestBackend`. The UI reads the engine's model; it never changes it.

pub mod app;
pub mod model;
mod term;
mod view;

pub use app::{Action, App, Progress, Screen};
pub use term::{Interrupted, run, save};
