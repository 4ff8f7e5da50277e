//! Built-in suites: the content of `test-suites/` embedded in the binary, so a pipeline run
//! from anywhere (the action's `FROM scratch` container included) can name them.
//!
//! - `smoke`: `test-suites/smoke.yml`, the default suite of `verify.suites`.
//! - CIS benchmarks: `test-suites/cis/<benchmark>/` (see [`super::cis`]).

use std::path::Path;

use include_dir::{include_dir, Dir};

use super::model::Suite;
use crate::error::{Error, Result};

static CONTENT: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/test-suites");

/// The names `- builtin: NAME` accepts.
pub const SUITES: &[&str] = &["smoke"];

/// The text of an embedded file, by its path under `test-suites/`.
pub fn file(path: &str) -> Option<&'static str> {
    CONTENT.get_file(path).and_then(|f| f.contents_utf8())
}

/// The path shown for an embedded file in messages: where a reader finds it in the repository.
pub fn shown_path(path: &str) -> String {
    format!("test-suites/{path}")
}

/// The built-in suite `name` (`smoke`).
pub fn suite(name: &str) -> Result<Suite> {
    let path = format!("{name}.yml");
    match (SUITES.contains(&name), file(&path)) {
        (true, Some(text)) => {
            let mut s = super::parse_suite(text, Path::new(&shown_path(&path)))?;
            s.source = None;
            Ok(s)
        }
        _ => Err(Error::Config(format!(
            "there is no built-in suite `{name}`; built in: {} (and `cis: {{benchmark: ...}}` \
             for {})",
            SUITES.join(", "),
            benchmarks().join(", ")
        ))),
    }
}

/// The CIS benchmarks built in (`debian-12`).
pub fn benchmarks() -> Vec<&'static str> {
    let Some(cis) = CONTENT.get_dir("cis") else {
        return Vec::new();
    };
    let mut v: Vec<&str> = cis
        .dirs()
        .filter(|d| d.get_file(d.path().join("benchmark.yml")).is_some())
        .filter_map(|d| d.path().file_name().and_then(|n| n.to_str()))
        .collect();
    v.sort_unstable();
    v
}

/// The files of benchmark `id`: `benchmark.yml`'s text and each section file (path under
/// `test-suites/`, text), sections in file-name order.
pub fn benchmark_files(id: &str) -> Option<(&'static str, Vec<(String, &'static str)>)> {
    let dir = CONTENT.get_dir(format!("cis/{id}"))?;
    let header = dir
        .get_file(dir.path().join("benchmark.yml"))
        .and_then(|f| f.contents_utf8())?;
    let mut sections: Vec<(String, &'static str)> = dir
        .files()
        .filter(|f| {
            let name = f.path().file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".yml") && name != "benchmark.yml"
        })
        .filter_map(|f| Some((f.path().to_str()?.to_string(), f.contents_utf8()?)))
        .collect();
    sections.sort_by_key(|a| natural(&a.0));
    Some((header, sections))
}

/// Sort key putting `10-x.yml` after `9-x.yml`.
fn natural(path: &str) -> (u32, String) {
    let name = path.rsplit('/').next().unwrap_or(path);
    let n = name
        .split('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::MAX);
    (n, name.to_string())
}

/// What `bakery suites` prints: every built-in suite, with how a pipeline names it.
pub fn list() -> String {
    let mut s = String::from(
        "NAME            PIPELINE ENTRY                                        CONTENT\n",
    );
    for name in SUITES {
        let n = suite(name).map(|s| s.checks.len()).unwrap_or(0);
        s += &format!(
            "{name:<15} {:<53} {n} checks\n",
            format!("- builtin: {name}")
        );
    }
    for id in benchmarks() {
        let entry = format!("- cis: {{benchmark: {id}, profile: level-1-server}}");
        match super::cis::Benchmark::load(id, &Default::default(), "built-in") {
            Ok(b) => {
                let count = |p: &str| b.select(p).map(|c| c.len()).unwrap_or(0);
                s += &format!(
                    "cis-{id:<11} {entry:<53} {}: {} controls in level-1-server, {} in \
                     level-2-server\n",
                    b.title,
                    count("level-1-server"),
                    count("level-2-server")
                );
            }
            Err(e) => s += &format!("cis-{id:<11} {entry:<53} cannot be read: {e}\n"),
        }
    }
    s += "\n`bakery suites show NAME` prints one.\n";
    s
}

/// What `bakery suites show NAME` prints.
pub fn describe(name: &str, profile: &str) -> Result<String> {
    if SUITES.contains(&name) {
        return Ok(file(&format!("{name}.yml")).unwrap_or_default().to_string());
    }
    let Some(id) = name
        .strip_prefix("cis-")
        .filter(|id| benchmarks().contains(id))
    else {
        let mut names: Vec<String> = SUITES.iter().map(|s| s.to_string()).collect();
        names.extend(benchmarks().iter().map(|b| format!("cis-{b}")));
        return Err(Error::Config(format!(
            "there is no built-in suite `{name}`; built in: {}",
            names.join(", ")
        )));
    };
    let b = super::cis::Benchmark::load(id, &Default::default(), "built-in")?;
    let controls = b.select(profile)?;
    let mut s = format!(
        "{} ({} {}), profile {profile}: {} controls\n\nVariables (set them under `cis: {{variables: {{...}}}}`):\n",
        b.title,
        b.os.id,
        b.os.version_id,
        controls.len()
    );
    for (name, (v, file)) in &b.variables {
        s += &format!(
            "  {name} = {}\n      {} ({file})\n",
            v.default,
            v.description.trim()
        );
    }
    s += "\nControls (id, level, automated or manual, what is checked, title):\n";
    let mut section = String::new();
    for c in &controls {
        let Some(m) = &c.control else { continue };
        if m.section != section {
            section = m.section.clone();
            s += &format!(
                "  {} {}\n",
                section,
                b.sections.get(&section).cloned().unwrap_or_default()
            );
        }
        s += &format!(
            "    {:<12} L{} {:<9} {:<14} {}\n",
            c.id,
            m.level,
            if m.automated { "automated" } else { "manual" },
            c.resource.kind(),
            c.title_or_id()
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_is_built_in_and_unknown_names_are_refused() {
        let s = suite("smoke").unwrap();
        assert_eq!(s.name, "smoke");
        assert!(s.checks.len() >= 6);
        let e = suite("smok").unwrap_err().to_string();
        assert!(
            e.contains("no built-in suite `smok`; built in: smoke"),
            "{e}"
        );
        assert!(benchmarks().contains(&"debian-12"));
        let (header, sections) = benchmark_files("debian-12").unwrap();
        assert!(header.contains("benchmark: debian-12"));
        assert!(
            sections[0].0.ends_with("1-initial-setup.yml"),
            "{sections:?}"
        );
        assert!(benchmark_files("ubuntu-24.04").is_none());
    }
}
