//! Tests of the parent module.
use super::*;
use crate::suites::runner::{run_suite, RunOptions};
use crate::suites::testing::LocalShell;
use crate::suites::Status;

const MAIN: &str = r#"
gossfile:
  "parts/*.yaml": {}
  skipped.yaml:
    skip: true
file:
  /etc/passwd:
    exists: true
    mode: "0644"
    owner: root
    filetype: file
    contents:
      - "root:x:0:0"
      - "!/^nobody-here:/"
  /no/such/file:
    exists: false
command:
  echo hello:
    exit-status: 0
    stdout:
      - hello
    stderr: ""
    timeout: 5000
  failing:
    exec: "sh -c 'echo nope; exit 3'"
    exit-status: 0
    title: A command that fails
    meta:
      owner: team-a
package:
  bash:
    installed: true
    versions:
      semver-constraint: ">=5.0"
kernel-param:
  kernel.ostype:
    value: Linux
matching:
  has_2:
    content: [1, 2]
    matches:
      contain-element: 2
  skipped:
    content: 1
    matches: 2
    skip: true
dns:
  localhost:
    resolvable: true
    addrs:
      contain-element: 127.0.0.1
mount:
  /:
    exists: true
    usage:
      lt: 100
"#;

const PART: &str = r#"
user:
  root:
    exists: true
    uid: 0
    groups: [root]
    home: /root
group:
  root:
    exists: true
    gid: 0
port:
  "tcp:1":
    listening: false
process:
  no-such-proc-xyz:
    running: false
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_goss_file_with_includes_runs_with_gosss_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(dir.path(), "goss.yaml", MAIN);
    write(dir.path(), "parts/accounts.yaml", PART);
    write(dir.path(), "skipped.yaml", "bogus: {}");
    let suite = load_goss(&main).unwrap();
    assert_eq!(suite.name, "goss");
    let ids: Vec<&str> = suite.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids[..4],
        [
            "group:root",
            "port:tcp:1",
            "process:no-such-proc-xyz",
            "user:root"
        ]
    );
    assert!(ids.contains(&"command:echo hello"));
    let failing = suite
        .checks
        .iter()
        .find(|c| c.id == "command:failing")
        .unwrap();
    assert_eq!(failing.title.as_deref(), Some("A command that fails"));
    assert_eq!(failing.meta["owner"], "team-a");
    let r = run_suite(&suite, &LocalShell, &RunOptions::default());
    for c in &r.results {
        let want = match c.id.as_str() {
            "command:failing" => Status::Failed,
            "matching:skipped" => Status::Skipped,
            _ => Status::Passed,
        };
        assert_eq!(c.status, want, "{}: {} / {}", c.id, c.message, c.output);
    }
}

fn err(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "goss.yaml", text);
    load_goss(&p).unwrap_err().to_string()
}

#[test]
fn unsupported_and_unknown_attributes_are_named() {
    let e = err("http:\n  https://x:\n    status: 200\n    ca-file: /etc/ca.pem\n");
    assert!(e.contains("goss.yaml:4:"), "{e}");
    assert!(
        e.contains("the Goss attribute `ca-file` is not supported"),
        "{e}"
    );
    let e = err("service:\n  ssh:\n    runlevels: [default]\n");
    assert!(e.contains("`runlevels` is not supported"), "{e}");
    let e = err("file:\n  /x:\n    exist: true\n");
    assert!(
        e.contains("goss.yaml:3:5: file./x: unknown field `exist`"),
        "{e}"
    );
    let e = err("packages:\n  x: {}\n");
    assert!(e.contains("unknown field `packages`"), "{e}");
    let e = err("file:\n  {{ .Vars.path }}:\n    exists: true\n");
    assert!(e.contains("goss.yaml:2:1: Goss templates"), "{e}");
    let e = err("port:\n  sctp:22:\n    listening: true\n");
    assert!(e.contains("unknown protocol `sctp`"), "{e}");
    let e = err("command:\n  x:\n    exit-status: {gjson: {a: 1}}\n");
    assert!(e.contains("`gjson` is not supported"), "{e}");
}

#[test]
fn goss_specifics_are_translated() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "g.yml",
        "port:\n  tcp6:443: {listening: true}\n  '80': {listening: true}\ncommand:\n  x: {exit-status: 0, retry_count: 2, retry_delay: 1s, timeout: 1500}\ndns:\n  CNAME:www.example.org: {resolvable: true, server: 1.1.1.1}\n",
    );
    let s = load_goss(&p).unwrap();
    let check = |id: &str| s.checks.iter().find(|c| c.id == id).unwrap();
    let port = |id: &str| match &check(id).resource {
        Resource::Port(p) => (p.protocol, p.port),
        _ => panic!(),
    };
    assert_eq!(port("port:tcp6:443"), (Protocol::Tcp6, 443));
    assert_eq!(port("port:80"), (Protocol::Tcp4, 80));
    let cmd = check("command:x");
    assert_eq!(cmd.retry.unwrap().attempts, 3);
    assert_eq!(cmd.timeout.unwrap().0, Duration::from_millis(1500));
    assert!(
        matches!(&check("dns:CNAME:www.example.org").resource, Resource::Dns(d) if d.record_type.as_deref() == Some("CNAME") && d.name == "www.example.org")
    );
    assert!(wildcard("*.yaml", "a.yaml") && !wildcard("*.yaml", "a.yml") && wildcard("a?c", "abc"));
}
