//! Running a suite over a [`Transport`]: selection, batching per resource type, concurrency,
//! timeouts and retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{Check, Suite};
use super::resources::{self, Outcome, RunnerView};
use super::result::{CheckResult, Status, SuiteResult};
use crate::error::Error;
use crate::transport::Transport;

/// Most checks gathered in one exec (keeps command lines well under the kernel's limits).
const BATCH_LIMIT: usize = 256;
/// The pause before a gather that failed fast is tried again.
const FAST_RETRY_PAUSE: Duration = Duration::from_millis(250);
/// The pause between attempts when `retry.interval` is not given.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// How to run a suite.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Most execs in flight at once (at least 1).
    pub concurrency: usize,
    /// The probe, as shown in reports: `i-0abc (ami-0123)`.
    pub probe: String,
    /// Run only these check ids (empty: all).
    pub ids: Vec<String>,
    /// Run only checks with at least one of these tags (empty: all).
    pub tags: Vec<String>,
    /// Leave out checks with any of these tags.
    pub exclude_tags: Vec<String>,
    /// The timeout of a check that sets none.
    pub default_timeout: Duration,
    /// How the runner reaches the probe, for `http` and `addr` checks made `from: runner`.
    pub runner_view: Option<RunnerView>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 4,
            probe: String::new(),
            ids: Vec::new(),
            tags: Vec::new(),
            exclude_tags: Vec::new(),
            default_timeout: Duration::from_secs(60),
            runner_view: None,
        }
    }
}

impl RunOptions {
    /// Whether `check` passes the id and tag filters.
    pub fn selects(&self, check: &Check) -> bool {
        let has = |tags: &[String]| check.tags.iter().any(|t| tags.contains(t));
        (self.ids.is_empty() || self.ids.contains(&check.id))
            && (self.tags.is_empty() || has(&self.tags))
            && !has(&self.exclude_tags)
    }
}

/// Runs the selected checks of `suite` on the probe behind `transport`.
///
/// Checks of one resource type are gathered together in one exec; commands and HTTP requests
/// run one exec each (identical command lines once). Conditions (`applies-if`) are gathered
/// first, and a check whose condition does not hold is not gathered at all. Then the rest,
/// those with the longest timeouts first, so that a slow check does not start last. Up to
/// `opts.concurrency` execs run at once. Every selected check gets a result, in suite order;
/// a check that could not be evaluated is [`Status::Error`].
pub fn run_suite(suite: &Suite, transport: &dyn Transport, opts: &RunOptions) -> SuiteResult {
    let start = Instant::now();
    let selected: Vec<&Check> = suite.checks.iter().filter(|c| opts.selects(c)).collect();
    let slots: Vec<Mutex<Option<CheckResult>>> =
        selected.iter().map(|_| Mutex::new(None)).collect();
    // Checks that may be tried again run in batches of their own; every other check is made
    // of atoms (see `compound`).
    let mut retrying: Vec<usize> = Vec::new();
    let mut planned: Vec<usize> = Vec::new();
    for (i, c) in selected.iter().enumerate() {
        if let Some(reason) = &c.skip {
            *slots[i].lock().expect("slot") = Some(skipped(c, reason));
        } else if (c.retry.is_some() || c.eventually.is_some()) && !c.is_compound() {
            retrying.push(i);
        } else {
            planned.push(i);
        }
    }
    let plan = compound::Plan::new(&selected, &planned, opts.default_timeout);
    let gathered: Vec<Mutex<compound::Gathered>> =
        plan.atoms.iter().map(|_| Mutex::new(None)).collect();
    let gather = |atoms: &[usize]| {
        let res: Vec<&resources::Resource> = atoms.iter().map(|&a| plan.atoms[a].0).collect();
        let timeouts: Vec<Duration> = atoms.iter().map(|&a| plan.atoms[a].1).collect();
        let started = Instant::now();
        let outcomes = attempt_resources(&res, batch_timeout(&res, &timeouts), transport, opts);
        let each = started.elapsed() / u32::try_from(atoms.len().max(1)).unwrap_or(1);
        for (&a, o) in atoms.iter().zip(outcomes) {
            *gathered[a].lock().expect("slot") = Some((o, each));
        }
    };

    // 1. The conditions.
    let conditions = plan.jobs(&plan.condition_atoms(), BATCH_LIMIT);
    in_parallel(opts, conditions.len(), |n| gather(&conditions[n]));

    // 2. The checks that apply, and those that may be tried again; longest timeouts first.
    let known: Vec<compound::Gathered> = gathered
        .iter()
        .map(|m| m.lock().expect("slot").clone())
        .collect();
    let bodies = plan.jobs(&plan.body_atoms(&known), BATCH_LIMIT);
    let mut again: Vec<Vec<usize>> = Vec::new();
    for &i in &retrying {
        let r = &selected[i].resource;
        match again
            .iter_mut()
            .find(|j| j.len() < BATCH_LIMIT && r.gathered_with(&selected[j[0]].resource))
        {
            Some(job) => job.push(i),
            None => again.push(vec![i]),
        }
    }
    let timeout_of = |c: &Check| c.timeout.map(|t| t.0).unwrap_or(opts.default_timeout);
    let mut jobs: Vec<(Duration, bool, &[usize])> = bodies
        .iter()
        .map(|j| {
            let t = j.iter().map(|&a| plan.atoms[a].1).max();
            (t.unwrap_or_default(), true, j.as_slice())
        })
        .chain(again.iter().map(|j| {
            let t = j.iter().map(|&i| timeout_of(selected[i])).max();
            (t.unwrap_or_default(), false, j.as_slice())
        }))
        .collect();
    jobs.sort_by_key(|(t, _, _)| std::cmp::Reverse(*t));
    in_parallel(opts, jobs.len(), |n| {
        let (_, atoms, job) = jobs[n];
        if atoms {
            gather(job);
            return;
        }
        let checks: Vec<&Check> = job.iter().map(|&i| selected[i]).collect();
        for (k, r) in run_with_retries(&checks, transport, opts)
            .into_iter()
            .enumerate()
        {
            *slots[job[k]].lock().expect("slot") = Some(r);
        }
    });

    let gathered: Vec<compound::Gathered> = gathered
        .into_iter()
        .map(|m| m.into_inner().expect("slot"))
        .collect();
    for (i, outcome, duration) in plan.combine(&gathered) {
        *slots[i].lock().expect("slot") = Some(result(selected[i], outcome, duration, 1));
    }
    SuiteResult {
        suite: suite.name.clone(),
        probe: opts.probe.clone(),
        results: slots
            .into_iter()
            .map(|m| {
                m.into_inner()
                    .expect("slot")
                    .expect("every check has a result")
            })
            .collect(),
        duration: start.elapsed(),
        benchmark: None,
    }
}

/// The time a batch of `res` (with their checks' `timeouts`) may take: the longest timeout,
/// or for command lines run one after the other, the sum of each line's.
fn batch_timeout(res: &[&resources::Resource], timeouts: &[Duration]) -> Duration {
    if !resources::is_command_batch(res) {
        return timeouts.iter().copied().max().unwrap_or_default();
    }
    let mut per_line: Vec<(&str, Duration)> = Vec::new();
    for (r, &t) in res.iter().zip(timeouts) {
        let resources::Resource::Command(c) = r else {
            continue;
        };
        match per_line.iter_mut().find(|(l, _)| *l == c.run) {
            Some((_, most)) => *most = (*most).max(t),
            None => per_line.push((&c.run, t)),
        }
    }
    per_line.iter().map(|(_, t)| *t).sum()
}

/// Runs `work(0)` ... `work(n - 1)` on up to `opts.concurrency` threads.
fn in_parallel(opts: &RunOptions, n: usize, work: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    let workers = opts.concurrency.clamp(1, n.max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= n {
                    break;
                }
                work(k);
            });
        }
    });
}

/// Runs one batch, then re-runs (together) the checks that did not pass and may try again.
fn run_with_retries(
    checks: &[&Check],
    transport: &dyn Transport,
    opts: &RunOptions,
) -> Vec<CheckResult> {
    // A batch's time is shared out among its checks, so that per-check times add up to the
    // time spent (what JUnit's suite time reports).
    let start = Instant::now();
    let share = |d: Duration, n: usize| d / u32::try_from(n.max(1)).unwrap_or(u32::MAX);
    let first = attempt(checks, transport, opts);
    let each = share(start.elapsed(), checks.len());
    let mut results: Vec<CheckResult> = first
        .into_iter()
        .zip(checks)
        .map(|(o, c)| result(c, o, each, 1))
        .collect();
    loop {
        let pending: Vec<usize> = (0..checks.len())
            .filter(|&i| {
                results[i].status != Status::Passed && may_retry(checks[i], &results[i], start)
            })
            .collect();
        if pending.is_empty() {
            return results;
        }
        let round = Instant::now();
        let pause = pending
            .iter()
            .map(|&i| interval(checks[i]))
            .min()
            .unwrap_or(DEFAULT_INTERVAL);
        std::thread::sleep(pause);
        let again: Vec<&Check> = pending.iter().map(|&i| checks[i]).collect();
        tracing::debug!(checks = again.len(), "retrying checks that did not pass");
        let outcomes = attempt(&again, transport, opts);
        let each = share(round.elapsed(), pending.len());
        for (&i, o) in pending.iter().zip(outcomes) {
            let (attempts, spent) = (results[i].attempts + 1, results[i].duration + each);
            results[i] = result(checks[i], o, spent, attempts);
        }
    }
}

fn interval(c: &Check) -> Duration {
    c.retry
        .and_then(|r| r.interval)
        .map(|d| d.0)
        .unwrap_or(DEFAULT_INTERVAL)
}

fn may_retry(c: &Check, r: &CheckResult, start: Instant) -> bool {
    let by_count = c.retry.map(|rt| r.attempts < rt.attempts);
    let by_time = c.eventually.map(|ev| start.elapsed() + interval(c) < ev.0);
    match (by_count, by_time) {
        (None, None) => false,
        (Some(n), None) => n,
        (None, Some(t)) => t,
        (Some(n), Some(t)) => n && t,
    }
}

/// One exec for `checks` (all of one kind) and their evaluation.
fn attempt(checks: &[&Check], transport: &dyn Transport, opts: &RunOptions) -> Vec<Outcome> {
    let timeout = checks
        .iter()
        .map(|c| c.timeout.map(|t| t.0).unwrap_or(opts.default_timeout))
        .max()
        .unwrap_or(opts.default_timeout);
    let res: Vec<&resources::Resource> = checks.iter().map(|c| &c.resource).collect();
    attempt_resources(&res, timeout, transport, opts)
}

/// One exec for `res` (all of one kind) within `timeout`, and their evaluation.
fn attempt_resources(
    res: &[&resources::Resource],
    timeout: Duration,
    transport: &dyn Transport,
    opts: &RunOptions,
) -> Vec<Outcome> {
    if res[0].on_runner() {
        let view = opts.runner_view.as_ref();
        return res
            .iter()
            .map(|r| resources::evaluate_on_runner(r, view, timeout))
            .collect();
    }
    let script = resources::script(res, timeout);
    tracing::debug!(kind = res[0].kind(), checks = res.len(), "gathering");
    let started = Instant::now();
    if resources::is_command_batch(res) {
        // Commands that finished before the exec failed keep their verdicts.
        let mut seen = String::new();
        let outcome = transport.exec(&script, timeout, &mut |stream, line| {
            if stream == crate::transport::Stream::Stdout {
                seen.push_str(line);
                seen.push('\n');
            }
        });
        return match outcome {
            Ok(out) => resources::evaluate(res, &out),
            Err(e) => resources::evaluate_cut(res, &seen, &e.to_string()),
        };
    }
    let mut outcome = transport.run(&script, timeout);
    // Gathering facts only reads, so a gather whose connection failed fast (a channel refused,
    // a dropped connection; not a timeout, not a refused permission) is tried once more before
    // its checks become errors. Commands and requests may have effects and are not repeated.
    if matches!(outcome, Err(Error::Transport(_)))
        && res[0].batch_key().is_some()
        && started.elapsed() < timeout / 2
    {
        tracing::debug!(kind = res[0].kind(), "gathering failed; trying once more");
        std::thread::sleep(FAST_RETRY_PAUSE);
        outcome = transport.run(&script, timeout);
    }
    match outcome {
        Ok(out) => resources::evaluate(res, &out),
        Err(e) => {
            let msg = format!("could not evaluate the {} check: {e}", res[0].kind());
            res.iter().map(|_| Outcome::error(&msg, &script)).collect()
        }
    }
}

fn result(c: &Check, o: Outcome, duration: Duration, attempts: u32) -> CheckResult {
    CheckResult {
        id: c.id.clone(),
        title: c.title_or_id().to_string(),
        kind: c.resource.kind().to_string(),
        tags: c.tags.clone(),
        status: o.status,
        expected: o.expected,
        actual: o.actual,
        message: o.message,
        output: o.output,
        duration,
        attempts,
        control: c.control.clone(),
        experiment: None,
    }
}

fn skipped(c: &Check, reason: &str) -> CheckResult {
    CheckResult {
        control: c.control.clone(),
        ..CheckResult::skipped(&c.id, c.title_or_id(), c.resource.kind(), &c.tags, reason)
    }
}

mod compound;
#[cfg(test)]
mod tests;
