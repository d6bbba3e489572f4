//! One module per pane; each draws itself from the app state.

pub mod charts;
pub mod config;
pub mod confusion;
pub mod logs;
pub mod runs;
pub mod samples;
pub mod system;
