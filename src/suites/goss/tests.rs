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
    let e = err("file:\n  {{ .Vars.path }}:\n    exists: true\n");
    assert!(
        e.contains(
            "goss.yaml:2:3: Goss template: map has no entry for key: path in `{{ .Vars.path }}`; vars come from"
        ),
        "{e}"
    );
    let e = err("registry:\n  HKLM\\x: {exists: true}\n");
    assert!(
        e.contains("goss.yaml:1:1: the Goss resource type `registry` is the Windows registry"),
        "{e}"
    );
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
}

#[test]
fn a_templated_file_with_vars_and_nested_globs_runs_with_gosss_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "goss.yml",
        "gossfile:\n{{ if .Vars.section_1 }}\n  section_1/*/*.yml: {}\n{{ end }}\n{{ if .Vars.section_2 }}\n  section_2/*.yml: {}\n{{ end }}\n",
    );
    write(
        dir.path(),
        "section_1/accounts/users.yml",
        "{{ if .Vars.rule_1_1 }}\nuser:\n  {{ .Vars.admin }}:\n    exists: true\n    uid: 0\n{{ end }}\n\
         {{ if not .Vars.rule_1_2 }}\ngroup:\n  no-such-group-xyz:\n    exists: true\n{{ end }}\n",
    );
    write(
        dir.path(),
        "section_1/files/files.yml",
        "file:\n{{- range .Vars.files }}\n  {{ .path }}:\n    exists: {{ .exists }}\n{{- end }}\n\
         command:\n  echo {{ getEnv \"BAKERY_GOSS_TEST_UNSET\" \"fallback\" | toUpper }}:\n    exit-status: 0\n    stdout: [FALLBACK]\n",
    );
    write(
        dir.path(),
        "section_2/never.yml",
        "bogus: {{ .Vars.nothing_here }}\n",
    );
    let vars = write(
        dir.path(),
        "vars.yml",
        "section_1: true\nsection_2: false\nrule_1_1: true\nrule_1_2: true\nadmin: root\nfiles:\n  - {path: /etc/passwd, exists: true}\n  - {path: /no/such/file, exists: false}\n",
    );
    let (suite, warnings) = read_goss(
        &main,
        &GossVars {
            files: vec![vars.clone()],
            inline: None,
        },
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let ids: Vec<&str> = suite.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "user:root",
            "command:echo FALLBACK",
            "file:/etc/passwd",
            "file:/no/such/file"
        ]
    );
    let r = run_suite(&suite, &LocalShell, &RunOptions::default());
    for c in &r.results {
        assert_eq!(c.status, Status::Passed, "{}: {}", c.id, c.message);
    }
    // Inline vars replace the file's: rule 1.2 off brings in a group that does not exist.
    let (suite, _) = read_goss(
        &main,
        &GossVars {
            files: vec![vars],
            inline: Some(r#"{"rule_1_2": false}"#.into()),
        },
    )
    .unwrap();
    let r = run_suite(&suite, &LocalShell, &RunOptions::default());
    let group = r
        .results
        .iter()
        .find(|c| c.id == "group:no-such-group-xyz")
        .unwrap();
    assert_eq!(group.status, Status::Failed, "{}", group.message);
    // Without vars, a file that needs them fails to render, naming the place.
    let e = load_goss(&main).unwrap_err().to_string();
    assert!(
        e.contains("goss.yml:2:1: Goss template: map has no entry for key: section_1"),
        "{e}"
    );
}

#[test]
fn boolean_attributes_take_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "goss.yaml",
        "file:\n  /no/such/file:\n    exists: {or: [true, false]}\n  /etc/passwd:\n    exists: {not: false}\n    mode: \"0644\"\n  /etc/hostname-nope:\n    exists: {and: [true, false]}\n\
         process:\n  no-such-proc-xyz:\n    running: {or: [false]}\n\
         user:\n  root:\n    exists: {equal: true}\n\
         port:\n  tcp:1:\n    listening: {not: true}\n",
    );
    let (suite, _) = read_goss(&p, &GossVars::default()).unwrap();
    let r = run_suite(&suite, &LocalShell, &RunOptions::default());
    for c in &r.results {
        let want = if c.id == "file:/etc/hostname-nope" {
            Status::Failed
        } else {
            Status::Passed
        };
        assert_eq!(c.status, want, "{}: {}", c.id, c.message);
    }
    let nope = r
        .results
        .iter()
        .find(|c| c.id == "file:/etc/hostname-nope")
        .unwrap();
    assert!(
        nope.message
            .contains("exists: expected (true and false), got false"),
        "{}",
        nope.message
    );
}

#[test]
fn unix_sockets_local_addresses_readers_and_relative_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("app.sock");
    let _unix = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tcp.local_addr().unwrap().port();
    let text = format!(
        "addr:\n  unix://{sock}:\n    reachable: true\n  unix://{sock}.nope:\n    reachable: false\n\
         \x20 tcp://127.0.0.1:{port}:\n    local-address: 127.0.0.1\n    reachable: true\n    timeout: 2000\n\
         \x20 tcp://127.0.0.1:{port}-from-elsewhere:\n    address: tcp://127.0.0.1:{port}\n    local-address: 192.0.2.1\n    reachable: false\n    timeout: 2000\n\
         matching:\n  text:\n    content: \"first line\\nsecond line\"\n    as-reader: true\n    matches: [\"/^second/\", \"!third\"]\n\
         \x20 list:\n    content: [a, 1]\n    as-reader: true\n    matches: {{have-prefix: \"[a \"}}\n\
         mount:\n  swap:\n    exists: false\n",
        sock = sock.display()
    );
    let p = write(dir.path(), "goss.yaml", &text);
    let (suite, warnings) = read_goss(&p, &GossVars::default()).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("mount:swap: `swap` is not an absolute path"),
        "{warnings:?}"
    );
    let r = run_suite(&suite, &LocalShell, &RunOptions::default());
    assert_eq!(r.results.len(), 7);
    for c in &r.results {
        assert_eq!(
            c.status,
            Status::Passed,
            "{}: {} / {}",
            c.id,
            c.message,
            c.output
        );
    }
}

#[test]
fn keys_goss_ignores_are_warned_about_and_repeated_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "goss.yaml",
        "env:\n  PATH: /usr/bin\nfile:\n  /etc/passwd:\n    exists: true\ninterfaces:\n  - name: eth0\n    mtu: 1500\n  - name: eth1\n    mtu: 1500\n",
    );
    let (suite, warnings) = read_goss(&p, &GossVars::default()).unwrap();
    assert_eq!(suite.checks.len(), 1);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].ends_with(&format!(
        "goss.yaml:1:1: `env` is not a Goss resource type; Goss ignores it, and so does Bakery (types: {})",
        RESOURCE_TYPES.join(", ")
    )), "{warnings:?}");
    assert!(
        warnings[1].contains("goss.yaml:6:1: `interfaces` is not a Goss resource type"),
        "{warnings:?}"
    );

    let e =
        err("file:\n  /a:\n    exists: true\npackage:\n  x: {}\nfile:\n  /b:\n    exists: true\n");
    assert!(
        e.ends_with("goss.yaml:6:1: `file` is written twice at the top level (lines 1 and 6); Goss refuses this too: keep one"),
        "{e}"
    );
    let e = err("service:\n  ssh:\n    running: true\n  'tcp:22': {}\n  ssh:\n    enabled: true\n");
    assert!(
        e.ends_with("goss.yaml:5:3: `ssh` is written twice under `service` (lines 2 and 5); Goss refuses this too: keep one"),
        "{e}"
    );
    // A key inside a block scalar or deeper is not a resource key.
    let dir2 = tempfile::tempdir().unwrap();
    let ok = write(
        dir2.path(),
        "goss.yaml",
        "command:\n  a:\n    exec: |\n      x: 1\n      x: 1\n    exit-status: 0\n  b:\n    exec: \"true\"\n",
    );
    read_goss(&ok, &GossVars::default()).unwrap();
}

#[test]
fn yaml_merge_keys_and_tags_are_read_as_goss_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "goss.yaml",
        "command:\n  echo one: &ok\n    exit-status: 0\n    stdout: [one]\n  echo two:\n    <<: *ok\n    stdout: [two]\n",
    );
    let (suite, _) = read_goss(&p, &GossVars::default()).unwrap();
    assert_eq!(suite.checks.len(), 2);
    let r = run_suite(&suite, &LocalShell, &RunOptions::default());
    for c in &r.results {
        assert_eq!(c.status, Status::Passed, "{}: {}", c.id, c.message);
    }
    let bad = write(
        dir.path(),
        "bad.yaml",
        "command:\n  a: &d\n    exit-status: 0\n  b:\n    <<: *d\n    exit-code: 1\n",
    );
    let e = load_goss(&bad).unwrap_err().to_string();
    assert!(
        e.contains("bad.yaml") && e.contains("unknown field `exit-code`"),
        "{e}"
    );
}

#[test]
fn a_matcher_goss_cannot_use_makes_that_check_an_error_not_the_file_refused() {
    // `- allowusers: x` in a list of patterns is a mapping, not a pattern: Goss reads the file
    // and fails that check; so does Bakery (as an error), and the other checks still run.
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "goss.yaml",
        "command:\n  echo AllowUsers root:\n    exit-status: 0\n    stdout:\n    - allowusers: root\n  echo fine:\n    exit-status: 0\n    stdout: [fine]\n",
    );
    let (suite, _) = read_goss(&p, &GossVars::default()).unwrap();
    let r = run_suite(&suite, &LocalShell, &RunOptions::default());
    let get = |id: &str| r.results.iter().find(|c| c.id == id).unwrap();
    let broken = get("command:echo AllowUsers root");
    assert_eq!(broken.status, Status::Error, "{}", broken.message);
    assert!(
        broken.message.contains("unknown matcher `allowusers`"),
        "{}",
        broken.message
    );
    assert_eq!(get("command:echo fine").status, Status::Passed);
    // Outside Goss files, the same mistake is refused when the file is read.
    assert!(serde_yaml::from_str::<crate::suites::Matcher>("[{allowusers: root}]").is_err());
}
