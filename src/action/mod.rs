//! The GitHub Action: `bakery action`, the container's entrypoint.
//!
//! It reads the `INPUT_*` environment the runner sets, turns it into a `bakery` command line
//! (so inputs mean exactly what the CLI's options mean), runs it, and reports the way a workflow
//! expects: outputs through `$GITHUB_OUTPUT`, a job summary through `$GITHUB_STEP_SUMMARY`,
//! `::error`/`::warning` annotations, `::add-mask::` for secrets, and, with a token, a check run
//! created when verification starts and completed with one annotation per failed check.
//!
//! Layout: [`inputs`] (INPUT_* → a command line), [`workflow`] (workflow commands and files),
//! [`summary`] (the Markdown), [`release`] (the image verified for a release tag's commit).
//!
//! The action is built on the command line, not the other way round: it parses and runs
//! [`cli`] commands, and the CLI never calls into the action (the `bakery` binary sends
//! `bakery action` here).

pub mod inputs;
pub mod release;
pub mod summary;
pub mod workflow;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Parser;

use crate::cli::{self, Cli, Command};
use crate::cloud;
use crate::config::{self, LoadedPipeline};
use crate::error::{Error, Result};
use crate::outdated;
use crate::pipeline::{self, Mode, Outcome};
use crate::report::github::{self, Conclusion, GitHub, GitHubError};
use inputs::{ActionMode, Inputs};
use summary::{Report, RunResult};
use workflow::{Annotation, Level};

/// Workflow annotations of failed checks: GitHub shows at most 10 errors per step.
const MAX_CHECK_ERRORS: usize = 9;

/// What the runner tells the step about the job, from its `GITHUB_*` environment.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `GITHUB_WORKSPACE`: the repository checkout; outputs name paths relative to it.
    pub workspace: Option<PathBuf>,
    /// `GITHUB_OUTPUT`.
    pub output: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_REPOSITORY`: `owner/name`.
    pub repository: Option<String>,
    /// `GITHUB_SHA`.
    pub sha: Option<String>,
    /// `GITHUB_REF`, e.g. `refs/tags/v1.2.0`.
    pub git_ref: Option<String>,
    /// The commit a check run belongs to: a pull request's head, else `GITHUB_SHA`.
    pub head_sha: Option<String>,
    /// `GITHUB_API_URL` (default `https://api.github.com`).
    pub api_url: String,
    /// A link to this workflow run, for the check run's details.
    pub run_url: Option<String>,
}

impl Context {
    /// Reads the runner's variables from `env`.
    pub fn from_env(env: &BTreeMap<String, String>) -> Context {
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let sha = get("GITHUB_SHA");
        // On pull_request events GITHUB_SHA is a merge commit; the check belongs on the head.
        let pr_head = get("GITHUB_EVENT_PATH")
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v["pull_request"]["head"]["sha"]
                    .as_str()
                    .map(str::to_string)
            });
        let run_url = match (
            get("GITHUB_SERVER_URL"),
            get("GITHUB_REPOSITORY"),
            get("GITHUB_RUN_ID"),
        ) {
            (Some(server), Some(repo), Some(id)) => {
                Some(format!("{server}/{repo}/actions/runs/{id}"))
            }
            _ => None,
        };
        Context {
            workspace: get("GITHUB_WORKSPACE").map(PathBuf::from),
            output: get("GITHUB_OUTPUT").map(PathBuf::from),
            step_summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            repository: get("GITHUB_REPOSITORY"),
            head_sha: pr_head.or_else(|| sha.clone()),
            sha,
            git_ref: get("GITHUB_REF"),
            api_url: get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            run_url,
        }
    }

    /// `path` as later steps should see it: relative to the workspace when inside it (the
    /// container sees the workspace at another absolute path than the runner does).
    pub fn display(&self, path: &Path) -> String {
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(ws) = &self.workspace {
            let ws = std::fs::canonicalize(ws).unwrap_or_else(|_| ws.clone());
            if let Ok(rel) = abs.strip_prefix(&ws) {
                return rel.display().to_string();
            }
        }
        path.display().to_string()
    }
}

/// Runs the action with the process's environment; returns the exit code.
pub fn run() -> Result<i32> {
    let env: BTreeMap<String, String> = std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    Ok(run_with(&env))
}

/// Runs the action with `env` as its environment; returns the exit code.
pub fn run_with(env: &BTreeMap<String, String>) -> i32 {
    let ctx = Context::from_env(env);
    if env.get(POST_STATE_VAR).is_some_and(|v| v == POST_CLEANUP) {
        return post(env);
    }
    // The post step (action.yml's post-entrypoint) runs this command again after the job;
    // the state saved here tells it to only release what a killed run left behind.
    if let Some(state) = env.get("GITHUB_STATE").filter(|p| !p.is_empty()) {
        let _ = workflow::append(
            Path::new(state),
            &workflow::output_block(POST_STATE, POST_CLEANUP),
        );
    }
    // Secrets are masked before anything else is printed.
    for name in [
        "INPUT_GITHUB-TOKEN",
        "INPUT_GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        if let Some(secret) = env.get(name).filter(|v| v.trim().len() >= 4) {
            for c in workflow::mask_commands(secret) {
                workflow::emit(&c);
            }
        }
    }
    let mode_name = env
        .get(&inputs::variable("mode"))
        .map(|m| m.trim().to_lowercase())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "run".into());
    let mut report = Report::new(&mode_name);
    report.commit = ctx.sha.clone();
    let mut state = State {
        summary_dir: ctx
            .workspace
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
            .join("bakery-results"),
        ..State::default()
    };
    let code = match Inputs::from_env(env) {
        Ok(inputs) => {
            report.mode = inputs.mode.as_str().to_string();
            execute(&inputs, &ctx, &mut report, &mut state)
        }
        Err(e) => Err(e),
    }
    .unwrap_or_else(|e| {
        report.result = match &e {
            Error::Build(_) => RunResult::Failed,
            Error::Interrupted(_) => RunResult::Cancelled,
            _ => RunResult::Error,
        };
        report.error = Some(e.to_string());
        e.exit_code()
    });
    finish(&ctx, &mut report, &state);
    code
}

/// The state the main step saves for the post step, and the variable the post step sees.
const POST_STATE: &str = "bakery_post";
const POST_STATE_VAR: &str = "STATE_bakery_post";
const POST_CLEANUP: &str = "cleanup";

/// The post step: `bakery cleanup` for ledgers that a killed main step left behind. It never
/// fails the job; what it cannot release is a warning.
fn post(env: &BTreeMap<String, String>) -> i32 {
    let mut argv = vec!["bakery".to_string(), "cleanup".to_string()];
    if let Some(region) = env
        .get(&inputs::variable("region"))
        .filter(|r| !r.trim().is_empty())
    {
        argv.extend(["--region".to_string(), region.trim().to_string()]);
    }
    let result = Cli::try_parse_from(&argv)
        .map_err(|e| Error::Config(e.to_string()))
        .and_then(cli::run);
    if let Err(e) = result {
        workflow::emit(
            &Annotation::new(
                Level::Warning,
                format!("post-job cleanup: {e}; `bakery cleanup` releases the rest"),
            )
            .title("Bakery")
            .command(),
        );
    }
    0
}

/// What `execute` leaves for `finish` besides the report.
#[derive(Default)]
struct State {
    /// Where `summary.md` goes: beside the JUnit file.
    summary_dir: PathBuf,
    /// The pipeline file, for annotations that locate failed checks.
    loaded: Option<LoadedPipeline>,
    check: Option<Arc<CheckRun>>,
}

fn execute(inputs: &Inputs, ctx: &Context, report: &mut Report, state: &mut State) -> Result<i32> {
    let argv = inputs.argv();
    let parsed =
        Cli::try_parse_from(&argv).map_err(|e| {
            Error::Config(format!(
            "inputs `mode` and `args` make the command line `{}`, which bakery does not accept: {}",
            argv[1..].join(" "),
            // clap's first line says what is wrong; the rest is usage.
            e.to_string().lines().next().unwrap_or("").trim_start_matches("error: ")
        ))
        })?;
    if inputs.mode != ActionMode::Cleanup && !inputs.pipeline.is_file() {
        return Err(Error::Config(format!(
            "input `pipeline`: {} is not a file (paths are relative to the repository's root); set `pipeline:` to the pipeline file (default bakery.yml)",
            inputs.pipeline.display()
        )));
    }
    crate::cloud::set_aws_overrides(
        parsed.region.clone(),
        parsed.endpoint_url.clone().filter(|u| !u.is_empty()),
    );
    let data_dir = parsed
        .data_dir
        .clone()
        .unwrap_or_else(cli::default_data_dir);
    let (file, mode) = match parsed.command {
        Command::Run { file, no_promote } => (
            file.file,
            Mode::Run {
                promote: !no_promote,
            },
        ),
        Command::Bake { file } => (file.file, Mode::Bake),
        Command::Verify {
            file,
            image,
            goss,
            vars,
            vars_inline,
            ..
        } => (
            file.file,
            Mode::Verify {
                image,
                goss,
                goss_vars: crate::suites::GossVars {
                    files: vars,
                    inline: vars_inline,
                },
            },
        ),
        Command::Promote {
            file,
            image,
            dry_run,
        } => (file.file, Mode::Promote { image, dry_run }),
        Command::Cleanup { .. } => {
            let code = cli::run(parsed)?;
            report.result = if code == 0 {
                RunResult::Passed
            } else {
                RunResult::Error
            };
            return Ok(code);
        }
        Command::Validate { file, path } => {
            let problems = crate::validate::validate(path.as_ref().unwrap_or(&file.file));
            for (i, p) in problems.iter().enumerate() {
                crate::say!("{p}");
                // GitHub shows ten error annotations per step; the summary's is the tenth.
                if i < MAX_CHECK_ERRORS {
                    let mut a = Annotation::new(Level::Error, p.clone()).title("Bakery: invalid");
                    if let Some((f, line, col)) = located(p) {
                        a = a.at(ctx.display(Path::new(&f)), line, Some(col));
                    }
                    workflow::emit(&a.command());
                }
            }
            if problems.is_empty() {
                report.notes.push(format!(
                    "{}: valid: the pipeline and every file it names",
                    file.file.display()
                ));
                return Ok(0);
            }
            let mut summary = crate::validate::summary(&file.file, problems.len());
            if problems.len() > MAX_CHECK_ERRORS {
                summary.push_str(&format!(
                    "; the first {MAX_CHECK_ERRORS} are annotated, the step's log lists every one"
                ));
            }
            return Err(Error::Config(summary));
        }
        Command::Outdated { file } => {
            let loaded = config::load(&file.file)?;
            let s = outdated::check(&loaded, &data_dir)?;
            crate::say!("{}", s.reason);
            report.outdated = Some(s.outdated);
            report.notes.push(s.reason);
            return Ok(0);
        }
        other => {
            return Err(Error::Config(format!(
                "input `mode`: {other:?} is not something the action runs"
            )))
        }
    };

    let mut loaded = config::load(&file)?;
    if let Some(junit) = &inputs.junit {
        let base = std::env::current_dir().unwrap_or_default();
        loaded.pipeline.verify.junit = base.join(junit);
    }
    let junit = loaded.resolve(&loaded.pipeline.verify.junit);
    if let Some(dir) = junit.parent() {
        state.summary_dir = dir.to_path_buf();
    }
    state.loaded = Some(loaded.clone());

    let mode = match mode {
        Mode::Promote { image, dry_run } if image.is_empty() => Mode::Promote {
            image: release_image(&loaded, &data_dir, ctx, report)?,
            dry_run,
        },
        other => other,
    };
    if matches!(mode, Mode::Run { .. } | Mode::Verify { .. }) {
        let check = Arc::new(CheckRun::new(inputs, ctx));
        let hook = check.clone();
        pipeline::on_verify_start(move |image| hook.start(image));
        state.check = Some(check);
    }
    let outcome = pipeline::execute(loaded, &data_dir, mode)?;
    cli::print_outcome(&outcome);
    record(&outcome, ctx, report);
    Ok(outcome.exit_code())
}

/// The image to promote for a release: the one verified for `GITHUB_SHA`.
fn release_image(
    loaded: &LoadedPipeline,
    data_dir: &Path,
    ctx: &Context,
    report: &mut Report,
) -> Result<String> {
    let commit = ctx.sha.clone().ok_or_else(|| {
        Error::Config(
            "input `image`: mode `promote` without an image promotes the image verified for this commit, but GITHUB_SHA is not set"
                .into(),
        )
    })?;
    let provider = cloud::open_for(loaded, data_dir)?;
    let image =
        release::image_for_commit(&provider.images()?, &commit, &loaded.fixed_image_tags())?;
    let on = ctx
        .git_ref
        .as_deref()
        .and_then(|r| r.strip_prefix("refs/tags/"))
        .map(|tag| format!("release {tag}: "))
        .unwrap_or_default();
    let note = format!(
        "{on}image {} ({}) was verified for commit {commit}; promoting it",
        image.id, image.name
    );
    crate::say!("{note}");
    report.notes.push(note);
    report.image = Some(image.clone());
    Ok(image.id)
}

fn record(outcome: &Outcome, ctx: &Context, report: &mut Report) {
    report.image = outcome.image.clone().or(report.image.take());
    report.timings = outcome.timings.clone();
    report.changes = outcome.changes.clone().or(report.changes.take());
    if let Some(v) = &outcome.verification {
        report.results = v.results.clone();
        report.junit = Some(ctx.display(&v.junit));
        if !v.verdict.passed {
            report.result = RunResult::Failed;
            if report.failed_checks().is_empty() {
                // Nothing failed, yet the gate did not pass (no check ran): say why.
                report.error = Some(v.verdict.reasons.join("\n"));
            }
        }
    }
    if let Some(p) = &outcome.promotion {
        report.promoted = true;
        report.pointer = p.pointer.clone();
        report.regions = p.regions.clone();
        report.warnings.extend(p.warnings.iter().cloned());
        if !p.failed().is_empty() {
            report.promoted = false;
            report.result = RunResult::Error;
            let failed: Vec<String> = p
                .failed()
                .iter()
                .map(|r| format!("{}: {}", r.region, r.error.as_deref().unwrap_or("")))
                .collect();
            report.error = Some(format!(
                "promotion failed in {} of {} regions; the others are done. Run `{}` again: it reuses what is done and finishes the rest.\n{}",
                failed.len(),
                p.regions.len(),
                p.rerun.as_deref().unwrap_or("bakery promote"),
                failed.join("\n")
            ));
        }
    }
}

/// Writes the outputs, completes the check run, writes the summaries and the annotations.
/// Outputs go first: they are what later steps need, even from a cancelled run.
fn finish(ctx: &Context, report: &mut Report, state: &State) {
    let summary_path = state.summary_dir.join("summary.md");
    let outputs = report.step_outputs(ctx.display(&summary_path));
    match &ctx.output {
        Some(path) => {
            if let Err(e) = workflow::write_outputs(path, &outputs) {
                report
                    .warnings
                    .push(format!("the step's outputs could not be written: {e}"));
            }
        }
        None => crate::say!("GITHUB_OUTPUT is not set: no step outputs"),
    }

    if let Some(check) = &state.check {
        check.complete(report, state.loaded.as_ref(), ctx);
    }

    let markdown = summary::render(report, summary::JOB_SUMMARY_LIMIT - 1024);
    let written = std::fs::create_dir_all(&state.summary_dir)
        .and_then(|()| std::fs::write(&summary_path, &markdown));
    if let Err(e) = written {
        report
            .warnings
            .push(format!("{}: {e}", summary_path.display()));
    }
    match &ctx.step_summary {
        Some(path) => {
            if let Err(e) = workflow::append(path, &markdown) {
                workflow::emit(
                    &Annotation::new(
                        Level::Warning,
                        format!("the job summary could not be written: {e}"),
                    )
                    .command(),
                );
            }
        }
        None => crate::say!(
            "GITHUB_STEP_SUMMARY is not set: the summary is in {}",
            summary_path.display()
        ),
    }

    for a in annotations(report, state.loaded.as_ref(), ctx) {
        workflow::emit(&a.command());
    }
    crate::say!("bakery action: {}", report.headline());
}

/// The workflow annotations for the report: the error, each warning, and the failed checks
/// (up to GitHub's ten errors per step, the last of them counting the rest).
fn annotations(report: &Report, loaded: Option<&LoadedPipeline>, ctx: &Context) -> Vec<Annotation> {
    let mut out = Vec::new();
    if let Some(e) = &report.error {
        let title = match report.result {
            RunResult::Failed => "Bakery: the image failed",
            RunResult::Cancelled => "Bakery: cancelled",
            _ => "Bakery: error",
        };
        let level = if report.result == RunResult::Cancelled {
            Level::Warning
        } else {
            Level::Error
        };
        let mut a = Annotation::new(level, e.clone()).title(title);
        if let Some((file, line, col)) = located(e) {
            let file = ctx.display(Path::new(&file));
            a = a.at(file, line, Some(col));
        }
        out.push(a);
    }
    for w in &report.warnings {
        out.push(Annotation::new(Level::Warning, w.clone()).title("Bakery"));
    }
    let failed = report.failed_checks();
    let locate = Locator::new(loaded, ctx);
    for (suite, r) in failed.iter().take(MAX_CHECK_ERRORS) {
        let (file, line) = locate.find(suite, &r.id);
        let verb = if r.status == crate::suites::Status::Error {
            "could not be evaluated"
        } else {
            "failed"
        };
        out.push(
            Annotation::new(Level::Error, crate::report::summary::detail(r))
                .title(format!("{suite}/{} {verb}", r.id))
                .at(file, line, None),
        );
    }
    if failed.len() > MAX_CHECK_ERRORS {
        out.push(
            Annotation::new(
                Level::Error,
                format!(
                    "{} more checks failed; the job summary and the JUnit file list every one",
                    failed.len() - MAX_CHECK_ERRORS
                ),
            )
            .title("Bakery: the image failed"),
        );
    }
    out
}

/// `file:line:col: message` at the start of an error, as configuration errors are written.
fn located(error: &str) -> Option<(String, u32, u32)> {
    let re = regex::Regex::new(r"^([^:\s][^:]*):(\d+):(\d+): ").expect("a valid regex");
    let c = re.captures(error)?;
    Some((c[1].to_string(), c[2].parse().ok()?, c[3].parse().ok()?))
}

/// Finds the file and line that define a check, for annotations.
struct Locator {
    /// Suite name → (file as shown, file text).
    suites: BTreeMap<String, (String, String)>,
    /// Where checks of unknown suites point: the pipeline file.
    fallback: String,
}

impl Locator {
    fn new(loaded: Option<&LoadedPipeline>, ctx: &Context) -> Locator {
        let mut suites = BTreeMap::new();
        let mut fallback = "bakery.yml".to_string();
        if let Some(loaded) = loaded {
            fallback = ctx.display(&loaded.path);
            for p in loaded
                .pipeline
                .verify
                .suites
                .iter()
                .filter_map(|p| p.path())
            {
                let path = loaded.resolve(p);
                if let (Ok(suite), Ok(text)) = (
                    crate::suites::load_suite(&path),
                    std::fs::read_to_string(&path),
                ) {
                    suites.insert(suite.name, (ctx.display(&path), text));
                }
            }
        }
        Locator { suites, fallback }
    }

    fn find(&self, suite: &str, id: &str) -> (String, u32) {
        let Some((file, text)) = self.suites.get(suite) else {
            return (self.fallback.clone(), 1);
        };
        let pattern = format!(
            r#"^\s*(-\s+)?id:\s*["']?{}["']?\s*(#.*)?$"#,
            regex::escape(id)
        );
        let re = regex::Regex::new(&pattern).expect("an escaped id makes a valid regex");
        let line = text
            .lines()
            .position(|l| re.is_match(l))
            .or_else(|| text.lines().position(|l| l.contains(id)))
            .map_or(1, |i| i as u32 + 1);
        (file.clone(), line)
    }
}

/// The check run of one action run: created when verification starts, completed at the end.
struct CheckRun {
    client: Option<GitHub>,
    name: String,
    head_sha: String,
    details_url: Option<String>,
    state: Mutex<CheckState>,
}

enum CheckState {
    NotStarted,
    Running {
        id: u64,
    },
    /// No check run: why (a warning for the summary), if it is worth one.
    Unavailable(Option<String>),
}

impl CheckRun {
    fn new(inputs: &Inputs, ctx: &Context) -> CheckRun {
        let mut check = CheckRun {
            client: None,
            name: inputs.check_name.clone(),
            head_sha: ctx.head_sha.clone().unwrap_or_default(),
            details_url: ctx.run_url.clone(),
            state: Mutex::new(CheckState::NotStarted),
        };
        let unavailable = |why: Option<String>| Mutex::new(CheckState::Unavailable(why));
        match (&inputs.token, &ctx.repository, &ctx.head_sha) {
            (Some(token), Some(repo), Some(_)) => match GitHub::new(&ctx.api_url, token, repo) {
                Ok(client) => check.client = Some(client),
                Err(e) => {
                    check.state = unavailable(Some(format!(
                        "no check run: {e}; the results are in the job summary"
                    )))
                }
            },
            (None, _, _) => {
                crate::say!(
                    "no github-token input: no check run; the results are in the job summary"
                );
                check.state = unavailable(None);
            }
            _ => {
                crate::say!("GITHUB_REPOSITORY or GITHUB_SHA is not set: no check run");
                check.state = unavailable(None);
            }
        }
        check
    }

    fn start(&self, image: &cloud::Image) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !matches!(*state, CheckState::NotStarted) {
            return;
        }
        let Some(client) = &self.client else { return };
        let created = client.create_check_run(
            &self.name,
            &self.head_sha,
            self.details_url.as_deref(),
            &image.id,
            &format!("verifying {}", image.id),
            &format!(
                "Bakery is running the suites on a probe instance launched from image `{}` ({}).",
                image.id, image.name
            ),
        );
        *state = match created {
            Ok(id) => {
                crate::progress::note(&format!("check run `{}` created (id {id})", self.name));
                CheckState::Running { id }
            }
            Err(e @ GitHubError::Forbidden { .. }) => CheckState::Unavailable(Some(format!(
                "The github-token may not create check runs ({e}): a workflow run for a pull request from a fork gets a read-only token. The results are in this job summary instead."
            ))),
            Err(e) => CheckState::Unavailable(Some(format!(
                "The check run could not be created ({e}). The results are in this job summary instead."
            ))),
        };
    }

    fn complete(&self, report: &mut Report, loaded: Option<&LoadedPipeline>, ctx: &Context) {
        let state = std::mem::replace(
            &mut *self.state.lock().unwrap_or_else(|p| p.into_inner()),
            CheckState::Unavailable(None),
        );
        let id = match state {
            CheckState::Running { id } => id,
            CheckState::Unavailable(Some(why)) => {
                report.warnings.push(why);
                return;
            }
            CheckState::NotStarted | CheckState::Unavailable(None) => return,
        };
        let Some(client) = &self.client else { return };
        let conclusion = match report.result {
            RunResult::Passed => Conclusion::Success,
            RunResult::Cancelled => Conclusion::Cancelled,
            RunResult::Failed | RunResult::Error => Conclusion::Failure,
        };
        let locate = Locator::new(loaded, ctx);
        let annotations = github::check_annotations(&report.results, &|s, id| locate.find(s, id));
        let summary = summary::render(report, github::MAX_SUMMARY_BYTES);
        match client.complete_check_run(id, conclusion, &report.headline(), &summary, &annotations)
        {
            Ok(requests) => crate::progress::note(&format!(
                "check run `{}` completed: {} with {} annotation(s) in {requests} request(s)",
                self.name,
                report.result.as_str(),
                annotations.len()
            )),
            Err(e) => report.warnings.push(format!(
                "The check run could not be completed ({e}). The results are in this job summary."
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_are_located() {
        assert_eq!(
            located("bakery.yml:3:2: did not find expected key"),
            Some(("bakery.yml".into(), 3, 2))
        );
        assert_eq!(located("no such pipeline file"), None);
        assert_eq!(located("error: 3:2: x"), None);
    }

    #[test]
    fn checks_are_found_by_id() {
        let mut suites = BTreeMap::new();
        suites.insert(
            "web".to_string(),
            (
                "suites/web.yml".to_string(),
                "name: web\nchecks:\n  - id: a\n    command: {}\n  - id: \"b.c\"  # quoted\n"
                    .to_string(),
            ),
        );
        let l = Locator {
            suites,
            fallback: "bakery.yml".into(),
        };
        assert_eq!(l.find("web", "a"), ("suites/web.yml".into(), 3));
        assert_eq!(l.find("web", "b.c"), ("suites/web.yml".into(), 5));
        assert_eq!(l.find("web", "zz"), ("suites/web.yml".into(), 1));
        assert_eq!(l.find("other", "a"), ("bakery.yml".into(), 1));
    }
}
