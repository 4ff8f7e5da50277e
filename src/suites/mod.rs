//! Suites of checks: the YAML model, loading, and the runner.
//!
//! A suite file is either a plain list of checks or a mapping `{name, description, checks}`:
//!
//! ```yaml
//! name: web
//! checks:
//!   - id: sshd-active
//!     title: OpenSSH server is running and enabled
//!     service: { name: ssh, running: true, enabled: true }
//!   - id: nginx-installed
//!     package: { name: nginx, installed: true }
//!   - id: index-page
//!     http: { url: "http://127.0.0.1/", status: 200, body: { contains: "Baked by Bakery" } }
//! ```
//!
//! Each check has an `id` (unique in the suite), optional `title`, `tags`, `skip: reason`,
//! `timeout`, `retry: {attempts, interval}`, `eventually: 60s`, `meta`, and exactly one
//! resource key. Expected values are [`matcher::Matcher`]s. Goss files are read too
//! ([`load_goss`], or [`load_suite`] on a file that looks like one).

pub mod builtin;
pub mod cis;
pub mod goss;
pub mod load;
pub mod matcher;
pub mod model;
pub mod resources;
pub mod result;
pub mod runner;
#[cfg(test)]
pub(crate) mod testing;

pub use goss::{load_goss, load_goss_with, GossVars};

/// The JSON Schema of a suite file (the mapping form), for editors and `bakery schema`.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(model::SuiteDoc)).expect("a schema serializes")
}
pub use load::{load_suite, parse_suite};
pub use matcher::Matcher;
pub use model::{Check, Suite};
pub use resources::{Resource, RunnerView};
pub use result::{CheckResult, Status, SuiteResult};
pub use runner::{run_suite, RunOptions};

#[cfg(test)]
mod tests {
    #[test]
    fn the_schema_describes_checks_and_resources() {
        let s = super::schema().to_string();
        for key in [
            "\"checks\"",
            "\"kernel-param\"",
            "\"eventually\"",
            "\"Matcher\"",
            "\"linked-to\"",
        ] {
            assert!(s.contains(key), "{key} missing from the schema");
        }
    }
}
