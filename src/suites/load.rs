//! Reading suite files, with errors that name the file, line and column.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::model::{Check, Suite, SuiteDoc};
use crate::error::{Error, IoContext, Result};

/// Reads and validates the suite file at `path`.
///
/// The file is either a mapping `{name?, description?, checks: [...]}` or a plain list of
/// checks; a suite without a `name` is named after the file (`smoke.yml` → `smoke`). A Goss
/// file (a mapping whose keys are all Goss resource types) is read with [`super::load_goss`].
pub fn load_suite(path: &Path) -> Result<Suite> {
    let text = std::fs::read_to_string(path).at("reading", path)?;
    if looks_like_goss(&text) {
        return super::goss::load_goss(path);
    }
    parse_suite(&text, path)
}

/// Whether `text` is a Goss file: a mapping with a Goss resource type among its top-level keys
/// and none of a suite's (`checks`, `name`, `description`), or a Goss template.
pub fn looks_like_goss(text: &str) -> bool {
    if text.contains("{{") && !text.contains("checks:") {
        return true; // a Goss template, rendered by load_goss
    }
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(m)) => {
            let keys: Vec<&str> = m.keys().filter_map(|k| k.as_str()).collect();
            keys.iter().any(|k| super::goss::RESOURCE_TYPES.contains(k))
                && !keys
                    .iter()
                    .any(|k| ["checks", "name", "description"].contains(k))
        }
        _ => false,
    }
}

/// Parses suite YAML `text`; `path` names the file in errors and supplies the default name.
pub fn parse_suite(text: &str, path: &Path) -> Result<Suite> {
    if crate::config::is_empty_yaml(text) {
        return Err(Error::Config(format!(
            "{}: the suite file is empty; write a list of checks or a mapping with `checks:`",
            path.display()
        )));
    }
    let file: SuiteFile = serde_yaml::from_str(text)
        .map_err(|e| Error::Config(crate::config::yaml_error_in(path, text, &e)))?;
    let doc = match file {
        SuiteFile::Doc(doc) => doc,
        SuiteFile::List(checks) => SuiteDoc {
            name: None,
            description: None,
            checks,
            experiments: Vec::new(),
            probe: None,
        },
    };
    check_unique_ids(text, path, &doc.checks)?;
    if let Some(dup) = doc
        .experiments
        .iter()
        .enumerate()
        .find(|(i, e)| {
            doc.checks.iter().any(|c| c.id == e.id)
                || doc.experiments[..*i].iter().any(|o| o.id == e.id)
        })
        .map(|(_, e)| e)
    {
        let line = id_line(text, &dup.id, 2)
            .map(|l| format!("{l}:1:"))
            .unwrap_or_default();
        return Err(Error::Config(format!(
            "{}:{line} duplicate id `{}`; checks and experiments of a suite need unique ids",
            path.display(),
            dup.id
        )));
    }
    let name = doc.name.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "suite".into())
    });
    Ok(Suite {
        name,
        description: doc.description,
        checks: doc.checks,
        experiments: doc.experiments,
        probe: doc.probe,
        source: Some(path.to_path_buf()),
        cis: None,
    })
}

/// `path:line:col: message` for a serde_yaml error.
pub(crate) fn yaml_error(path: &Path, e: &serde_yaml::Error) -> Error {
    Error::Config(crate::config::yaml_error(path, e))
}

fn check_unique_ids(text: &str, path: &Path, checks: &[Check]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for c in checks {
        if !seen.insert(c.id.as_str()) {
            let line = id_line(text, &c.id, 2)
                .map(|l| format!("{l}:1:"))
                .unwrap_or_default();
            return Err(Error::Config(format!(
                "{}:{line} duplicate check id `{}`; ids must be unique within a suite",
                path.display(),
                c.id
            )));
        }
    }
    Ok(())
}

/// The line number of the `nth` line that declares `id: <id>`.
fn id_line(text: &str, id: &str, nth: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start().trim_start_matches("- ").trim_start();
            l.strip_prefix("id:")
                .map(|v| v.trim().trim_matches(['"', '\'']) == id)
                .unwrap_or(false)
        })
        .nth(nth - 1)
        .map(|(i, _)| i + 1)
}

/// The two accepted shapes of a suite file, told apart without losing error locations.
enum SuiteFile {
    Doc(SuiteDoc),
    List(Vec<Check>),
}

impl<'de> Deserialize<'de> for SuiteFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SuiteFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of checks, or a mapping with `name` and `checks`")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                seq: A,
            ) -> std::result::Result<SuiteFile, A::Error> {
                Vec::<Check>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(SuiteFile::List)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<SuiteFile, A::Error> {
                SuiteDoc::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(SuiteFile::Doc)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suites::resources::Resource;

    fn parse(text: &str) -> Result<Suite> {
        parse_suite(text, Path::new("suites/web.yml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn both_shapes_parse() {
        let list = parse("- id: a\n  command: {run: 'true'}\n").unwrap();
        assert_eq!(list.name, "web");
        assert_eq!(list.checks[0].id, "a");
        let doc = parse(
            "name: smoke\nchecks:\n  - id: sshd\n    title: sshd runs\n    tags: [ssh]\n    timeout: 10s\n    retry: {attempts: 3, interval: 2s}\n    service: {name: ssh, running: true, enabled: true}\n",
        )
        .unwrap();
        assert_eq!(doc.name, "smoke");
        let c = &doc.checks[0];
        assert_eq!(c.title_or_id(), "sshd runs");
        assert_eq!(c.timeout.unwrap().0, std::time::Duration::from_secs(10));
        assert!(matches!(&c.resource, Resource::Service(s) if s.name == "ssh"));
    }

    #[test]
    fn unknown_keys_name_the_place_and_what_is_accepted() {
        let e = err("- id: a\n  servise: {name: ssh}\n");
        assert!(e.starts_with("suites/web.yml:2:3: "), "{e}");
        assert!(e.contains("unknown field `servise`"), "{e}");
        assert!(e.contains("`service`"), "{e}");
        let e = err("- id: a\n  service: {name: ssh, runing: true}\n");
        assert!(e.starts_with("suites/web.yml:2:"), "{e}");
        assert!(
            e.contains("unknown field `runing`, expected one of `name`, `running`, `enabled`"),
            "{e}"
        );
        let e = err("name: x\nchecks: []\nextra: 1\n");
        assert!(
            e.starts_with("suites/web.yml:3:1: unknown field `extra`"),
            "{e}"
        );
    }

    #[test]
    fn exactly_one_resource_is_required() {
        let e = err("- id: a\n  title: nothing\n");
        assert!(e.starts_with("suites/web.yml:1:"), "{e}");
        assert!(
            e.contains("check `a` must have exactly one resource key, found none"),
            "{e}"
        );
        assert!(e.contains("accepted: command, service"), "{e}");
        let e = err("- id: a\n  command: {run: 'true'}\n  package: {name: x}\n");
        assert!(e.contains("found `command`, `package`"), "{e}");
    }

    #[test]
    fn bad_values_are_reported_with_their_location() {
        let e = err("- id: a\n  port: {port: http}\n");
        assert!(e.starts_with("suites/web.yml:2:"), "{e}");
        let e = err("- id: a\n  timeout: soon\n  command: {run: 'true'}\n");
        assert!(e.contains("`soon` is not a duration"), "{e}");
        let e = err("- id: a\n  http: {url: 'ftp://x'}\n");
        assert!(
            e.contains("check `a`: `ftp://x` is not an http:// or https:// URL"),
            "{e}"
        );
        let e = err("");
        assert!(e.contains("the suite file is empty"), "{e}");
        let e = err("just a string");
        assert!(e.contains("a list of checks, or a mapping"), "{e}");
    }

    #[test]
    fn duplicate_ids_point_at_the_second_one() {
        let e = err("- id: a\n  command: {run: 'true'}\n- id: a\n  command: {run: 'false'}\n");
        assert_eq!(
            e,
            "suites/web.yml:3:1: duplicate check id `a`; ids must be unique within a suite"
        );
    }
}

#[cfg(test)]
mod builtin_tests {
    use super::*;

    #[test]
    fn goss_files_are_recognised() {
        assert!(looks_like_goss("file:\n  /etc/passwd:\n    exists: true\n"));
        assert!(looks_like_goss("gossfile:\n  a.yaml: {}\n"));
        assert!(!looks_like_goss("name: x\nchecks: []\n"));
        assert!(!looks_like_goss("- id: a\n  file: {path: /}\n"));
        assert!(!looks_like_goss("file: {}\nchecks: []\n"));
        assert!(looks_like_goss("file: {}\nenv: {A: b}\n"));
        assert!(!looks_like_goss("env: {A: b}\n"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.yaml");
        std::fs::write(&p, "user:\n  root:\n    exists: true\n").unwrap();
        let s = load_suite(&p).unwrap();
        assert_eq!(s.checks[0].id, "user:root");
    }

    #[test]
    fn builtin_suites_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-suites");
        let smoke = load_suite(&dir.join("smoke.yml")).unwrap();
        assert_eq!(smoke.name, "smoke");
        assert!(smoke.checks.len() >= 6);
    }
}
