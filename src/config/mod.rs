//! Reading and checking the pipeline file.

pub mod duration;
pub mod locate;
pub mod model;
pub mod promote;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use duration::HumanDuration;
pub use model::*;
pub use promote::{
    AccountId, KmsKey, OrganizationArn, OuArn, Promote, Region, RegionTarget, Share,
};

use crate::error::{Error, IoContext, Result};

/// A pipeline file as read from disk, with the directory its relative paths start from.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    pub pipeline: Pipeline,
    /// The pipeline file itself.
    pub path: PathBuf,
    /// The directory relative paths in the file are resolved against.
    pub dir: PathBuf,
}

impl LoadedPipeline {
    /// Resolves a path written in the pipeline file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// The pipeline file's image tags whose values are fixed (no `{{…}}`): an image baked by
    /// this pipeline carries them, so they tell its images from other pipelines' images.
    pub fn fixed_image_tags(&self) -> BTreeMap<String, String> {
        self.pipeline
            .image
            .tags
            .iter()
            .filter(|(_, v)| !v.contains("{{"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Reads, parses and validates the pipeline file at `path`; every problem [`problems`] finds is
/// in the error, one a line.
pub fn load(path: &Path) -> Result<LoadedPipeline> {
    let loaded = read(path)?;
    let problems = problems(&loaded);
    if !problems.is_empty() {
        return Err(Error::Config(problems.join("\n")));
    }
    Ok(loaded)
}

/// Reads and parses the pipeline file at `path`, without [`problems`]' checks.
pub fn read(path: &Path) -> Result<LoadedPipeline> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Config(format!(
                "{}: no such pipeline file; pass one with -f/--file (see examples/local/bakery.yml)",
                path.display()
            ))
        } else {
            Error::io("reading", path, e)
        }
    })?;
    let pipeline: Pipeline = parse_yaml(path, &text)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let dir = std::fs::canonicalize(&dir).at("resolving", &dir)?;
    Ok(LoadedPipeline {
        pipeline,
        path: path.to_path_buf(),
        dir,
    })
}

/// Deserializes YAML text, turning errors into `file:line:col: message`.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    if is_empty_yaml(text) {
        return Err(Error::Config(format!(
            "{}: the pipeline file is empty; it needs at least `source` and `image` (see examples/local/bakery.yml)",
            path.display()
        )));
    }
    serde_yaml::from_str(text).map_err(|e| Error::Config(yaml_error_in(path, text, &e)))
}

/// Whether YAML `text` holds nothing but comments and blank lines.
pub fn is_empty_yaml(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---")
}

/// [`yaml_error`], with the text at hand: a key written twice is located at its second
/// occurrence, not at the start of its mapping.
pub fn yaml_error_in(path: &Path, text: &str, e: &serde_yaml::Error) -> String {
    let msg = yaml_error(path, e);
    let dup =
        regex::Regex::new(r"duplicate (?:field|entry with key) `([^`]+)`").expect("a valid regex");
    let (Some(c), Some(loc)) = (dup.captures(&msg), e.location()) else {
        return msg;
    };
    let key = c[1].to_string();
    // The mapping starts at `loc`; its keys are at that column.
    let indent = loc.column().saturating_sub(1);
    let seen: Vec<usize> = text
        .lines()
        .enumerate()
        .skip(loc.line().saturating_sub(1))
        .filter(|(_, l)| {
            let body = l.trim_start_matches(' ');
            l.len() - body.len() == indent
                && [
                    format!("{key}:"),
                    format!("\"{key}\":"),
                    format!("'{key}':"),
                ]
                .iter()
                .any(|k| body.starts_with(k.as_str()))
        })
        .map(|(i, _)| i + 1)
        .take(2)
        .collect();
    match seen[..] {
        [first, second] => format!(
            "{}:{second}:{}: `{key}` is written twice in one mapping (lines {first} and {second}); keep one",
            path.display(),
            indent + 1
        ),
        _ => msg,
    }
}

/// Formats a serde_yaml error as `file:line:col: message`, in the words of someone writing
/// YAML rather than Rust's.
pub fn yaml_error(path: &Path, e: &serde_yaml::Error) -> String {
    let mut msg = e.to_string();
    // serde_yaml appends " at line L column C" to the problem; the location goes in front.
    if let Some(loc) = e.location() {
        msg = msg.replacen(
            &format!(" at line {} column {}", loc.line(), loc.column()),
            "",
            1,
        );
    }
    let mut msg = plain_words(msg.strip_prefix('.').unwrap_or(&msg));
    if msg.contains("did not find expected") || msg.contains("not allowed in this context") {
        msg.push_str(
            " (a YAML syntax error: check the indentation here; keys of one mapping line up)",
        );
    }
    if msg.contains("cannot start any token") {
        msg.push_str(
            " (YAML indents with spaces, never tabs; a value starting with `@`, `%` or a backquote needs quotes)",
        );
    }
    match e.location() {
        Some(loc) => format!("{}:{}:{}: {msg}", path.display(), loc.line(), loc.column()),
        None => format!("{}: {msg}", path.display()),
    }
}

/// Rust's type names in a deserializer's message, said as a file's author would.
pub fn plain_words(msg: &str) -> String {
    let mut msg = msg.to_string();
    for (ty, words) in [
        ("u8", "a whole number from 0 to 255"),
        ("u16", "a whole number from 0 to 65535"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u64", "a whole number from 0"),
        ("usize", "a whole number from 0"),
        ("i64", "a whole number"),
        ("f64", "a number"),
        ("a map", "a mapping"),
        ("a sequence", "a list"),
    ] {
        msg = msg.replace(&format!("expected {ty}"), &format!("expected {words}"));
    }
    let re = regex::Regex::new(r"expected struct \w+").expect("a valid regex");
    msg = re.replace_all(&msg, "expected a mapping").into_owned();
    msg.replace("invalid type: sequence", "invalid type: a list")
        .replace("invalid type: map", "invalid type: a mapping")
}

/// Checks what serde cannot: referenced files exist, numbers are in range, templates are known.
/// Every problem found, each `file:line:col: key: what is wrong; what is accepted`.
pub fn problems(loaded: &LoadedPipeline) -> Vec<String> {
    let p = &loaded.pipeline;
    let text = std::fs::read_to_string(&loaded.path).unwrap_or_default();
    let mut out = Vec::new();
    // Problems that come located already (the distribution settings').
    let mut located = Vec::new();
    let mut err = |key: String, msg: String| out.push(at(&loaded.path, &text, &key, &msg));
    for (i, step) in p.build.provisioners.iter().enumerate() {
        match step {
            Provisioner::Shell(s) => match (&s.script, s.inline.is_empty()) {
                (None, true) => err(
                    format!("build.provisioners[{i}].shell"),
                    "needs `inline` (a list of commands) or `script` (a file)".into(),
                ),
                (Some(_), false) => err(
                    format!("build.provisioners[{i}].shell"),
                    "has both `inline` and `script`; use one per step".into(),
                ),
                (Some(script), true) if !loaded.resolve(script).is_file() => err(
                    format!("build.provisioners[{i}].shell.script"),
                    format!(
                        "{} is not a file; give a script relative to the pipeline file",
                        loaded.resolve(script).display()
                    ),
                ),
                _ => {}
            },
            Provisioner::File(f) if !loaded.resolve(&f.source).exists() => err(
                format!("build.provisioners[{i}].file.source"),
                format!(
                    "{} does not exist; give a file or directory relative to the pipeline file",
                    loaded.resolve(&f.source).display()
                ),
            ),
            Provisioner::File(_) => {}
            Provisioner::Ansible(a) => {
                for (key, msg) in crate::provision::ansible::problems(a, loaded) {
                    err(format!("build.provisioners[{i}].ansible{key}"), msg);
                }
            }
            Provisioner::Reboot(_) => {}
        }
    }
    let ssm = p.provider == ProviderKind::Aws
        && p.aws
            .as_ref()
            .is_some_and(|a| a.transport == AwsTransport::Ssm);
    if ssm {
        if let Some(i) = p
            .build
            .provisioners
            .iter()
            .position(|s| matches!(s, Provisioner::Ansible(_)))
        {
            err(
                format!("build.provisioners[{i}].ansible"),
                "Ansible reaches the builder over SSH, and `aws.transport: ssm` opens no SSH port; use `aws.transport: ssh` (the default) for a pipeline with an `ansible` step".into(),
            );
        }
    }
    for (i, suite) in p.verify.suites.iter().enumerate() {
        if let SuiteRef::Goss { vars, .. } = suite {
            for (j, v) in vars.iter().enumerate() {
                if !loaded.resolve(v).is_file() {
                    err(
                        format!("verify.suites[{i}].vars[{j}]"),
                        format!(
                            "{} is not a file; give a Goss vars file (YAML or JSON) relative to the pipeline file",
                            loaded.resolve(v).display()
                        ),
                    );
                }
            }
        }
        let Some(suite) = suite.path() else {
            continue; // built-in names are checked when the suites are loaded
        };
        if !loaded.resolve(suite).is_file() {
            err(
                format!("verify.suites[{i}]"),
                format!(
                    "{} is not a file; give a suite file relative to the pipeline file, `builtin: NAME` or `cis: {{benchmark: ...}}`",
                    loaded.resolve(suite).display()
                ),
            );
        }
    }
    if p.verify.suites.is_empty() {
        err(
            "verify.suites".into(),
            "lists no suite; name at least one (`- builtin: smoke`)".into(),
        );
    }
    if p.verify.concurrency == 0 {
        err(
            "verify.concurrency".into(),
            "must be at least 1 (checks run at once)".into(),
        );
    }
    let mut groups: Vec<(String, &InstanceSettings)> = vec![
        ("build.instance".into(), &p.build.instance),
        ("verify.probe".into(), &p.verify.probe),
    ];
    groups.extend(
        p.verify
            .probes
            .iter()
            .map(|(name, s)| (format!("verify.probes.{name}"), s)),
    );
    for (key, settings) in groups {
        if settings.cpus == 0 {
            err(format!("{key}.cpus"), "must be at least 1".into());
        }
        if settings.memory_mb < 256 {
            err(
                format!("{key}.memory_mb"),
                format!("{} is too little; give at least 256", settings.memory_mb),
            );
        }
    }
    if let Some(promote) = &p.promote {
        if promote.keep == 0 {
            err(
                "promote.keep".into(),
                "must be at least 1 (the image just promoted)".into(),
            );
        }
        if promote.pointer.trim().is_empty() {
            err(
                "promote.pointer".into(),
                "must not be empty; name the pointer (`/golden/web`)".into(),
            );
        }
        if let Err(e) = validate_distribution(loaded, promote) {
            located.push(e.to_string());
        }
    }
    if let Err(m) = template::check(&p.image.name) {
        err("image.name".into(), m);
    }
    for (k, v) in &p.image.tags {
        if let Err(m) = template::check(v) {
            err(format!("image.tags.{k}"), m);
        }
    }
    out.extend(located);
    out.sort_by_key(|m| position_of(m));
    out
}

/// `(line, column)` of a `file:line:col: ...` message; after every located one otherwise.
pub fn position_of(message: &str) -> (usize, usize) {
    let re = regex::Regex::new(r"^[^:]*:(\d+):(\d+): ").expect("a valid regex");
    re.captures(message)
        .and_then(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?)))
        .unwrap_or((usize::MAX, 0))
}

/// `file:line:col: key: message`, located by the key path in `text` (`file: key: message`
/// when it cannot be found).
pub fn at(path: &Path, text: &str, key: &str, msg: &str) -> String {
    match locate::position(text, &locate::parse_path(key)) {
        Some((line, col)) => format!("{}:{line}:{col}: {key}: {msg}", path.display()),
        None => format!("{}: {key}: {msg}", path.display()),
    }
}

/// What the file can say about regions, keys and sharing without asking AWS: the local
/// provider has no regions, a region is listed once, and an image shared with anyone is
/// encrypted with a key of the user's in every listed region.
fn validate_distribution(loaded: &LoadedPipeline, promote: &Promote) -> Result<()> {
    let path = &loaded.path;
    let aws_only = [
        ("regions", !promote.regions.is_empty()),
        ("share", !promote.share.is_empty()),
        ("deprecate_after", promote.deprecate_after.is_some()),
    ];
    if loaded.pipeline.provider == ProviderKind::Local {
        if let Some((key, _)) = aws_only.iter().find(|(_, set)| *set) {
            return Err(Error::Config(format!(
                "{}: promote.{key}: the `local` provider keeps one store on this machine, with no regions, accounts or deprecation; remove `{key}`, or use `provider: aws`",
                locate(path, key, 1)
            )));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, target) in promote.regions.iter().enumerate() {
        let region = target.region.0.as_str();
        if seen.contains(&region) {
            return Err(Error::Config(format!(
                "{}: promote.regions[{i}]: region {region} is listed twice; list each region once",
                locate_value(path, region, 2)
            )));
        }
        seen.push(region);
        if promote.share.is_empty() {
            continue;
        }
        let why = match &target.kms_key {
            None => "has no `kms_key`, so its copy would be encrypted with the region's default EBS key, usually the AWS-managed `aws/ebs` key",
            Some(k) if k.is_aws_managed() => "names the AWS-managed `aws/ebs` key",
            Some(_) => continue,
        };
        return Err(Error::Config(format!(
            "{}: promote.regions[{i}]: {region} {why}, and an image encrypted with that key cannot be shared with other accounts; set `kms_key` to a customer-managed key of {region} (`alias/…` or its ARN) whose key policy lets the accounts in `promote.share` use it (README, \"Sharing across accounts\")",
            locate_value(path, region, 1)
        )));
    }
    Ok(())
}

/// `file:line:col` of the `nth` line of the `promote:` block that holds `value` (outside
/// comments); `file` alone when it cannot be found.
fn locate_value(path: &Path, value: &str, nth: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let found = text
        .lines()
        .enumerate()
        .skip_while(|(_, l)| !l.starts_with("promote:"))
        .filter(|(_, l)| !l.trim_start().starts_with('#'))
        .filter_map(|(i, l)| {
            let code = l.split(" #").next().unwrap_or(l);
            code.find(value).map(|c| (i + 1, c + 1))
        })
        .nth(nth.saturating_sub(1));
    match found {
        Some((line, col)) => format!("{}:{line}:{col}", path.display()),
        None => path.display().to_string(),
    }
}

/// `file:line:col` of the `nth` (1-based) mapping key `key` in the file at `path`, for errors
/// found after parsing; `file` alone when it cannot be found.
pub fn locate(path: &Path, key: &str, nth: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let found = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let body = l.trim_start();
            let body = body.strip_prefix("- ").map(str::trim_start).unwrap_or(body);
            let body = body.strip_prefix('{').map(str::trim_start).unwrap_or(body);
            (body.starts_with(&format!("{key}:")) && !l.trim_start().starts_with('#'))
                .then(|| (i + 1, l.len() - body.len() + 1))
        })
        .nth(nth.saturating_sub(1));
    match found {
        Some((line, col)) => format!("{}:{line}:{col}", path.display()),
        None => path.display().to_string(),
    }
}

/// The JSON Schema of the pipeline file, for editors.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Pipeline)).expect("a schema is valid JSON")
}
