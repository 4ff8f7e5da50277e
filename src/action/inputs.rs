//! The action's inputs, as the runner passes them: one `INPUT_<NAME>` environment variable per
//! input declared in `action.yml` (name upper-cased, spaces as `_`, hyphens kept), empty when
//! the workflow did not set it and it has no default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// What the action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionMode {
    /// Bake, verify, promote when every gate passed (and `promote` is true).
    Run,
    /// Bake only.
    Bake,
    /// Verify an existing image (the `image` input).
    Verify,
    /// Promote the `image` input, or the image verified for this commit.
    Promote,
    /// Release what killed runs left behind (and, with `--provider aws` in `args`, sweep).
    Cleanup,
    /// Whether the newest source image differs from the one the last promoted image came from.
    Outdated,
    /// Check the pipeline file and the files it names; each problem becomes an annotation.
    Validate,
}

impl ActionMode {
    /// Every mode's name, as the `mode` input accepts it.
    pub const NAMES: [&'static str; 7] = [
        "run", "bake", "verify", "promote", "cleanup", "outdated", "validate",
    ];

    /// The mode named `s`.
    pub fn parse(s: &str) -> Option<ActionMode> {
        Some(match s {
            "run" => ActionMode::Run,
            "bake" => ActionMode::Bake,
            "verify" => ActionMode::Verify,
            "promote" => ActionMode::Promote,
            "cleanup" => ActionMode::Cleanup,
            "outdated" => ActionMode::Outdated,
            "validate" => ActionMode::Validate,
            _ => return None,
        })
    }

    /// The mode's name, which is also the `bakery` subcommand it runs.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionMode::Run => "run",
            ActionMode::Bake => "bake",
            ActionMode::Verify => "verify",
            ActionMode::Promote => "promote",
            ActionMode::Cleanup => "cleanup",
            ActionMode::Outdated => "outdated",
            ActionMode::Validate => "validate",
        }
    }
}

/// The inputs `action.yml` declares, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    /// `pipeline`: the pipeline file (default `bakery.yml`).
    pub pipeline: PathBuf,
    /// `mode`.
    pub mode: ActionMode,
    /// `image`: the image to verify or promote.
    pub image: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `github-token`: for the check run; a secret.
    pub token: Option<String>,
    /// `junit`: where the JUnit XML goes, instead of the pipeline file's `verify.junit`.
    pub junit: Option<PathBuf>,
    /// `promote`: in `run` mode, promote an image that passed every gate (default true).
    pub promote: bool,
    /// `check-name`: the check run's name (default `bakery`).
    pub check_name: String,
    /// `args`: extra command-line arguments, split like a shell would.
    pub args: Vec<String>,
}

/// Every input `action.yml` declares; the action reads no other.
pub const DECLARED: [&str; 9] = [
    "pipeline",
    "mode",
    "image",
    "region",
    "github-token",
    "junit",
    "promote",
    "check-name",
    "args",
];

/// The environment variable the runner sets for input `name`.
pub fn variable(name: &str) -> String {
    format!("INPUT_{}", name.replace(' ', "_").to_uppercase())
}

impl Inputs {
    /// Reads the inputs from `env` (variable name → value).
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Inputs> {
        let get = |name: &str| -> Option<String> {
            // Runners keep the hyphen (`INPUT_GITHUB-TOKEN`); tools that cannot set such a
            // variable may use `_` instead.
            [variable(name), variable(&name.replace('-', "_"))]
                .iter()
                .find_map(|v| env.get(v))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mode = match get("mode") {
            None => ActionMode::Run,
            Some(m) => ActionMode::parse(&m.to_lowercase()).ok_or_else(|| {
                Error::Config(format!(
                    "input `mode`: `{m}` is not a mode; use one of {}",
                    ActionMode::NAMES.join(", ")
                ))
            })?,
        };
        let promote = match get("promote") {
            None => true,
            Some(v) => parse_bool(&v).ok_or_else(|| {
                Error::Config(format!(
                    "input `promote`: `{v}` is not a boolean; use true or false"
                ))
            })?,
        };
        let image = get("image");
        if mode == ActionMode::Verify && image.is_none() {
            return Err(Error::Config(
                "input `image`: mode `verify` needs the id of the image to verify".into(),
            ));
        }
        let args = match get("args") {
            None => Vec::new(),
            Some(a) => split_args(&a).map_err(|m| Error::Config(format!("input `args`: {m}")))?,
        };
        Ok(Inputs {
            pipeline: PathBuf::from(get("pipeline").unwrap_or_else(|| "bakery.yml".into())),
            mode,
            image,
            region: get("region"),
            token: get("github-token"),
            junit: get("junit").map(PathBuf::from),
            promote,
            check_name: get("check-name").unwrap_or_else(|| "bakery".into()),
            args,
        })
    }

    /// The `bakery` command line these inputs stand for. In `promote` mode without an `image`
    /// input, `--image` is empty: the image verified for the commit is looked up.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec!["bakery".to_string(), self.mode.as_str().to_string()];
        if self.mode != ActionMode::Cleanup {
            argv.push("--file".into());
            argv.push(self.pipeline.display().to_string());
        }
        match self.mode {
            ActionMode::Verify | ActionMode::Promote => {
                argv.push("--image".into());
                argv.push(self.image.clone().unwrap_or_default());
            }
            ActionMode::Run if !self.promote => argv.push("--no-promote".into()),
            _ => {}
        }
        if let Some(region) = &self.region {
            argv.push("--region".into());
            argv.push(region.clone());
        }
        argv.extend(self.args.iter().cloned());
        argv
    }
}

/// YAML 1.2's booleans, as workflow files write them.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Splits `s` into words as a POSIX shell would, without expansions: whitespace (newlines
/// included) separates words, single quotes keep everything, double quotes keep everything but
/// `\"` and `\\`, a backslash outside quotes escapes the next character.
pub fn split_args(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("a double quote is not closed".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("ends with a lone backslash".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_when_the_runner_passes_empty_inputs() {
        let i = Inputs::from_env(&env(&[("INPUT_MODE", ""), ("INPUT_ARGS", "")])).unwrap();
        assert_eq!(i.mode, ActionMode::Run);
        assert_eq!(i.pipeline, PathBuf::from("bakery.yml"));
        assert!(i.promote);
        assert_eq!(i.check_name, "bakery");
        assert_eq!(i.argv(), ["bakery", "run", "--file", "bakery.yml"]);
    }

    #[test]
    fn hyphenated_inputs_keep_their_hyphen() {
        assert_eq!(variable("github-token"), "INPUT_GITHUB-TOKEN");
        let i = Inputs::from_env(&env(&[("INPUT_GITHUB-TOKEN", "t0k")])).unwrap();
        assert_eq!(i.token.as_deref(), Some("t0k"));
        let i = Inputs::from_env(&env(&[("INPUT_GITHUB_TOKEN", "t1k")])).unwrap();
        assert_eq!(i.token.as_deref(), Some("t1k"));
    }

    #[test]
    fn argv_follows_the_mode() {
        let i = Inputs::from_env(&env(&[
            ("INPUT_MODE", "run"),
            ("INPUT_PROMOTE", "false"),
            ("INPUT_REGION", "eu-west-1"),
            ("INPUT_PIPELINE", "images/web.yml"),
            ("INPUT_ARGS", "-v --endpoint-url 'http://127.0.0.1:5000'"),
        ]))
        .unwrap();
        assert_eq!(
            i.argv(),
            [
                "bakery",
                "run",
                "--file",
                "images/web.yml",
                "--no-promote",
                "--region",
                "eu-west-1",
                "-v",
                "--endpoint-url",
                "http://127.0.0.1:5000"
            ]
        );
        let i = Inputs::from_env(&env(&[("INPUT_MODE", "promote")])).unwrap();
        assert_eq!(
            i.argv(),
            ["bakery", "promote", "--file", "bakery.yml", "--image", ""]
        );
        let i = Inputs::from_env(&env(&[
            ("INPUT_MODE", "cleanup"),
            ("INPUT_ARGS", "--dry-run"),
        ]))
        .unwrap();
        assert_eq!(i.argv(), ["bakery", "cleanup", "--dry-run"]);
    }

    #[test]
    fn mistakes_name_the_input() {
        let e = Inputs::from_env(&env(&[("INPUT_MODE", "deploy")])).unwrap_err();
        assert!(e.to_string().contains("input `mode`: `deploy`"), "{e}");
        assert!(e.to_string().contains("run, bake, verify"), "{e}");
        let e = Inputs::from_env(&env(&[("INPUT_PROMOTE", "yes")])).unwrap_err();
        assert!(e.to_string().contains("input `promote`"), "{e}");
        let e = Inputs::from_env(&env(&[("INPUT_MODE", "verify")])).unwrap_err();
        assert!(e.to_string().contains("input `image`"), "{e}");
        let e = Inputs::from_env(&env(&[("INPUT_ARGS", "--x 'open")])).unwrap_err();
        assert!(e.to_string().contains("single quote"), "{e}");
    }

    #[test]
    fn args_split_like_a_shell() {
        assert_eq!(
            split_args("a  'b c'\n\"d \\\"e\\\" \\n\" f\\ g").unwrap(),
            ["a", "b c", "d \"e\" \\n", "f g"]
        );
        assert_eq!(split_args("''").unwrap(), [""]);
        assert!(split_args("   ").unwrap().is_empty());
    }
}
