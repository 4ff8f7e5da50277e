//! Built-in suites: the content of `test-suites/` embedded in the binary, so a pipeline run
//! from anywhere (the action's `FROM scratch` container included) can name them.
//!
//! - `smoke`: `test-suites/smoke.yml`, the default suite of `verify.suites`.
//! - `chaos-systemd`: `test-suites/chaos/systemd.yml`, failure-mode experiments for any
//!   systemd Linux image.
//! - CIS benchmarks: `test-suites/cis/<benchmark>/` (see [`super::cis`]).
//!
//! A built-in suite with variables has them beside it, in `<file>.variables.yml` (each with
//! its default and description); the suite file is then a template (Go `text/template`, as
//! Goss files are) rendered with `.Vars`: the defaults, replaced by the pipeline entry's
//! `variables:`.

use std::path::Path;

use include_dir::{include_dir, Dir};

use super::model::Suite;
use crate::error::{Error, Result};

static CONTENT: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/test-suites");

/// The names `- builtin: NAME` accepts, each with its file under `test-suites/`.
pub const SUITES: &[(&str, &str)] = &[
    ("smoke", "smoke.yml"),
    ("chaos-systemd", "chaos/systemd.yml"),
];

/// One variable of a built-in suite, as its `.variables.yml` file declares it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub default: serde_json::Value,
    pub description: String,
}

fn names() -> Vec<&'static str> {
    SUITES.iter().map(|(n, _)| *n).collect()
}

fn path_of(name: &str) -> Option<&'static str> {
    SUITES.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The variables of the built-in suite at `path` (under `test-suites/`), in file order; none
/// when it has no `.variables.yml` beside it.
pub fn variables(path: &str) -> Result<Vec<(String, Variable)>> {
    let vars_path = format!("{}.variables.yml", path.trim_end_matches(".yml"));
    let Some(text) = file(&vars_path) else {
        return Ok(Vec::new());
    };
    let map: serde_yaml::Mapping = serde_yaml::from_str(text).map_err(|e| {
        Error::Infra(format!(
            "internal error (a bug in Bakery): {}: {e}",
            shown_path(&vars_path)
        ))
    })?;
    map.into_iter()
        .map(|(k, v)| {
            let name = k.as_str().unwrap_or_default().to_string();
            let var: Variable = serde_yaml::from_value(v).map_err(|e| {
                Error::Infra(format!(
                    "internal error (a bug in Bakery): {}: {name}: {e}",
                    shown_path(&vars_path)
                ))
            })?;
            Ok((name, var))
        })
        .collect()
}

/// The text of an embedded file, by its path under `test-suites/`.
pub fn file(path: &str) -> Option<&'static str> {
    CONTENT.get_file(path).and_then(|f| f.contents_utf8())
}

/// The path shown for an embedded file in messages: where a reader finds it in the repository.
pub fn shown_path(path: &str) -> String {
    format!("test-suites/{path}")
}

/// The built-in suite `name` (`smoke`, `chaos-systemd`) with its variables' defaults.
pub fn suite(name: &str) -> Result<Suite> {
    suite_with(name, &serde_json::Map::new())
}

/// The built-in suite `name`, its template rendered with `given` over the variables' defaults.
/// An unknown variable, or a value of another kind than its default (a list for a list, ...),
/// is a configuration error naming the variable and what would work. Each error starts with
/// the key of the pipeline entry it is about: `builtin:`, `variables.NAME:` or `variables:`.
pub fn suite_with(name: &str, given: &serde_json::Map<String, serde_json::Value>) -> Result<Suite> {
    let (Some(path), Some(text)) = (path_of(name), path_of(name).and_then(file)) else {
        return Err(Error::Config(format!(
            "builtin: there is no built-in suite `{name}`; built in: {} (and `cis: \
             {{benchmark: ...}}` for {})",
            names().join(", "),
            benchmarks().join(", ")
        )));
    };
    let declared = variables(path)?;
    let shown = shown_path(path);
    let text = if declared.is_empty() {
        if let Some(k) = given.keys().next() {
            return Err(Error::Config(format!(
                "variables.{k}: the built-in suite `{name}` has no variables"
            )));
        }
        text.to_string()
    } else {
        let mut values = serde_json::Map::new();
        for (k, v) in &declared {
            values.insert(k.clone(), v.default.clone());
        }
        for (k, v) in given {
            let Some((_, var)) = declared.iter().find(|(n, _)| n == k) else {
                let known: Vec<&str> = declared.iter().map(|(n, _)| n.as_str()).collect();
                return Err(Error::Config(format!(
                    "variables.{k}: `{name}` has no such variable; it has {} (`bakery suites \
                     show {name}` describes them)",
                    known.join(", ")
                )));
            };
            if super::goss::template::kind(v) != super::goss::template::kind(&var.default) {
                return Err(Error::Config(format!(
                    "variables.{k}: expected {} (like the default, {}), got {}",
                    super::goss::template::kind(&var.default),
                    var.default,
                    super::goss::template::kind(v)
                )));
            }
            values.insert(k.clone(), v.clone());
        }
        let renderer = super::goss::template::Renderer::new(&super::GossVars {
            files: Vec::new(),
            inline: Some(serde_json::Value::Object(values).to_string()),
        })?;
        renderer
            .render(Path::new(&shown), text)
            .map_err(|e| Error::Config(format!("variables: {e}")))?
    };
    let mut s = super::parse_suite(&text, Path::new(&shown))
        .map_err(|e| Error::Config(format!("variables: {e}")))?;
    s.source = None;
    Ok(s)
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
    for name in names() {
        let content = match suite(name) {
            Ok(s) if s.experiments.is_empty() => format!("{} checks", s.checks.len()),
            Ok(s) => format!("{} experiments", s.experiments.len()),
            Err(e) => format!("cannot be read: {e}"),
        };
        s += &format!(
            "{name:<15} {:<53} {content}\n",
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
    if let Some(path) = path_of(name) {
        let mut s = String::new();
        let declared = variables(path)?;
        if !declared.is_empty() {
            s += &format!(
                "Variables (set them under `- builtin: {name}` as `variables: {{...}}`):\n"
            );
            for (k, v) in &declared {
                s += &format!("  {k} = {}\n      {}\n", v.default, v.description.trim());
            }
            s += &format!("\nThe suite ({}):\n", shown_path(path));
        }
        s += file(path).unwrap_or_default();
        return Ok(s);
    }
    let Some(id) = name
        .strip_prefix("cis-")
        .filter(|id| benchmarks().contains(id))
    else {
        let mut names: Vec<String> = names().iter().map(|s| s.to_string()).collect();
        names.extend(benchmarks().iter().map(|b| format!("cis-{b}")));
        return Err(Error::Config(format!(
            "there is no built-in suite `{name}`; built in: {}",
            names.join(", ")
        )));
    };
    let b = super::cis::Benchmark::load(id, &Default::default(), "built-in")?;
    let controls = b.select(profile)?;
    let manual = controls
        .iter()
        .filter(|c| c.control.as_ref().is_some_and(|m| !m.automated))
        .count();
    let suite = b.suite_name(profile);
    let mut s = format!(
        "{} ({} {}), profile {profile}: {} controls, {} automated and {manual} manual.\n\
         In a pipeline: `- cis: {{benchmark: {id}, profile: {profile}}}` under `verify.suites` \
         (results name the suite `{suite}`).\n\
         Manual controls are `not-reviewed` until attested; see the README's CIS section for \
         waivers, attestations, exclusions and min-score.\n\n\
         Variables (set them under `cis: {{variables: {{...}}}}`):\n",
        b.title,
        b.os.id,
        b.os.version_id,
        controls.len(),
        controls.len() - manual,
    );
    for (name, (v, file)) in &b.variables {
        s += &format!(
            "  {name} = {}\n      {} ({file})\n",
            v.default,
            v.description.trim()
        );
    }
    s += &format!(
        "\nControls (id, level in {profile}, automated or manual, what is checked, title), by \
         section with the file that holds it:\n"
    );
    let mut section = String::new();
    for c in &controls {
        let Some(m) = &c.control else { continue };
        if m.section != section {
            section = m.section.clone();
            s += &format!(
                "  {} {} ({})\n",
                section,
                b.sections.get(&section).cloned().unwrap_or_default(),
                b.section_files.get(&section).cloned().unwrap_or_default()
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
