//! What running a suite produced: one [`CheckResult`] per selected check.

use std::time::Duration;

use serde::{Serialize, Serializer};

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Every expectation held.
    Passed,
    /// An expectation did not hold.
    Failed,
    /// The check could not be evaluated (transport error, timeout, unparsable output).
    Error,
    /// Not run: the check has `skip: reason`, or tailoring excluded it.
    Skipped,
    /// The check's `applies-if` condition does not hold on the probe.
    NotApplicable,
    /// A manual control with no attestation in force.
    NotReviewed,
    /// Failed (or could not be evaluated), with a waiver in force.
    Waived,
}

impl Status {
    /// Lower-case name, as shown in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Skipped => "skipped",
            Status::NotApplicable => "not-applicable",
            Status::NotReviewed => "not-reviewed",
            Status::Waived => "waived",
        }
    }

    /// Whether this state fails the gate on its own (failed, error).
    pub fn fails_gate(self) -> bool {
        matches!(self, Status::Failed | Status::Error)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The check's id.
    pub id: String,
    /// The check's title (its id when it has none).
    pub title: String,
    /// The resource type (`service`, `file`, ...).
    pub kind: String,
    /// The check's tags.
    pub tags: Vec<String>,
    /// The verdict.
    pub status: Status,
    /// What was expected, for the attributes that decided the verdict.
    pub expected: Option<String>,
    /// What was found, for the same attributes.
    pub actual: Option<String>,
    /// One line explaining the verdict.
    pub message: String,
    /// Raw output behind the verdict (command output, the facts gathered for this resource).
    pub output: String,
    /// Time spent over every attempt; a gather shared by several checks is divided among them.
    #[serde(serialize_with = "secs", rename = "duration_secs")]
    pub duration: Duration,
    /// How many attempts were made (0 when skipped).
    pub attempts: u32,
    /// The control's metadata, when the check is a benchmark control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control: Option<Box<super::model::Control>>,
    /// For a failure-mode experiment: its phases, time to recover and journal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<Box<crate::chaos::Record>>,
}

impl CheckResult {
    /// A result that was not run: `skip: reason` in the suite file, or a waiver that says so.
    pub fn skipped(id: &str, title: &str, kind: &str, tags: &[String], reason: &str) -> Self {
        CheckResult {
            id: id.to_string(),
            title: title.to_string(),
            kind: kind.to_string(),
            tags: tags.to_vec(),
            status: Status::Skipped,
            expected: None,
            actual: None,
            message: format!("skipped: {reason}"),
            output: String::new(),
            duration: Duration::ZERO,
            attempts: 0,
            control: None,
            experiment: None,
        }
    }
}

/// The results of one suite run on one probe.
#[derive(Debug, Clone, Serialize)]
pub struct SuiteResult {
    /// The suite's name.
    pub suite: String,
    /// The probe it ran on, e.g. `i-0abc (ami-0123)`.
    pub probe: String,
    /// One result per selected check, in suite order.
    pub results: Vec<CheckResult>,
    /// Wall-clock time of the whole run.
    #[serde(serialize_with = "secs", rename = "duration_secs")]
    pub duration: Duration,
    /// For a benchmark suite: which benchmark and profile, its sections and score threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<BenchmarkRun>,
}

/// What a benchmark suite's results need for scoring and reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchmarkRun {
    /// The benchmark's name in Bakery (`debian-12`).
    pub id: String,
    /// Its title and version (`CIS Debian Linux 12 Benchmark v1.1.0`).
    pub title: String,
    /// The profile run (`level-1-server`).
    pub profile: String,
    /// Section number → title.
    pub sections: std::collections::BTreeMap<String, String>,
    /// The lowest score (percent) that passes the gate; `None`: every applicable, unwaived,
    /// automated control must pass.
    pub min_score: Option<f64>,
    /// Notes from tailoring (expired waivers and attestations), shown in reports.
    pub notes: Vec<String>,
}

impl SuiteResult {
    /// How many results have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}
