//! Check engine vs testinfra, ssh and a shell script (issue 3, item 8).
//!
//! Boots one local Debian 12 probe VM, generates 500 mixed checks (file, package, service, port,
//! user, command, kernel-param) from facts read off that VM, and times the same checks with:
//!
//! 1. Bakery's engine (`run_suite` over a fresh SSH connection),
//! 2. pytest-testinfra, paramiko backend,
//! 3. pytest-testinfra, ssh backend multiplexed through a ControlPath in an ssh_config (`-n 2`),
//! 4. one `ssh` process per check (on a stratified sample, see `--ssh-sample`),
//! 5. one shell script, one command per check, in a single `ssh` exec (the naive floor),
//!
//! first as is, then with 50 ms of delay added to the guest's egress with `tc netem`. Every tool
//! must report all of its checks as passed, or the benchmark fails. The VM, the key and every
//! scratch file are on the run's ledger and released at the end, on error and on Ctrl-C.
//!
//! Run with `scripts/bench-checks.sh` (it prepares the Python venv); options after `--`:
//! `--runs N` (repeat each setting, report medians), `--ssh-sample N` (checks timed with one ssh
//! process each; default 100), `--python PATH`, `--data-dir DIR`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bakery::cloud::local::LocalProvider;
use bakery::cloud::{LaunchRequest, Provider, Role, Tags};
use bakery::config::{InstanceSettings, Source};
use bakery::error::{Error, Result};
use bakery::ledger::{Ledger, Resource};
use bakery::suites::{parse_suite, run_suite, RunOptions, Status};
use bakery::transport::ssh::KeyPair;
use bakery::transport::Transport;
use serde_json::{json, Value};

const TOOLS: [&str; 5] = [
    "bakery",
    "testinfra-paramiko",
    "testinfra-ssh-mux",
    "ssh-per-check",
    "naive-script",
];

struct Opts {
    runs: usize,
    ssh_sample: usize,
    python: PathBuf,
    data_dir: PathBuf,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The options after `--`; `Err` names the option that was not understood.
fn parse_args() -> std::result::Result<Opts, String> {
    let mut o = Opts {
        runs: 1,
        ssh_sample: 100,
        python: repo().join(".cache/bench-venv/bin/python"),
        data_dir: repo().join("target/bench-data"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `cargo bench` passes --bench to harness=false targets.
        if arg == "--bench" {
            continue;
        }
        if !matches!(
            arg.as_str(),
            "--runs" | "--ssh-sample" | "--python" | "--data-dir"
        ) {
            return Err(format!(
                "unknown option {arg}; the options are --runs N, --ssh-sample N, \
                 --python PATH and --data-dir DIR (run it with scripts/bench-checks.sh)"
            ));
        }
        let Some(value) = args.next() else {
            return Err(format!("{arg} needs a value"));
        };
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{arg} takes a whole number, not {v:?}"))
        };
        match arg.as_str() {
            "--runs" => o.runs = number(&value)?,
            "--ssh-sample" => o.ssh_sample = number(&value)?,
            "--python" => o.python = value.into(),
            _ => o.data_dir = value.into(),
        }
    }
    o.runs = o.runs.max(1);
    // Tools run in the scratch directory: make the interpreter's path absolute (without
    // resolving the venv's symlink, which would leave the venv).
    if o.python.is_relative() {
        let cwd = std::env::current_dir().map_err(|e| format!("the working directory: {e}"))?;
        o.python = cwd.join(&o.python);
    }
    o.ssh_sample = o.ssh_sample.clamp(1, 500);
    Ok(o)
}

fn main() {
    bakery::signals::install().expect("signal handlers");
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("bench-checks: {message}");
            std::process::exit(2);
        }
    };
    let code = match run(&opts) {
        Ok(()) => 0,
        Err(Error::Interrupted(sig)) => 128 + sig,
        Err(e) => {
            eprintln!("bench-checks: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(opts: &Opts) -> Result<()> {
    seed_base_image(&opts.data_dir);
    let provider = Arc::new(LocalProvider::new(&opts.data_dir));
    let id = format!(
        "bench-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S"),
        &bakery::cloud::new_id("r")[2..8]
    );
    let ledger = Ledger::create(&opts.data_dir.join("runs"), &id)?;
    {
        let (ledger, provider) = (ledger.clone(), provider.clone());
        bakery::signals::set_emergency_cleanup(move || {
            for e in ledger.unwind(Some(provider.as_ref())) {
                eprintln!("bench-checks: cleanup: {e}");
            }
        });
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bench(opts, provider.as_ref(), &ledger, &id)
    }))
    .unwrap_or_else(|_| Err(Error::Infra("the benchmark panicked".into())));
    let errors = ledger.unwind(Some(provider.as_ref()));
    bakery::signals::clear_emergency_cleanup();
    for e in &errors {
        eprintln!("bench-checks: cleanup: {e}");
    }
    result
}

/// Hard-links the current base image the end-to-end tests bootstrapped (in Cargo's target
/// tmp directory) into the benchmark's data directory when that has no images yet; otherwise
/// `resolve_source` bootstraps one.
fn seed_base_image(data: &Path) {
    use bakery::cloud::local::bootstrap;
    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bakery-base/images");
    if data.join("images").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for entry in entries.flatten() {
        let from = entry.path();
        let Ok(record) = std::fs::read_to_string(from.join("image.json")) else {
            continue;
        };
        let tags = serde_json::from_str::<Value>(&record).map(|r| r["tags"].clone());
        let current = tags.is_ok_and(|t| {
            t[bootstrap::BASE_TAG] == "debian-12" && t[bootstrap::RECIPE_TAG] == bootstrap::RECIPE
        });
        if !current {
            continue;
        }
        // The record names its boot files relative to its directory, so it copies as it is.
        let to = data.join("images").join(entry.file_name());
        let ok = std::fs::create_dir_all(to.join("boot")).is_ok()
            && ["disk.qcow2", "boot/vmlinuz", "boot/initrd.img"]
                .iter()
                .all(|f| std::fs::hard_link(from.join(f), to.join(f)).is_ok())
            && std::fs::write(to.join("image.json"), record).is_ok();
        if !ok {
            let _ = std::fs::remove_dir_all(data.join("images"));
        }
        return;
    }
}

/// One check, in the form every tool is generated from.
struct Check {
    id: String,
    kind: &'static str,
    /// JSON for testinfra (kind-specific fields).
    spec: Value,
    /// The check as a shell command that exits 0 when it holds.
    shell: String,
    /// The check as a Bakery suite item (YAML flow mapping, without the id).
    bakery: String,
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn sh(s: &str) -> String {
    bakery::transport::shell_quote(s)
}

fn bench(opts: &Opts, provider: &LocalProvider, ledger: &Ledger, id: &str) -> Result<()> {
    // Scratch directory: private key, ssh_config, known_hosts, generated checks, tool output.
    let scratch = std::env::temp_dir().join(format!("bakery-{id}"));
    ledger.record(
        Resource::Path {
            path: scratch.clone(),
        },
        "benchmark scratch directory",
    )?;
    std::fs::create_dir(&scratch).map_err(|e| Error::Infra(format!("creating scratch: {e}")))?;
    set_mode(&scratch, 0o700)?;

    let key = KeyPair::generate(&format!("bakery-{id}"))?;
    let settings = InstanceSettings::default();
    let image = provider.resolve_source(&Source::Local("debian-12".into()), ledger)?;
    let mut tags = Tags::new();
    tags.insert("bakery:run-id".into(), id.into());
    eprintln!("bench-checks: launching a probe from {} ...", image.id);
    let probe = provider.launch(
        &LaunchRequest {
            image: &image,
            role: Role::Probe,
            settings: &settings,
            key: &key,
            tags,
        },
        ledger,
    )?;
    let started = Instant::now();
    let transport = provider.connect(&probe, &key, &settings)?;
    transport.run(
        "if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null 2>&1 || true; fi",
        Duration::from_secs(300),
    )?;
    eprintln!(
        "bench-checks: {} up in {:.0}s: {}",
        probe.id,
        started.elapsed().as_secs_f64(),
        transport.endpoint()
    );
    let port: u16 = transport
        .endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| Error::Infra(format!("no port in {}", transport.endpoint())))?;

    // The host key, read over the connection that already verified it against the injected key.
    let hostkey = transport.run(
        "cat /etc/ssh/ssh_host_ed25519_key.pub",
        Duration::from_secs(30),
    )?;
    let hostkey: Vec<&str> = hostkey.stdout.split_whitespace().take(2).collect();
    if hostkey.len() != 2 {
        return Err(Error::Infra("could not read the probe's host key".into()));
    }
    write(&scratch.join("id"), &key.private_openssh(), 0o600)?;
    write(
        &scratch.join("known_hosts"),
        &format!("[127.0.0.1]:{port} {} {}\n", hostkey[0], hostkey[1]),
        0o600,
    )?;
    let cfg = scratch.join("ssh_config");
    let s = scratch.display();
    write(
        &cfg,
        &format!(
            "Host bench bench-mux\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {s}/id\n  IdentitiesOnly yes\n  UserKnownHostsFile {s}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n\nHost bench-mux\n  ControlMaster auto\n  ControlPath {s}/cm-%C\n  ControlPersist 30\n"
        ),
        0o600,
    )?;

    let checks = generate(transport.as_ref())?;
    assert_eq!(checks.len(), 500);
    let mut counts = std::collections::BTreeMap::new();
    for c in &checks {
        *counts.entry(c.kind).or_insert(0) += 1;
    }
    eprintln!("bench-checks: 500 checks: {counts:?}");
    let json_path = scratch.join("checks.json");
    let specs: Vec<Value> = checks.iter().map(|c| c.spec.clone()).collect();
    write(&json_path, &serde_json::to_string(&specs).unwrap(), 0o600)?;
    let mut suite_text = String::from("name: bench\nchecks:\n");
    let mut script = String::new();
    for c in &checks {
        let _ = writeln!(suite_text, "  - id: {}\n    {}", c.id, c.bakery);
        let _ = writeln!(
            script,
            "if {}; then echo ok {}; else echo FAIL {}; fi",
            c.shell, c.id, c.id
        );
    }
    let suite = parse_suite(&suite_text, Path::new("bench.yml"))?;
    write(&scratch.join("naive.sh"), &script, 0o600)?;

    let iface = transport
        .run(
            "ip -o route show default | awk '{print $5; exit}'",
            Duration::from_secs(30),
        )?
        .stdout
        .trim()
        .to_string();
    let iface = if iface.is_empty() {
        "eth0".to_string()
    } else {
        iface
    };

    let env = Env {
        opts,
        scratch: &scratch,
        cfg: &cfg,
        json: &json_path,
        checks: &checks,
    };
    let mut table: Vec<(String, Vec<f64>)> = Vec::new();
    for (setting, delay) in [("as is", false), ("+50 ms RTT (netem)", true)] {
        if delay {
            let out = transport.run(
                &format!("modprobe sch_netem 2>/dev/null; tc qdisc replace dev {iface} root netem delay 50ms && tc qdisc show dev {iface}"),
                Duration::from_secs(60),
            )?;
            if out.exit_code != 0 {
                return Err(Error::Infra(format!("tc netem failed: {}", out.stderr)));
            }
            eprintln!("bench-checks: {}", out.stdout.trim());
        }
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); TOOLS.len()];
        for r in 0..opts.runs {
            for (t, tool) in TOOLS.iter().enumerate() {
                bakery::signals::check()?;
                let (n, secs) = match *tool {
                    "bakery" => time_bakery(provider, &probe, &key, &settings, &suite)?,
                    "testinfra-paramiko" => env.pytest("paramiko://bench", false)?,
                    "testinfra-ssh-mux" => env.pytest("ssh://bench-mux", true)?,
                    "ssh-per-check" => env.ssh_per_check()?,
                    _ => env.naive()?,
                };
                let rate = n as f64 / secs;
                eprintln!(
                    "bench-checks: [{setting}] run {} {tool:<20} {n} checks passed in {secs:7.2}s = {rate:7.1} checks/s",
                    r + 1
                );
                rates[t].push(rate);
            }
        }
        table.push((
            setting.to_string(),
            rates.iter_mut().map(|v| median(v)).collect(),
        ));
    }
    let _ = transport.run(
        &format!("tc qdisc del dev {iface} root"),
        Duration::from_secs(30),
    );
    drop(transport);
    provider.terminate(&probe, ledger)?;

    // The report.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nchecks/second ({} run(s) per setting{}; ssh-per-check on {} of the 500 checks)\n",
        opts.runs,
        if opts.runs > 1 { ", medians" } else { "" },
        opts.ssh_sample
    );
    let _ = writeln!(
        out,
        "| setting | {} | bakery/testinfra-paramiko | bakery/naive-script |",
        TOOLS.join(" | ")
    );
    let _ = writeln!(out, "|---|{}---|---|", "---:|".repeat(TOOLS.len()));
    for (setting, r) in &table {
        let cells: Vec<String> = r.iter().map(|x| format!("{x:.1}")).collect();
        let _ = writeln!(
            out,
            "| {setting} | {} | {:.1}× | {:.1}× |",
            cells.join(" | "),
            r[0] / r[1],
            r[0] / r[4]
        );
    }
    println!("{out}");
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A fresh connection and the whole suite, as `bakery verify` does it after boot.
fn time_bakery(
    provider: &LocalProvider,
    probe: &bakery::cloud::Instance,
    key: &KeyPair,
    settings: &InstanceSettings,
    suite: &bakery::suites::Suite,
) -> Result<(usize, f64)> {
    let start = Instant::now();
    let transport = provider.connect(probe, key, settings)?;
    let result = run_suite(suite, transport.as_ref(), &RunOptions::default());
    let secs = start.elapsed().as_secs_f64();
    let passed = result.count(Status::Passed);
    if passed != 500 {
        let bad: Vec<String> = result
            .results
            .iter()
            .filter(|r| r.status != Status::Passed)
            .take(5)
            .map(|r| format!("{} {:?} {:?} {:?}", r.id, r.status, r.expected, r.actual))
            .collect();
        return Err(Error::Infra(format!(
            "bakery passed {passed} of 500 checks: {bad:?}"
        )));
    }
    Ok((passed, secs))
}

struct Env<'a> {
    opts: &'a Opts,
    scratch: &'a Path,
    cfg: &'a Path,
    json: &'a Path,
    checks: &'a [Check],
}

impl Env<'_> {
    fn ssh(&self) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-F").arg(self.cfg);
        c
    }

    fn pytest(&self, hosts: &str, xdist: bool) -> Result<(usize, f64)> {
        let mut c = Command::new(&self.opts.python);
        c.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"])
            .arg(format!("--hosts={hosts}"))
            .arg(format!("--ssh-config={}", self.cfg.display()))
            .arg(repo().join("benches/checks/test_checks.py"))
            .env("BENCH_CHECKS", self.json)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(self.scratch);
        if xdist {
            c.args(["-n", "2"]);
        }
        let start = Instant::now();
        let (ok, out) = self.wait(c, None)?;
        let secs = start.elapsed().as_secs_f64();
        if xdist {
            let _ = self
                .ssh()
                .args(["-O", "exit", "bench-mux"])
                .stderr(Stdio::null())
                .status();
        }
        let passed = out
            .lines()
            .rev()
            .find_map(|l| {
                let l = l.trim_matches(|c: char| c == '=' || c.is_whitespace());
                let (n, rest) = l.split_once(' ')?;
                rest.starts_with("passed")
                    .then(|| n.parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if !ok || passed != 500 {
            let tail: Vec<&str> = out.lines().rev().take(30).collect();
            return Err(Error::Infra(format!(
                "pytest {hosts} passed {passed} of 500:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )));
        }
        Ok((passed, secs))
    }

    /// One `ssh` process per check, sequentially, on every k-th check (a sample of all kinds).
    fn ssh_per_check(&self) -> Result<(usize, f64)> {
        let n = self.opts.ssh_sample;
        let picked: Vec<&Check> = (0..n).map(|i| &self.checks[i * 500 / n]).collect();
        let start = Instant::now();
        let mut passed = 0;
        for c in &picked {
            let mut cmd = self.ssh();
            cmd.arg("bench").arg(&c.shell).stdin(Stdio::null());
            let (ok, out) = self.wait(cmd, None)?;
            if !ok {
                return Err(Error::Infra(format!("ssh check {} failed: {out}", c.id)));
            }
            passed += 1;
        }
        Ok((passed, start.elapsed().as_secs_f64()))
    }

    /// The naive floor: one script, one command per check, one exec.
    fn naive(&self) -> Result<(usize, f64)> {
        let mut cmd = self.ssh();
        cmd.args(["bench", "sh", "-s"]);
        let start = Instant::now();
        let (ok, out) = self.wait(cmd, Some(&self.scratch.join("naive.sh")))?;
        let secs = start.elapsed().as_secs_f64();
        let passed = out.lines().filter(|l| l.starts_with("ok ")).count();
        if !ok || passed != 500 {
            let bad: Vec<&str> = out
                .lines()
                .filter(|l| !l.starts_with("ok "))
                .take(10)
                .collect();
            return Err(Error::Infra(format!(
                "naive script passed {passed} of 500: {bad:?}"
            )));
        }
        Ok((passed, secs))
    }

    /// Runs a child with its output in a scratch file, stopping it if a signal arrives.
    fn wait(&self, mut cmd: Command, stdin: Option<&Path>) -> Result<(bool, String)> {
        let log = self.scratch.join("tool.log");
        let file = std::fs::File::create(&log).map_err(|e| Error::Infra(e.to_string()))?;
        cmd.stdout(file.try_clone().map_err(|e| Error::Infra(e.to_string()))?)
            .stderr(file);
        if let Some(p) = stdin {
            cmd.stdin(std::fs::File::open(p).map_err(|e| Error::Infra(e.to_string()))?);
        } else {
            cmd.stdin(Stdio::null());
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::Infra(format!("starting {:?}: {e}", cmd.get_program())))?;
        let deadline = Instant::now() + Duration::from_secs(1800);
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| Error::Infra(e.to_string()))? {
                break s;
            }
            if bakery::signals::check().is_err() || Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bakery::signals::check()?;
                return Err(Error::Infra(format!("{:?} timed out", cmd.get_program())));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let out = std::fs::read_to_string(&log).unwrap_or_default();
        Ok((status.success(), out))
    }
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::Infra(format!("{}: {e}", path.display())))?;
    set_mode(path, mode)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::Infra(format!("{}: {e}", path.display())))
}

/// Reads facts off the probe (one exec) and turns them into 500 checks that hold there.
fn generate(transport: &dyn Transport) -> Result<Vec<Check>> {
    // Ports: only listeners on every address, which is what testinfra's `tcp://N` asks for
    // (systemd-resolved's 127.0.0.53:53 would fail it).
    let facts = transport.run(
        r#"echo '#file'; find /usr/bin /usr/sbin /etc -maxdepth 1 -type f | sort
echo '#package'; dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1=="ii"{print $2}' | sort -u
echo '#service'; systemctl list-units --type=service --state=running --no-legend --plain | awk '{print $1}' | sed 's/\.service$//'
echo '#user'; getent passwd | cut -d: -f1
echo '#kernel-param'; sysctl -a 2>/dev/null | grep -E '^net\.ipv4\.(conf\.(all|default|lo)\.|tcp_)' | grep -E ' = -?[0-9]+$'
echo '#port'; ss -Hltn | awk '$4 ~ /^(0\.0\.0\.0|\*|\[::\]):/ {n=split($4,a,":"); print a[n]}' | sort -un"#,
        Duration::from_secs(120),
    )?;
    let mut sections: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    let mut current = "";
    for line in facts.stdout.lines() {
        if let Some(k) = line.strip_prefix('#') {
            current = k;
            sections.entry(k).or_default();
        } else if !line.is_empty()
            && line
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@+ ".contains(&b))
        {
            sections.entry(current).or_default().push(line);
        }
    }
    // (kind, how many) — 500 in all.
    let plan = [
        ("file", 150),
        ("package", 150),
        ("service", 40),
        ("port", 20),
        ("user", 40),
        ("command", 50),
        ("kernel-param", 50),
    ];
    let mut checks = Vec::new();
    for (kind, n) in plan {
        let facts: Vec<&str> = if kind == "command" {
            Vec::new()
        } else {
            let f: Vec<&str> = sections.get(kind).cloned().unwrap_or_default();
            // Spread the picks over the whole list; repeat when there are fewer than needed.
            if f.is_empty() {
                return Err(Error::Infra(format!("no {kind} facts on the probe")));
            }
            (0..n)
                .map(|i| f[(i * f.len() / n.max(1)) % f.len()])
                .collect()
        };
        for i in 0..n {
            let id = format!("{kind}-{i}");
            // `command` checks have no facts; every other kind has `n` of them.
            let fact = facts.get(i).copied().unwrap_or_default();
            let c = match kind {
                "file" => {
                    let p = fact;
                    Check {
                        spec: json!({"id": id, "kind": kind, "path": p}),
                        shell: format!("test -f {}", sh(p)),
                        bakery: format!("file: {{path: {}, filetype: file}}", q(p)),
                        id,
                        kind,
                    }
                }
                "package" => {
                    let p = fact;
                    Check {
                        spec: json!({"id": id, "kind": kind, "name": p}),
                        shell: format!(
                            "dpkg-query -W -f='${{db:Status-Abbrev}}' {} | grep -q '^ii'",
                            sh(p)
                        ),
                        bakery: format!("package: {{name: {}}}", q(p)),
                        id,
                        kind,
                    }
                }
                "service" => {
                    let p = fact;
                    Check {
                        spec: json!({"id": id, "kind": kind, "name": p}),
                        shell: format!("systemctl is-active -q {}", sh(p)),
                        bakery: format!("service: {{name: {}, running: true}}", q(p)),
                        id,
                        kind,
                    }
                }
                "port" => {
                    let p: u16 = fact
                        .parse()
                        .map_err(|_| Error::Infra(format!("bad port {}", fact)))?;
                    Check {
                        spec: json!({"id": id, "kind": kind, "port": p}),
                        shell: format!("ss -Hltn 'sport = :{p}' | grep -q ."),
                        bakery: format!("port: {{port: {p}, protocol: tcp}}"),
                        id,
                        kind,
                    }
                }
                "user" => {
                    let p = fact;
                    Check {
                        spec: json!({"id": id, "kind": kind, "name": p}),
                        shell: format!("getent passwd {} >/dev/null", sh(p)),
                        bakery: format!("user: {{name: {}, exists: true}}", q(p)),
                        id,
                        kind,
                    }
                }
                "command" => {
                    let run = format!("echo bench-{i}");
                    let want = format!("bench-{i}");
                    Check {
                        spec: json!({"id": id, "kind": kind, "run": run, "stdout": want}),
                        shell: format!("test \"$({run})\" = {want}"),
                        bakery: format!("command: {{run: {}, stdout: {}}}", q(&run), q(&want)),
                        id,
                        kind,
                    }
                }
                _ => {
                    let (name, value) = fact
                        .split_once(" = ")
                        .ok_or_else(|| Error::Infra(format!("bad sysctl {}", fact)))?;
                    Check {
                        spec: json!({"id": id, "kind": kind, "name": name, "value": value}),
                        shell: format!("test \"$(sysctl -n {})\" = {}", sh(name), sh(value)),
                        bakery: format!("kernel-param: {{name: {}, value: {}}}", q(name), q(value)),
                        id,
                        kind,
                    }
                }
            };
            checks.push(c);
        }
    }
    Ok(checks)
}
