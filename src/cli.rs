//! The command line: parsing, dispatch to the library, and what is printed at the end.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::cloud::local::LocalProvider;
use crate::cloud::{Provider, STATUS_TAG};
use crate::config;
use crate::error::{Error, Result, EXIT_OK};
use crate::ledger::{self, Ledger};
use crate::pipeline::{self, Mode, Outcome};
use crate::suites::Status;

/// Bake a machine image, prove it on a live probe instance, promote it only when every gate
/// passes.
///
/// Exit codes: 0 passed (and promoted where asked), 1 a provisioner or a gate failed,
/// 2 usage or configuration error, 3 infrastructure error, 130/143 interrupted.
#[derive(Debug, Parser)]
#[command(name = "bakery", version, propagate_version = true)]
pub struct Cli {
    /// Where the local image store, pointers and run ledgers live.
    #[arg(long, global = true, env = "BAKERY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// (aws) The region; wins over `aws.region` in the pipeline file and AWS_REGION.
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// (aws) Send every AWS call to this endpoint (an AWS-compatible service, a test server).
    #[arg(
        long,
        global = true,
        env = "BAKERY_AWS_ENDPOINT_URL",
        value_name = "URL"
    )]
    pub endpoint_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

/// The pipeline file option shared by the pipeline commands.
#[derive(Debug, Args)]
pub struct FileArg {
    /// The pipeline file.
    #[arg(short, long, default_value = "bakery.yml", value_name = "PATH")]
    pub file: PathBuf,
}

/// `bakery suites show`.
#[derive(Debug, Subcommand)]
pub enum SuitesCommand {
    /// Print a built-in suite: its variables (with their defaults) and its YAML, or a
    /// benchmark's variables and the controls of a profile.
    ///
    /// Example: bakery suites show cis-debian-12 --profile level-2-server
    Show {
        /// `smoke`, `chaos-systemd` or `cis-<benchmark>` (`bakery suites` lists them).
        name: String,
        /// For a benchmark: the profile whose controls are listed.
        #[arg(long, default_value = "level-1-server")]
        profile: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the pipeline file and every file it names (suites, Goss files and vars, waivers,
    /// attestations, scripts, file sources, playbooks and requirements files, templates)
    /// without booting anything or calling a cloud API; print every problem as
    /// `file:line:col: ...`, exit 0 or 2. Settings of an `ansible` step that would turn host
    /// key checking off or hand Ansible a key file are refused.
    ///
    /// Example: bakery validate examples/local/bakery.yml (or -f PATH, as the other commands)
    Validate {
        #[command(flatten)]
        file: FileArg,
        /// The pipeline file, as an alternative to -f.
        #[arg(value_name = "PATH", conflicts_with = "file")]
        path: Option<PathBuf>,
    },
    /// Bake, verify and promote: the whole pipeline.
    ///
    /// Example: bakery run -f examples/local/bakery.yml
    Run {
        #[command(flatten)]
        file: FileArg,
        /// Verify but do not promote, even if every gate passes.
        #[arg(long)]
        no_promote: bool,
    },
    /// Bake an image and print its id; no verification.
    ///
    /// Provisioners: `shell`, `file`, `reboot` and `ansible` (ansible-playbook on this
    /// machine, on PATH, against the builder over SSH with the run's key in a per-run
    /// ssh-agent and host key checking on).
    ///
    /// Example: bakery bake -f examples/local/ansible.yml
    Bake {
        #[command(flatten)]
        file: FileArg,
    },
    /// Run the pipeline's suites on a probe launched from an existing image.
    ///
    /// Tags the image bakery:status=verified or rejected. `--goss` adds Goss files (templates
    /// rendered with `--vars`/`--vars-inline`, as `goss --vars` does). Without a pipeline file
    /// (no -f and no bakery.yml here), `--goss` files run on a probe with the provider's
    /// defaults.
    /// Example: bakery verify --image ami-0123456789abcdef0 --goss goss.yaml --vars vars.yaml
    Verify {
        #[command(flatten)]
        file: FileArg,
        /// The image to verify.
        #[arg(long, value_name = "ID")]
        image: String,
        /// Also run this Goss file (Goss's format and semantics); may be repeated.
        #[arg(long, value_name = "PATH")]
        goss: Vec<PathBuf>,
        /// A Goss vars file (JSON or YAML) for the templates of --goss files; may be repeated,
        /// later files win.
        #[arg(long, value_name = "FILE", requires = "goss")]
        vars: Vec<PathBuf>,
        /// Goss vars as JSON or YAML text; its keys replace those of the vars files.
        #[arg(long, value_name = "JSON", requires = "goss")]
        vars_inline: Option<String>,
        /// Without a pipeline file: the provider to verify on, `local` (default) or `aws`.
        #[arg(long, value_name = "PROVIDER")]
        provider: Option<String>,
    },
    /// Promote an image that passed verification: tag it, move the pointer, apply retention.
    ///
    /// Example: bakery promote -f examples/local/bakery.yml --image ami-0123456789abcdef0
    Promote {
        #[command(flatten)]
        file: FileArg,
        /// The image to promote.
        #[arg(long, value_name = "ID")]
        image: String,
        /// Print what promotion would do in each region and what retention would delete
        /// (and keep because it is in use), and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show what changed between two images: packages added, removed, upgraded and downgraded
    /// (in the package manager's version order), the kernel, enabled units, listening ports
    /// and local users.
    ///
    /// With one image, compares it with the image the pipeline's pointer (`promote.pointer`)
    /// names now. Each image's manifest is read when it is baked; it is kept with the image
    /// (local store) or in the results directory, named by the image's bakery:manifest tag
    /// (AWS). Without a pipeline file (no -f, no ./bakery.yml), two images of the local store
    /// are compared.
    ///
    /// Example: bakery diff -f examples/local/bakery.yml ami-0123456789abcdef0
    ///
    /// Example: bakery diff ami-00000000000000001 ami-0123456789abcdef0 --json
    Diff {
        #[command(flatten)]
        file: FileArg,
        /// OLD NEW, or only NEW (compared with the image the pointer names).
        #[arg(value_name = "IMAGE", required = true, num_args = 1..=2)]
        images: Vec<String>,
        /// Print the diff as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Release what runs left behind: runs killed outright (SIGKILL, power loss) leave their
    /// ledger on disk, and this finishes their cleanup (VMs, files, and the ssh-agent and
    /// Ansible processes of an `ansible` step).
    ///
    /// Runs whose process is still alive are left alone. With `--provider aws`, also sweeps
    /// the region by tag: instances, security groups and key pairs tagged
    /// bakery:created-by=bakery, and rejected images with their snapshots, created more than
    /// `--older-than` ago (or past their bakery:expires tag).
    /// Example: bakery cleanup --provider aws --region eu-west-1 --older-than 2h --dry-run
    Cleanup {
        /// List what would be released without releasing it.
        #[arg(long)]
        dry_run: bool,
        /// Also sweep this provider's resources by tag: `aws`.
        #[arg(long, value_name = "PROVIDER")]
        provider: Option<String>,
        /// With --provider: only what was created longer ago than this (`2h`, `30m`).
        #[arg(long, default_value = "2h", value_name = "AGE")]
        older_than: humantime::Duration,
    },
    /// List the images in the local store.
    ///
    /// Example: bakery images
    Images {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// With `provider: aws`: list the images of the regions this pipeline file promotes
        /// to (its region and `promote.regions`), with pointers, sharing and deprecation.
        #[arg(short, long, value_name = "PATH")]
        file: Option<PathBuf>,
    },
    /// Manage local base images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// List the suites built into Bakery (smoke, chaos-systemd, CIS benchmarks), or print one.
    ///
    /// A pipeline names them in `verify.suites` as `- builtin: smoke`,
    /// `- builtin: chaos-systemd` (with `variables: {services: [nginx]}` and a `chaos` probe
    /// group under `verify.probes`) or `- cis: {benchmark: debian-12, profile: level-1-server}`.
    /// Example: bakery suites show chaos-systemd
    Suites {
        #[command(subcommand)]
        show: Option<SuitesCommand>,
    },
    /// Print the JSON Schema of the pipeline file (or, with --suite, of a suite file), for
    /// editors.
    ///
    /// Example: bakery schema > bakery.schema.json
    Schema {
        /// The schema of a suite file instead.
        #[arg(long)]
        suite: bool,
    },
    /// Say whether the newest source image differs from the one the last promoted image was
    /// baked from: prints `true` (a rebuild would start from a newer source, or nothing was
    /// promoted yet) or `false`, and why on stderr.
    ///
    /// The last promoted image is the one `promote.pointer` names, else the newest image tagged
    /// bakery:status=promoted; it records its source in the bakery:source tag.
    /// Example: bakery outdated -f examples/aws/bakery.yml
    Outdated {
        #[command(flatten)]
        file: FileArg,
    },
    /// Run as the GitHub Action's entrypoint: read the INPUT_* and GITHUB_* environment the
    /// runner sets, run the mode it asks for, write outputs, job summary and check run.
    ///
    /// See action.yml for the inputs and outputs.
    Action,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build a local base image from distribution packages (needs root, mmdebstrap, QEMU).
    ///
    /// Example: bakery image bootstrap debian-12
    Bootstrap {
        /// The distribution: debian-12.
        distro: String,
    },
    /// Delete an image from the local store, unless a pointer names it or another image is
    /// baked on top of it (for example a base image that a newer Bakery replaced).
    ///
    /// Example: bakery image delete ami-0123456789abcdef0
    Delete {
        /// The image id (`bakery images` lists them).
        id: String,
    },
}

/// The default data directory: `$XDG_DATA_HOME/bakery`, else `~/.local/share/bakery`.
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("bakery");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".local/share/bakery")
}

/// Runs a parsed command line and returns the process exit code. `bakery action` is not run
/// here: the binary hands it to the GitHub Action's entrypoint, which builds on this module.
pub fn run(cli: Cli) -> Result<i32> {
    let data_dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    crate::cloud::set_aws_overrides(
        cli.region.clone(),
        cli.endpoint_url.clone().filter(|u| !u.is_empty()),
    );
    match cli.command {
        Command::Validate { file, path } => crate::validate::run(path.as_ref().unwrap_or(&file.file)),
        Command::Run { file, no_promote } => pipeline_command(
            &file.file,
            &data_dir,
            Mode::Run {
                promote: !no_promote,
            },
        ),
        Command::Bake { file } => pipeline_command(&file.file, &data_dir, Mode::Bake),
        Command::Verify {
            file,
            image,
            goss,
            vars,
            vars_inline,
            provider,
        } => {
            let goss_only =
                !goss.is_empty() && file.file == Path::new("bakery.yml") && !file.file.exists();
            let mode = Mode::Verify {
                image,
                goss,
                goss_vars: crate::suites::GossVars {
                    files: vars,
                    inline: vars_inline,
                },
            };
            if goss_only {
                let loaded = goss_only_pipeline(provider.as_deref())?;
                run_pipeline(loaded, &data_dir, mode)
            } else if provider.is_some() {
                Err(Error::Config(
                    "--provider applies only to `bakery verify --goss` without a pipeline file; with one, its `provider:` decides".into(),
                ))
            } else {
                pipeline_command(&file.file, &data_dir, mode)
            }
        }
        Command::Promote {
            file,
            image,
            dry_run,
        } => pipeline_command(&file.file, &data_dir, Mode::Promote { image, dry_run }),
        Command::Diff { file, images, json } => diff(&file.file, &data_dir, &images, json),
        Command::Cleanup {
            dry_run,
            provider,
            older_than,
        } => {
            let swept = match provider.as_deref() {
                None | Some("local") => 0,
                Some("aws") => aws_sweep(older_than.into(), dry_run)?,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "--provider: `{other}` is not a provider; use `aws` (or leave it out)"
                    )))
                }
            };
            let code = cleanup(&data_dir, dry_run)?;
            if swept > 0 {
                return Err(Error::Infra(format!(
                    "{swept} aws resource(s) could not be removed"
                )));
            }
            Ok(code)
        }
        Command::Images {
            json,
            file: Some(file),
        } => regional_images(&file, &data_dir, json),
        Command::Images { json, file: None } => images(&data_dir, json),
        Command::Image(ImageCommand::Bootstrap { distro }) => bootstrap(&data_dir, &distro),
        Command::Image(ImageCommand::Delete { id }) => delete_image(&data_dir, &id),
        Command::Outdated { file } => {
            let loaded = config::load(&file.file)?;
            let staleness = crate::outdated::check(&loaded, &data_dir)?;
            crate::say!("{}", staleness.reason);
            crate::out!("{}", staleness.outdated);
            Ok(EXIT_OK)
        }
        // The action sits above the CLI: the `bakery` binary runs it, and a command line the
        // action builds never names it.
        Command::Action => Err(Error::Config(
            "`bakery action` runs through bakery::action::run (as the bakery binary does), not cli::run".into(),
        )),
        Command::Suites { show } => {
            let text = match show {
                None => crate::suites::builtin::list(),
                Some(SuitesCommand::Show { name, profile }) => {
                    crate::suites::builtin::describe(&name, &profile)?
                }
            };
            crate::out!("{}", text.trim_end());
            Ok(EXIT_OK)
        }
        Command::Schema { suite } => {
            let schema = if suite {
                crate::suites::schema()
            } else {
                config::schema()
            };
            crate::out!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("schema is JSON")
            );
            Ok(EXIT_OK)
        }
    }
}

fn pipeline_command(file: &Path, data_dir: &Path, mode: Mode) -> Result<i32> {
    let loaded = config::load(file)?;
    run_pipeline(loaded, data_dir, mode)
}

fn run_pipeline(loaded: config::LoadedPipeline, data_dir: &Path, mode: Mode) -> Result<i32> {
    let outcome = pipeline::execute(loaded, data_dir, mode)?;
    print_outcome(&outcome);
    Ok(outcome.exit_code())
}

/// The pipeline `bakery verify --goss` uses when there is no pipeline file: the provider's
/// defaults, no suites of its own, results under ./bakery-results; it says what it chose.
fn goss_only_pipeline(provider: Option<&str>) -> Result<config::LoadedPipeline> {
    let provider = provider.unwrap_or("local");
    if !["local", "aws"].contains(&provider) {
        return Err(Error::Config(format!(
            "--provider: `{provider}` is not a provider; use `local` or `aws`"
        )));
    }
    let doc = serde_json::json!({
        "provider": provider,
        "source": {"local": "debian-12"},
        "image": {"name": "goss-verify"},
        "verify": {"suites": []},
    });
    let pipeline: config::Pipeline = serde_json::from_value(doc)
        .map_err(|e| Error::Config(format!("the default pipeline: {e}")))?;
    let dir = std::env::current_dir().map_err(|e| Error::io("reading", Path::new("."), e))?;
    let probe = &pipeline.verify.probe;
    crate::say!(
        "no pipeline file (bakery.yml) here: verifying with the {provider} provider's defaults: a probe with {} CPUs, {} MB, logging in as {}, boot timeout {}; {} checks at a time; results in {}. Pass -f FILE to choose.",
        probe.cpus,
        probe.memory_mb,
        probe.ssh_user,
        humantime::format_duration(probe.boot_timeout.0),
        pipeline.verify.concurrency,
        dir.join(&pipeline.verify.junit).display()
    );
    Ok(config::LoadedPipeline {
        path: dir.join("bakery.yml"),
        pipeline,
        dir,
    })
}

/// Prints what a pipeline run did: the verdict, failed checks, timings, the image id.
pub fn print_outcome(outcome: &Outcome) {
    let Some(image) = &outcome.image else { return };
    if let Some(c) = &outcome.changes {
        crate::say!("\n{}", crate::progress::continued(&c.headline()));
    }
    if let Some(v) = &outcome.verification {
        if !v.verdict.passed {
            crate::say!(
                "\nREJECTED: image {} ({}) did not pass the gate:",
                image.id,
                image.name
            );
            for reason in &v.verdict.reasons {
                crate::say!("  - {}", crate::progress::continued(reason));
            }
            for suite in &v.results {
                for r in suite
                    .results
                    .iter()
                    .filter(|r| matches!(r.status, Status::Failed | Status::Error))
                {
                    let detail = format!(
                        "  {} {}/{}: expected {}, got {}",
                        r.status.as_str().to_uppercase(),
                        suite.suite,
                        r.id,
                        r.expected.as_deref().unwrap_or("-"),
                        r.actual.as_deref().unwrap_or(&r.message)
                    );
                    crate::say!("{}", crate::progress::continued(&detail));
                }
            }
            crate::say!("JUnit: {}", v.junit.display());
            crate::say!(
                "image {} is tagged {STATUS_TAG}=rejected; nothing was promoted",
                image.id
            );
            return;
        }
        crate::say!("JUnit: {}", v.junit.display());
    }
    crate::say!("\ntimings:");
    for (name, took) in &outcome.timings {
        crate::say!("  {name:<16} {:>7.1}s", took.as_secs_f64());
    }
    match &outcome.promotion {
        Some(p) if p.dry_run => {
            crate::say!(
                "\nDRY RUN: image {} was not promoted and nothing was deleted",
                image.id
            );
        }
        Some(p) if !p.failed().is_empty() => {
            let failed: Vec<&str> = p.failed().iter().map(|r| r.region.as_str()).collect();
            crate::say!(
                "\nPROMOTION INCOMPLETE: image {} failed in {} of {} regions ({}); the others are done. Run `{}` again: it reuses what is done and finishes the rest",
                image.id,
                failed.len(),
                p.regions.len(),
                failed.join(", "),
                p.rerun.as_deref().unwrap_or("bakery promote")
            );
        }
        Some(p) => {
            // With regions, the pointer of the image's own region may name a copy of it.
            let named = p
                .regions
                .first()
                .and_then(|r| r.image.as_deref())
                .unwrap_or(&image.id);
            let pointer = p
                .pointer
                .as_ref()
                .map(|(name, v)| format!("; pointer {name} -> {named} (version {v})"))
                .unwrap_or_default();
            let regions = match p.regions.len() {
                0 | 1 => String::new(),
                n => format!(" in {n} regions"),
            };
            let unchanged = if p.unchanged() {
                "; it was complete already: nothing changed"
            } else {
                ""
            };
            crate::say!(
                "\nPROMOTED: image {} ({}){regions}{pointer}{unchanged}",
                image.id,
                image.name
            );
        }
        None if outcome.verification.is_some() => {
            crate::say!(
                "\nVERIFIED: image {} ({}) passed every gate",
                image.id,
                image.name
            )
        }
        None => crate::say!("\nBAKED: image {} ({})", image.id, image.name),
    }
    crate::out!("{}", image.id);
}

/// Sweeps the region by tag; returns how many removals failed.
#[cfg(not(feature = "aws"))]
fn aws_sweep(_older_than: std::time::Duration, _dry_run: bool) -> Result<usize> {
    Err(crate::cloud::without_aws("`bakery cleanup --provider aws`"))
}

/// Sweeps the region by tag; returns how many removals failed.
#[cfg(feature = "aws")]
fn aws_sweep(older_than: std::time::Duration, dry_run: bool) -> Result<usize> {
    let provider = crate::cloud::aws::AwsProvider::new(Default::default(), "--provider aws")?;
    let report = crate::cloud::aws::sweep::sweep(&provider, older_than, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for l in &report.removed {
        crate::say!("aws {}: {verb} {l}", provider.region());
    }
    for l in &report.kept {
        crate::say!(
            "aws {}: kept {l} (younger than {})",
            provider.region(),
            humantime::format_duration(older_than)
        );
    }
    for e in &report.errors {
        crate::say!("aws {}: error: {e}", provider.region());
    }
    if report.removed.is_empty() && report.errors.is_empty() {
        crate::say!(
            "aws {}: nothing older than {} to remove",
            provider.region(),
            humantime::format_duration(older_than)
        );
    }
    Ok(report.errors.len())
}

/// The provider that releases a ledger's cloud entries: the aws provider of the entries'
/// region when there are aws entries, else the local one.
fn releaser_for(data_dir: &Path, file: &ledger::LedgerFile) -> Result<Box<dyn ledger::Release>> {
    let region = file.entries.iter().find_map(|e| match &e.resource {
        ledger::Resource::Cloud {
            provider, region, ..
        } if provider == "aws" && !e.released => Some(region.clone()),
        _ => None,
    });
    match region {
        #[cfg(not(feature = "aws"))]
        Some(_) => Err(crate::cloud::without_aws(&format!(
            "run {}: releasing its AWS resources",
            file.run_id
        ))),
        #[cfg(feature = "aws")]
        Some(region) => {
            let settings = crate::config::AwsSettings {
                region,
                ..Default::default()
            };
            Ok(Box::new(crate::cloud::aws::AwsProvider::new(
                settings,
                "the run's ledger",
            )?))
        }
        None => Ok(Box::new(LocalProvider::new(data_dir))),
    }
}

fn cleanup(data_dir: &Path, dry_run: bool) -> Result<i32> {
    let mut failures = 0;
    let paths = Ledger::list(&pipeline::ledger_dir(data_dir))?;
    if paths.is_empty() {
        crate::say!(
            "nothing to clean up: no run ledgers in {}",
            pipeline::ledger_dir(data_dir).display()
        );
    }
    // A damaged ledger does not stop the others from being cleaned up; its error (with how
    // to recover) is the command's.
    let mut damaged: Option<Error> = None;
    for path in paths {
        let ledger = match Ledger::open(&path) {
            Ok(l) => l,
            Err(e) => {
                damaged.get_or_insert(e);
                continue;
            }
        };
        let snapshot = ledger.snapshot();
        if ledger::owner_alive(snapshot.pid) {
            crate::say!(
                "{}: still running (pid {}); left alone",
                snapshot.run_id,
                snapshot.pid
            );
            continue;
        }
        let pending: Vec<_> = snapshot
            .entries
            .iter()
            .rev()
            .filter(|e| !e.released)
            .collect();
        crate::say!(
            "{}: {} resource(s) to release",
            snapshot.run_id,
            pending.len()
        );
        for e in &pending {
            crate::say!("  {} ({})", e.resource, e.purpose);
        }
        if dry_run {
            continue;
        }
        let provider = releaser_for(data_dir, &snapshot)?;
        let errors = ledger.unwind(Some(provider.as_ref()));
        for e in &errors {
            crate::say!("  error: {e}");
        }
        failures += errors.len();
    }
    if failures > 0 {
        return Err(Error::Infra(format!(
            "{failures} resource(s) could not be released"
        )));
    }
    match damaged {
        Some(e) => Err(e),
        None => Ok(EXIT_OK),
    }
}

/// `bakery diff`: the changes from the older image to the newer one. Without a pipeline file
/// (no `-f`, no ./bakery.yml) two images of the local store are compared.
fn diff(file: &Path, data_dir: &Path, images: &[String], json: bool) -> Result<i32> {
    let loaded = if file == Path::new("bakery.yml") && !file.exists() {
        None
    } else {
        Some(config::load(file)?)
    };
    let (provider, results): (std::sync::Arc<dyn crate::cloud::Provider>, PathBuf) = match &loaded {
        Some(loaded) => (
            crate::cloud::open_for(loaded, data_dir)?,
            crate::manifest::results_dir(loaded),
        ),
        None => (
            std::sync::Arc::new(LocalProvider::new(data_dir)),
            PathBuf::from("bakery-results"),
        ),
    };
    let (old, new) = match images {
        [old, new] => (old.clone(), new.clone()),
        [new] => {
            let Some(loaded) = &loaded else {
                return Err(Error::Config(format!(
                    "bakery diff {new}: with one image, the pipeline file's `promote.pointer` \
                     names the other, and there is no bakery.yml here; pass -f FILE, or name \
                     two images (`bakery diff OLD NEW`)"
                )));
            };
            let Some(promote) = &loaded.pipeline.promote else {
                return Err(Error::Config(format!(
                    "bakery diff {new}: {} has no `promote.pointer` to compare with; name two \
                     images (`bakery diff OLD NEW`)",
                    loaded.path.display()
                )));
            };
            let Some(current) = provider.pointer(&promote.pointer)? else {
                return Err(Error::Config(format!(
                    "bakery diff {new}: the pointer {} names no image yet; name two images \
                     (`bakery diff OLD NEW`)",
                    promote.pointer
                )));
            };
            (current, new.clone())
        }
        _ => {
            return Err(Error::Config(
                "bakery diff takes one image (compared with the pointer's) or two (OLD NEW)".into(),
            ))
        }
    };
    let d = crate::manifest::compare(provider.as_ref(), &old, &new, &results)?;
    if json {
        crate::out!(
            "{}",
            serde_json::to_string_pretty(&d).expect("a diff serializes")
        );
    } else {
        crate::out!("{}", d.text(usize::MAX).trim_end());
    }
    Ok(EXIT_OK)
}

fn images(data_dir: &Path, json: bool) -> Result<i32> {
    let provider = LocalProvider::new(data_dir);
    let images = provider.images()?;
    if json {
        crate::out!(
            "{}",
            serde_json::to_string_pretty(&images).expect("images are JSON")
        );
        return Ok(EXIT_OK);
    }
    if images.is_empty() {
        crate::say!(
            "no images in {}; `bakery image bootstrap debian-12` builds a base image",
            data_dir.display()
        );
        return Ok(EXIT_OK);
    }
    crate::out!(
        "{:<21}  {:<36}  {:<21}  {:<9}  {:<9}  {:>8}  {:<20}  TAGS",
        "ID",
        "NAME",
        "PARENT",
        "STATE",
        "STATUS",
        "SIZE",
        "CREATED"
    );
    for i in images {
        let tags: Vec<String> = i
            .tags
            .iter()
            .filter(|(k, _)| k.as_str() != STATUS_TAG)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        crate::out!(
            "{:<21}  {:<36}  {:<21}  {:<9}  {:<9}  {:>7.0}M  {:<20}  {}",
            i.id,
            i.name,
            i.parent.as_deref().unwrap_or("-"),
            i.state,
            i.tags.get(STATUS_TAG).map_or("-", String::as_str),
            i.size_bytes as f64 / (1024.0 * 1024.0),
            i.created,
            tags.join(",")
        );
    }
    Ok(EXIT_OK)
}

/// `bakery images -f FILE`: the images of every region the pipeline promotes to.
fn regional_images(file: &Path, data_dir: &Path, json: bool) -> Result<i32> {
    let loaded = config::load(file)?;
    let provider = crate::cloud::open_for(&loaded, data_dir)?;
    let Some(home) = provider.home_region() else {
        return images(data_dir, json);
    };
    let mut regions = vec![home.clone()];
    if let Some(p) = &loaded.pipeline.promote {
        regions.extend(
            p.regions
                .iter()
                .map(|r| r.region.0.clone())
                .filter(|r| *r != home),
        );
    }
    let mut entries = Vec::new();
    for region in &regions {
        entries.extend(provider.catalog(region)?);
    }
    if json {
        crate::out!(
            "{}",
            serde_json::to_string_pretty(&entries).expect("images are JSON")
        );
        return Ok(EXIT_OK);
    }
    if entries.is_empty() {
        crate::say!("no images made by Bakery in {}", regions.join(", "));
        return Ok(EXIT_OK);
    }
    crate::out!(
        "{:<21}  {:<36}  {:<14}  {:<9}  {:<28}  {:<20}  SHARED WITH",
        "ID",
        "NAME",
        "REGION",
        "STATUS",
        "POINTERS",
        "DEPRECATION"
    );
    for e in entries {
        crate::out!(
            "{:<21}  {:<36}  {:<14}  {:<9}  {:<28}  {:<20}  {}",
            e.image.id,
            e.image.name,
            e.region,
            e.image.tags.get(STATUS_TAG).map_or("-", String::as_str),
            if e.pointers.is_empty() {
                "-".to_string()
            } else {
                e.pointers.join(",")
            },
            e.deprecation.as_deref().unwrap_or("-"),
            if e.shared_with.is_empty() {
                "-".to_string()
            } else {
                e.shared_with.join(", ")
            }
        );
    }
    Ok(EXIT_OK)
}

fn delete_image(data_dir: &Path, id: &str) -> Result<i32> {
    LocalProvider::new(data_dir).delete_image(id)?;
    crate::say!("deleted image {id}");
    Ok(EXIT_OK)
}

fn bootstrap(data_dir: &Path, distro: &str) -> Result<i32> {
    let provider = std::sync::Arc::new(LocalProvider::new(data_dir));
    let run_id = format!("bootstrap-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    let ledger = Ledger::create(&pipeline::ledger_dir(data_dir), &run_id)?;
    {
        let ledger = ledger.clone();
        crate::signals::set_emergency_cleanup(move || {
            ledger.unwind(None);
        });
    }
    let spinner =
        crate::progress::Spinner::start(&format!("bootstrapping {distro} with mmdebstrap"));
    let result = provider.bootstrap(distro, &ledger);
    let errors = ledger.unwind(None);
    crate::signals::clear_emergency_cleanup();
    let image = result?;
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    spinner.finish(&format!("base image {} ({})", image.id, image.name));
    crate::out!("{}", image.id);
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_is_not_run_from_a_parsed_command_line() {
        let cli = Cli::try_parse_from(["bakery", "action"]).unwrap();
        let e = run(cli).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains("bakery::action::run"), "{e}");
    }
}
