//! Running a suite over a [`Transport`]: selection, batching per resource type, concurrency,
//! timeouts and retries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::model::{Check, Suite};
use super::resources::{self, Outcome, RunnerView};
use super::result::{CheckResult, Status, SuiteResult};
use crate::transport::Transport;

/// Most checks gathered in one exec (keeps command lines well under the kernel's limits).
const BATCH_LIMIT: usize = 256;
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
/// run one exec each. Up to `opts.concurrency` execs run at once. Every selected check gets a
/// result, in suite order; a check that could not be evaluated is [`Status::Error`].
pub fn run_suite(suite: &Suite, transport: &dyn Transport, opts: &RunOptions) -> SuiteResult {
    let start = Instant::now();
    let selected: Vec<&Check> = suite.checks.iter().filter(|c| opts.selects(c)).collect();
    let slots: Vec<Mutex<Option<CheckResult>>> =
        selected.iter().map(|_| Mutex::new(None)).collect();
    let mut jobs: Vec<Vec<usize>> = Vec::new();
    for (i, c) in selected.iter().enumerate() {
        if let Some(reason) = &c.skip {
            *slots[i].lock().expect("slot") = Some(skipped(c, reason));
        } else if let Some(key) = c.resource.batch_key() {
            match jobs
                .iter_mut()
                .find(|j| selected[j[0]].resource.batch_key() == Some(key) && j.len() < BATCH_LIMIT)
            {
                Some(job) => job.push(i),
                None => jobs.push(vec![i]),
            }
        } else {
            jobs.push(vec![i]);
        }
    }
    let next = AtomicUsize::new(0);
    let workers = opts.concurrency.clamp(1, jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(n) else { break };
                let checks: Vec<&Check> = job.iter().map(|&i| selected[i]).collect();
                for (k, r) in run_with_retries(&checks, transport, opts)
                    .into_iter()
                    .enumerate()
                {
                    *slots[job[k]].lock().expect("slot") = Some(r);
                }
            });
        }
    });
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
    }
}

/// Runs one batch, then re-runs (together) the checks that did not pass and may try again.
fn run_with_retries(
    checks: &[&Check],
    transport: &dyn Transport,
    opts: &RunOptions,
) -> Vec<CheckResult> {
    let start = Instant::now();
    let mut results: Vec<CheckResult> = attempt(checks, transport, opts)
        .into_iter()
        .zip(checks)
        .map(|(o, c)| result(c, o, start.elapsed(), 1))
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
        let pause = pending
            .iter()
            .map(|&i| interval(checks[i]))
            .min()
            .unwrap_or(DEFAULT_INTERVAL);
        std::thread::sleep(pause);
        let again: Vec<&Check> = pending.iter().map(|&i| checks[i]).collect();
        tracing::debug!(checks = again.len(), "retrying checks that did not pass");
        for (&i, o) in pending.iter().zip(attempt(&again, transport, opts)) {
            let attempts = results[i].attempts + 1;
            results[i] = result(checks[i], o, start.elapsed(), attempts);
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
    if res[0].on_runner() {
        let view = opts.runner_view.as_ref();
        return res
            .iter()
            .map(|r| resources::evaluate_on_runner(r, view, timeout))
            .collect();
    }
    let script = resources::script(&res, timeout);
    tracing::debug!(kind = res[0].kind(), checks = res.len(), "gathering");
    match transport.run(&script, timeout) {
        Ok(out) => resources::evaluate(&res, &out),
        Err(e) => {
            let msg = format!("could not evaluate the {} check: {e}", res[0].kind());
            checks
                .iter()
                .map(|_| Outcome::error(&msg, &script))
                .collect()
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
    }
}

fn skipped(c: &Check, reason: &str) -> CheckResult {
    CheckResult {
        id: c.id.clone(),
        title: c.title_or_id().to_string(),
        kind: c.resource.kind().to_string(),
        tags: c.tags.clone(),
        status: Status::Skipped,
        expected: None,
        actual: None,
        message: format!("skipped: {reason}"),
        output: String::new(),
        duration: Duration::ZERO,
        attempts: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::parse_suite;
    use crate::suites::testing::LocalShell;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::path::Path;

    fn suite(yaml: &str) -> Suite {
        parse_suite(yaml, Path::new("test.yml")).unwrap()
    }

    fn run(yaml: &str, opts: &RunOptions) -> SuiteResult {
        run_suite(&suite(yaml), &LocalShell, opts)
    }

    fn by_id<'a>(r: &'a SuiteResult, id: &str) -> &'a CheckResult {
        r.results
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no result for {id}"))
    }

    /// Serves one fixed HTTP response per connection, forever, on a free local port.
    fn http_server(body: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Baked: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        port
    }

    #[test]
    fn real_facts_of_this_debian_host() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let web = http_server("<h1>Baked by Bakery</h1>");
        let yaml = format!(
            r#"
name: host
checks:
  - {{id: bash, package: {{name: bash, version: {{semver: ">=5"}}}}}}
  - {{id: nopkg, package: {{name: no-such-package-xyz}}}}
  - {{id: passwd, file: {{path: /etc/passwd, mode: "0644", owner: root, filetype: file, contents: {{contains: "root:x:0:0"}}}}}}
  - {{id: nofile, file: {{path: /no/such/file, exists: false}}}}
  - {{id: listening, port: {{port: {port}, ip: ["127.0.0.1"]}}}}
  - {{id: uname, title: Kernel is Linux, command: {{run: uname -s, stdout: Linux}}}}
  - {{id: exit3, command: {{run: "echo oops >&2; exit 3", exit-status: 0}}}}
  - {{id: web, http: {{url: "http://127.0.0.1:{web}/", body: {{contains: Baked by Bakery}}, headers: ["X-Baked: yes"]}}}}
  - {{id: skipped, skip: not on this host, command: {{run: "false"}}}}
"#
        );
        let r = run(
            &yaml,
            &RunOptions {
                probe: "localhost".into(),
                ..Default::default()
            },
        );
        drop(listener);
        assert_eq!(r.suite, "host");
        assert_eq!(r.probe, "localhost");
        let ids: Vec<&str> = r.results.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "bash",
                "nopkg",
                "passwd",
                "nofile",
                "listening",
                "uname",
                "exit3",
                "web",
                "skipped"
            ]
        );
        for id in ["bash", "passwd", "nofile", "listening", "uname", "web"] {
            let c = by_id(&r, id);
            assert_eq!(
                c.status,
                Status::Passed,
                "{id}: {} / {}",
                c.message,
                c.output
            );
            assert_eq!(c.attempts, 1);
        }
        assert_eq!(by_id(&r, "uname").title, "Kernel is Linux");
        let nopkg = by_id(&r, "nopkg");
        assert_eq!(nopkg.status, Status::Failed);
        assert_eq!(nopkg.expected.as_deref(), Some("installed: true"));
        let exit3 = by_id(&r, "exit3");
        assert_eq!(exit3.status, Status::Failed);
        assert!(
            exit3.output.contains("--- stderr ---\noops"),
            "{}",
            exit3.output
        );
        let skipped = by_id(&r, "skipped");
        assert_eq!(skipped.status, Status::Skipped);
        assert_eq!(skipped.message, "skipped: not on this host");
    }

    #[test]
    fn every_resource_type_on_this_host() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let yaml = format!(
            r#"
- {{id: root, user: {{name: root, uid: 0, home: /root, groups: [root]}}}}
- {{id: ghost, user: {{name: no-such-user-xyz, exists: false}}}}
- {{id: root-group, group: {{name: root, gid: 0}}}}
- {{id: no-process, process: {{comm: no-such-proc-xyz, running: false}}}}
- {{id: ostype, kernel-param: {{name: kernel.ostype, value: Linux}}}}
- {{id: no-param, kernel-param: {{name: kernel.no_such_param, value: 1}}}}
- {{id: rootfs, mount: {{path: /, usage: {{lt: 100}}}}}}
- {{id: proc, mount: {{path: /proc, filesystem: proc}}}}
- {{id: lo, interface: {{name: lo, mtu: {{ge: 1500}}}}}}
- {{id: localhost, dns: {{name: localhost, addrs: {{contains: 127.0.0.1}}}}}}
- {{id: open, addr: {{address: "tcp://127.0.0.1:{port}"}}}}
- {{id: open-from-runner, addr: {{address: "probe:{port}", from: runner}}}}
- {{id: passwd-sha, file: {{path: /etc/hostname, sha256: {{have-len: 64}}, sha512: {{have-len: 128}}, md5: {{have-len: 32}}}}}}
- {{id: sum, matching: {{content: [1, 2], matches: {{contain-element: 2}}}}}}
"#
        );
        let opts = RunOptions {
            runner_view: Some(RunnerView {
                host: "127.0.0.1".into(),
                ports: Default::default(),
            }),
            ..Default::default()
        };
        let r = run(&yaml, &opts);
        for c in &r.results {
            let want = if c.id == "no-param" {
                Status::Failed
            } else {
                Status::Passed
            };
            assert_eq!(c.status, want, "{}: {} / {}", c.id, c.message, c.output);
        }
        drop(listener);
    }

    #[test]
    fn a_host_without_systemd_makes_service_checks_errors() {
        if Path::new("/run/systemd/system").exists() {
            return; // this host runs systemd; the case cannot be shown here
        }
        let r = run("- {id: ssh, service: {name: ssh}}", &RunOptions::default());
        assert_eq!(
            r.results[0].status,
            Status::Error,
            "{}",
            r.results[0].message
        );
    }

    #[test]
    fn timeouts_and_transport_failures_are_errors() {
        let r = run(
            "- {id: slow, timeout: 1s, command: {run: sleep 5}}\n- {id: fast, command: {run: 'true'}}",
            &RunOptions::default(),
        );
        assert_eq!(r.results[0].status, Status::Error);
        assert!(
            r.results[0].message.contains("timed out"),
            "{}",
            r.results[0].message
        );
        assert_eq!(r.results[1].status, Status::Passed);
    }

    #[test]
    fn retries_until_the_check_passes() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("n");
        let yaml = format!(
            "- id: third-time\n  retry: {{attempts: 5, interval: 10ms}}\n  command: {{run: 'echo x >> {0}; test $(wc -l < {0}) -ge 3'}}\n\
             - id: never\n  retry: {{attempts: 2, interval: 10ms}}\n  command: {{run: 'false'}}\n\
             - id: eventually\n  eventually: 300ms\n  retry: {{attempts: 100, interval: 50ms}}\n  file: {{path: /no/such/path}}\n",
            counter.display()
        );
        let r = run(&yaml, &RunOptions::default());
        assert_eq!(r.results[0].status, Status::Passed);
        assert_eq!(r.results[0].attempts, 3);
        assert_eq!(r.results[1].status, Status::Failed);
        assert_eq!(r.results[1].attempts, 2);
        assert_eq!(r.results[2].status, Status::Failed);
        assert!(r.results[2].attempts > 1 && r.results[2].attempts < 100);
    }

    #[test]
    fn filters_select_by_id_and_tag() {
        let yaml = "- {id: a, tags: [smoke], command: {run: 'true'}}\n- {id: b, tags: [slow], command: {run: 'true'}}\n- {id: c, command: {run: 'true'}}";
        let ids = |opts: RunOptions| -> Vec<String> {
            run(yaml, &opts).results.into_iter().map(|r| r.id).collect()
        };
        assert_eq!(
            ids(RunOptions {
                tags: vec!["smoke".into()],
                ..Default::default()
            }),
            ["a"]
        );
        assert_eq!(
            ids(RunOptions {
                ids: vec!["c".into(), "b".into()],
                ..Default::default()
            }),
            ["b", "c"]
        );
        assert_eq!(
            ids(RunOptions {
                exclude_tags: vec!["slow".into()],
                ..Default::default()
            }),
            ["a", "c"]
        );
    }

    /// Counts execs, to show that checks of one resource type share one.
    struct Counting(std::sync::atomic::AtomicUsize);

    impl Transport for Counting {
        fn exec(
            &self,
            c: &str,
            t: Duration,
            f: &mut dyn FnMut(crate::transport::Stream, &str),
        ) -> crate::Result<crate::transport::ExecOutput> {
            self.0.fetch_add(1, Ordering::SeqCst);
            LocalShell.exec(c, t, f)
        }
        fn upload(&self, _: &[u8], _: &str, _: u32) -> crate::Result<()> {
            Ok(())
        }
        fn endpoint(&self) -> String {
            "counting".into()
        }
    }

    #[test]
    fn one_exec_per_resource_type() {
        let mut yaml = String::new();
        for i in 0..40 {
            yaml += &format!("- {{id: f{i}, file: {{path: /etc/passwd}}}}\n- {{id: p{i}, package: {{name: bash}}}}\n- {{id: n{i}, port: {{port: 1, listening: false}}}}\n");
        }
        let t = Counting(AtomicUsize::new(0));
        let r = run_suite(
            &suite(&yaml),
            &t,
            &RunOptions {
                concurrency: 3,
                ..Default::default()
            },
        );
        assert_eq!(r.results.len(), 120);
        assert!(r.results.iter().all(|c| c.status == Status::Passed));
        assert_eq!(t.0.load(Ordering::SeqCst), 3);
    }
}
