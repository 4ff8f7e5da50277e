//! The verify stage: a probe instance from the image runs the suites; results go to JUnit,
//! JSON and the terminal.

use std::path::PathBuf;
use std::time::Instant;

use crate::cloud::{Image, LaunchRequest, Role};
use crate::config::SuiteRef;
use crate::error::{Error, Result};
use crate::gate::{self, Verdict};
use crate::pipeline::Run;
use crate::report;
use crate::suites::{self, Suite, SuiteResult};

/// What the verify stage found.
#[derive(Debug)]
pub struct Verification {
    pub results: Vec<SuiteResult>,
    pub verdict: Verdict,
    /// Where the JUnit XML was written.
    pub junit: PathBuf,
    /// Where the JSON results were written.
    pub json: PathBuf,
}

/// Loads every suite of the pipeline, and the Goss files given on the command line (rendered
/// with `goss_vars`), so a mistake in one is reported before anything boots.
pub fn load_suites(
    run: &Run,
    extra_goss: &[std::path::PathBuf],
    goss_vars: &suites::GossVars,
) -> Result<Vec<Suite>> {
    let mut suites = Vec::new();
    let loaded = &run.loaded;
    let today = chrono::Utc::now().date_naive();
    let (mut builtins, mut benchmarks) = (0, 0);
    for (i, entry) in loaded.pipeline.verify.suites.iter().enumerate() {
        suites.push(match entry {
            SuiteRef::Bakery(p) => suites::load_suite(&loaded.resolve(p))?,
            SuiteRef::Goss {
                goss,
                vars,
                vars_inline,
            } => {
                let vars = suites::GossVars {
                    files: vars.iter().map(|v| loaded.resolve(v)).collect(),
                    inline: vars_inline
                        .as_ref()
                        .map(|m| serde_json::Value::Object(m.clone()).to_string()),
                };
                suites::load_goss_with(&loaded.resolve(goss), &vars)?
            }
            SuiteRef::Builtin { builtin } => {
                builtins += 1;
                suites::builtin::suite(builtin).map_err(|e| {
                    let at = crate::config::locate(&loaded.path, "builtin", builtins);
                    Error::Config(format!("{at}: verify.suites[{i}].builtin: {e}"))
                })?
            }
            SuiteRef::Cis { cis } => {
                benchmarks += 1;
                let at = crate::config::locate(&loaded.path, "cis", benchmarks);
                let key = format!("{at}: verify.suites[{i}].cis");
                suites::cis::load(cis, &key, &|p| loaded.resolve(p), today)?
            }
        });
    }
    let mut names = std::collections::BTreeSet::new();
    for s in &suites {
        if !names.insert(s.name.as_str()) {
            return Err(Error::Config(format!(
                "{}: verify.suites: two suites are named `{}`; results would be mixed up",
                loaded.path.display(),
                s.name
            )));
        }
    }
    for goss in extra_goss {
        suites.push(suites::load_goss_with(goss, goss_vars)?);
    }
    Ok(suites)
}

/// Launches a probe from `image`, runs `suites` on it, removes the probe, writes the reports.
pub fn verify(run: &Run, image: &Image, suites: &[Suite]) -> Result<Verification> {
    let settings = &run.loaded.pipeline.verify;
    let probe = run.provider.launch(
        &LaunchRequest {
            image,
            role: Role::Probe,
            settings: &settings.probe,
            key: &run.key,
            tags: run.resource_tags(),
        },
        &run.ledger,
    )?;
    let results = run_on_probe(run, &probe, image, suites);
    let terminated = run.provider.terminate(&probe, &run.ledger);
    let results = results?;
    terminated?;

    let verdict = gate::evaluate(&results);
    let junit = run.loaded.resolve(&settings.junit);
    let json = junit.with_extension("json");
    let properties = vec![
        ("image.id".to_string(), image.id.clone()),
        ("image.name".to_string(), image.name.clone()),
        ("probe".to_string(), probe.id.clone()),
        (
            "provider".to_string(),
            run.provider.provider_name().to_string(),
        ),
        ("run.id".to_string(), run.id.clone()),
    ];
    report::junit::write(&junit, &results, &properties)?;
    report::json::write(&json, &results, &properties)?;
    crate::say!("{}", report::summary::table(&results));
    Ok(Verification {
        results,
        verdict,
        junit,
        json,
    })
}

fn run_on_probe(
    run: &Run,
    probe: &crate::cloud::Instance,
    image: &Image,
    suites: &[Suite],
) -> Result<Vec<SuiteResult>> {
    let settings = &run.loaded.pipeline.verify;
    let mut transport = crate::bake::connect(run, probe, &settings.probe)?;
    // Checks read what only root may read (sshd -T, /etc/shadow, nft): a probe reached as
    // another user runs them through sudo.
    if settings.probe.ssh_user != "root" {
        transport = Box::new(crate::transport::Sudo(transport));
    }
    let started = Instant::now();
    let options = suites::RunOptions {
        concurrency: settings.concurrency,
        probe: format!("{} ({})", probe.id, image.id),
        runner_view: run.provider.reach(probe).map(|r| suites::RunnerView {
            host: r.host,
            ports: r.ports,
        }),
        ..Default::default()
    };
    let mut results = Vec::new();
    for suite in suites {
        crate::signals::check()?;
        if let Some(cis) = &suite.cis {
            // A benchmark runs only on the system it was written for.
            let out = transport.run("cat /etc/os-release", options.default_timeout)?;
            suites::cis::check_os(cis, &out.stdout)?;
        }
        let mut result = suites::run_suite(suite, transport.as_ref(), &options);
        if let Some(cis) = &suite.cis {
            suites::cis::apply(&mut result, cis);
        }
        results.push(result);
    }
    // A signal during the suites turns its interrupted checks into errors; those say nothing
    // about the image, so the run stops as interrupted instead of rejecting it.
    crate::signals::check()?;
    run.timings.record("suites", started.elapsed());
    Ok(results)
}
