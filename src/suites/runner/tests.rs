//! Tests of the parent module.
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

/// Fails the first exec of every script with the error it makes, then runs them.
struct Flaky(
    Mutex<std::collections::HashSet<String>>,
    fn(String) -> crate::Error,
);

impl Transport for Flaky {
    fn exec(
        &self,
        c: &str,
        t: Duration,
        f: &mut dyn FnMut(crate::transport::Stream, &str),
    ) -> crate::Result<crate::transport::ExecOutput> {
        if self.0.lock().unwrap().insert(c.to_string()) {
            return Err((self.1)("Failed waiting for channel success".into()));
        }
        LocalShell.exec(c, t, f)
    }
    fn upload(&self, _: &[u8], _: &str, _: u32) -> crate::Result<()> {
        Ok(())
    }
    fn endpoint(&self) -> String {
        "flaky".into()
    }
}

#[test]
fn gathers_survive_one_refused_channel_but_commands_do_not_repeat() {
    let t = Flaky(Mutex::new(Default::default()), crate::Error::Transport);
    let yaml = "- {id: f, file: {path: /etc/passwd}}\n- {id: c, command: {run: 'true'}}";
    let r = run_suite(&suite(yaml), &t, &RunOptions::default());
    assert_eq!(
        r.results[0].status,
        Status::Passed,
        "{}",
        r.results[0].message
    );
    assert_eq!(r.results[1].status, Status::Error);
    assert!(r.results[1].message.contains("channel success"));
}

#[test]
fn a_refused_gather_is_not_repeated() {
    // A refusal (the cloud denied the call) would be refused again: the checks become errors.
    let t = Flaky(Mutex::new(Default::default()), crate::Error::Infra);
    let r = run_suite(
        &suite("- {id: f, file: {path: /etc/passwd}}"),
        &t,
        &RunOptions::default(),
    );
    assert_eq!(r.results[0].status, Status::Error);
    assert!(r.results[0].message.contains("channel success"));
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

#[test]
fn conditions_and_composites_are_gathered_in_batches() {
    let yaml = r#"
- id: na
  applies-if: {file: {path: /no/such/dir}}
  file: {path: /no/such/dir/x}
- id: applies
  applies-if: {file: {path: /etc/passwd}}
  file: {path: /etc/passwd, max-mode: "0644"}
- id: all
  all-of:
    - file: {path: /etc/passwd}
    - file: {path: /etc/group}
    - file: {path: /no/such/file}
- id: any
  any-of:
    - file: {path: /no/such/file}
    - file: {path: /etc/group, filetype: file}
- id: none
  any-of:
    - file: {path: /no/such/file}
    - matching: {content: a, matches: b}
- id: manual
  level: 1
  automated: false
  rationale: r
  remediation: m
- id: plain
  file: {path: /etc/hostname}
"#;
    let t = Counting(std::sync::atomic::AtomicUsize::new(0));
    let r = run_suite(&suite(yaml), &t, &RunOptions::default());
    let status = |id: &str| by_id(&r, id).status;
    assert_eq!(status("na"), Status::NotApplicable);
    assert_eq!(
        by_id(&r, "na").message,
        "not applicable: file /no/such/dir: exists: expected true, got false"
    );
    assert_eq!(
        status("applies"),
        Status::Passed,
        "{}",
        by_id(&r, "applies").message
    );
    assert_eq!(status("all"), Status::Failed);
    assert_eq!(
        by_id(&r, "all").message,
        "file /no/such/file: exists: expected true, got false"
    );
    assert_eq!(status("any"), Status::Passed);
    assert_eq!(status("none"), Status::Failed);
    assert!(by_id(&r, "none")
        .message
        .starts_with("none of the alternatives held: "));
    assert_eq!(status("manual"), Status::NotReviewed);
    assert!(by_id(&r, "manual").control.is_some());
    assert_eq!(status("plain"), Status::Passed);
    // One exec for the plain file check, one for every file atom of the compound checks
    // (matching runs on the runner).
    assert_eq!(t.0.load(Ordering::SeqCst), 2);
}

#[test]
fn compound_checks_refuse_retries_and_manual_controls_refuse_resources() {
    let e = parse_suite(
        "- id: a\n  retry: {attempts: 2}\n  all-of: [{file: {path: /}}]\n",
        Path::new("t.yml"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`retry` and `eventually` work on checks of one resource"),
        "{e}"
    );
    let e = parse_suite(
        "- id: a\n  level: 1\n  automated: false\n  rationale: r\n  remediation: m\n  file: {path: /}\n",
        Path::new("t.yml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("is a manual control"), "{e}");
    let e = parse_suite(
        "- id: a\n  level: 1\n  automated: true\n  remediation: m\n  file: {path: /}\n",
        Path::new("t.yml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("needs `rationale`"), "{e}");
    let e = parse_suite(
        "- id: a\n  any-of: [{file: {path: /}, package: {name: x}}]\n",
        Path::new("t.yml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("any-of[0]: a resource mapping must have exactly one resource key, found `file`, `package`"), "{e}");
}

/// Records each script it runs, in order.
struct Recording(Mutex<Vec<String>>);

impl Transport for Recording {
    fn exec(
        &self,
        c: &str,
        t: Duration,
        f: &mut dyn FnMut(crate::transport::Stream, &str),
    ) -> crate::Result<crate::transport::ExecOutput> {
        self.0.lock().unwrap().push(c.to_string());
        LocalShell.exec(c, t, f)
    }
    fn upload(&self, _: &[u8], _: &str, _: u32) -> crate::Result<()> {
        Ok(())
    }
    fn endpoint(&self) -> String {
        "recording".into()
    }
}

#[test]
fn checks_that_do_not_apply_are_not_gathered_and_one_command_line_runs_once() {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("ran");
    let yaml = format!(
        r#"
- id: na
  applies-if: {{file: {{path: /no/such/dir}}}}
  command: {{run: "touch {m}"}}
- id: one
  command: {{run: "echo same", stdout: same}}
- id: two
  command: {{run: "echo same", stdout: other}}
- id: three
  any-of:
    - command: {{run: "echo same", stdout: [/sa/]}}
"#,
        m = mark.display()
    );
    let t = Recording(Mutex::new(Vec::new()));
    let r = run_suite(&suite(&yaml), &t, &RunOptions::default());
    assert_eq!(by_id(&r, "na").status, Status::NotApplicable);
    assert!(
        !mark.exists(),
        "the command of a check that does not apply ran"
    );
    assert_eq!(by_id(&r, "one").status, Status::Passed);
    assert_eq!(by_id(&r, "two").status, Status::Failed);
    assert_eq!(by_id(&r, "three").status, Status::Passed);
    let scripts = t.0.lock().unwrap();
    // The condition's file check, then `echo same` once for three checks.
    assert_eq!(scripts.len(), 2, "{scripts:?}");
    assert_eq!(scripts.iter().filter(|s| *s == "echo same").count(), 1);
}

#[test]
fn the_longest_timeouts_start_first() {
    let yaml = r#"
- {id: a, command: {run: "echo a"}}
- {id: b, command: {run: "echo b"}, timeout: 10m}
- {id: c, command: {run: "echo c"}, retry: {attempts: 2}, timeout: 5m}
- {id: d, file: {path: /etc/passwd}}
"#;
    let t = Recording(Mutex::new(Vec::new()));
    let r = run_suite(
        &suite(yaml),
        &t,
        &RunOptions {
            concurrency: 1,
            ..Default::default()
        },
    );
    assert!(r.results.iter().all(|c| c.status == Status::Passed));
    let scripts = t.0.lock().unwrap();
    // b and c have timeouts of their own, so they run alone (and share no exec with a).
    assert_eq!(scripts[0], "echo b");
    assert_eq!(scripts[1], "echo c");
    // Then the rest in suite order.
    assert_eq!(scripts[2], "echo a");
    assert_eq!(scripts.len(), 4);
}

#[test]
fn commands_share_execs_a_few_at_a_time() {
    let mut yaml = String::new();
    for i in 0..(2 * resources::COMMANDS_PER_EXEC + 1) {
        yaml += &format!("- {{id: c{i}, command: {{run: 'echo {i}', stdout: '{i}'}}}}\n");
    }
    let t = Counting(AtomicUsize::new(0));
    let r = run_suite(&suite(&yaml), &t, &RunOptions::default());
    assert!(
        r.results.iter().all(|c| c.status == Status::Passed),
        "{:#?}",
        r.results
    );
    assert_eq!(t.0.load(Ordering::SeqCst), 3);
}

#[test]
fn long_command_lines_share_no_exec_beyond_the_size_an_exec_request_carries() {
    // Six commands of 6 KiB each: two fit in one exec's 16 KiB.
    let mut yaml = String::new();
    for i in 0..6 {
        let filler = "x".repeat(6 * 1024);
        yaml +=
            &format!("- {{id: c{i}, command: {{run: 'echo {i} # {filler}', stdout: '{i}'}}}}\n");
    }
    let t = Counting(AtomicUsize::new(0));
    let r = run_suite(&suite(&yaml), &t, &RunOptions::default());
    assert!(r.results.iter().all(|c| c.status == Status::Passed));
    assert_eq!(t.0.load(Ordering::SeqCst), 3);
}
