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

/// The built-in chaos suites, embedded in the binary: (name, YAML).
pub const BUILTIN: &[(&str, &str)] = &[(
    "chaos/systemd",
    include_str!("../../test-suites/chaos/systemd.yml"),
)];

/// The built-in chaos suite `name` (`chaos/systemd`), parsed; `None` if there is none.
pub fn builtin(name: &str) -> Option<crate::Result<crate::suites::Suite>> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(n, text)| {
        crate::suites::parse_suite(text, std::path::Path::new(&format!("builtin:{n}.yml")))
    })
}
