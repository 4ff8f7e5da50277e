//! Fuzzing on stable Rust: property-based generators (proptest) feed every loader (pipeline,
//! suites with experiments, Goss files with templates and vars, waivers, attestations, the
//! action's inputs, the local store's JSON) and every parser of probe output (`stat`,
//! `dpkg-query`, `systemctl show`, `/proc/net`, `sshd -T`, mounts, passwd, console host keys,
//! SSM responses, HTTP responses, the image manifest script's output) with structured and mutated input. The property: no panic;
//! an error is fine.
//!
//! `cargo test` runs a small fixed number of cases per target with a fixed seed.
//! `scripts/fuzz.sh [minutes]` sets `BAKERY_FUZZ_SECONDS` (a time budget per target, with a new
//! random seed for each round) and `BAKERY_FUZZ_SAVE=1`: an input that panics is shrunk and
//! kept as `tests/fuzz-regressions/<target>/<hash>.txt`, which [`regressions_replay`] feeds to
//! its target in every `cargo test` from then on.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

/// A fuzz target: one input as text (structured inputs are encoded in it, so that a regression
/// file is plain text).
type Target = fn(&str);

/// Every target, by name (the name of its regression folder).
const TARGETS: &[(&str, Target)] = &[
    ("pipeline", pipeline),
    ("suite", suite),
    ("goss", goss),
    ("waivers", waivers),
    ("attestations", attestations),
    ("action", action),
    ("store", store),
    ("probe-output", probe_output),
    ("console", console),
    ("ssm", ssm),
    ("http-response", http_response),
    ("systemctl-units", systemctl_units),
    ("manifest", manifest),
];

// ---------------------------------------------------------------------------------------------
// Running

/// Cases per target in `cargo test` (overridden by `BAKERY_FUZZ_CASES`).
const DEFAULT_CASES: u32 = 48;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn regression_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target)
}

/// Runs `target` on inputs from `strategy`: a fixed number of cases with a fixed seed, or,
/// with `BAKERY_FUZZ_SECONDS`, rounds with fresh seeds until the budget is spent. Prints the
/// number of inputs tried (`fuzz: NAME: N inputs in S s`), which scripts/fuzz.sh adds up.
fn fuzz(name: &str, strategy: impl Strategy<Value = String>) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a registered target");
    let cases = env_u64("BAKERY_FUZZ_CASES").unwrap_or(DEFAULT_CASES as u64) as u32;
    let budget = env_u64("BAKERY_FUZZ_SECONDS").map(Duration::from_secs);
    let started = Instant::now();
    let mut tried: u64 = 0;
    let mut round: u64 = 0;
    loop {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 2048,
            ..Config::default()
        };
        let rng = if budget.is_some() {
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed(round))
        } else {
            TestRng::deterministic_rng(RngAlgorithm::ChaCha)
        };
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&strategy, |input| {
            target(&input);
            Ok(())
        });
        tried += u64::from(cases);
        round += 1;
        if let Err(e) = result {
            let input = match &e {
                TestError::Fail(_, input) => input.clone(),
                TestError::Abort(why) => panic!("fuzz: {name}: aborted: {why}"),
            };
            let kept = keep(name, &input);
            panic!("fuzz: {name}: a panic on input {input:?}{kept}\n{e}");
        }
        match budget {
            Some(b) if started.elapsed() < b => continue,
            _ => break,
        }
    }
    println!(
        "fuzz: {name}: {tried} inputs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// A seed for round `round` of a timed run: the time and the round, so that runs differ.
fn seed(round: u64) -> [u8; 32] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut s = [0u8; 32];
    s[..16].copy_from_slice(&nanos.to_le_bytes());
    s[16..24].copy_from_slice(&round.to_le_bytes());
    s[24..28].copy_from_slice(&std::process::id().to_le_bytes());
    s
}

/// Keeps a failing input as a regression file when `BAKERY_FUZZ_SAVE` is set; says where.
fn keep(name: &str, input: &str) -> String {
    if std::env::var_os("BAKERY_FUZZ_SAVE").is_none() {
        return String::new();
    }
    let dir = regression_dir(name);
    let hash = input.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    });
    let path = dir.join(format!("{hash:016x}.txt"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => format!(" (kept as {})", path.display()),
        Err(e) => format!(" (could not be kept in {}: {e})", path.display()),
    }
}

/// Every input that ever made a target panic, replayed.
#[test]
fn regressions_replay() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        let Ok(rd) = std::fs::read_dir(regression_dir(name)) else {
            continue;
        };
        for e in rd {
            let path = e.expect("a directory entry").path();
            let input = std::fs::read_to_string(&path).expect("a regression file is text");
            target(&input);
            replayed += 1;
        }
    }
    println!("fuzz: replayed {replayed} regression inputs");
}

#[test]
fn every_target_has_a_generator() {
    // The names fuzz() looks up; a target without a test would never run.
    let src = include_str!("fuzz.rs");
    for (name, _) in TARGETS {
        assert!(
            src.contains(&format!("fuzz(\"{name}\"")) || src.contains(&format!("\"{name}\",\n")),
            "target {name} has no fuzz test"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Scalars that stress a deserializer: types, ranges, YAML's special forms, paths, templates.
fn scalar() -> BoxedStrategy<String> {
    prop_oneof![
        Just("true".to_string()),
        Just("no".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1.5".to_string()),
        Just("1e400".to_string()),
        Just("18446744073709551616".to_string()),
        Just("4294967296".to_string()),
        Just("65536".to_string()),
        Just("-9223372036854775809".to_string()),
        Just(".nan".to_string()),
        Just("90s".to_string()),
        Just("1h 30m".to_string()),
        Just("2027-02-30".to_string()),
        Just("\"\"".to_string()),
        Just("'  '".to_string()),
        Just("/etc/passwd".to_string()),
        Just("../../etc".to_string()),
        Just("ami-0123456789abcdef0".to_string()),
        Just("debian-12".to_string()),
        Just("\"{{timestamp}}\"".to_string()),
        Just("\"{{ .Vars.x }}\"".to_string()),
        Just("\"{{\"".to_string()),
        Just("'[unclosed'".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("\"ÿ日本\u{202e}\"".to_string()),
        Just("*anchor".to_string()),
        Just("&a x".to_string()),
        Just("!!binary aGk=".to_string()),
        Just("|\n  block".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        "[a-z0-9_./:-]{0,12}",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ]
    .boxed()
}

/// A YAML document (block style, two-space indentation) whose keys come from `keys`, nested
/// `depth` deep: structured enough to get past the outer layers of a loader.
fn document(keys: &'static [&'static str], depth: u32) -> BoxedStrategy<String> {
    fn key(keys: &'static [&'static str]) -> BoxedStrategy<String> {
        prop_oneof![
            8 => proptest::sample::select(keys).prop_map(str::to_string),
            1 => "[a-z-]{1,8}",
            1 => Just("\"1.1.1\"".to_string()),
        ]
        .boxed()
    }
    let leaf = scalar().prop_map(|s| format!(" {s}\n"));
    leaf.prop_recursive(depth, 64, 6, move |inner| {
        prop_oneof![
            // A mapping.
            proptest::collection::vec((key(keys), inner.clone()), 1..6).prop_map(|entries| {
                let mut out = String::from("\n");
                for (k, v) in entries {
                    out.push_str(&format!("{k}:{}", indent(&v)));
                }
                out
            }),
            // A list.
            proptest::collection::vec(inner.clone(), 1..4).prop_map(|items| {
                let mut out = String::from("\n");
                for v in items {
                    let v = indent(&v);
                    // `- key: value` for mappings, `- value` for scalars.
                    match v.strip_prefix("\n  ") {
                        Some(rest) => out.push_str(&format!("- {rest}")),
                        None => out.push_str(&format!("-{v}")),
                    }
                }
                out
            }),
            // A flow mapping on one line.
            proptest::collection::vec((key(keys), scalar()), 0..4).prop_map(|entries| {
                let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!(" {{{}}}\n", inner.join(", "))
            }),
        ]
    })
    .prop_map(|doc| doc.trim_start_matches('\n').to_string())
    .boxed()
}

/// Indents every line of a nested value by two spaces (a scalar stays on the key's line).
fn indent(v: &str) -> String {
    if !v.starts_with('\n') {
        return v.to_string();
    }
    let mut out = String::from("\n");
    for l in v[1..].lines() {
        out.push_str("  ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Characters that matter to YAML, JSON and templates.
const SYNTAX: &[&str] = &[
    ":",
    " ",
    "\n",
    "\t",
    "-",
    "- ",
    "#",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    "\"",
    "&",
    "*",
    "!",
    "|",
    ">",
    "%",
    "@",
    "`",
    "{{",
    "}}",
    "{{ end }}",
    "\\",
    "\u{feff}",
    "\r\n",
    "---\n",
    "...\n",
    "<<: *a\n",
    "? ",
    "\u{0}",
];

/// `text` mutated a few times: bytes of syntax inserted, ranges deleted or duplicated, lines
/// swapped or re-indented, the text cut short.
fn mutated(text: BoxedStrategy<String>) -> BoxedStrategy<String> {
    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, &'static str),
        Delete(usize, usize),
        Duplicate(usize, usize),
        SwapLines(usize, usize),
        Reindent(usize, usize),
        Truncate(usize),
    }
    let op = prop_oneof![
        (any::<usize>(), proptest::sample::select(SYNTAX)).prop_map(|(a, s)| Op::Insert(a, s)),
        (any::<usize>(), 1usize..16).prop_map(|(a, n)| Op::Delete(a, n)),
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Op::Duplicate(a, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Op::SwapLines(a, b)),
        (any::<usize>(), 0usize..7).prop_map(|(a, n)| Op::Reindent(a, n)),
        any::<usize>().prop_map(Op::Truncate),
    ];
    (text, proptest::collection::vec(op, 0..5))
        .prop_map(|(text, ops)| {
            let mut chars: Vec<char> = text.chars().collect();
            for op in ops {
                let len = chars.len().max(1);
                match op {
                    Op::Insert(at, s) => {
                        let at = at % (chars.len() + 1);
                        chars.splice(at..at, s.chars());
                    }
                    Op::Delete(at, n) => {
                        let at = at % len;
                        let end = (at + n).min(chars.len());
                        if at < end {
                            chars.drain(at..end);
                        }
                    }
                    Op::Duplicate(at, n) => {
                        let at = at % len;
                        let end = (at + n).min(chars.len());
                        if at < end {
                            let copy: Vec<char> = chars[at..end].to_vec();
                            chars.splice(end..end, copy);
                        }
                    }
                    Op::SwapLines(a, b) | Op::Reindent(a, b) if chars.is_empty() => {
                        let _ = (a, b);
                    }
                    Op::SwapLines(a, b) => {
                        let s: String = chars.iter().collect();
                        let mut lines: Vec<&str> = s.lines().collect();
                        let n = lines.len();
                        lines.swap(a % n, b % n);
                        chars = (lines.join("\n") + "\n").chars().collect();
                    }
                    Op::Reindent(a, by) => {
                        let s: String = chars.iter().collect();
                        let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
                        let n = lines.len();
                        let l = &mut lines[a % n];
                        *l = format!("{}{}", " ".repeat(by), l.trim_start());
                        chars = (lines.join("\n") + "\n").chars().collect();
                    }
                    Op::Truncate(at) => chars.truncate(at % len),
                }
            }
            chars.into_iter().collect()
        })
        .boxed()
}

/// An edit of a YAML value at a path (each step picks an entry of a mapping or a list).
#[derive(Debug, Clone)]
enum Edit {
    /// Replace the value with a scalar (read as YAML: a number, a boolean, a string, ...).
    Replace(String),
    /// Remove the entry.
    Remove,
    /// Add a key of the format's vocabulary with a scalar value to a mapping (an item to a list).
    Insert(usize, String),
    /// Replace the value with an empty mapping, an empty list or null.
    Retype(u8),
    /// Replace the value with a copy of another node of the document.
    Copy(Vec<usize>),
}

fn edit() -> BoxedStrategy<(Vec<usize>, Edit)> {
    let op = prop_oneof![
        4 => scalar().prop_map(Edit::Replace),
        2 => Just(Edit::Remove),
        3 => (any::<usize>(), scalar()).prop_map(|(k, v)| Edit::Insert(k, v)),
        1 => (0u8..3).prop_map(Edit::Retype),
        1 => proptest::collection::vec(any::<usize>(), 0..5).prop_map(Edit::Copy),
    ];
    (proptest::collection::vec(any::<usize>(), 0..6), op).boxed()
}

fn scalar_value(s: &str) -> serde_yaml::Value {
    serde_yaml::from_str(s).unwrap_or_else(|_| serde_yaml::Value::String(s.to_string()))
}

/// The node at `path` (as far as it leads), and whether its parent is a mapping and the key
/// or index it has there.
fn node_at<'v>(v: &'v mut serde_yaml::Value, path: &[usize]) -> &'v mut serde_yaml::Value {
    let Some((&step, rest)) = path.split_first() else {
        return v;
    };
    let has_children = match &*v {
        serde_yaml::Value::Mapping(m) => !m.is_empty(),
        serde_yaml::Value::Sequence(s) => !s.is_empty(),
        serde_yaml::Value::Tagged(_) => true,
        _ => false,
    };
    if !has_children {
        return v;
    }
    match v {
        serde_yaml::Value::Mapping(m) => {
            let n = step % m.len();
            let child = m.values_mut().nth(n).expect("an entry");
            node_at(child, rest)
        }
        serde_yaml::Value::Sequence(s) => {
            let n = step % s.len();
            node_at(&mut s[n], rest)
        }
        serde_yaml::Value::Tagged(t) => node_at(&mut t.value, rest),
        other => other,
    }
}

fn apply(doc: &mut serde_yaml::Value, path: &[usize], edit: &Edit, keys: &[&str]) {
    match edit {
        Edit::Replace(s) => *node_at(doc, path) = scalar_value(s),
        Edit::Retype(t) => {
            *node_at(doc, path) = match t {
                0 => serde_yaml::Value::Mapping(Default::default()),
                1 => serde_yaml::Value::Sequence(Vec::new()),
                _ => serde_yaml::Value::Null,
            }
        }
        Edit::Copy(from) => {
            let copy = node_at(&mut doc.clone(), from).clone();
            *node_at(doc, path) = copy;
        }
        Edit::Insert(k, s) => match node_at(doc, path) {
            serde_yaml::Value::Mapping(m) => {
                m.insert(keys[k % keys.len()].into(), scalar_value(s));
            }
            serde_yaml::Value::Sequence(items) => items.push(scalar_value(s)),
            other => *other = scalar_value(s),
        },
        Edit::Remove => {
            let Some((&last, parent)) = path.split_last() else {
                return;
            };
            match node_at(doc, parent) {
                serde_yaml::Value::Mapping(m) if !m.is_empty() => {
                    let key = m.keys().nth(last % m.len()).cloned().expect("an entry");
                    m.remove(&key);
                }
                serde_yaml::Value::Sequence(items) if !items.is_empty() => {
                    let n = last % items.len();
                    items.remove(n);
                }
                _ => {}
            }
        }
    }
}

/// Valid files of the format (`seeds`) with a few structural edits: most of the document
/// stays valid, so each input gets deep into the loader before something is off.
fn seeded(seeds: &'static [&'static str], keys: &'static [&'static str]) -> BoxedStrategy<String> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(edit(), 0..4),
    )
        .prop_map(move |(seed, edits)| {
            let mut doc: serde_yaml::Value =
                serde_yaml::from_str(seed).unwrap_or(serde_yaml::Value::Null);
            for (path, e) in &edits {
                apply(&mut doc, path, e, keys);
            }
            serde_yaml::to_string(&doc).unwrap_or_default()
        })
        .boxed()
}

/// Valid files edited, the same mutated as text, generated documents, and now and then text
/// with no structure at all.
fn yaml_input(
    seeds: &'static [&'static str],
    keys: &'static [&'static str],
    depth: u32,
) -> BoxedStrategy<String> {
    let seeded = seeded(seeds, keys);
    let doc = document(keys, depth);
    prop_oneof![
        5 => seeded.clone(),
        3 => mutated(seeded),
        1 => doc.clone(),
        1 => mutated(doc),
        1 => any::<String>(),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------
// Loaders

/// A directory for files the loaders read, one per thread.
fn scratch() -> PathBuf {
    thread_local! {
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
    }
    DIR.with(|d| d.path().to_path_buf())
}

const PIPELINE_KEYS: &[&str] = &[
    "provider",
    "source",
    "local",
    "file",
    "image",
    "ssm_parameter",
    "filter",
    "name",
    "owners",
    "architecture",
    "build",
    "instance",
    "cpus",
    "memory_mb",
    "ssh_user",
    "boot_timeout",
    "forward_ports",
    "provisioners",
    "shell",
    "inline",
    "script",
    "environment",
    "timeout",
    "source",
    "destination",
    "tags",
    "verify",
    "suites",
    "probe",
    "probes",
    "junit",
    "concurrency",
    "goss",
    "vars",
    "vars-inline",
    "builtin",
    "variables",
    "cis",
    "benchmark",
    "profile",
    "exclude",
    "waivers",
    "attestations",
    "min-score",
    "promote",
    "pointer",
    "keep",
    "aws",
    "region",
    "instance_type",
    "subnet",
    "ssh_cidr",
    "transport",
    "instance_profile",
    "spot",
    "volume_size_gb",
    "no_reboot",
    "image_timeout",
    "expires_after",
    "services",
    "smoke",
    "chaos-systemd",
];

/// Pipelines that load (the built-in suites and the benchmark need no other file).
const PIPELINE_SEEDS: &[&str] = &[
    include_str!("../examples/local/bakery.yml"),
    include_str!("../examples/aws/bakery.yml"),
    include_str!("../examples/local/cis/bakery.yml"),
    "source:\n  local: debian-12\nimage:\n  name: web-{{timestamp}}\n  tags: {team: web, commit: \"{{git.short_sha}}\"}\nbuild:\n  instance: {cpus: 2, memory_mb: 2048, boot_timeout: 10m, forward_ports: [80]}\nverify:\n  concurrency: 8\n  probes:\n    chaos: {cpus: 1, memory_mb: 512}\n  suites:\n    - builtin: smoke\n    - builtin: chaos-systemd\n      probe: chaos\n      variables: {services: [nginx], service_recover_within: 10s, disk_fill_percent: 90}\n    - cis:\n        benchmark: debian-12\n        profile: level-2-server\n        min-score: 90\n        name: cis-web\n        variables: {ssh_max_auth_tries: 3}\n        exclude: {\"1.1.2\": no separate partitions, \"5.1.4\": bastion}\npromote:\n  pointer: /golden/web\n  keep: 2\n",
    "provider: aws\nsource:\n  filter: {name: al2023-ami-2023.*-x86_64, owners: [amazon]}\nimage:\n  name: web\naws:\n  region: eu-west-1\n  transport: ssm\n  spot: true\n  volume_size_gb: 16\n  expires_after: 2h\nverify:\n  suites: [{builtin: smoke}]\n",
];

/// The pipeline loader, and the suites it names (built-in ones, CIS with tailoring, files).
fn pipeline(text: &str) {
    let dir = scratch();
    let path = dir.join("bakery.yml");
    std::fs::write(&path, text).expect("a scratch file");
    if let Ok(loaded) = crate::config::load(&path) {
        let _ = crate::verify::read_suites(&loaded, &[], &Default::default());
    }
    let _ = crate::config::read(&path).map(|l| crate::config::problems(&l));
}

#[test]
fn fuzz_pipeline() {
    fuzz("pipeline", yaml_input(PIPELINE_SEEDS, PIPELINE_KEYS, 4));
}

/// Every key of a suite file (checks, resources, matchers, experiments, faults), from its
/// JSON Schema.
fn suite_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        fn walk(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                        out.extend(props.keys().cloned());
                    }
                    m.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        walk(&crate::suites::schema(), &mut keys);
        keys.extend(crate::suites::matcher::KEYS.iter().map(|k| k.to_string()));
        keys.into_iter()
            .map(|k| &*Box::leak(k.into_boxed_str()))
            .collect()
    })
}

/// Suites that load, checks and experiments of every kind among them.
const SUITE_SEEDS: &[&str] = &[
    include_str!("../examples/local/web.yml"),
    include_str!("../examples/local/web-chaos.yml"),
    include_str!("../examples/local/web-reboot.yml"),
    include_str!("../examples/aws/baseline.yml"),
    include_str!("../test-suites/smoke.yml"),
    PROBE_SUITE,
    "name: mixed\nprobe: chaos\nchecks:\n  - id: all\n    all-of:\n      - {command: {run: 'true', exit-status: {or: [0, 1]}}}\n      - {file: {path: /etc, filetype: directory}}\n    skip: not today\n  - id: r\n    retry: {attempts: 3, interval: 1s}\n    eventually: 20s\n    command: {run: 'true'}\nexperiments:\n  - id: stop\n    steady-state: [{id: up, service: {name: nginx, running: true}}]\n    fault: {stop-service: {name: nginx}, duration: 5s}\n    during: [{id: down, port: {port: 80, listening: false}}]\n    recover-within: 10s\n    restores-units: true\n  - id: lat\n    steady-state: [{id: up2, http: {url: 'http://127.0.0.1/'}}]\n    fault: {network-latency: {delay: 100ms, jitter: 10ms}}\n",
];

/// The suite loader (checks, matchers, experiments), and a Goss file's detection.
fn suite(text: &str) {
    let _ = crate::suites::load::looks_like_goss(text);
    let _ = crate::suites::parse_suite(text, Path::new("suite.yml"));
}

#[test]
fn fuzz_suite() {
    let keys = suite_keys();
    fuzz("suite", yaml_input(SUITE_SEEDS, keys, 5));
}

/// The keys of a Goss file: its resource types, then attributes, unsupported ones, resource
/// names and template text.
fn goss_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = crate::suites::goss::RESOURCE_TYPES.to_vec();
        keys.extend_from_slice(GOSS_ATTRIBUTE_KEYS);
        keys
    })
}

const GOSS_ATTRIBUTE_KEYS: &[&str] = &[
    "registry",
    "exists",
    "mode",
    "owner",
    "filetype",
    "contents",
    "contains",
    "sha256",
    "sha512",
    "md5",
    "linked-to",
    "installed",
    "versions",
    "listening",
    "ip",
    "running",
    "enabled",
    "exit-status",
    "stdout",
    "stderr",
    "timeout",
    "exec",
    "resolvable",
    "resolveable",
    "addrs",
    "server",
    "status",
    "body",
    "headers",
    "url",
    "method",
    "allow-insecure",
    "no-follow-redirects",
    "value",
    "content",
    "matches",
    "as-reader",
    "mountpoint",
    "opts",
    "vfs-opts",
    "source",
    "filesystem",
    "usage",
    "uid",
    "gid",
    "groups",
    "home",
    "shell",
    "username",
    "skip",
    "title",
    "meta",
    "retry_count",
    "retry_delay",
    "reachable",
    "local-address",
    "address",
    "mtu",
    "name",
    "comm",
    "groupname",
    "request-headers",
    "request-body",
    "ca-file",
    "tcp:22",
    "udp6:53",
    "/etc/passwd",
    "nginx",
    "have-prefix",
    "contain-element",
    "not",
    "and",
    "or",
    "lt",
    "semver",
    "{{ .Vars.name }}",
    "{{ range .Vars.l }}",
    "{{ end }}",
];

/// A Goss file using every resource type Bakery reads.
const GOSS_SEED: &str = r#"
file:
  /etc/passwd:
    exists: true
    mode: "0644"
    owner: root
    filetype: file
    contents: [root, "/^root:/"]
  /etc/motd: {exists: true, contains: {have-prefix: Debian}, sha256: abc}
package:
  nginx: {installed: true, versions: {semver-constraint: ">1.0"}}
  telnet: {installed: false}
service:
  ssh: {enabled: true, running: true}
port:
  tcp:22: {listening: true, ip: [0.0.0.0]}
  udp6:53: {listening: false}
user:
  root: {exists: true, uid: 0, groups: [root], home: /root, shell: /bin/bash}
group:
  adm: {exists: true, gid: 4}
command:
  echo hi:
    exit-status: 0
    stdout: [hi]
    timeout: 5000
    retry_count: 2
    retry_delay: 1s
process:
  sshd: {running: true}
kernel-param:
  net.ipv4.ip_forward: {value: "0"}
mount:
  /: {exists: true, opts: [rw], filesystem: ext4, usage: {lt: 95}}
interface:
  eth0: {exists: true, mtu: 1500}
dns:
  A:localhost: {resolvable: true, addrs: {contain-element: 127.0.0.1}, timeout: 500}
addr:
  tcp://127.0.0.1:22: {reachable: true, timeout: 500}
http:
  http://127.0.0.1/: {status: 200, body: [ok], headers: ["Server: nginx"], allow-insecure: true, timeout: 1000}
matching:
  numbers:
    content: [1, 2]
    matches: {contain-element: 1}
gossfile:
  none/*.yaml: {skip: true}
"#;

/// Go template actions a Goss file may hold.
const ACTIONS: &[&str] = &[
    "{{ .Vars.name }}",
    "{{ .Vars.l }}",
    "{{ .Vars.m.k }}",
    "{{ .Env.HOME }}",
    "{{ range .Vars.l }}- {{ . }}\n{{ end }}",
    "{{ range $i, $v := .Vars.m }}{{ $i }}: {{ $v }}\n{{ end }}",
    "{{ if .Vars.b }}x{{ else }}y{{ end }}",
    "{{ if eq .Vars.name \"nginx\" }}1{{ end }}",
    "{{ index .Vars.m \"k\" }}",
    "{{ index .Vars.l 7 }}",
    "{{ printf \"%d-%s\" 1 .Vars.name }}",
    "{{ toUpper .Vars.name }}",
    "{{ regexMatch \"^n\" .Vars.name }}",
    "{{ readFile \"/nonexistent\" }}",
    "{{ getEnv \"HOME\" \"x\" }}",
    "{{ toJson .Vars }}",
    "{{ len .Vars.l }}",
    "{{ slice .Vars.name 1 9 }}",
    "{{- /* comment */ -}}",
    "{{ template \"x\" }}",
    "{{ define \"x\" }}y{{ end }}",
    "{{ with .Vars.m }}{{ .k }}{{ end }}",
    "{{ $x := 1 }}{{ $x }}",
    "{{ .Vars.name | upper }}",
    "{{",
    "}}",
    "{{ end }}",
];

/// Vars: JSON or YAML mappings with the names the templates use, or anything.
fn goss_vars() -> BoxedStrategy<String> {
    let value = prop_oneof![
        Just("\"nginx\"".to_string()),
        Just("[1, \"a\", null]".to_string()),
        Just("{\"k\": \"v\", \"l\": []}".to_string()),
        Just("true".to_string()),
        Just("-1".to_string()),
        Just("1e999".to_string()),
        Just("\"{{ .Vars.name }}\"".to_string()),
        "[a-z]{0,6}".prop_map(|s| format!("\"{s}\"")),
    ];
    let name = proptest::sample::select(&["name", "l", "m", "b", "k", "x"][..]);
    prop_oneof![
        6 => proptest::collection::vec((name, value), 0..6).prop_map(|entries| {
            let inner: Vec<String> =
                entries.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
            format!("{{{}}}", inner.join(", "))
        }),
        1 => any::<String>(),
        1 => Just(String::new()),
    ]
    .boxed()
}

/// Goss files: documents with template actions spliced in, rendered with generated vars (the
/// input is `vars` + a line `---8<---` + the file).
fn goss(input: &str) {
    let (vars, text) = input.split_once("\n---8<---\n").unwrap_or(("", input));
    let dir = scratch();
    let path = dir.join("goss.yaml");
    std::fs::write(&path, text).expect("a scratch file");
    let vars = crate::suites::GossVars {
        files: Vec::new(),
        inline: Some(vars.to_string()),
    };
    let _ = crate::suites::goss::read_goss(&path, &vars);
}

#[test]
fn fuzz_goss() {
    let doc = prop_oneof![
        3 => seeded(&[GOSS_SEED], goss_keys()),
        1 => document(goss_keys(), 4),
    ];
    let templated = (
        doc,
        proptest::collection::vec((any::<usize>(), proptest::sample::select(ACTIONS)), 0..4),
    )
        .prop_map(|(doc, actions)| {
            let mut chars: Vec<char> = doc.chars().collect();
            for (at, a) in actions {
                let at = at % (chars.len() + 1);
                chars.splice(at..at, a.chars());
            }
            chars.into_iter().collect::<String>()
        })
        .boxed();
    let text = prop_oneof![
        3 => templated.clone(),
        3 => mutated(templated),
        1 => any::<String>(),
    ];
    fuzz(
        "goss",
        (goss_vars(), text).prop_map(|(v, t)| format!("{v}\n---8<---\n{t}")),
    );
}

/// The control ids of the built-in benchmark, once.
fn controls() -> &'static (Vec<String>, std::collections::BTreeSet<&'static str>) {
    static IDS: OnceLock<(Vec<String>, std::collections::BTreeSet<&'static str>)> = OnceLock::new();
    IDS.get_or_init(|| {
        let b = crate::suites::cis::Benchmark::load(
            "debian-12",
            &Default::default(),
            "verify.suites[0].cis",
        )
        .expect("the built-in benchmark loads");
        let ids: Vec<String> = b.controls.iter().map(|c| c.id.clone()).collect();
        let known = ids
            .iter()
            .map(|i| &*Box::leak(i.clone().into_boxed_str()))
            .collect();
        (ids, known)
    })
}

const WAIVER_SEEDS: &[&str] = &[
    include_str!("../examples/local/cis/waivers.yml"),
    "\"5.1.4\":\n  justification: bastion host\n  expiration_date: 2027-03-31\n  run: false\n\"1.1.2.3.2\": {justification: one disk}\n",
];

const ATTESTATION_SEEDS: &[&str] = &[
    "\"1.1.1.10\":\n  status: passed\n  justification: reviewed by ops\n  evidence_url: https://example.com/T-1\n  expiration_date: 2027-01-01\n\"1.2.1.1\": {status: failed, justification: no key yet}\n",
];

const KEYED_KEYS: &[&str] = &[
    "justification",
    "expiration_date",
    "run",
    "status",
    "evidence_url",
    "passed",
    "failed",
    "\"5.1.4\"",
    "\"1.1.1.10\"",
    "\"9.9.9\"",
    "'5.1.4'",
    "5.1",
];

fn keyed<T: serde::de::DeserializeOwned>(text: &str, what: &str) {
    let path = scratch().join(format!("{what}s.yml"));
    std::fs::write(&path, text).expect("a scratch file");
    let _ = crate::suites::cis::read_keyed::<T>(&path, &controls().1, what);
}

fn waivers(text: &str) {
    keyed::<crate::suites::cis::Waiver>(text, "waiver");
}

fn attestations(text: &str) {
    keyed::<crate::suites::cis::Attestation>(text, "attestation");
}

#[test]
fn fuzz_waivers() {
    fuzz("waivers", yaml_input(WAIVER_SEEDS, KEYED_KEYS, 3));
}

#[test]
fn fuzz_attestations() {
    fuzz("attestations", yaml_input(ATTESTATION_SEEDS, KEYED_KEYS, 3));
}

/// The action's inputs: `KEY=VALUE` lines (`\n` in a value written `\\n`).
fn action(input: &str) {
    let env: std::collections::BTreeMap<String, String> = input
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("\\n", "\n")))
        .collect();
    if let Ok(inputs) = crate::action::inputs::Inputs::from_env(&env) {
        let argv = inputs.argv();
        let _ = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv);
    }
    for v in env.values() {
        let _ = crate::action::inputs::split_args(v);
    }
}

#[test]
fn fuzz_action() {
    let key = proptest::sample::select(
        &[
            "INPUT_MODE",
            "INPUT_PIPELINE",
            "INPUT_IMAGE",
            "INPUT_REGION",
            "INPUT_GITHUB-TOKEN",
            "INPUT_GITHUB_TOKEN",
            "INPUT_JUNIT",
            "INPUT_PROMOTE",
            "INPUT_CHECK-NAME",
            "INPUT_ARGS",
        ][..],
    );
    let value = prop_oneof![
        proptest::sample::select(
            &[
                "run",
                "bake",
                "verify",
                "promote",
                "cleanup",
                "outdated",
                "validate",
                "RUN",
                "true",
                "False",
                "yes",
                "ami-0123456789abcdef0",
                "--no-promote",
                "--provider aws --older-than 2h",
                "--vars 'a b' \"c\\\"d\" e\\ f",
                "'",
                "\"",
                "\\",
                "--data-dir",
                "-vvv",
                "--help",
                "--version",
                "",
            ][..]
        )
        .prop_map(str::to_string),
        "[ -~]{0,30}",
        any::<String>().prop_map(|s| s.replace('\n', "\\n")),
    ];
    let lines = proptest::collection::vec((key, value), 0..6).prop_map(|kv| {
        kv.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    fuzz("action", lines);
}

/// The local store's JSON: an image record, the pointer file and a run ledger, each damaged
/// (the input is `which` + a line `---8<---` + the file).
fn store(input: &str) {
    let (which, text) = input.split_once("\n---8<---\n").unwrap_or(("image", input));
    let root = scratch().join("store");
    let id = "ami-0123456789abcdef0";
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("images").join(id)).expect("a scratch directory");
    let store = crate::cloud::local::store::Store::new(&root);
    match which {
        "pointers" => {
            std::fs::write(root.join("pointers.json"), text).expect("a scratch file");
            let _ = store.pointer_table();
        }
        "ledger" => {
            let path = root.join("run.json");
            std::fs::write(&path, text).expect("a scratch file");
            if let Ok(l) = crate::ledger::Ledger::open(&path) {
                let _ = l.snapshot();
            }
        }
        _ => {
            std::fs::write(root.join("images").join(id).join("image.json"), text)
                .expect("a scratch file");
            let _ = store.record(id);
            let _ = store.records();
        }
    }
}

#[test]
fn fuzz_store() {
    let image = r#"{"id": "ami-0123456789abcdef0", "name": "web", "parent": null, "tags": {"a": "b"}, "state": "available", "created": "2026-11-22T00:00:00Z", "size_bytes": 0, "boot": {"kernel": "boot/vmlinuz", "initrd": "/abs/initrd", "append": "console=ttyS0"}}"#;
    let pointers = r#"{"/golden/web": [{"version": 1, "image_id": "ami-0123456789abcdef0", "time": "t"}, {"version": 18446744073709551615, "image_id": "x", "time": ""}]}"#;
    let ledger = r#"{"run_id": "run-1", "pid": 1, "started": "s", "entries": [{"seq": 1, "resource": {"type": "path", "path": "/tmp/x"}, "purpose": "p", "created": "c", "released": false}, {"seq": 2, "resource": {"type": "cloud", "provider": "aws", "kind": "instance", "id": "i-1", "region": "eu-west-1"}, "purpose": "p", "created": "c", "released": true}]}"#;
    let which = proptest::sample::select(&["image", "pointers", "ledger"][..]);
    let text = mutated(
        proptest::sample::select(vec![image, pointers, ledger])
            .prop_map(str::to_string)
            .boxed(),
    );
    fuzz(
        "store",
        (which, text).prop_map(|(w, t)| format!("{w}\n---8<---\n{t}")),
    );
}

// ---------------------------------------------------------------------------------------------
// Probe output

/// One check of each resource type, in a few shapes, as a suite: what the probe's output is
/// judged against.
const PROBE_SUITE: &str = r#"
- id: file
  file: {path: /etc/motd, exists: true, mode: "0644", owner: root, group: root, uid: 0, gid: {lt: 10}, size: {gt: 1}, filetype: file, contents: {contains: x}, sha256: abc, md5: def, linked-to: /x}
- id: file-missing
  file: {path: /nope, exists: false}
- id: package
  package: {name: nginx, installed: true, version: {semver: ">=1.0"}}
- id: package-absent
  package: {name: telnet, installed: false}
- id: service
  service: {name: ssh, running: true, enabled: true}
- id: port
  port: {port: 22, listening: true, ip: [0.0.0.0]}
- id: port6
  port: {port: 53, protocol: udp6, listening: false}
- id: user
  user: {name: root, exists: true, uid: 0, gid: 0, groups: {contain-element: root}, home: /root, shell: /bin/bash}
- id: group
  group: {name: adm, exists: true, gid: 4}
- id: process
  process: {comm: sshd, running: true}
- id: kernel-param
  kernel-param: {name: net.ipv4.ip_forward, value: "0"}
- id: mount
  mount: {path: /, exists: true, opts: {contain-element: rw}, source: /dev/vda1, filesystem: ext4, usage: {lt: 95}}
- id: interface
  interface: {name: eth0, exists: true, addrs: {contain-element: 10.0.2.15/24}, mtu: 1500}
- id: dns
  dns: {name: localhost, resolvable: true, addrs: [127.0.0.1]}
- id: addr
  addr: {address: "tcp://127.0.0.1:22", reachable: true}
- id: command
  command: {run: "echo hi", exit-status: 0, stdout: {contains: hi}, stderr: ""}
- id: http
  http: {url: "http://127.0.0.1/", status: 200, body: {contains: ok}, headers: {contain-element: "Server: nginx"}}
- id: sshd
  sshd-config: {permitrootlogin: "no", ciphers: {not: {contains: cbc}}}
- id: login-defs
  login-defs: {PASS_MAX_DAYS: {le: 365}, UMASK: "027"}
- id: kernel-module
  kernel-module: {name: cramfs, loaded: false, loadable: false}
- id: clock
  clock: {max-offset: 5s, synchronized: true}
- id: local-files
  local-files: {world-writable: [], world-writable-dirs-without-sticky: {have-len: 0}, unowned: [], ungrouped: []}
"#;

/// The checks of [`PROBE_SUITE`], grouped by kind.
fn probe_checks() -> &'static Vec<Vec<crate::suites::Resource>> {
    static CHECKS: OnceLock<Vec<Vec<crate::suites::Resource>>> = OnceLock::new();
    CHECKS.get_or_init(|| {
        let suite = crate::suites::parse_suite(PROBE_SUITE, Path::new("probe.yml"))
            .unwrap_or_else(|e| panic!("the probe suite loads: {e}"));
        let mut groups: Vec<Vec<crate::suites::Resource>> = Vec::new();
        for c in suite.checks {
            match groups.iter_mut().find(|g| g[0].kind() == c.resource.kind()) {
                Some(g) => g.push(c.resource),
                None => groups.push(vec![c.resource]),
            }
        }
        groups
    })
}

/// The placeholder for the section marker in generated output (the marker changes per run).
const MARK: &str = "@@M@@";

/// Probe output: a line `KIND EXIT`, then the stdout of the gathering script, judged against
/// the checks of that kind.
fn probe_output(input: &str) {
    let (head, stdout) = input.split_once('\n').unwrap_or((input, ""));
    let mut words = head.split(' ');
    let kind = words.next().unwrap_or("");
    let exit = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let stdout = stdout.replace(MARK, crate::suites::resources::marker());
    let out = crate::transport::ExecOutput {
        exit_code: exit,
        stdout: stdout.clone(),
        stderr: stdout.lines().last().unwrap_or("").to_string(),
        duration: Duration::from_millis(5),
    };
    let groups = probe_checks();
    let Some(group) = groups.iter().find(|g| g[0].kind() == kind) else {
        return;
    };
    let refs: Vec<&crate::suites::Resource> = group.iter().collect();
    let outcomes = crate::suites::resources::evaluate(&refs, &out);
    assert_eq!(outcomes.len(), refs.len(), "one outcome per check");
    if kind == "command" {
        let _ = crate::suites::resources::evaluate_cut(&refs, &stdout, "cut");
    }
}

/// Lines as the probe's tools print them, and near misses.
fn probe_line() -> BoxedStrategy<String> {
    let word = "[a-z0-9/._:-]{0,10}";
    prop_oneof![
        // stat: type, mode, owner, group, uid, gid, size, name (tab-separated).
        (
            proptest::sample::select(&["regular file", "directory", "symbolic link", "socket", "x"][..]),
            "[0-7]{0,5}|[a-z]{1,3}",
            word,
            word,
            "-?[0-9]{0,20}",
            "-?[0-9]{0,20}",
            "-?[0-9]{0,25}",
            word
        )
            .prop_map(|(t, m, o, g, u, gi, s, n)| format!("{t}\t{m}\t{o}\t{g}\t{u}\t{gi}\t{s}\t{n}")),
        // Checksums and readlink.
        ("[0-9a-f]{0,64}", word).prop_map(|(h, n)| format!("{h}  {n}")),
        // dpkg-query / rpm.
        (word, word, proptest::sample::select(&["install ok installed", "deinstall ok config-files", "", "x y"][..]), word)
            .prop_map(|(n, v, s, a)| format!("{n}\t{v}\t{s}\t{a}")),
        Just("dpkg".to_string()),
        Just("rpm".to_string()),
        Just("apk".to_string()),
        // systemctl show.
        (proptest::sample::select(&["Id", "Names", "ActiveState", "SubState", "UnitFileState", "LoadState", "MainPID", ""][..]), word)
            .prop_map(|(k, v)| format!("{k}={v}")),
        // /proc/net/tcp, tcp6, udp, udp6.
        (
            proptest::sample::select(&["/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6", "/proc/net/raw"][..]),
            "[0-9A-F]{0,32}",
            "[0-9A-F]{0,5}",
            "[0-9A-F]{0,2}"
        )
            .prop_map(|(f, a, p, st)| format!("{f}:  0: {a}:{p} 00000000:0000 {st} 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0")),
        Just("/proc/net/tcp:  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode".to_string()),
        // sshd -T, login.defs, sysctl.
        (word, "[ -~]{0,20}").prop_map(|(k, v)| format!("{k} {v}")),
        (word, "[ -~]{0,20}").prop_map(|(k, v)| format!("{k} = {v}")),
        // /proc/self/mountinfo and /proc/mounts.
        (word, word, word, word).prop_map(|(d, m, f, o)| format!("36 35 98:0 / {m} {o} shared:1 - {f} {d} rw")),
        (word, word, word, word).prop_map(|(d, m, f, o)| format!("{d} {m} {f} {o} 0 0")),
        // statfs, passwd, group.
        ("-?[0-9]{0,20}", "-?[0-9]{0,20}", "-?[0-9]{0,20}").prop_map(|(a, b, c)| format!("{a} {b} {c}")),
        (word, "-?[0-9]{0,12}", "-?[0-9]{0,12}", word).prop_map(|(n, u, g, h)| format!("{n}:x:{u}:{g}::{h}:/bin/sh")),
        (word, "-?[0-9]{0,12}", word).prop_map(|(n, g, m)| format!("{n}:x:{g}:{m},root")),
        // ip addr / mtu, dns answers, clock.
        ("[0-9.:/a-f]{0,20}", "[0-9]{0,6}").prop_map(|(a, m)| format!("{a} {m}")),
        "-?[0-9]{0,12}(\\.[0-9]{0,12})?",
        // HTTP status lines and headers.
        ("[0-9]{0,4}", "[ -~]{0,12}").prop_map(|(c, r)| format!("HTTP/1.1 {c} {r}")),
        Just(format!("{MARK} end -")),
        "[ -~]{0,40}",
        any::<String>(),
    ]
    .boxed()
}

#[test]
fn fuzz_probe_output() {
    let kinds: Vec<&'static str> = probe_checks()
        .iter()
        .map(|g| &*Box::leak(g[0].kind().to_string().into_boxed_str()))
        .collect();
    let section = (
        proptest::sample::select(
            &[
                "addr",
                "config",
                "dns",
                "group",
                "loaded",
                "mountinfo",
                "mounts",
                "mtu",
                "passwd",
                "probe",
                "scan",
                "sshd",
                "statfs",
                "missing",
                "stat",
                "sha256sum",
                "sha512sum",
                "md5sum",
                "readlink",
                "contents",
                "unit",
                "cmd",
                "exit",
                "x",
            ][..],
        ),
        "[ -~]{0,12}",
        proptest::collection::vec(probe_line(), 0..8),
    )
        .prop_map(|(kind, arg, lines)| format!("\n{MARK} {kind} {arg}\n{}", lines.join("\n")));
    let stdout = (
        proptest::collection::vec(section, 0..6),
        proptest::collection::vec(probe_line(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(sections, loose, end)| {
            let mut s = loose.join("\n");
            s.push_str(&sections.concat());
            if end {
                s.push_str(&format!("\n{MARK} end -\n"));
            }
            s
        })
        .boxed();
    let input = (
        proptest::sample::select(kinds),
        prop_oneof![Just(0), Just(1), Just(127), any::<i32>()],
        mutated(stdout),
    )
        .prop_map(|(k, e, s)| format!("{k} {e}\n{s}"));
    fuzz("probe-output", input);
}

/// The console output of an EC2 instance: the host keys and fingerprints cloud-init prints.
fn console(text: &str) {
    #[cfg(feature = "aws")]
    {
        // The console arrives base64-encoded; undecodable text is shown as it is.
        let decoded = crate::cloud::aws::console::decode(text);
        let _ = crate::cloud::aws::console::host_key(&decoded);
        let _ = crate::cloud::aws::console::host_key(text);
        let _ = crate::cloud::aws::console::fingerprints(text);
        let _ = crate::cloud::aws::console::trusted_host_key(text);
    }
    #[cfg(not(feature = "aws"))]
    let _ = text;
}

#[test]
fn fuzz_console() {
    let line = prop_oneof![
        Just("ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----".to_string()),
        Just("ec2: -----END SSH HOST KEY FINGERPRINTS-----".to_string()),
        Just("-----BEGIN SSH HOST KEY KEYS-----".to_string()),
        Just("-----END SSH HOST KEY KEYS-----".to_string()),
        Just("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBoR1nYgD3Sb5G4t9zDCRFaZ9yqQPn6Lx3sZ4p0s1YmT root@ip".to_string()),
        Just("ec2: 256 SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG root@ip (ED25519)".to_string()),
        ("[A-Za-z0-9+/=]{0,80}").prop_map(|b| format!("ssh-ed25519 {b} x")),
        ("[A-Za-z0-9+/=]{0,50}").prop_map(|b| format!("ec2: 256 SHA256:{b} x (ED25519)")),
        "[A-Za-z0-9+/=]{0,120}",
        "[ -~]{0,60}",
        any::<String>(),
    ];
    fuzz(
        "console",
        mutated(
            proptest::collection::vec(line, 0..10)
                .prop_map(|l| l.join("\n"))
                .boxed(),
        ),
    );
}

/// What SSM returns for a command: Bakery's header line, then the output.
fn ssm(text: &str) {
    #[cfg(feature = "aws")]
    let _ = crate::transport::ssm::parse_header(text);
    #[cfg(not(feature = "aws"))]
    let _ = text;
}

#[test]
fn fuzz_ssm() {
    let header = (
        "[a-f0-9]{0,16}",
        any::<i64>(),
        prop_oneof![any::<u64>().prop_map(|n| n.to_string()), "-?[0-9]{0,25}"],
        "[ -~]{0,30}",
    )
        .prop_map(|(n, e, o, rest)| format!("BAKERY-SSM {n} {e} {o} 0\n{rest}"));
    fuzz("ssm", mutated(header.boxed()));
}

/// An HTTP response as the probe's client reads it.
fn http_response(text: &str) {
    let _ = crate::suites::resources::parses_as_http_response(text.as_bytes());
}

#[test]
fn fuzz_http_response() {
    let head = (
        "[0-9]{0,5}",
        proptest::collection::vec(("[A-Za-z-]{0,12}", "[ -~]{0,20}"), 0..5),
        "[ -~]{0,30}",
        proptest::sample::select(
            &[
                "",
                "Transfer-Encoding: chunked\r\n",
                "Content-Length: 99999999999999999999\r\n",
                "Content-Length: -1\r\n",
            ][..],
        ),
    )
        .prop_map(|(code, headers, body, extra)| {
            let h: String = headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\r\n"))
                .collect();
            format!("HTTP/1.1 {code} OK\r\n{h}{extra}\r\n{body}")
        });
    fuzz("http-response", mutated(head.boxed()));
}

/// `systemctl show -p Id -p ActiveState -p UnitFileState` output (the chaos runner's view of
/// which services must come back).
fn systemctl_units(text: &str) {
    let _ = crate::chaos::runner::parse_enabled_active(text);
    // A fault's script reports a missing tool on a line of its own.
    let _ = crate::chaos::guest::missing_tool(text);
}

#[test]
fn fuzz_systemctl_units() {
    let block = (
        "[a-z@.-]{0,12}",
        proptest::sample::select(&["active", "inactive", "failed", ""][..]),
        proptest::sample::select(&["enabled", "disabled", "static", ""][..]),
    )
        .prop_map(|(id, a, u)| format!("Id={id}.service\nActiveState={a}\nUnitFileState={u}\n"));
    fuzz(
        "systemctl-units",
        mutated(
            proptest::collection::vec(block, 0..6)
                .prop_map(|b| b.join("\n"))
                .boxed(),
        ),
    );
}

/// The image manifest script's output (src/manifest): sections of os-release, kernels,
/// dpkg or rpm packages, units, /proc/net tables and passwd lines; what parses is also
/// compared with itself and with a captured manifest, and exported as an SBOM.
fn manifest(text: &str) {
    let Ok(m) = crate::manifest::parse(text) else {
        return;
    };
    let captured = crate::manifest::parse(include_str!("manifest/testdata/debian-12-host.txt"))
        .expect("the captured output parses");
    let d = crate::manifest::diff::diff(&captured, &m);
    let _ = d.markdown("/p", 4_000);
    let _ = d.text(10);
    assert!(crate::manifest::diff::diff(&m, &m).is_empty());
    let image = crate::cloud::Image {
        id: "ami-0".into(),
        name: "n".into(),
        parent: None,
        tags: Default::default(),
        state: "available".into(),
        created: String::new(),
        size_bytes: 0,
    };
    let _ = crate::manifest::sbom::render(&m, &image);
}

#[test]
fn fuzz_manifest() {
    let section = prop_oneof![
        "ID=[a-z\"]{0,8}\nVERSION_ID=[0-9.\"']{0,5}\nPRETTY_NAME=[ -~]{0,20}"
            .prop_map(|b| format!("@@os-release\n{b}")),
        "[0-9a-z.~+-]{0,16}".prop_map(|k| format!("@@kernel\n{k}")),
        proptest::collection::vec("(vmlinuz-)?[0-9a-z.~^+-]{0,14}", 0..4)
            .prop_map(|l| format!("@@boot\n{}", l.join("\n"))),
        proptest::collection::vec(
            (
                proptest::sample::select(&["installed", "config-files", "", "half-installed"][..]),
                "[a-z0-9+.-]{0,10}",
                "[0-9a-z:~+.^-]{0,12}",
                proptest::sample::select(&["amd64", "all", "", "arm64"][..]),
            ),
            0..6
        )
        .prop_map(|l| {
            let lines: Vec<String> = l
                .iter()
                .map(|(s, n, v, a)| format!("{s}\t{n}\t{v}\t{a}"))
                .collect();
            format!("@@dpkg\n{}", lines.join("\n"))
        }),
        proptest::collection::vec(("[a-z0-9+.-]{0,10}", "[0-9a-z:~+.^-]{0,12}"), 0..6).prop_map(
            |l| {
                let lines: Vec<String> =
                    l.iter().map(|(n, v)| format!("{n}\t{v}\tx86_64")).collect();
                format!("@@rpm\n{}", lines.join("\n"))
            }
        ),
        "[a-z@.-]{0,16} enabled enabled".prop_map(|u| format!("@@units\n{u}")),
        probe_line().prop_map(|l| format!("@@ports\n{l}")),
        "[a-z]{0,6}:x:[0-9]{0,6}:[0-9]{0,3}:[ -~]{0,6}:/[a-z]{0,5}:/bin/[a-z]{0,4}"
            .prop_map(|l| format!("@@passwd\n{l}")),
    ];
    let output =
        (proptest::collection::vec(section, 0..9), any::<bool>()).prop_map(|(sections, end)| {
            let mut s = sections.join("\n");
            if end {
                s.push_str("\n@@end\n");
            }
            s
        });
    fuzz("manifest", mutated(output.boxed()));
}

#[test]
fn the_generators_get_past_the_parsers() {
    // Most seeded inputs must parse far enough to be judged on their values, or the fuzzing
    // would only ever test the YAML scanner.
    use proptest::strategy::ValueTree;
    let mut runner = TestRunner::deterministic();
    let mut parsed = |strategy: BoxedStrategy<String>, ok: &dyn Fn(&str) -> bool| {
        (0..200)
            .filter(|_| ok(&strategy.new_tree(&mut runner).expect("a value").current()))
            .count()
    };
    let suites = parsed(seeded(SUITE_SEEDS, suite_keys()), &|t| {
        crate::suites::parse_suite(t, Path::new("s.yml")).is_ok()
    });
    let pipelines = parsed(seeded(PIPELINE_SEEDS, PIPELINE_KEYS), &|t| {
        serde_yaml::from_str::<crate::config::Pipeline>(t).is_ok()
    });
    assert!(suites >= 40, "{suites} of 200 suites parse");
    assert!(pipelines >= 40, "{pipelines} of 200 pipelines parse");
}

#[test]
fn the_seeds_are_valid() {
    for s in PIPELINE_SEEDS {
        serde_yaml::from_str::<crate::config::Pipeline>(s).unwrap_or_else(|e| panic!("{e}\n{s}"));
    }
    for s in SUITE_SEEDS {
        crate::suites::parse_suite(s, Path::new("s.yml")).unwrap_or_else(|e| panic!("{e}\n{s}"));
    }
    let path = scratch().join("seed-goss.yaml");
    std::fs::write(&path, GOSS_SEED).expect("a scratch file");
    crate::suites::goss::read_goss(&path, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    for (seeds, what) in [(WAIVER_SEEDS, "waiver"), (ATTESTATION_SEEDS, "attestation")] {
        for s in seeds {
            let path = scratch().join(format!("seed-{what}.yml"));
            std::fs::write(&path, s).expect("a scratch file");
            let known = &controls().1;
            let r = match what {
                "waiver" => {
                    crate::suites::cis::read_keyed::<crate::suites::cis::Waiver>(&path, known, what)
                        .map(|_| ())
                }
                _ => crate::suites::cis::read_keyed::<crate::suites::cis::Attestation>(
                    &path, known, what,
                )
                .map(|_| ()),
            };
            r.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
