//! The verify stage: probe instances from the image run the suites; results go to JUnit, JSON
//! and the terminal.
//!
//! Suites run on the probe group they name (`probe:` in the suite file; `main` by default).
//! Each group that a suite names gets its own probe with its own settings, and the groups are
//! launched and tested in parallel, so destructive experiments on a `chaos` probe do not
//! disturb the checks on `main`.

use std::path::PathBuf;
use std::time::Instant;

use crate::chaos;
use crate::cloud::{Image, Instance, LaunchRequest, Role};
use crate::config::{InstanceSettings, LoadedPipeline, SuiteRef};
use crate::error::{Error, Result};
use crate::gate::{self, Verdict};
use crate::report;
use crate::run::Run;
use crate::suites::{self, Suite, SuiteResult};

/// The probe group of suites that name none.
pub const MAIN_PROBE: &str = "main";

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
/// with `goss_vars`), so a mistake in one is reported before anything boots; every problem
/// found is in the error, one a line.
pub fn load_suites(
    loaded: &LoadedPipeline,
    extra_goss: &[std::path::PathBuf],
    goss_vars: &suites::GossVars,
) -> Result<Vec<Suite>> {
    let (suites, problems) = read_suites(loaded, extra_goss, goss_vars);
    if problems.is_empty() {
        return Ok(suites);
    }
    // An I/O error (an unreadable file) keeps its own kind; configuration errors are joined.
    if let Some(i) = problems.iter().position(|e| !matches!(e, Error::Config(_))) {
        let mut problems = problems;
        return Err(problems.swap_remove(i));
    }
    Err(Error::Config(
        problems
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    ))
}

/// Loads what [`load_suites`] loads, going on past a broken entry: the suites that load and
/// every problem found.
pub fn read_suites(
    loaded: &LoadedPipeline,
    extra_goss: &[std::path::PathBuf],
    goss_vars: &suites::GossVars,
) -> (Vec<Suite>, Vec<Error>) {
    let mut suites = Vec::new();
    let mut problems = Vec::new();
    let verify = &loaded.pipeline.verify;
    let today = chrono::Utc::now().date_naive();
    let (mut builtins, mut benchmarks) = (0, 0);
    for (i, entry) in verify.suites.iter().enumerate() {
        // Where a `cis:` entry is written, for the duplicate-name error.
        let mut cis_at: Option<String> = None;
        let suite = match entry {
            SuiteRef::Bakery(p) => suites::load_suite(&loaded.resolve(p)),
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
                suites::load_goss_with(&loaded.resolve(goss), &vars)
            }
            SuiteRef::Builtin {
                builtin,
                variables,
                probe,
            } => {
                builtins += 1;
                suites::builtin::suite_with(builtin, variables)
                    .map_err(|e| {
                        let at = crate::config::locate(&loaded.path, "builtin", builtins);
                        // Each error of a built-in starts with its key within the entry.
                        Error::Config(format!("{at}: verify.suites[{i}].{e}"))
                    })
                    .map(|mut suite| {
                        if let Some(p) = probe {
                            suite.probe = Some(p.clone());
                        }
                        suite
                    })
            }
            SuiteRef::Cis { cis } => {
                benchmarks += 1;
                let at = crate::config::locate(&loaded.path, "cis", benchmarks);
                let key = format!("{at}: verify.suites[{i}].cis");
                suites::cis::load(cis, &key, &|p| loaded.resolve(p), today).map(|mut suite| {
                    suite.probe = cis.probe.clone();
                    cis_at = Some(at);
                    suite
                })
            }
        };
        match suite {
            Ok(suite) => suites.push((i, suite, cis_at)),
            Err(e) => problems.push(e),
        }
    }
    let mut names: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (i, s, cis_at) in &suites {
        let Some(&first) = names.get(s.name.as_str()) else {
            names.insert(s.name.as_str(), *i);
            continue;
        };
        problems.push(Error::Config(match cis_at {
            Some(at) => format!(
                "{at}: verify.suites[{i}].cis: this suite is named `{name}`, as \
                 verify.suites[{first}] is; their results and scores would be mixed up. Give \
                 each `cis:` entry of the same benchmark and profile its own `name:` \
                 (`name: {name}-2`)",
                name = s.name
            ),
            None => {
                let text = std::fs::read_to_string(&loaded.path).unwrap_or_default();
                crate::config::at(
                    &loaded.path,
                    &text,
                    &format!("verify.suites[{i}]"),
                    &format!(
                        "this suite is named `{}`, as verify.suites[{first}] is; results \
                         would be mixed up. List each suite once",
                        s.name
                    ),
                )
            }
        }));
    }
    let mut suites: Vec<Suite> = suites.into_iter().map(|(_, s, _)| s).collect();
    for goss in extra_goss {
        match suites::load_goss_with(goss, goss_vars) {
            Ok(s) => suites.push(s),
            Err(e) => problems.push(e),
        }
    }
    for suite in &suites {
        if let Some(name) = suite.probe.as_deref() {
            if name != MAIN_PROBE && !verify.probes.contains_key(name) {
                let mut known = vec![MAIN_PROBE.to_string()];
                known.extend(verify.probes.keys().cloned());
                let file = suite
                    .source
                    .as_ref()
                    .map_or_else(|| suite.name.clone(), |p| p.display().to_string());
                let at = suite
                    .source
                    .as_ref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .and_then(|t| {
                        crate::config::locate::position(
                            &t,
                            &[crate::config::locate::Seg::Key("probe")],
                        )
                    })
                    .map(|(l, c)| format!(":{l}:{c}"))
                    .unwrap_or_default();
                problems.push(Error::Config(format!(
                    "{file}{at}: probe: `{name}` is not a probe group of {}; defined: {} (add it under `verify.probes`)",
                    loaded.path.display(),
                    known.join(", ")
                )));
            }
        }
    }
    (suites, problems)
}

/// One probe group: its name, settings and the suites (by index) that run on it.
struct Group<'a> {
    name: &'a str,
    settings: &'a InstanceSettings,
    suites: Vec<usize>,
}

fn groups<'a>(run: &'a Run, suites: &'a [Suite]) -> Vec<Group<'a>> {
    let verify = &run.loaded.pipeline.verify;
    let mut groups: Vec<Group> = Vec::new();
    for (i, suite) in suites.iter().enumerate() {
        let name = suite.probe.as_deref().unwrap_or(MAIN_PROBE);
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.suites.push(i),
            None => groups.push(Group {
                name,
                settings: verify.probes.get(name).unwrap_or(&verify.probe),
                suites: vec![i],
            }),
        }
    }
    if groups.is_empty() {
        groups.push(Group {
            name: MAIN_PROBE,
            settings: &verify.probe,
            suites: Vec::new(),
        });
    }
    groups
}

/// Launches one probe per group from `image` (in parallel), runs each group's suites on its
/// probe, removes the probes, writes the reports.
pub fn verify(run: &Run, image: &Image, suites: &[Suite]) -> Result<Verification> {
    let settings = &run.loaded.pipeline.verify;
    let groups = groups(run, suites);
    let single = groups.len() == 1;
    // A QEMU probe dies with the thread that started it, so each group's thread launches,
    // tests and removes its own probe.
    let outcomes: Vec<Result<GroupOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter()
            .map(|g| s.spawn(move || run_group(run, image, g, suites, single)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Infra(
                        "internal error (a bug in Bakery): a probe group's thread panicked".into(),
                    ))
                })
            })
            .collect()
    });
    let mut indexed = Vec::new();
    let mut probes = Vec::new();
    for outcome in outcomes {
        let (probe, results) = outcome?;
        probes.push(probe);
        indexed.extend(results);
    }
    indexed.sort_by_key(|(i, _)| *i);
    let results: Vec<SuiteResult> = indexed.into_iter().map(|(_, r)| r).collect();

    let verdict = gate::evaluate(&results);
    let junit = run.loaded.resolve(&settings.junit);
    let json = junit.with_extension("json");
    let mut properties = vec![
        ("image.id".to_string(), image.id.clone()),
        ("image.name".to_string(), image.name.clone()),
    ];
    if single {
        properties.push(("probe".to_string(), probes[0].id.clone()));
    }
    properties.extend([
        (
            "provider".to_string(),
            run.provider.provider_name().to_string(),
        ),
        ("run.id".to_string(), run.id.clone()),
    ]);
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

/// A probe group's probe and its suites' results (by suite index).
type GroupOutcome = (Instance, Vec<(usize, SuiteResult)>);

/// Launches the group's probe, runs its suites, removes the probe.
fn run_group(
    run: &Run,
    image: &Image,
    group: &Group,
    suites: &[Suite],
    single: bool,
) -> Result<(Instance, Vec<(usize, SuiteResult)>)> {
    crate::progress::announce("probe-boot");
    let probe = run.provider.launch(
        &LaunchRequest {
            image,
            role: Role::Probe,
            settings: group.settings,
            key: &run.key,
            tags: run.resource_tags(),
        },
        &run.ledger,
    )?;
    let started = Instant::now();
    let results = run_on_probe(run, &probe, image, group, suites, single);
    let terminated = run.provider.terminate(&probe, &run.ledger);
    let results = results?;
    terminated?;
    if !single {
        // Launch, boot, suites and removal of this group's probe.
        run.timings
            .record(&format!("probe {}", group.name), started.elapsed());
    }
    Ok((probe, results))
}

fn run_on_probe(
    run: &Run,
    probe: &Instance,
    image: &Image,
    group: &Group,
    suites: &[Suite],
    single: bool,
) -> Result<Vec<(usize, SuiteResult)>> {
    let settings = &run.loaded.pipeline.verify;
    // Checks read what only root may read (sshd -T, /etc/shadow, nft): a probe reached as
    // another user runs them through sudo.
    let mut transport = crate::transport::as_root(
        crate::bake::connect(run, probe, group.settings)?,
        &group.settings.ssh_user,
    );
    let started = Instant::now();
    crate::progress::announce("suites");
    let options = suites::RunOptions {
        concurrency: settings.concurrency,
        probe: if single {
            format!("{} ({})", probe.id, image.id)
        } else {
            format!("{}: {} ({})", group.name, probe.id, image.id)
        },
        runner_view: run.provider.reach(probe).map(|r| suites::RunnerView {
            host: r.host,
            ports: r.ports,
        }),
        ..Default::default()
    };
    let mut results = Vec::new();
    for &i in &group.suites {
        let suite = &suites[i];
        crate::signals::check()?;
        if let Some(cis) = &suite.cis {
            // A benchmark runs only on the system it was written for.
            let out = transport.run("cat /etc/os-release", options.default_timeout)?;
            suites::cis::check_os(cis, &out.stdout)?;
        }
        let mut result = suites::run_suite(suite, transport.as_ref(), &options);
        // Experiments run after the checks, one at a time: each disturbs the probe.
        for exp in suite.experiments.iter().filter(|e| selects(&options, e)) {
            crate::signals::check()?;
            let began = Instant::now();
            let r = match &exp.skip {
                Some(reason) => chaos::runner::skipped(exp, reason),
                None => chaos::run_experiment(
                    exp,
                    &mut chaos::Target {
                        provider: run.provider.as_ref(),
                        instance: probe,
                        key: &run.key,
                        settings: group.settings,
                        ledger: &run.ledger,
                        transport: &mut transport,
                        options: &options,
                        grace: chaos::runner::GRACE,
                    },
                ),
            };
            result.duration += began.elapsed();
            result.results.push(r);
        }
        if let Some(cis) = &suite.cis {
            suites::cis::apply(&mut result, cis);
        }
        results.push((i, result));
    }
    // A signal during the suites turns its interrupted checks into errors; those say nothing
    // about the image, so the run stops as interrupted instead of rejecting it.
    crate::signals::check()?;
    if single {
        run.timings.record("suites", started.elapsed());
    }
    Ok(results)
}

/// Whether an experiment passes the run's id and tag filters.
fn selects(opts: &suites::RunOptions, exp: &chaos::Experiment) -> bool {
    let has = |tags: &[String]| exp.tags.iter().any(|t| tags.contains(t));
    (opts.ids.is_empty() || opts.ids.contains(&exp.id))
        && (opts.tags.is_empty() || has(&opts.tags))
        && !has(&opts.exclude_tags)
}
