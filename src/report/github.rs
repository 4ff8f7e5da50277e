//! Check runs on GitHub (through octocrab): created when verification starts, completed with
//! a conclusion, a summary and one annotation per failed check.
//!
//! The Checks API takes at most [`MAX_ANNOTATIONS_PER_REQUEST`] annotations per request and
//! appends those of every update, so a long list goes out in batches: every batch but the last
//! as an update of the running check, the last one with the conclusion. A token that may not
//! write checks (a pull request from a fork gets a read-only one) is answered with 403; callers
//! see [`GitHubError::Forbidden`] and fall back to the job summary.

#[cfg(feature = "github")]
use std::time::Duration;

#[cfg(feature = "github")]
use octocrab::params::checks::{
    CheckRunConclusion, CheckRunOutput, CheckRunOutputAnnotation, CheckRunOutputAnnotationLevel,
    CheckRunStatus,
};
#[cfg(feature = "github")]
use octocrab::Octocrab;

use crate::suites::{Status, SuiteResult};

/// The most annotations one create or update request may carry.
pub const MAX_ANNOTATIONS_PER_REQUEST: usize = 50;
/// The longest a check run's summary (and text) may be.
pub const MAX_SUMMARY_BYTES: usize = 65_535;
/// The longest an annotation's title may be, in characters.
#[cfg(feature = "github")]
const MAX_TITLE_CHARS: usize = 255;
/// What an annotation's message and details are cut to (GitHub allows 64 KB each).
#[cfg(feature = "github")]
const MAX_MESSAGE_BYTES: usize = 4_096;
#[cfg(feature = "github")]
const MAX_DETAILS_BYTES: usize = 16_384;

/// Why a call to GitHub failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// The token may not do this (HTTP 403, or 404 for a repository it cannot see): a read-only
    /// token, as pull requests from forks get.
    #[error("GitHub refused the request (HTTP {status}: {message})")]
    Forbidden { status: u16, message: String },
    /// Anything else: the network, a timeout, a server error, an unexpected answer.
    #[error("{0}")]
    Other(String),
}

/// How a check run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conclusion {
    Success,
    Failure,
    Cancelled,
}

#[cfg(feature = "github")]
impl Conclusion {
    fn octocrab(self) -> CheckRunConclusion {
        match self {
            Conclusion::Success => CheckRunConclusion::Success,
            Conclusion::Failure => CheckRunConclusion::Failure,
            Conclusion::Cancelled => CheckRunConclusion::Cancelled,
        }
    }
}

/// The level of a check-run annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Notice,
    Warning,
    Failure,
}

/// One annotation: a line of a file in the repository and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    /// Relative to the repository root.
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub level: Level,
    pub title: String,
    pub message: String,
    pub raw_details: Option<String>,
}

#[cfg(feature = "github")]
impl Annotation {
    fn octocrab(&self) -> CheckRunOutputAnnotation {
        CheckRunOutputAnnotation {
            path: self.path.clone(),
            start_line: self.start_line.max(1),
            end_line: self.end_line.max(self.start_line).max(1),
            start_column: None,
            end_column: None,
            annotation_level: match self.level {
                Level::Notice => CheckRunOutputAnnotationLevel::Notice,
                Level::Warning => CheckRunOutputAnnotationLevel::Warning,
                Level::Failure => CheckRunOutputAnnotationLevel::Failure,
            },
            message: clip_bytes(&self.message, MAX_MESSAGE_BYTES),
            title: Some(self.title.chars().take(MAX_TITLE_CHARS).collect()),
            raw_details: self
                .raw_details
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .map(|d| crate::report::bounded(d, MAX_DETAILS_BYTES)),
        }
    }
}

/// One annotation per failed or errored check. `locate` maps a suite name and a check id to
/// the file (relative to the repository root) and line that define the check.
pub fn check_annotations(
    results: &[SuiteResult],
    locate: &dyn Fn(&str, &str) -> (String, u32),
) -> Vec<Annotation> {
    let mut out = Vec::new();
    for sr in results {
        for r in &sr.results {
            let verb = match r.status {
                Status::Failed => "failed",
                Status::Error => "could not be evaluated",
                Status::Passed
                | Status::Skipped
                | Status::NotApplicable
                | Status::NotReviewed
                | Status::Waived => continue,
            };
            let (path, line) = locate(&sr.suite, &r.id);
            let message = match (r.status, &r.expected, &r.actual) {
                (Status::Failed, Some(e), Some(a)) => {
                    format!("{}\nexpected: {e}\nactual:   {a}", r.title)
                }
                _ => format!("{}\n{}", r.title, r.message),
            };
            out.push(Annotation {
                path,
                start_line: line,
                end_line: line,
                level: Level::Failure,
                title: format!("{}/{} {verb}", sr.suite, r.id),
                message,
                raw_details: Some(r.output.clone()),
            });
        }
    }
    out
}

/// `s` cut to at most `limit` bytes at a character boundary, with a note when cut.
pub fn clip_bytes(s: &str, limit: usize) -> String {
    if s.len() <= limit {
        return s.to_string();
    }
    const NOTE: &str = "\n\n[… cut to fit GitHub's limit …]";
    let mut end = limit.saturating_sub(NOTE.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{NOTE}", &s[..end])
}

/// A client for one repository's check runs.
#[cfg(feature = "github")]
pub struct GitHub {
    rt: tokio::runtime::Runtime,
    client: Octocrab,
    owner: String,
    repo: String,
}

#[cfg(feature = "github")]
impl GitHub {
    /// A client of the REST API at `api_url` (`GITHUB_API_URL`) for `repository`
    /// (`owner/name`), authenticated with `token`.
    pub fn new(api_url: &str, token: &str, repository: &str) -> Result<GitHub, GitHubError> {
        let (owner, repo) = repository
            .split_once('/')
            .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
            .ok_or_else(|| {
                GitHubError::Other(format!(
                    "GITHUB_REPOSITORY `{repository}` is not of the form owner/name"
                ))
            })?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| GitHubError::Other(format!("starting an async runtime: {e}")))?;
        let client = {
            let _guard = rt.enter();
            Octocrab::builder()
                .base_uri(api_url)
                .map_err(|e| GitHubError::Other(format!("GITHUB_API_URL `{api_url}`: {e}")))?
                .personal_token(token.to_string())
                .set_connect_timeout(Some(Duration::from_secs(10)))
                .set_read_timeout(Some(Duration::from_secs(30)))
                .set_write_timeout(Some(Duration::from_secs(30)))
                .build()
                .map_err(|e| GitHubError::Other(format!("building the GitHub client: {e}")))?
        };
        Ok(GitHub {
            rt,
            client,
            owner: owner.to_string(),
            repo: repo.to_string(),
        })
    }

    /// Creates an in-progress check run on `head_sha`; returns its id.
    pub fn create_check_run(
        &self,
        name: &str,
        head_sha: &str,
        details_url: Option<&str>,
        external_id: &str,
        title: &str,
        summary: &str,
    ) -> Result<u64, GitHubError> {
        let checks = self.client.checks(&self.owner, &self.repo);
        let mut request = checks
            .create_check_run(name, head_sha)
            .status(CheckRunStatus::InProgress)
            .external_id(external_id)
            .output(output(title, summary, Vec::new()));
        if let Some(url) = details_url {
            request = request.details_url(url);
        }
        let run = self.rt.block_on(request.send()).map_err(map_error)?;
        Ok(run.id.into_inner())
    }

    /// Completes check run `id` with `conclusion`, the summary and every annotation, sent at
    /// most [`MAX_ANNOTATIONS_PER_REQUEST`] per request; returns how many requests were sent.
    pub fn complete_check_run(
        &self,
        id: u64,
        conclusion: Conclusion,
        title: &str,
        summary: &str,
        annotations: &[Annotation],
    ) -> Result<usize, GitHubError> {
        let mut batches: Vec<Vec<CheckRunOutputAnnotation>> = annotations
            .chunks(MAX_ANNOTATIONS_PER_REQUEST)
            .map(|c| c.iter().map(Annotation::octocrab).collect())
            .collect();
        let last = batches.pop().unwrap_or_default();
        let mut sent = 0;
        for batch in batches {
            self.update(
                id,
                &Update {
                    status: CheckRunStatus::InProgress,
                    conclusion: None,
                    completed_at: None,
                    output: output(title, summary, batch),
                },
            )?;
            sent += 1;
        }
        self.update(
            id,
            &Update {
                status: CheckRunStatus::Completed,
                conclusion: Some(conclusion.octocrab()),
                completed_at: Some(chrono::Utc::now()),
                output: output(title, summary, last),
            },
        )?;
        Ok(sent + 1)
    }

    /// `PATCH /repos/{owner}/{repo}/check-runs/{id}`. octocrab's update builder also puts
    /// `check_run_id` in the body, a field GitHub's description does not have; this sends
    /// exactly the declared fields.
    fn update(&self, id: u64, body: &Update) -> Result<(), GitHubError> {
        let route = format!("/repos/{}/{}/check-runs/{id}", self.owner, self.repo);
        let _: octocrab::models::checks::CheckRun = self
            .rt
            .block_on(self.client.patch(route, Some(body)))
            .map_err(map_error)?;
        Ok(())
    }
}

/// The body of a check-run update.
#[cfg(feature = "github")]
#[derive(serde::Serialize)]
struct Update {
    status: CheckRunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    conclusion: Option<CheckRunConclusion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
    output: CheckRunOutput,
}

#[cfg(feature = "github")]
fn output(
    title: &str,
    summary: &str,
    annotations: Vec<CheckRunOutputAnnotation>,
) -> CheckRunOutput {
    CheckRunOutput {
        title: title.chars().take(MAX_TITLE_CHARS).collect(),
        summary: clip_bytes(summary, MAX_SUMMARY_BYTES),
        text: None,
        annotations,
        images: Vec::new(),
    }
}

#[cfg(feature = "github")]
fn map_error(e: octocrab::Error) -> GitHubError {
    match &e {
        octocrab::Error::GitHub { source, .. }
            if matches!(source.status_code.as_u16(), 403 | 404) =>
        {
            GitHubError::Forbidden {
                status: source.status_code.as_u16(),
                message: source.message.clone(),
            }
        }
        octocrab::Error::GitHub { source, .. } => {
            let details: Vec<String> = source
                .errors
                .iter()
                .flatten()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_string))
                .collect();
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join("; "))
            };
            GitHubError::Other(format!(
                "GitHub answered HTTP {}: {}{details}",
                source.status_code.as_u16(),
                source.message
            ))
        }
        other => {
            let mut msg = other.to_string();
            let mut cause = std::error::Error::source(other);
            while let Some(c) = cause {
                msg.push_str(&format!(": {c}"));
                cause = c.source();
            }
            GitHubError::Other(format!("calling GitHub: {msg}"))
        }
    }
}

/// A local-only build (`--no-default-features`) has no GitHub client: [`GitHub::new`] says
/// so, and callers fall back as they do for any client that cannot be built.
#[cfg(not(feature = "github"))]
pub struct GitHub {
    never: std::convert::Infallible,
}

#[cfg(not(feature = "github"))]
impl GitHub {
    /// Always an error: this build was made without the `github` feature.
    pub fn new(_api_url: &str, _token: &str, _repository: &str) -> Result<GitHub, GitHubError> {
        Err(GitHubError::Other(
            "this bakery is a local-only build (cargo feature `github` left out) and cannot \
             create check runs; use the full binary or the action's image"
                .into(),
        ))
    }

    /// Never called: no value of this type exists.
    pub fn create_check_run(
        &self,
        _name: &str,
        _head_sha: &str,
        _details_url: Option<&str>,
        _external_id: &str,
        _title: &str,
        _summary: &str,
    ) -> Result<u64, GitHubError> {
        match self.never {}
    }

    /// Never called: no value of this type exists.
    pub fn complete_check_run(
        &self,
        _id: u64,
        _conclusion: Conclusion,
        _title: &str,
        _summary: &str,
        _annotations: &[Annotation],
    ) -> Result<usize, GitHubError> {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::CheckResult;
    use std::time::Duration;

    fn result(id: &str, status: Status) -> CheckResult {
        CheckResult {
            id: id.into(),
            title: format!("{id} title"),
            kind: "command".into(),
            tags: vec![],
            status,
            expected: Some("exit status 0".into()),
            actual: Some("exit status 1".into()),
            message: format!("{id} message"),
            output: "out".into(),
            duration: Duration::ZERO,
            attempts: 1,
            control: None,
            experiment: None,
        }
    }

    #[test]
    fn one_annotation_per_failed_or_errored_check() {
        let sr = SuiteResult {
            suite: "smoke".into(),
            probe: String::new(),
            results: vec![
                result("a", Status::Passed),
                result("b", Status::Failed),
                result("c", Status::Error),
                result("d", Status::Skipped),
            ],
            duration: Duration::ZERO,
            benchmark: None,
        };
        let locate = |suite: &str, id: &str| (format!("suites/{suite}.yml"), id.len() as u32 + 2);
        let a = check_annotations(&[sr], &locate);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].title, "smoke/b failed");
        assert_eq!(a[0].path, "suites/smoke.yml");
        assert_eq!(a[0].start_line, 3);
        assert_eq!(
            a[0].message,
            "b title\nexpected: exit status 0\nactual:   exit status 1"
        );
        assert_eq!(a[1].title, "smoke/c could not be evaluated");
        assert_eq!(a[1].message, "c title\nc message");
    }

    #[test]
    fn clipping_respects_char_boundaries() {
        let s = "é".repeat(40_000);
        let c = clip_bytes(&s, MAX_SUMMARY_BYTES);
        assert!(c.len() <= MAX_SUMMARY_BYTES);
        assert!(c.ends_with("limit …]"));
        assert_eq!(clip_bytes("short", 10), "short");
    }
}
