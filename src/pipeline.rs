//! The stages in order, and the unwinding of the run's ledger.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::cloud::{self, Image};
use crate::config::LoadedPipeline;
use crate::error::{Error, Result, EXIT_GATE_FAILED, EXIT_OK};
use crate::git;
use crate::ledger::Ledger;
use crate::progress::Stage;
use crate::promote::{self, status, Promotion};
use crate::run::{Run, Timings};
use crate::transport::ssh::KeyPair;
use crate::verify::{self, Verification};
use crate::{bake, signals};

/// Which stages to run.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Bake, verify, and promote if every gate passed.
    Run { promote: bool },
    /// Bake only.
    Bake,
    /// Verify an existing image, with the pipeline's suites and any extra Goss files.
    Verify {
        image: String,
        goss: Vec<std::path::PathBuf>,
        /// Vars for the templates of `goss` (`--vars`, `--vars-inline`).
        goss_vars: crate::suites::GossVars,
    },
    /// Promote an image that passed verification; a dry run prints the plan only.
    Promote { image: String, dry_run: bool },
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub run_id: String,
    pub image: Option<Image>,
    pub verification: Option<Verification>,
    pub promotion: Option<Promotion>,
    /// The baked image compared with the one the pipeline's pointer names.
    pub changes: Option<crate::manifest::diff::Comparison>,
    pub timings: Vec<(String, Duration)>,
}

impl Outcome {
    /// 0 when every gate that ran passed, 1 when one failed, 3 when promotion failed in a
    /// region.
    pub fn exit_code(&self) -> i32 {
        match &self.verification {
            Some(v) if !v.verdict.passed => EXIT_GATE_FAILED,
            _ if self
                .promotion
                .as_ref()
                .is_some_and(|p| !p.failed().is_empty()) =>
            {
                crate::error::EXIT_INFRA
            }
            _ => EXIT_OK,
        }
    }
}

/// Runs `mode` for the pipeline, releasing every resource the run created before returning.
pub fn execute(loaded: LoadedPipeline, data_dir: &Path, mode: Mode) -> Result<Outcome> {
    // Suites are read before anything is created or boots, so a typo costs seconds, not
    // minutes, and leaves nothing behind.
    let suites = match &mode {
        Mode::Run { .. } => Some(verify::load_suites(&loaded, &[], &Default::default())?),
        Mode::Verify {
            goss, goss_vars, ..
        } => Some(verify::load_suites(&loaded, goss, goss_vars)?),
        Mode::Bake | Mode::Promote { .. } => None,
    };
    if suites.is_some() {
        let junit = loaded.resolve(&loaded.pipeline.verify.junit);
        crate::report::junit::check_writable(&junit, &loaded.path, "verify.junit")?;
    }
    let provider = cloud::open_for(&loaded, data_dir)?;
    let started = chrono::Utc::now();
    let id = format!(
        "run-{}-{}",
        started.format("%Y%m%dT%H%M%S"),
        &cloud::new_id("r")[2..8]
    );
    let ledger = Ledger::create(&ledger_dir(data_dir), &id)?;
    {
        let (ledger, provider) = (ledger.clone(), provider.clone());
        signals::set_emergency_cleanup(move || {
            for e in ledger.unwind(Some(provider.as_ref())) {
                crate::say!("bakery: cleanup: {e}");
            }
        });
    }
    let commit = git::current_commit(&loaded.dir);
    let run = Run {
        key: KeyPair::generate(&format!("bakery-{id}"))?,
        id,
        loaded,
        provider,
        ledger,
        commit,
        started,
        timings: Timings::default(),
    };
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stages(&run, &mode, suites)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(Error::Infra(format!(
                    "internal error (a bug in Bakery): {what}"
                )))
            });
    signals::releasing();
    let cleanup_errors = run.ledger.unwind(Some(run.provider.as_ref()));
    signals::clear_emergency_cleanup();
    for e in &cleanup_errors {
        crate::say!("bakery: cleanup: {e}");
    }
    let mut outcome = result?;
    if let Some(e) = cleanup_errors.into_iter().next() {
        return Err(e);
    }
    outcome.run_id = run.id.clone();
    outcome.timings = run.timings.all();
    Ok(outcome)
}

/// Where ledgers live.
pub fn ledger_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runs")
}

fn stages(run: &Run, mode: &Mode, suites: Option<Vec<crate::suites::Suite>>) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let provider = run.provider.as_ref();
    let image = match mode {
        Mode::Run { .. } | Mode::Bake => {
            let stage = Stage::start("bake");
            let image = bake::bake(run)?;
            run.timings.record("bake", stage.finish());
            outcome.image = Some(image.clone());
            outcome.changes = changes(run, &image);
            match suites {
                Some(suites) => {
                    verify_stage(run, &image, &suites, &mut outcome)?;
                    if let (Some(v), Some(c)) = (&outcome.verification, &outcome.changes) {
                        let value = serde_json::to_value(c).expect("a comparison serializes");
                        crate::report::json::add(&v.json, "changes", value)?;
                    }
                }
                None => return Ok(outcome),
            }
            image
        }
        Mode::Verify { image, .. } => {
            let suites = suites.unwrap_or_default();
            let image = provider.image(image)?;
            outcome.image = Some(image.clone());
            verify_stage(run, &image, &suites, &mut outcome)?;
            return Ok(outcome);
        }
        Mode::Promote { image, .. } => {
            let image = provider.image(image)?;
            outcome.image = Some(image.clone());
            image
        }
    };
    let passed = outcome
        .verification
        .as_ref()
        .is_none_or(|v| v.verdict.passed);
    let wanted = !matches!(mode, Mode::Run { promote: false });
    if passed && wanted {
        let stage = Stage::start("promote");
        let dry_run = matches!(mode, Mode::Promote { dry_run: true, .. });
        let mut promotion = promote::promote(
            provider,
            &image,
            run.loaded.pipeline.promote.as_ref(),
            dry_run,
        )?;
        run.timings.record("promote", stage.finish());
        if !promotion.failed().is_empty() {
            promotion.rerun = Some(format!(
                "bakery promote -f {} --image {}",
                run.loaded.path.display(),
                image.id
            ));
        }
        if !promotion.regions.is_empty() && !dry_run {
            let results = run
                .loaded
                .resolve(&run.loaded.pipeline.verify.junit)
                .with_extension("json");
            let verified_now = outcome.verification.as_ref().map(|v| v.json.clone());
            crate::report::json::write_promotion(&results, &promotion, verified_now.as_deref())?;
        }
        outcome.promotion = Some(promotion);
    }
    Ok(outcome)
}

/// The baked image compared with the one the pipeline's pointer names now, shown on the
/// terminal; `None` without a pointer. A comparison that fails is shown, and does not stop the
/// run: it reports on the image, it does not judge it.
fn changes(run: &Run, image: &Image) -> Option<crate::manifest::diff::Comparison> {
    let pointer = &run.loaded.pipeline.promote.as_ref()?.pointer;
    let results = crate::manifest::results_dir(&run.loaded);
    let comparison =
        crate::manifest::compare_with_pointer(run.provider.as_ref(), image, pointer, &results)
            .unwrap_or_else(|e| crate::manifest::diff::Comparison {
                pointer: pointer.clone(),
                against: None,
                diff: None,
                note: Some(format!("the comparison failed: {e}")),
            });
    crate::say!("{}", comparison.text(TERMINAL_DIFF_LINES).trim_end());
    Some(comparison)
}

/// The most changes a run lists on the terminal (`bakery diff` lists every one).
const TERMINAL_DIFF_LINES: usize = 40;

/// What to call when a verify stage starts (the GitHub Action opens its check run there).
type VerifyHook = Box<dyn Fn(&Image) + Send>;
static VERIFY_HOOK: Mutex<Option<VerifyHook>> = Mutex::new(None);

/// Registers `hook` to be called with the image each time a verify stage starts; replaces any
/// earlier registration.
pub fn on_verify_start(hook: impl Fn(&Image) + Send + 'static) {
    *VERIFY_HOOK.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
}

fn verify_stage(
    run: &Run,
    image: &Image,
    suites: &[crate::suites::Suite],
    outcome: &mut Outcome,
) -> Result<()> {
    let stage = Stage::start("verify");
    if let Some(hook) = VERIFY_HOOK
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        hook(image);
    }
    // An image whose verification could not finish is rejected, not left `baked`.
    let verification = verify::verify(run, image, suites).inspect_err(|_| {
        let _ = promote::mark(run.provider.as_ref(), image, status::REJECTED);
    })?;
    run.timings.record("verify", stage.finish());
    let verdict = if verification.verdict.passed {
        status::VERIFIED
    } else {
        status::REJECTED
    };
    promote::mark(run.provider.as_ref(), image, verdict)?;
    outcome.verification = Some(verification);
    Ok(())
}
