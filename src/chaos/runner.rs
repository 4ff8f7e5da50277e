//! Running one experiment on a probe, phase by phase, with a journal of every activity.
//!
//! 1. **steady state before**: the steady-state checks must pass, else no fault is injected.
//! 2. **inject**: an in-guest fault first writes its rollback to the probe and arms the
//!    dead-man's switch; a provider fault goes through the [`Provider`].
//! 3. **during**: for a sustained fault, the `during` checks run, then the fault is held for its
//!    duration and ended (rolled back, resumed, link up).
//! 4. **recovery**: the steady state is polled until it holds (after a restart, on a new boot)
//!    or `recover-within` has passed; the time it took is the time to recover.
//! 5. **rollback**: always runs, on every path, and is verified (nothing of the fault is left).
//! 6. **steady state after**: the steady state is checked once more.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::guest::{self, Control, Plan};
use super::model::{Experiment, FaultKind};
use crate::cloud::{Instance, PowerAction, Provider};
use crate::config::InstanceSettings;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Resource};
use crate::suites::{self, Check, CheckResult, RunOptions, Status, Suite};
use crate::transport::ssh::KeyPair;
use crate::transport::Transport;

/// Extra time the dead-man's switch gives Bakery past a fault's duration.
pub const GRACE: Duration = Duration::from_secs(30);
/// The most one steady-state poll may take while waiting for recovery.
const POLL_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between steady-state polls.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// The most a script of a fault may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The probe an experiment runs on, and the way in (replaced after the instance restarts).
pub struct Target<'a> {
    pub provider: &'a dyn Provider,
    pub instance: &'a Instance,
    pub key: &'a KeyPair,
    pub settings: &'a InstanceSettings,
    pub ledger: &'a Ledger,
    pub transport: &'a mut Box<dyn Transport>,
    /// Options for the steady-state and `during` checks (probe name, runner view, ...).
    pub options: &'a RunOptions,
    /// How long past its duration a fault may outlive a dead Bakery.
    pub grace: Duration,
}

/// The phases of an experiment, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    SteadyStateBefore,
    Inject,
    During,
    Recovery,
    Rollback,
    SteadyStateAfter,
}

impl Phase {
    /// The phase as reports name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::SteadyStateBefore => "steady state before",
            Phase::Inject => "inject",
            Phase::During => "during",
            Phase::Recovery => "recovery",
            Phase::Rollback => "rollback",
            Phase::SteadyStateAfter => "steady state after",
        }
    }
}

/// How one phase went.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    pub phase: Phase,
    pub status: Status,
    /// One line: what held, or what failed.
    pub detail: String,
    /// Seconds since the experiment started.
    pub at_secs: f64,
    pub took_secs: f64,
}

/// One line of the journal.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// Seconds since the experiment started.
    pub at_secs: f64,
    pub what: String,
}

/// What an experiment did and found, beside its [`CheckResult`].
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// The fault's name (`kill-process`, `reboot`, ...).
    pub fault: String,
    /// How long a sustained fault was held, in seconds (0 for instant faults).
    pub duration_secs: f64,
    pub recover_within_secs: f64,
    /// From the fault's end to the steady state holding again; `None` if it did not.
    pub time_to_recover_secs: Option<f64>,
    pub phases: Vec<PhaseResult>,
    pub journal: Vec<Activity>,
}

impl Record {
    /// The journal as text, one activity a line.
    pub fn journal_text(&self) -> String {
        self.journal
            .iter()
            .map(|a| format!("{:>8.2}s  {}\n", a.at_secs, a.what))
            .collect()
    }

    /// The phases in one line: `steady state before: passed, inject: passed, ...`.
    pub fn phases_line(&self) -> String {
        self.phases
            .iter()
            .map(|p| format!("{}: {}", p.phase.as_str(), p.status))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Journal {
    start: Instant,
    record: Record,
}

impl Journal {
    fn note(&mut self, what: impl Into<String>) {
        let what = what.into();
        tracing::info!(target: "bakery::chaos", "{what}");
        self.record.journal.push(Activity {
            at_secs: secs(self.start.elapsed()),
            what,
        });
    }

    fn phase(&mut self, phase: Phase, status: Status, detail: impl Into<String>, began: Instant) {
        let detail = detail.into();
        self.note(format!("{}: {status}: {detail}", phase.as_str()));
        self.record.phases.push(PhaseResult {
            phase,
            status,
            detail,
            at_secs: secs(began - self.start),
            took_secs: secs(began.elapsed()),
        });
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// Runs `exp` on the target; always returns a result, with the fault rolled back.
pub fn run_experiment(exp: &Experiment, t: &mut Target) -> CheckResult {
    let start = Instant::now();
    let mut j = Journal {
        start,
        record: Record {
            fault: exp.fault.kind.name().to_string(),
            duration_secs: if exp.fault.kind.sustained() {
                secs(exp.fault.duration)
            } else {
                0.0
            },
            recover_within_secs: secs(exp.recover_within),
            time_to_recover_secs: None,
            phases: Vec::new(),
            journal: Vec::new(),
        },
    };
    let verdict = phases(exp, t, &mut j);
    let (status, message) = match verdict {
        Ok(()) => (
            Status::Passed,
            format!(
                "recovered in {:.1}s (limit {}s); {}",
                j.record.time_to_recover_secs.unwrap_or_default(),
                exp.recover_within.as_secs(),
                j.record.phases_line()
            ),
        ),
        Err((status, phase, why)) => (status, format!("{}: {why}", phase.as_str())),
    };
    let record = j.record;
    CheckResult {
        id: exp.id.clone(),
        title: exp.title_or_id().to_string(),
        kind: "experiment".into(),
        tags: exp.tags.clone(),
        status,
        expected: None,
        actual: None,
        message,
        output: format!("{}\n{}", record.phases_line(), record.journal_text()),
        duration: start.elapsed(),
        attempts: 1,
        control: None,
        experiment: Some(Box::new(record)),
    }
}

/// The result of an experiment with `skip: reason`.
pub fn skipped(exp: &Experiment, reason: &str) -> CheckResult {
    CheckResult::skipped(&exp.id, exp.title_or_id(), "experiment", &exp.tags, reason)
}

type Failure = (Status, Phase, String);

fn phases(exp: &Experiment, t: &mut Target, j: &mut Journal) -> Result<(), Failure> {
    let kind = &exp.fault.kind;
    // 1. Steady state before, then what a restart must bring back: the boot id and the
    // services enabled and active now.
    let began = Instant::now();
    j.note("checking the steady state before the fault");
    let query = match (exp.restores_units, kind.restarts()) {
        (true, _) => Some(StateQuery::ActiveServices),
        (false, true) => Some(StateQuery::BootId),
        (false, false) => None,
    };
    let (mut before, mut state) = checks_then_state(exp, t, query, None, SCRIPT_TIMEOUT);
    if before.iter().any(|r| r.status == Status::Error) {
        // The probe may still be booting after an earlier experiment that did not recover:
        // wait for it (within its boot timeout) and look again.
        j.note("the probe did not answer; waiting for it to answer again");
        match t.provider.connect(t.instance, t.key, t.settings) {
            Ok(fresh) => {
                *t.transport = crate::transport::as_root(fresh, &t.settings.ssh_user);
                (before, state) = checks_then_state(exp, t, query, None, SCRIPT_TIMEOUT);
            }
            Err(e) => j.note(format!("it did not: {e}")),
        }
    }
    if let Some((status, why)) = not_passed(&before) {
        j.phase(Phase::SteadyStateBefore, status, why.clone(), began);
        return Err((status, Phase::SteadyStateBefore, why));
    }
    let (units, boot_before) = match state {
        None => (Vec::new(), None),
        Some(Err(e)) => {
            let why = format!("reading the boot id and the active services: {e}");
            j.phase(Phase::SteadyStateBefore, Status::Error, why.clone(), began);
            return Err((Status::Error, Phase::SteadyStateBefore, why));
        }
        Some(Ok(state)) => {
            let units = if exp.restores_units {
                let units = state.enabled_active();
                j.note(format!(
                    "{} enabled services are active: {}",
                    units.len(),
                    units.join(" ")
                ));
                units
            } else {
                Vec::new()
            };
            (units, kind.restarts().then_some(state.boot_id))
        }
    };
    j.phase(
        Phase::SteadyStateBefore,
        Status::Passed,
        format!("{} checks passed", before.len()),
        began,
    );

    // 2. Inject, with the rollback placed first; 3. hold and end the fault.
    let deadline = exp
        .fault
        .duration
        .saturating_mul(u32::from(kind.sustained()))
        + t.grace;
    let tag = format!("bakery-chaos-{}", &crate::cloud::new_id("x")[2..12]);
    let plan = guest::plan(kind, &tag, deadline, control(t.transport.as_ref()));
    // A fault that leaves nothing on the probe (a signal) has nothing to roll back, so nothing
    // for the ledger either: the recovery's last poll is the steady state after it.
    let nothing_to_undo = kind.leaves_nothing();
    let token = (!nothing_to_undo)
        .then(|| {
            t.ledger.record(
                Resource::Fault {
                    instance: t.instance.id.clone(),
                    fault: format!("{} ({tag})", kind.name()),
                    until: (chrono::Utc::now()
                        + chrono::Duration::from_std(deadline).unwrap_or_default())
                    .to_rfc3339(),
                },
                &format!("experiment {}", exp.id),
            )
        })
        .transpose()
        .map_err(|e| (Status::Error, Phase::Inject, e.to_string()))?;
    let held = inject_and_hold(exp, t, j, plan.as_ref());
    // 4. Recovery, measured from the fault's end (a sustained fault has ended by now).
    let recovered = match &held {
        Ok(h) => Some(recover(exp, t, j, h.ended, boot_before.as_deref(), &units)),
        Err(_) => None,
    };
    let rolled_back = matches!(&held, Ok(h) if h.rolled_back);
    // 5. Rollback, on every path (signals included): run again (it is idempotent), verified,
    // unless it already ran and was verified when the fault ended.
    let rollback = crate::signals::shielded(|| {
        let began = Instant::now();
        if nothing_to_undo {
            let detail = format!(
                "nothing to undo: {} leaves nothing on the probe",
                kind.name()
            );
            j.phase(Phase::Rollback, Status::Passed, detail.clone(), began);
            return Ok(detail);
        }
        if rolled_back {
            let detail = "rolled back and verified when the fault ended".to_string();
            j.phase(Phase::Rollback, Status::Passed, detail.clone(), began);
            return Ok(detail);
        }
        let r = roll_back(kind, t, j, plan.as_ref());
        match &r {
            Ok(detail) => j.phase(Phase::Rollback, Status::Passed, detail.clone(), began),
            Err(e) => j.phase(Phase::Rollback, Status::Failed, e.to_string(), began),
        }
        r
    });
    // A fault left behind is the worst outcome: it is reported before anything else.
    if let Err(e) = rollback {
        return Err((Status::Failed, Phase::Rollback, e.to_string()));
    }
    if let Some(token) = token {
        let _ = t.ledger.forget(token);
    }
    held?;
    if let Some(recovered) = recovered {
        recovered?;
    }
    check_signal()?;

    // 6. Steady state after. When the rollback ended the fault, or there was nothing to roll
    // back, the recovery's last poll found the steady state holding after it: that poll is
    // this phase's check.
    let began = Instant::now();
    if rolled_back || nothing_to_undo {
        j.phase(
            Phase::SteadyStateAfter,
            Status::Passed,
            format!(
                "{} checks passed at the recovery's last poll, {}",
                exp.steady_state.len(),
                if rolled_back {
                    "after the rollback"
                } else {
                    "with nothing to roll back"
                }
            ),
            began,
        );
        return Ok(());
    }
    let after = checks(&exp.steady_state, t, None);
    if let Some((status, why)) = not_passed(&after) {
        j.phase(Phase::SteadyStateAfter, status, why.clone(), began);
        return Err((status, Phase::SteadyStateAfter, why));
    }
    j.phase(
        Phase::SteadyStateAfter,
        Status::Passed,
        format!("{} checks passed", after.len()),
        began,
    );
    Ok(())
}

fn check_signal() -> Result<(), Failure> {
    crate::signals::check().map_err(|e| (Status::Error, Phase::Recovery, e.to_string()))
}

/// Injects the fault, holds a sustained one for its duration (running the `during` checks)
/// and ends it; returns when the fault ended.
fn inject_and_hold(
    exp: &Experiment,
    t: &mut Target,
    j: &mut Journal,
    plan: Option<&Plan>,
) -> Result<Held, Failure> {
    let kind = &exp.fault.kind;
    let began = Instant::now();
    let injected = match plan {
        Some(plan) => inject_in_guest(t.transport.as_ref(), plan, j),
        None => inject_through_provider(kind, t),
    };
    match injected {
        Ok(detail) => j.phase(Phase::Inject, Status::Passed, detail, began),
        Err(e) => {
            let status = Status::Error;
            j.phase(Phase::Inject, status, e.to_string(), began);
            return Err((status, Phase::Inject, e.to_string()));
        }
    }
    let injected_at = Instant::now();
    crate::progress::announce("fault");
    if !kind.sustained() {
        // A restart's downtime begins when it is asked for: the guest's shutdown (the time a
        // stop-start's power-off waits for it) is the image's, as its boot is.
        return Ok(Held {
            ended: if kind.restarts() { began } else { injected_at },
            rolled_back: false,
        });
    }
    let mut during_failed = None;
    if !exp.during.is_empty() {
        let began = Instant::now();
        let remaining = exp.fault.duration.saturating_sub(injected_at.elapsed());
        let results = checks(&exp.during, t, Some(remaining.max(POLL_TIMEOUT)));
        match not_passed(&results) {
            Some((status, why)) => {
                j.phase(Phase::During, status, why.clone(), began);
                during_failed = Some((status, Phase::During, why));
            }
            None => j.phase(
                Phase::During,
                Status::Passed,
                format!("{} checks passed", results.len()),
                began,
            ),
        }
    }
    let end = injected_at + exp.fault.duration;
    while Instant::now() < end {
        if let Err(e) = crate::signals::check() {
            return Err((Status::Error, Phase::During, e.to_string()));
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(200)));
    }
    // Ending the fault: a provider fault is undone here; an in-guest one by its rollback,
    // verified in the same round trip (a verified rollback is not run again afterwards).
    let ended = crate::signals::shielded(|| match (kind, plan) {
        (_, Some(plan)) => roll_back_in_guest(t.transport.as_ref(), plan).map(|()| true),
        (FaultKind::Pause, None) => t.provider.set_paused(t.instance, false).map(|()| false),
        (FaultKind::NetworkPartition, None) => {
            t.provider.set_link(t.instance, true).map(|()| false)
        }
        _ => Ok(false),
    });
    let ended_at = Instant::now();
    let rolled_back = match ended {
        Ok(verified) => {
            j.note(format!(
                "{} ended after {:.1}s{}",
                kind.name(),
                secs(ended_at - injected_at),
                if verified {
                    "; rollback verified: nothing of the fault is left"
                } else {
                    ""
                }
            ));
            verified
        }
        Err(e) => {
            j.note(format!("ending {} failed: {e}", kind.name()));
            false
        }
    };
    match during_failed {
        Some(f) => Err(f),
        None => Ok(Held {
            ended: ended_at,
            rolled_back,
        }),
    }
}

/// How a fault's hold ended.
struct Held {
    /// When the fault ended (for a sustained fault, when its rollback finished).
    ended: Instant,
    /// Whether the rollback already ran and was verified when the fault ended.
    rolled_back: bool,
}

fn inject_in_guest(transport: &dyn Transport, plan: &Plan, j: &mut Journal) -> Result<String> {
    // Preflight, rollback written, dead-man's switch armed, then the injection: one script,
    // one round trip.
    let out = transport.run(&plan.prepare_and_inject(), SCRIPT_TIMEOUT)?;
    let Some((prepared, injected)) = out
        .stdout
        .split_once(&format!("{}\n", guest::INJECT_BEGINS))
    else {
        if let Some(tool) = guest::missing_tool(&out.stdout) {
            return Err(Error::Infra(format!(
                "the probe lacks {tool}, which this fault needs"
            )));
        }
        return Err(Error::Infra(format!(
            "preparing the fault failed (exit {}): {}",
            out.exit_code,
            out.stderr.trim()
        )));
    };
    if let Some(tool) = guest::missing_tool(prepared) {
        return Err(Error::Infra(format!(
            "the probe lacks {tool}, which this fault needs"
        )));
    }
    if !plan.leaves_nothing {
        j.note(format!("rollback written to {}", plan.rollback_path));
        j.note(format!(
            "dead-man's switch armed: {}-deadman.timer",
            plan.tag
        ));
    }
    if let Some(tool) = guest::missing_tool(injected) {
        return Err(Error::Infra(format!(
            "the probe lacks {tool}, which this fault needs"
        )));
    }
    if out.exit_code != 0 {
        let why = [out.stderr.trim(), injected.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("no output");
        return Err(Error::Infra(format!(
            "injecting failed (exit {}): {why}",
            out.exit_code
        )));
    }
    Ok(injected.trim().replace('\n', "; "))
}

fn inject_through_provider(kind: &FaultKind, t: &mut Target) -> Result<String> {
    let action = match kind {
        FaultKind::Reboot => Some(PowerAction::Reboot),
        FaultKind::HardReset => Some(PowerAction::HardReset),
        FaultKind::StopStart => Some(PowerAction::StopStart),
        _ => None,
    };
    if let Some(action) = action {
        t.provider.power(t.instance, action, t.transport.as_ref())?;
        return Ok(format!("{} of {}", action.as_str(), t.instance.id));
    }
    match kind {
        FaultKind::Pause => t.provider.set_paused(t.instance, true)?,
        FaultKind::NetworkPartition => t.provider.set_link(t.instance, false)?,
        other => {
            return Err(Error::Infra(format!(
                "`{}` is not a provider fault",
                other.name()
            )))
        }
    }
    Ok(format!("{} of {}", kind.name(), t.instance.id))
}

/// Runs an in-guest fault's rollback and checks that nothing of the fault is left.
fn roll_back_in_guest(transport: &dyn Transport, plan: &Plan) -> Result<()> {
    let v = transport.run(&plan.roll_back_and_verify(), SCRIPT_TIMEOUT)?;
    if v.exit_code == 5 {
        return Err(Error::Infra(format!(
            "the rollback failed: {}",
            v.stderr.trim()
        )));
    }
    if v.exit_code != 0 {
        return Err(Error::Infra(format!(
            "the fault is still there: {}",
            v.stdout.trim()
        )));
    }
    Ok(())
}

/// Undoes the fault (again: rollbacks are idempotent) and checks that nothing of it is left.
fn roll_back(
    kind: &FaultKind,
    t: &mut Target,
    j: &mut Journal,
    plan: Option<&Plan>,
) -> Result<String> {
    match (kind, plan) {
        (_, Some(plan)) => {
            roll_back_in_guest(t.transport.as_ref(), plan)?;
            j.note("rollback verified: nothing of the fault is left");
            Ok("rolled back and verified".into())
        }
        (FaultKind::Pause, None) => {
            t.provider.set_paused(t.instance, false)?;
            Ok("the instance runs".into())
        }
        (FaultKind::NetworkPartition, None) => {
            t.provider.set_link(t.instance, true)?;
            Ok("the link is up".into())
        }
        _ => Ok("nothing to undo".into()),
    }
}

/// Polls the steady state until it holds (on a new boot after a restart) or the limit passes.
fn recover(
    exp: &Experiment,
    t: &mut Target,
    j: &mut Journal,
    ended: Instant,
    boot_before: Option<&str>,
    units: &[String],
) -> Result<(), Failure> {
    let began = ended;
    let limit = ended + exp.recover_within;
    if let Some(old) = boot_before {
        // Wait for the old boot to go, then for the instance to answer again.
        while Instant::now() < limit {
            check_signal()?;
            match boot_id_within(t.transport.as_ref(), Duration::from_secs(3)) {
                Ok(id) if id != old => break,
                Ok(_) => std::thread::sleep(POLL_INTERVAL),
                Err(_) => break,
            }
        }
        let mut settings = t.settings.clone();
        settings.boot_timeout = crate::config::HumanDuration(
            limit
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        );
        match t.provider.connect(t.instance, t.key, &settings) {
            Ok(fresh) => {
                *t.transport = crate::transport::as_root(fresh, &t.settings.ssh_user);
                j.note(format!(
                    "connected again after {:.1}s",
                    secs(ended.elapsed())
                ));
            }
            Err(e) => {
                let why = format!(
                    "{} did not answer within {}s: {e}",
                    t.instance.id,
                    exp.recover_within.as_secs()
                );
                j.phase(Phase::Recovery, Status::Failed, why.clone(), began);
                return Err((Status::Failed, Phase::Recovery, why));
            }
        }
    }
    let mut last: String;
    // The last poll that found the steady state wrong (not merely unanswered): a shorter last
    // poll may only time out, and "not running" says more than "timed out".
    let mut last_found: Option<String> = None;
    let mut polls = 0;
    loop {
        check_signal()?;
        let remaining = limit.saturating_duration_since(Instant::now());
        polls += 1;
        let query = match (units.is_empty(), boot_before.is_some()) {
            (false, _) => Some(StateQuery::Units(units)),
            (true, true) => Some(StateQuery::BootId),
            (true, false) => None,
        };
        let limit_poll = remaining.clamp(Duration::from_secs(3), POLL_TIMEOUT);
        let (results, state) = checks_then_state(exp, t, query, Some(limit_poll), POLL_TIMEOUT);
        let restarted = match state {
            None => Ok(()),
            Some(Ok(state)) if boot_before == Some(state.boot_id.as_str()) => {
                Err("the instance did not restart (same boot id)".to_string())
            }
            Some(Ok(state)) => state.all_active(units),
            Some(Err(e)) => Err(format!("reading the boot id and the services: {e}")),
        };
        match (not_passed(&results), restarted) {
            (None, Ok(())) => {
                let ttr = ended.elapsed();
                j.record.time_to_recover_secs = Some(secs(ttr));
                if ttr > exp.recover_within {
                    let why = format!(
                        "the steady state held again after {:.1}s, later than the {}s allowed",
                        ttr.as_secs_f64(),
                        exp.recover_within.as_secs()
                    );
                    j.phase(Phase::Recovery, Status::Failed, why.clone(), began);
                    return Err((Status::Failed, Phase::Recovery, why));
                }
                j.phase(
                    Phase::Recovery,
                    Status::Passed,
                    format!(
                        "steady state back after {:.1}s ({polls} polls)",
                        ttr.as_secs_f64()
                    ),
                    began,
                );
                return Ok(());
            }
            (Some((Status::Failed, why)), _) => {
                last_found = Some(why.clone());
                last = why;
            }
            (Some((_, why)), _) | (None, Err(why)) => last = why,
        }
        if Instant::now() + POLL_INTERVAL >= limit {
            let why = format!(
                "the steady state did not hold again within {}s: {}",
                exp.recover_within.as_secs(),
                last_found.as_deref().unwrap_or(&last)
            );
            j.phase(Phase::Recovery, Status::Failed, why.clone(), began);
            return Err((Status::Failed, Phase::Recovery, why));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Runs `list` as a suite with the runner's machinery.
fn checks(list: &[Check], t: &Target, timeout: Option<Duration>) -> Vec<CheckResult> {
    let suite = Suite {
        name: "steady-state".into(),
        description: None,
        checks: list.to_vec(),
        experiments: Vec::new(),
        probe: None,
        source: None,
        cis: None,
    };
    let mut opts = t.options.clone();
    opts.ids.clear();
    opts.tags.clear();
    opts.exclude_tags.clear();
    if let Some(limit) = timeout {
        opts.default_timeout = limit;
    }
    suites::run_suite(&suite, t.transport.as_ref(), &opts).results
}

/// The steady state's checks, then the boot id and the services `query` names (see
/// [`probe_state`]) on the same connection. Side by side they would need a second SSH login,
/// and a restart leaves a fresh transport with one connection: under emulation that login
/// costs more than the read it would hide.
fn checks_then_state(
    exp: &Experiment,
    t: &Target,
    query: Option<StateQuery>,
    timeout: Option<Duration>,
    state_timeout: Duration,
) -> (Vec<CheckResult>, Option<Result<ProbeState>>) {
    let results = checks(&exp.steady_state, t, timeout);
    let state = query.map(|q| probe_state(t.transport.as_ref(), q, state_timeout));
    (results, state)
}

/// The first result that did not pass, as (status, "id: message").
fn not_passed(results: &[CheckResult]) -> Option<(Status, String)> {
    let bad: Vec<&CheckResult> = results
        .iter()
        .filter(|r| !matches!(r.status, Status::Passed | Status::Skipped))
        .collect();
    let first = bad.first()?;
    let status = if bad.iter().any(|r| r.status == Status::Failed) {
        Status::Failed
    } else {
        Status::Error
    };
    let msg = match (&first.expected, &first.actual) {
        (Some(e), Some(a)) => format!("expected {e}, got {a}"),
        _ => first.message.clone(),
    };
    let more = if bad.len() > 1 {
        format!(" (and {} more)", bad.len() - 1)
    } else {
        String::new()
    };
    Some((
        status,
        format!("`{}` {}: {msg}{more}", first.id, first.status),
    ))
}

/// The boot id and the loaded services' states, read together.
struct ProbeState {
    boot_id: String,
    /// `systemctl show -p Id -p ActiveState -p UnitFileState UNIT…` output.
    services: String,
}

impl ProbeState {
    /// The services that are both enabled and active.
    fn enabled_active(&self) -> Vec<String> {
        parse_enabled_active(&self.services)
    }

    /// Whether every one of `units` is active; else which are not.
    fn all_active(&self, units: &[String]) -> Result<(), String> {
        let states = parse_active_states(&self.services);
        let down: Vec<String> = units
            .iter()
            .filter_map(|u| match states.iter().find(|(id, _)| id == u) {
                Some((_, "active")) => None,
                Some((_, state)) => Some(format!("{u} ({state})")),
                None => Some(format!("{u} (not loaded)")),
            })
            .collect();
        if down.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "services active before are not now: {}",
                down.join(", ")
            ))
        }
    }
}

/// What [`probe_state`] reads besides the boot id.
#[derive(Clone, Copy)]
enum StateQuery<'a> {
    /// Only the boot id: systemd is not asked, so an experiment that does not restore units
    /// does not need it.
    BootId,
    /// Every active service, with its enabled and active states (before a fault).
    ActiveServices,
    /// These services' states (while recovering).
    Units(&'a [String]),
}

/// Reads the boot id and the services `query` names in one round trip: the boot id on the
/// first line, then one `systemctl show` for the services (blocks of `Key=value` lines, one
/// block a unit; the unit tables' later columns vary between systemd versions, their first
/// is the unit's name): every active one before a fault (`systemctl list-units` names them,
/// in the same round trip; on a quiet host this takes as long as showing every loaded
/// service, BENCHMARKS.md), only those it waits for during a recovery.
fn probe_state(
    transport: &dyn Transport,
    query: StateQuery,
    timeout: Duration,
) -> Result<ProbeState> {
    const BOOT_ID: &str = "cat /proc/sys/kernel/random/boot_id";
    const SHOW: &str = "systemctl show --no-pager -p Id -p ActiveState -p UnitFileState";
    let script = match query {
        StateQuery::BootId => BOOT_ID.to_string(),
        StateQuery::ActiveServices => format!(
            "{BOOT_ID} && set -f && u=$(systemctl list-units --no-pager --no-legend --plain --type=service --state=active | cut -d' ' -f1) && {SHOW} $u"
        ),
        StateQuery::Units(units) => format!(
            "{BOOT_ID} && {SHOW} {}",
            units
                .iter()
                .map(|u| crate::transport::shell_quote(u))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    let services = !matches!(query, StateQuery::BootId);
    let out = transport.run(&script, timeout)?;
    let (first, rest) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
    let boot_id = first.trim().to_string();
    if out.exit_code != 0 || boot_id.is_empty() {
        return Err(Error::Infra(format!(
            "reading {} failed (exit {}): {}",
            if services {
                "/proc/sys/kernel/random/boot_id and `systemctl show`"
            } else {
                "/proc/sys/kernel/random/boot_id"
            },
            out.exit_code,
            out.stderr.trim()
        )));
    }
    Ok(ProbeState {
        boot_id,
        services: rest.to_string(),
    })
}

/// Each unit's `ActiveState` in `systemctl show -p Id -p ActiveState …` output.
fn parse_active_states(text: &str) -> Vec<(String, &str)> {
    text.split("\n\n")
        .filter_map(|block| {
            let get = |key: &str| {
                block
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
            };
            Some((get("Id")?.to_string(), get("ActiveState")?))
        })
        .collect()
}

/// The services of `systemctl show -p Id -p ActiveState -p UnitFileState` output that are
/// enabled and active.
pub(crate) fn parse_enabled_active(text: &str) -> Vec<String> {
    let mut units = Vec::new();
    for block in text.split("\n\n") {
        let get = |key: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        };
        if let (Some(id), Some("active"), Some("enabled")) =
            (get("Id"), get("ActiveState"), get("UnitFileState"))
        {
            units.push(id.to_string());
        }
    }
    units.sort();
    units.dedup();
    units
}

fn boot_id_within(transport: &dyn Transport, timeout: Duration) -> Result<String> {
    let out = transport.run("cat /proc/sys/kernel/random/boot_id", timeout)?;
    let id = out.stdout.trim().to_string();
    if out.exit_code != 0 || id.is_empty() {
        return Err(Error::Infra(
            "no boot id in /proc/sys/kernel/random/boot_id".into(),
        ));
    }
    Ok(id)
}

/// What network faults must spare, from how Bakery reaches the probe.
fn control(transport: &dyn Transport) -> Control {
    let endpoint = transport.endpoint();
    Control {
        // Bakery reaches the guest's sshd; locally through a forwarded port, so the guest
        // sees its own port 22.
        ssh_port: 22,
        https: endpoint.starts_with("ssm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::testing::LocalShell;
    use crate::transport::{ExecOutput, Stream};

    /// This host's shell with a stand-in `systemctl` first on the PATH, which logs its
    /// arguments to `dir/calls`.
    struct FakeSystemd {
        dir: std::path::PathBuf,
    }

    impl Transport for FakeSystemd {
        fn exec(
            &self,
            command: &str,
            timeout: Duration,
            on_line: &mut dyn FnMut(Stream, &str),
        ) -> Result<ExecOutput> {
            let command = format!("PATH={}:$PATH\n{command}", self.dir.display());
            LocalShell.exec(&command, timeout, on_line)
        }

        fn upload(&self, contents: &[u8], remote_path: &str, mode: u32) -> Result<()> {
            LocalShell.upload(contents, remote_path, mode)
        }

        fn endpoint(&self) -> String {
            LocalShell.endpoint()
        }
    }

    #[test]
    fn the_services_are_read_with_the_boot_id_and_a_recovery_shows_only_those_it_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let calls = dir.path().join("calls");
        let fake = format!(
            r#"#!/bin/sh
echo "$*" >> {calls}
case "$1" in
  list-units) printf '%s loaded active running A service\n' ssh.service nginx.service 'systemd-fsck@dev-disk-by\x2duuid-1.service' ;;
  show) for u in "$@"; do case "$u" in *.service) printf 'Id=%s\nActiveState=active\nUnitFileState=%s\n\n' "$u" "$([ "$u" = nginx.service ] && echo disabled || echo enabled)" ;; esac; done ;;
esac
"#,
            calls = calls.display()
        );
        let systemctl = dir.path().join("systemctl");
        std::fs::write(&systemctl, fake).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = FakeSystemd {
            dir: dir.path().to_path_buf(),
        };
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();

        let before = probe_state(&t, StateQuery::ActiveServices, Duration::from_secs(10)).unwrap();
        assert_eq!(before.boot_id, boot_id.trim());
        assert_eq!(
            before.enabled_active(),
            ["ssh.service", "systemd-fsck@dev-disk-by\\x2duuid-1.service"]
        );
        // The active services are listed, then shown, names and all, in the same round trip.
        let log = std::fs::read_to_string(&calls).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 2, "{log}");
        assert!(lines[0].starts_with("list-units "), "{log}");
        assert!(lines[0].contains("--state=active"), "{log}");
        assert!(
            lines[1].ends_with(
                "-p Id -p ActiveState -p UnitFileState ssh.service nginx.service systemd-fsck@dev-disk-by\\x2duuid-1.service"
            ),
            "{log}"
        );
        std::fs::remove_file(&calls).unwrap();

        let units = vec!["ssh.service".to_string(), "it's.service".to_string()];
        let during = probe_state(&t, StateQuery::Units(&units), Duration::from_secs(10)).unwrap();
        assert_eq!(during.all_active(&units), Ok(()));
        let log = std::fs::read_to_string(&calls).unwrap();
        assert_eq!(log.lines().count(), 1, "{log}");
        assert!(
            log.trim_end().ends_with("ssh.service it's.service"),
            "{log}"
        );
        std::fs::remove_file(&calls).unwrap();

        let only = probe_state(&t, StateQuery::BootId, Duration::from_secs(10)).unwrap();
        assert_eq!(only.boot_id, boot_id.trim());
        assert!(!calls.exists(), "systemd was asked for the boot id alone");
    }

    #[test]
    fn a_restart_must_bring_back_every_unit_that_ran_before() {
        let state = ProbeState {
            boot_id: "b2".into(),
            services: "Id=ssh.service\nActiveState=active\nUnitFileState=enabled\n\n\
                       Id=nginx.service\nActiveState=failed\nUnitFileState=enabled\n"
                .into(),
        };
        assert_eq!(state.all_active(&["ssh.service".into()]), Ok(()));
        assert_eq!(
            state.all_active(&[
                "ssh.service".into(),
                "nginx.service".into(),
                "cron.service".into()
            ]),
            Err(
                "services active before are not now: nginx.service (failed), \
                 cron.service (not loaded)"
                    .into()
            )
        );
        assert_eq!(state.enabled_active(), vec!["ssh.service".to_string()]);
    }

    #[test]
    fn enabled_and_active_services_are_read_from_systemctl_show() {
        let text = "Id=ssh.service\nActiveState=active\nUnitFileState=enabled\n\n\
                    Id=systemd-journald.service\nActiveState=active\nUnitFileState=static\n\n\
                    Id=cron.service\nActiveState=inactive\nUnitFileState=enabled\n\n\
                    Id=nginx.service\nActiveState=active\nUnitFileState=enabled\n";
        assert_eq!(
            parse_enabled_active(text),
            vec!["nginx.service".to_string(), "ssh.service".to_string()]
        );
        assert!(parse_enabled_active("").is_empty());
    }
}
