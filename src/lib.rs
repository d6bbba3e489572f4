//! scintigan: train and watch the MU-ACGAN bone-scan method from a terminal.
//!
//! The folders are the architecture: `config` (schema and validation),
//! `store` (the run directory), `data`, `nn`, `train`, and `worker` (one
//! run's stages, in this process).

pub mod config;
pub mod daemon;
pub mod data;
pub mod experiment;
pub mod nn;
pub mod rng;
pub mod store;
pub mod text;
pub mod train;
pub mod tui;
pub mod worker;
