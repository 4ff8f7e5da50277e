//! Failure-mode experiments: steady state → fault → observe → recover → rollback → steady state.
//!
//! An experiment lives in a suite file beside its checks (`experiments:`), and its steady state
//! and `during` checks are ordinary checks run by the suite runner. Faults are made through the
//! [`Provider`](crate::cloud::Provider) (reboot, hard-reset, stop-start, pause,
//! network-partition) or by scripts sent over the [`Transport`](crate::transport::Transport)
//! ([`guest`]). Every experiment becomes one result whose [`Record`] holds its phases, the
//! measured time to recover and a journal of everything it did.

pub mod guest;
pub mod model;
pub mod runner;

pub use model::{Experiment, Fault, FaultKind};
pub use runner::{run_experiment, Phase, Record, Target};
