//! CIS benchmarks as built-in suites: loading a benchmark folder (variables, profiles,
//! exclusions), the probe's operating system check, and waivers and attestations.
//!
//! A benchmark is a folder `test-suites/cis/<id>/` embedded in the binary (see
//! `test-suites/cis/README.md`): `benchmark.yml` and one file per section. Loading it:
//! 1. gathers the variables every section file declares, with their defaults, and the values
//!    the pipeline sets (an unknown name is an error);
//! 2. replaces `${name}` in each file's text (outside comment lines) before the YAML is read,
//!    so the files stay plain YAML a reader can run in their head;
//! 3. reads the controls, keeps those of the chosen profile, marks exclusions as skipped.
//!
//! After the run, [`apply`] turns failures with a waiver in force into `waived` and manual
//! controls with an attestation in force into their attested state.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

use super::builtin;
use super::model::{Check, Profile};
use super::result::{BenchmarkRun, CheckResult, Status, SuiteResult};
use crate::error::{Error, Result};

/// The profiles a benchmark may be run with.
pub const PROFILES: &[&str] = &[
    "level-1-server",
    "level-2-server",
    "level-1-workstation",
    "level-2-workstation",
];

/// The profile of a `cis:` entry that names none.
pub const DEFAULT_PROFILE: &str = "level-1-server";

pub use crate::config::CisRef;

/// What a CIS suite carries beside its checks.
#[derive(Debug, Clone)]
pub struct CisSuite {
    /// What reports show about the benchmark.
    pub run: BenchmarkRun,
    /// `ID` and `VERSION_ID` of /etc/os-release the benchmark applies to.
    pub os: Os,
    /// Waivers by control id.
    pub waivers: BTreeMap<String, Waiver>,
    /// Attestations by control id.
    pub attestations: BTreeMap<String, Attestation>,
    /// The day expiry dates are compared with.
    pub today: NaiveDate,
}

/// The operating system a benchmark applies to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Os {
    /// `ID` in /etc/os-release (`debian`).
    pub id: String,
    /// `VERSION_ID` in /etc/os-release (`12`).
    pub version_id: String,
}

/// A waiver: a failure of this control is accepted until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Why the failure is accepted (required).
    pub justification: String,
    /// The last day the waiver applies (`2027-03-31`); none: no end.
    pub expiration_date: Option<Date>,
    /// `false`: do not run the control at all while the waiver applies.
    #[serde(default = "yes")]
    pub run: bool,
}

fn yes() -> bool {
    true
}

/// An attestation: someone reviewed a manual control by hand.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    /// `passed` or `failed`: what the review found.
    pub status: AttestedStatus,
    /// What was reviewed and how (required).
    pub justification: String,
    /// Where the evidence is (a ticket, a document).
    pub evidence_url: Option<String>,
    /// The last day the attestation holds; after it the control is `not-reviewed` again.
    pub expiration_date: Option<Date>,
}

/// What an attestation says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttestedStatus {
    Passed,
    Failed,
}

/// A calendar date written `YYYY-MM-DD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Date)
            .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a date; write YYYY-MM-DD")))
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

/// `benchmark.yml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BenchmarkDoc {
    benchmark: String,
    title: String,
    version: String,
    os: Os,
    sections: BTreeMap<String, String>,
}

/// A section file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionDoc {
    section: String,
    #[allow(dead_code)]
    title: String,
    #[serde(default)]
    #[allow(dead_code)]
    variables: BTreeMap<String, Variable>,
    controls: Vec<Check>,
}

/// A tailoring variable as a section file declares it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// The benchmark's default.
    pub default: serde_json::Value,
    /// What the value means.
    pub description: String,
}

/// Only the variables of a section file (read before substitution).
#[derive(Debug, Deserialize)]
struct VariablesOnly {
    #[serde(default)]
    variables: BTreeMap<String, Variable>,
}

/// A benchmark read from the embedded content, before profile selection.
#[derive(Debug, Clone)]
pub struct Benchmark {
    /// `debian-12`.
    pub id: String,
    /// `CIS Debian Linux 12 Benchmark v1.1.0`.
    pub title: String,
    /// The OS it applies to.
    pub os: Os,
    /// Section number → title.
    pub sections: BTreeMap<String, String>,
    /// Section number → the file that holds it, as shown (`test-suites/cis/debian-12/5-...`).
    pub section_files: BTreeMap<String, String>,
    /// Variable → (declaration, file that declares it).
    pub variables: BTreeMap<String, (Variable, String)>,
    /// Every control, in benchmark order.
    pub controls: Vec<Check>,
}

impl Benchmark {
    /// Reads benchmark `id` with `values` for its variables (`key` names where they were
    /// written, for errors).
    pub fn load(id: &str, values: &BTreeMap<String, serde_json::Value>, key: &str) -> Result<Self> {
        let Some((header, files)) = builtin::benchmark_files(id) else {
            return Err(Error::Config(format!(
                "{key}: there is no built-in CIS benchmark `{id}`; built in: {}. Other \
                 distributions are refused rather than run with wrong verdicts.",
                builtin::benchmarks().join(", ")
            )));
        };
        let header_path = builtin::shown_path(&format!("cis/{id}/benchmark.yml"));
        let header_text = header;
        let header: BenchmarkDoc = parse_yaml(header_text, &header_path)?;
        if header.benchmark != id {
            return Err(Error::Config(format!(
                "{header_path}: `benchmark: {}` does not match its folder `{id}`",
                header.benchmark
            )));
        }
        // 1. Variables with their defaults.
        let mut variables: BTreeMap<String, (Variable, String)> = BTreeMap::new();
        for (path, text) in &files {
            let shown = builtin::shown_path(path);
            let blank = blank_references(text);
            let only: VariablesOnly = match serde_yaml::from_str::<serde_yaml::Value>(&blank) {
                Ok(serde_yaml::Value::Mapping(mut m)) => {
                    let v = m
                        .remove("variables")
                        .unwrap_or(serde_yaml::Value::Mapping(Default::default()));
                    let mut single = serde_yaml::Mapping::new();
                    single.insert("variables".into(), v);
                    serde_yaml::from_value(serde_yaml::Value::Mapping(single))
                        .map_err(|e| Error::Config(format!("{shown}: variables: {e}")))?
                }
                Ok(_) => {
                    return Err(Error::Config(format!(
                        "{shown}: a section file is a mapping with `section`, `title`, \
                         `variables` and `controls`"
                    )))
                }
                Err(e) => return Err(yaml_error(&shown, &e)),
            };
            for (name, v) in only.variables {
                if let Some((_, other)) = variables.get(&name) {
                    return Err(Error::Config(format!(
                        "{shown}: variable `{name}` is also declared in {other}; names are \
                         unique across a benchmark"
                    )));
                }
                variables.insert(name, (v, shown.clone()));
            }
        }
        // 2. The pipeline's values.
        let mut values_text: BTreeMap<String, String> = BTreeMap::new();
        for (name, (v, _)) in &variables {
            values_text.insert(name.clone(), render(&v.default));
        }
        for (name, v) in values {
            if !variables.contains_key(name) {
                return Err(Error::Config(format!(
                    "{key}.variables.{name}: the benchmark `{id}` has no variable `{name}`; \
                     its variables: {}",
                    variables.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
            let text = render(v);
            if text.contains(['"', '\\', '\n']) {
                return Err(Error::Config(format!(
                    "{key}.variables.{name}: a value cannot hold a double quote, a backslash or \
                     a line break"
                )));
            }
            values_text.insert(name.clone(), text);
        }
        // 3. The controls.
        let mut controls: Vec<Check> = Vec::new();
        let mut section_files: BTreeMap<String, String> = BTreeMap::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (path, text) in &files {
            let shown = builtin::shown_path(path);
            let text = substitute(text, &values_text, &shown)?;
            let doc: SectionDoc = parse_yaml(&text, &shown)?;
            if !header.sections.contains_key(&doc.section) {
                return Err(Error::Config(format!(
                    "{shown}: section `{}` is not listed in {header_path}",
                    doc.section
                )));
            }
            section_files.insert(doc.section.clone(), shown.clone());
            for mut c in doc.controls {
                let Some(control) = c.control.as_mut() else {
                    return Err(Error::Config(format!(
                        "{shown}: `{}` has no control metadata (level, automated, rationale, \
                         remediation); every entry of a benchmark is a control",
                        c.id
                    )));
                };
                if c.id != doc.section && !c.id.starts_with(&format!("{}.", doc.section)) {
                    return Err(Error::Config(format!(
                        "{shown}: control `{}` is not in section {}",
                        c.id, doc.section
                    )));
                }
                if !seen.insert(c.id.clone()) {
                    return Err(Error::Config(format!(
                        "{shown}: control `{}` appears twice in the benchmark",
                        c.id
                    )));
                }
                control.benchmark = format!("{} v{}", header.title, header.version);
                control.section = doc.section.clone();
                controls.push(c);
            }
        }
        Ok(Benchmark {
            id: id.to_string(),
            title: format!("{} v{}", header.title, header.version),
            os: header.os,
            sections: header.sections,
            section_files,
            variables,
            controls,
        })
    }

    /// The controls of `profile` (`level-1-server`, ...), in benchmark order.
    pub fn select(&self, profile: &str) -> Result<Vec<Check>> {
        let (level, kind) = parse_profile(profile).ok_or_else(|| {
            Error::Config(format!(
                "there is no CIS profile `{profile}`; accepted: {}",
                PROFILES.join(", ")
            ))
        })?;
        Ok(self
            .controls
            .iter()
            .filter(|c| {
                c.control
                    .as_ref()
                    .is_some_and(|m| m.in_profile(level, kind))
            })
            .cloned()
            .map(|mut c| {
                // Reports show the level this profile lists the control at.
                if let Some(m) = c.control.as_mut() {
                    m.level = m.level_in(kind).unwrap_or(m.level);
                }
                c
            })
            .collect())
    }

    /// The suite name of this benchmark with `profile`: `cis-debian-12` for the default
    /// profile (`level-1-server`), `cis-debian-12-level-2-server` for another.
    pub fn suite_name(&self, profile: &str) -> String {
        if profile == DEFAULT_PROFILE {
            format!("cis-{}", self.id)
        } else {
            format!("cis-{}-{profile}", self.id)
        }
    }
}

fn parse_profile(p: &str) -> Option<(u8, Profile)> {
    let (level, kind) = match p {
        "level-1-server" => (1, Profile::Server),
        "level-2-server" => (2, Profile::Server),
        "level-1-workstation" => (1, Profile::Workstation),
        "level-2-workstation" => (2, Profile::Workstation),
        _ => return None,
    };
    Some((level, kind))
}

/// A variable's value as it is put into the text: strings as they are, numbers and booleans
/// as written, lists joined by commas.
fn render(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items.iter().map(render).collect::<Vec<_>>().join(","),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Whether a line is a YAML comment line (references there are left alone).
fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The `${name}` references of a line: (byte start, byte end, name).
fn references(line: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = line[from..].find("${") {
        let start = from + i;
        let Some(len) = line[start + 2..].find('}') else {
            break;
        };
        let name = &line[start + 2..start + 2 + len];
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push((start, start + 3 + len, name));
        }
        from = start + 2;
    }
    out
}

/// The text with every reference replaced by `0`, so the variables can be read before the
/// values are known (a reference may stand where YAML wants a number).
fn blank_references(text: &str) -> String {
    substitute_with(text, &mut |_| Ok("0".to_string())).unwrap_or_else(|_| text.to_string())
}

/// Replaces `${name}` with the value of `name`; an unknown name is an error naming `file:line`.
fn substitute(text: &str, values: &BTreeMap<String, String>, file: &str) -> Result<String> {
    substitute_with(text, &mut |(line, col, name)| {
        values.get(name).cloned().ok_or_else(|| {
            Error::Config(format!(
                "{file}:{line}:{col}: unknown variable `${{{name}}}`; the benchmark's variables: {}",
                values.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    })
}

/// Where a reference is (line, column, both 1-based) and the variable it names.
type Reference<'a> = (usize, usize, &'a str);

fn substitute_with(
    text: &str,
    value: &mut dyn FnMut(Reference<'_>) -> Result<String>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if is_comment(line) {
            out.push_str(line);
            continue;
        }
        let mut last = 0;
        for (start, end, name) in references(line) {
            out.push_str(&line[last..start]);
            out.push_str(&value((n + 1, start + 1, name))?);
            last = end;
        }
        out.push_str(&line[last..]);
    }
    Ok(out)
}

fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, shown: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| yaml_error(shown, &e))
}

fn yaml_error(shown: &str, e: &serde_yaml::Error) -> Error {
    Error::Config(crate::config::yaml_error(Path::new(shown), e))
}

/// Where a top-level key of a YAML mapping is written: `line:col`, 1-based.
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let t = l.trim_end();
        [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .any(|k| t.starts_with(k.as_str()))
        .then_some((i + 1, 1))
    })
}

/// Reads a pipeline's CIS suite: the benchmark with its variables, profile and exclusions,
/// and the waivers and attestations files. `key` names the entry (`verify.suites[1].cis`);
/// `resolve` turns a path written in the pipeline into a file.
pub fn load(
    spec: &CisRef,
    key: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    today: NaiveDate,
) -> Result<super::Suite> {
    let bench = Benchmark::load(&spec.benchmark, &spec.variables, key)?;
    let mut checks = bench
        .select(&spec.profile)
        .map_err(|e| Error::Config(format!("{key}.profile: {e}")))?;
    if let Some(m) = spec.min_score {
        if !(0.0..=100.0).contains(&m) || m.is_nan() {
            return Err(Error::Config(format!(
                "{key}.min-score: {m} is not a percentage; write a number from 0 to 100"
            )));
        }
    }
    if let Some(name) = &spec.name {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(Error::Config(format!(
                "{key}.name: `{name}` is not a suite name; use letters, digits, `-`, `_` and \
                 `.` (`cis-debian-12-ssh`)"
            )));
        }
    }
    let known: BTreeSet<&str> = bench.controls.iter().map(|c| c.id.as_str()).collect();
    // Exclusions: an id, or a section prefix.
    for (what, reason) in &spec.exclude {
        let hits = bench
            .controls
            .iter()
            .filter(|c| c.id == *what || c.id.starts_with(&format!("{what}.")))
            .count();
        if hits == 0 {
            return Err(Error::Config(format!(
                "{key}.exclude: `{what}` is neither a control nor a section of {}",
                bench.title
            )));
        }
        if reason.trim().is_empty() {
            return Err(Error::Config(format!(
                "{key}.exclude.{what}: give the reason the control is left out"
            )));
        }
    }
    let waivers = match &spec.waivers {
        Some(p) => read_keyed::<Waiver>(&resolve(p), &known, "waiver")?,
        None => BTreeMap::new(),
    };
    if let Some(p) = &spec.waivers {
        let path = resolve(p);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for (id, w) in &waivers {
            if w.justification.trim().is_empty() {
                let (line, col) = key_position(&text, id).unwrap_or((1, 1));
                return Err(Error::Config(format!(
                    "{}:{line}:{col}: waiver `{id}` needs a `justification`: why the failure is accepted",
                    path.display()
                )));
            }
        }
    }
    let attestations = match &spec.attestations {
        Some(p) => {
            let path = resolve(p);
            let a = read_keyed::<Attestation>(&path, &known, "attestation")?;
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (id, att) in &a {
                let (line, col) = key_position(&text, id).unwrap_or((1, 1));
                let automated = bench
                    .controls
                    .iter()
                    .find(|c| c.id == *id)
                    .and_then(|c| c.control.as_ref())
                    .is_some_and(|c| c.automated);
                if automated {
                    return Err(Error::Config(format!(
                        "{}:{line}:{col}: `{id}` is an automated control; attestations are for \
                         manual controls (use a waiver to accept a failure)",
                        path.display()
                    )));
                }
                if att.justification.trim().is_empty() {
                    return Err(Error::Config(format!(
                        "{}:{line}:{col}: attestation `{id}` needs a `justification`: what was reviewed and how",
                        path.display()
                    )));
                }
            }
            a
        }
        None => BTreeMap::new(),
    };
    let in_force = |d: &Option<Date>| d.is_none_or(|d| d.0 >= today);
    for c in &mut checks {
        if let Some((what, reason)) = spec
            .exclude
            .iter()
            .find(|(w, _)| c.id == **w || c.id.starts_with(&format!("{w}.")))
        {
            c.skip = Some(if *what == c.id {
                format!("excluded: {reason}")
            } else {
                format!("excluded with section {what}: {reason}")
            });
        } else if let Some(w) = waivers
            .get(&c.id)
            .filter(|w| !w.run && in_force(&w.expiration_date))
        {
            c.skip = Some(format!("waived, not run: {}", w.justification.trim()));
        }
    }
    Ok(super::Suite {
        name: spec
            .name
            .clone()
            .unwrap_or_else(|| bench.suite_name(&spec.profile)),
        description: Some(format!("{}, profile {}", bench.title, spec.profile)),
        checks,
        experiments: Vec::new(),
        probe: None,
        source: None,
        cis: Some(Box::new(CisSuite {
            run: BenchmarkRun {
                id: bench.id.clone(),
                title: bench.title.clone(),
                profile: spec.profile.clone(),
                sections: bench.sections.clone(),
                min_score: spec.min_score,
                notes: Vec::new(),
            },
            os: bench.os.clone(),
            waivers,
            attestations,
            today,
        })),
    })
}

/// Reads a file mapping control ids to `T`; an id the benchmark does not have is an error at
/// its `file:line:col`.
pub(crate) fn read_keyed<T: serde::de::DeserializeOwned>(
    path: &Path,
    known: &BTreeSet<&str>,
    what: &str,
) -> Result<BTreeMap<String, T>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Config(format!("{}: no such {what}s file", path.display()))
        } else {
            Error::io("reading", path, e)
        }
    })?;
    if crate::config::is_empty_yaml(&text) {
        return Ok(BTreeMap::new());
    }
    let shape = match what {
        "waiver" => "`\"5.1.4\": {justification: ..., expiration_date: YYYY-MM-DD}`",
        _ => "`\"1.1.1.10\": {status: passed, justification: ...}`",
    };
    if let Ok(v) = serde_yaml::from_str::<serde_yaml::Value>(&text) {
        if !v.is_mapping() {
            let (line, col) = first_content(&text);
            let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Err(Error::Config(format!(
                "{}:{line}:{col}: {article} {what}s file is a mapping of control ids to {what}s: {shape}",
                path.display()
            )));
        }
    }
    let map: BTreeMap<String, T> = serde_yaml::from_str(&text)
        .map_err(|e| Error::Config(crate::config::yaml_error_in(path, &text, &e)))?;
    for id in map.keys() {
        if !known.contains(id.as_str()) {
            let (line, col) = key_position(&text, id).unwrap_or((1, 1));
            let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            return Err(Error::Config(format!(
                "{}:{line}:{col}: {article} {what} for `{id}`, which is no control of this \
                 benchmark (`bakery suites show cis-<benchmark>` lists them)",
                path.display()
            )));
        }
    }
    Ok(map)
}

/// `(line, column)` of the first line that is not blank or a comment.
fn first_content(text: &str) -> (usize, usize) {
    text.lines()
        .enumerate()
        .find_map(|(i, l)| {
            let t = l.trim_start();
            (!t.is_empty() && !t.starts_with('#')).then_some((i + 1, l.len() - t.len() + 1))
        })
        .unwrap_or((1, 1))
}

/// Refuses a probe whose /etc/os-release is not the benchmark's OS, naming both.
pub fn check_os(cis: &CisSuite, os_release: &str) -> Result<()> {
    let field = |k: &str| {
        os_release.lines().find_map(|l| {
            l.strip_prefix(&format!("{k}="))
                .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        })
    };
    let (id, version) = (
        field("ID").unwrap_or_default(),
        field("VERSION_ID").unwrap_or_default(),
    );
    if id == cis.os.id && version == cis.os.version_id {
        return Ok(());
    }
    let pretty = field("PRETTY_NAME").unwrap_or_else(|| "an unknown system".into());
    Err(Error::Config(format!(
        "the CIS benchmark `{}` ({}) applies to {} {} only, and the probe runs {pretty} \
         (ID={id}, VERSION_ID={version}); Bakery refuses to run a benchmark on another system \
         rather than report wrong verdicts. Built-in benchmarks: {}",
        cis.run.id,
        cis.run.title,
        cis.os.id,
        cis.os.version_id,
        builtin::benchmarks().join(", ")
    )))
}

/// Applies waivers and attestations to a CIS suite's results and attaches the benchmark.
pub fn apply(sr: &mut SuiteResult, cis: &CisSuite) {
    let today = cis.today;
    let mut notes = Vec::new();
    for r in &mut sr.results {
        if let Some(w) = cis.waivers.get(&r.id) {
            waive(r, w, today, &mut notes);
        }
        if let Some(a) = cis.attestations.get(&r.id) {
            attest(r, a, today, &mut notes);
        }
    }
    let mut run = cis.run.clone();
    run.notes = notes;
    sr.benchmark = Some(run);
}

fn until(d: &Option<Date>) -> String {
    d.map(|d| format!(" (until {d})")).unwrap_or_default()
}

fn waive(r: &mut CheckResult, w: &Waiver, today: NaiveDate, notes: &mut Vec<String>) {
    let expired = w.expiration_date.filter(|d| d.0 < today);
    match (r.status, expired) {
        (Status::Failed | Status::Error, None) => {
            r.message = format!(
                "waived: {}{}; the control {}: {}",
                w.justification.trim(),
                until(&w.expiration_date),
                if r.status == Status::Failed {
                    "failed"
                } else {
                    "could not be evaluated"
                },
                r.message
            );
            r.status = Status::Waived;
        }
        (Status::Skipped, None) if !w.run => {
            r.status = Status::Waived;
            r.message = format!(
                "waived, not run: {}{}",
                w.justification.trim(),
                until(&w.expiration_date)
            );
        }
        (_, Some(d)) => {
            notes.push(format!(
                "the waiver for {} expired on {d} and no longer applies",
                r.id
            ));
            if r.status.fails_gate() {
                r.message = format!("{} (its waiver expired on {d})", r.message);
            }
        }
        _ => {}
    }
}

fn attest(r: &mut CheckResult, a: &Attestation, today: NaiveDate, notes: &mut Vec<String>) {
    if r.status != Status::NotReviewed {
        return;
    }
    if let Some(d) = a.expiration_date.filter(|d| d.0 < today) {
        notes.push(format!(
            "the attestation for {} expired on {d}; the control is not reviewed",
            r.id
        ));
        r.message = format!("{} (its attestation expired on {d})", r.message);
        return;
    }
    let evidence = a
        .evidence_url
        .as_deref()
        .map(|u| format!("; evidence: {u}"))
        .unwrap_or_default();
    r.status = match a.status {
        AttestedStatus::Passed => Status::Passed,
        AttestedStatus::Failed => Status::Failed,
    };
    r.message = format!(
        "attested {}: {}{evidence}{}",
        if a.status == AttestedStatus::Passed {
            "passed"
        } else {
            "failed"
        },
        a.justification.trim(),
        until(&a.expiration_date)
    );
}

#[cfg(test)]
mod tests;
