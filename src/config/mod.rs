//! Reading and checking the pipeline file.

pub mod duration;
pub mod model;
pub mod promote;
pub mod template;

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
}

/// Reads, parses and validates the pipeline file at `path`.
pub fn load(path: &Path) -> Result<LoadedPipeline> {
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
    let loaded = LoadedPipeline {
        pipeline,
        path: path.to_path_buf(),
        dir,
    };
    validate(&loaded)?;
    Ok(loaded)
}

/// Deserializes YAML text, turning errors into `file:line:col: message`.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_yaml::from_str(text).map_err(|e| Error::Config(yaml_error(path, &e)))
}

/// Formats a serde_yaml error as `file:line:col: message`.
pub fn yaml_error(path: &Path, e: &serde_yaml::Error) -> String {
    let msg = e.to_string();
    // serde_yaml appends " at line L column C"; the location goes in front instead.
    let mut msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg,
    };
    // Rust's integer type names mean nothing to someone writing YAML.
    for ty in ["u8", "u16", "u32", "u64", "usize"] {
        msg = msg.replace(&format!("expected {ty}"), "expected a whole number");
    }
    if msg.contains("did not find expected") || msg.contains("not allowed in this context") {
        msg.push_str(
            " (a YAML syntax error: check the indentation here; keys of one mapping line up)",
        );
    }
    match e.location() {
        Some(loc) => format!("{}:{}:{}: {msg}", path.display(), loc.line(), loc.column()),
        None => format!("{}: {msg}", path.display()),
    }
}

/// Checks what serde cannot: referenced files exist, numbers are in range, templates are known.
fn validate(loaded: &LoadedPipeline) -> Result<()> {
    let p = &loaded.pipeline;
    let file = loaded.path.display();
    let err = |key: String, msg: String| Err(Error::Config(format!("{file}: {key}: {msg}")));
    for (i, step) in p.build.provisioners.iter().enumerate() {
        match step {
            Provisioner::Shell(s) => match (&s.script, s.inline.is_empty()) {
                (None, true) => {
                    return err(
                        format!("build.provisioners[{i}].shell"),
                        "needs `inline` (a list of commands) or `script` (a file)".into(),
                    )
                }
                (Some(_), false) => {
                    return err(
                        format!("build.provisioners[{i}].shell"),
                        "has both `inline` and `script`; use one per step".into(),
                    )
                }
                (Some(script), true) if !loaded.resolve(script).is_file() => {
                    return err(
                        format!("build.provisioners[{i}].shell.script"),
                        format!("{} is not a file", loaded.resolve(script).display()),
                    )
                }
                _ => {}
            },
            Provisioner::File(f) if !loaded.resolve(&f.source).exists() => {
                return err(
                    format!("build.provisioners[{i}].file.source"),
                    format!("{} does not exist", loaded.resolve(&f.source).display()),
                )
            }
            Provisioner::File(_) => {}
        }
    }
    for (i, suite) in p.verify.suites.iter().enumerate() {
        if let SuiteRef::Goss { vars, .. } = suite {
            for (j, v) in vars.iter().enumerate() {
                if !loaded.resolve(v).is_file() {
                    return err(
                        format!("verify.suites[{i}].vars[{j}]"),
                        format!("{} is not a file", loaded.resolve(v).display()),
                    );
                }
            }
        }
        let Some(suite) = suite.path() else {
            continue; // built-in names are checked when the suites are loaded
        };
        if !loaded.resolve(suite).is_file() {
            return err(
                format!("verify.suites[{i}]"),
                format!("{} is not a file", loaded.resolve(suite).display()),
            );
        }
    }
    if p.verify.suites.is_empty() {
        return err(
            "verify.suites".into(),
            "lists no suite; name at least one".into(),
        );
    }
    if p.verify.concurrency == 0 {
        return err("verify.concurrency".into(), "must be at least 1".into());
    }
    for (key, settings) in [
        ("build.instance", &p.build.instance),
        ("verify.probe", &p.verify.probe),
    ] {
        if settings.cpus == 0 || settings.memory_mb < 256 {
            return err(key.into(), "needs cpus >= 1 and memory_mb >= 256".into());
        }
    }
    if let Some(promote) = &p.promote {
        if promote.keep == 0 {
            return err(
                "promote.keep".into(),
                "must be at least 1 (the image just promoted)".into(),
            );
        }
        if promote.pointer.trim().is_empty() {
            return err("promote.pointer".into(), "must not be empty".into());
        }
        validate_distribution(loaded, promote)?;
    }
    template::check(&p.image.name)
        .map_err(|m| Error::Config(format!("{file}: image.name: {m}")))?;
    for (k, v) in &p.image.tags {
        template::check(v).map_err(|m| Error::Config(format!("{file}: image.tags.{k}: {m}")))?;
    }
    Ok(())
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
