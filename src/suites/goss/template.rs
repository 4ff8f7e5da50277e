//! Goss templates: a Goss file is a Go `text/template` rendered before it is parsed, with
//! `.Vars` (vars files and inline vars) and `.Env` (the environment) as data, Goss's own
//! functions and the commonly used Sprig ones. Rendering uses the `gotmpl` crate (a port of
//! Go's `text/template`); like Goss, a missing map key is an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gotmpl::{FuncMap, MissingKey, Template, TemplateError, Value};
use regex::Regex;

use crate::error::{Error, IoContext, Result};

/// Where a Goss file's `.Vars` come from: vars files (merged in order, later files winning,
/// nested mappings merged) and inline vars (JSON or YAML; their top-level keys replace).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GossVars {
    /// `--vars FILE` (may be repeated).
    pub files: Vec<PathBuf>,
    /// `--vars-inline '{"key": "value"}'`.
    pub inline: Option<String>,
}

impl GossVars {
    /// Whether no vars were given.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.inline.as_deref().is_none_or(|s| s.trim().is_empty())
    }
}

/// The data and functions a Goss file is rendered with.
pub(crate) struct Renderer {
    data: Value,
}

impl Renderer {
    /// Reads the vars; an unreadable or malformed vars file is a configuration error.
    pub fn new(vars: &GossVars) -> Result<Self> {
        let mut merged = serde_json::Map::new();
        for file in &vars.files {
            let text = std::fs::read_to_string(file).at("reading the vars file", file)?;
            let value = parse_vars(&text, &file.display().to_string())?;
            deep_merge(&mut merged, value);
        }
        if let Some(inline) = vars.inline.as_deref().filter(|s| !s.trim().is_empty()) {
            for (k, v) in parse_vars(inline, "--vars-inline")? {
                merged.insert(k, v);
            }
        }
        let env: BTreeMap<String, Value> =
            std::env::vars().map(|(k, v)| (k, Value::from(v))).collect();
        let data = BTreeMap::from([
            (
                "Vars".to_string(),
                to_value(serde_json::Value::Object(merged)),
            ),
            ("Env".to_string(), Value::from(env)),
        ]);
        Ok(Renderer {
            data: Value::from(data),
        })
    }

    /// Renders `text`, the contents of `path`; errors name the file, line and expression.
    pub fn render(&self, path: &Path, text: &str) -> Result<String> {
        let shown = path.display().to_string();
        check_blocks(&shown, text)?;
        let template = Template::new(&shown)
            .missing_key(MissingKey::Error)
            .funcs(functions())
            .parse(text)
            .map_err(|e| template_error(&shown, text, e))?;
        template
            .execute_to_string(&self.data)
            .map_err(|e| template_error(&shown, text, e))
    }
}

/// Vars text (JSON or YAML) as a mapping; `what` names it in errors.
fn parse_vars(text: &str, what: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    let value: serde_json::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        Error::Config(format!(
            "{what}{at}: Goss vars are not valid JSON or YAML: {msg}"
        ))
    })?;
    match value {
        serde_json::Value::Object(m) => Ok(m),
        serde_json::Value::Null => Ok(serde_json::Map::new()),
        other => Err(Error::Config(format!(
            "{what}: Goss vars must be a mapping of names to values, got {}",
            kind(&other)
        ))),
    }
}

/// What kind of value `v` is, in words (`a list`, `a string`, ...).
pub(crate) fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Merges `from` into `into`: mappings key by key, everything else replaced (as Goss merges
/// its vars files).
fn deep_merge(
    into: &mut serde_json::Map<String, serde_json::Value>,
    from: serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(serde_json::Value::Object(a)), serde_json::Value::Object(b)) => deep_merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// JSON/YAML data as template data (numbers stay integers where they are).
fn to_value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(a) => Value::from(a.into_iter().map(to_value).collect::<Vec<_>>()),
        serde_json::Value::Object(m) => {
            let map: BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, to_value(v))).collect();
            Value::from(map)
        }
    }
}

/// `path:line:col: Goss template: message` (for execution errors, the place of the action
/// that names what failed, when it can be found).
fn template_error(path: &str, text: &str, e: TemplateError) -> Error {
    match &e {
        TemplateError::Parse {
            line, col, message, ..
        }
        | TemplateError::Lex {
            line, col, message, ..
        } => {
            let source = text
                .lines()
                .nth(line.saturating_sub(1))
                .unwrap_or("")
                .trim();
            Error::Config(format!(
                "{path}:{line}:{col}: Goss template: {message} (in `{source}`)"
            ))
        }
        other => {
            let msg = other.to_string();
            let needles: Vec<String> = match other {
                TemplateError::MissingKey { key } => vec![format!(".{key}")],
                TemplateError::UndefinedFunction(f) => vec![f.clone()],
                TemplateError::ArgCount { name, .. } => vec![name.clone()],
                TemplateError::NotIterable(_) => vec!["range".to_string()],
                // A function's own error starts with its name (possibly after some words).
                _ => msg
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| w.len() > 2)
                    .map(str::to_string)
                    .collect(),
            };
            let hint = if matches!(other, TemplateError::MissingKey { .. }) {
                "; vars come from `vars:` or `vars-inline:` on the pipeline's `goss:` entry, or \
                 `--vars`/`--vars-inline`"
            } else {
                ""
            };
            match needles.iter().find_map(|n| locate(text, n)) {
                Some((line, col, action)) => Error::Config(format!(
                    "{path}:{line}:{col}: Goss template: {msg} in `{action}`{hint}"
                )),
                None => Error::Config(format!("{path}: Goss template: {msg}{hint}")),
            }
        }
    }
}

/// Every `if`/`range`/`with`/`define`/`block` has its `end`, and no `end` is left over: Go
/// refuses both, and `gotmpl` 0.6 lets them through (ending the template early).
fn check_blocks(path: &str, text: &str) -> Result<()> {
    let Ok(action) = Regex::new(r"(?s)\{\{-?\s*(/\*.*?\*/|[a-z]+\b)") else {
        return Ok(());
    };
    let mut open: Vec<(usize, usize, String)> = Vec::new();
    for c in action.captures_iter(text) {
        let (Some(whole), Some(word)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let before = &text[..whole.start()];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        match word.as_str() {
            w @ ("if" | "range" | "with" | "define" | "block") => {
                open.push((line, col, w.to_string()))
            }
            "end" if open.pop().is_none() => {
                return Err(Error::Config(format!(
                    "{path}:{line}:{col}: Goss template: unexpected {{{{end}}}}: no if, range or with is open here"
                )))
            }
            _ => {}
        }
    }
    match open.pop() {
        Some((line, col, w)) => Err(Error::Config(format!(
            "{path}:{line}:{col}: Goss template: this {{{{{w}}}}} has no {{{{end}}}} (unexpected end of file)"
        ))),
        None => Ok(()),
    }
}

/// The first action (`{{ … }}`) that contains `needle` as a whole word: its line, column and
/// text.
fn locate(text: &str, needle: &str) -> Option<(usize, usize, String)> {
    let word = Regex::new(&format!(r"{}\b", regex::escape(needle))).ok()?;
    let action = Regex::new(r"(?s)\{\{.*?\}\}").ok()?;
    let m = action.find_iter(text).find(|m| word.is_match(m.as_str()))?;
    let before = &text[..m.start()];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col, m.as_str().to_string()))
}

type FnResult = gotmpl::Result<Value>;

fn fail(name: &str, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("{name}: {msg}"))
}

fn arg<'a>(name: &str, args: &'a [Value], i: usize) -> gotmpl::Result<&'a Value> {
    args.get(i).ok_or_else(|| TemplateError::ArgCount {
        name: name.to_string(),
        expected: i + 1,
        got: args.len(),
    })
}

/// A value as Go's `fmt` prints it with `%v`.
fn text(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn s(name: &str, args: &[Value], i: usize) -> gotmpl::Result<String> {
    arg(name, args, i).map(text)
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Uint(u) => i64::try_from(*u).ok(),
        Value::Float(f) => Some(*f as i64),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn re(name: &str, pattern: &str) -> gotmpl::Result<Regex> {
    Regex::new(pattern).map_err(|e| {
        fail(
            name,
            format!("`{pattern}` is not a regular expression: {e}"),
        )
    })
}

fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::List(items) => items.to_vec(),
        Value::Nil => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Go's `%q` for a string.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Goss's template functions, and the Sprig functions Goss files commonly use.
fn functions() -> FuncMap {
    let mut f: FuncMap = BTreeMap::new();
    let mut add = |name: &str, func: fn(&[Value]) -> FnResult| {
        f.insert(name.to_string(), Arc::new(func));
    };
    // Goss's own.
    add("mkSlice", |a| Ok(Value::from(a.to_vec())));
    add("readFile", |a| {
        let path = s("readFile", a, 0)?;
        std::fs::read_to_string(&path)
            .map(|t| Value::from(t.trim().to_string()))
            .map_err(|e| fail("readFile", format!("{path}: {e}")))
    });
    add("getEnv", |a| {
        let key = s("getEnv", a, 0)?;
        let val = std::env::var(&key).unwrap_or_default();
        Ok(Value::from(match a.get(1) {
            Some(d) if val.is_empty() => text(d),
            _ => val,
        }))
    });
    add("regexMatch", |a| {
        let r = re("regexMatch", &s("regexMatch", a, 0)?)?;
        Ok(Value::Bool(r.is_match(&s("regexMatch", a, 1)?)))
    });
    add("toUpper", |a| {
        Ok(Value::from(s("toUpper", a, 0)?.to_uppercase()))
    });
    add("toLower", |a| {
        Ok(Value::from(s("toLower", a, 0)?.to_lowercase()))
    });
    add("findStringSubmatch", |a| {
        let r = re("findStringSubmatch", &s("findStringSubmatch", a, 0)?)?;
        let input = s("findStringSubmatch", a, 1)?;
        let mut all = BTreeMap::new();
        let mut named = BTreeMap::new();
        if let Some(caps) = r.captures(&input) {
            for (i, name) in r.capture_names().enumerate() {
                let m = caps.get(i).map_or("", |m| m.as_str()).to_string();
                if let Some(n) = name {
                    named.insert(n.to_string(), Value::from(m.clone()));
                }
                all.insert(i.to_string(), Value::from(m));
            }
        }
        Ok(Value::from(if named.is_empty() { all } else { named }))
    });
    // Sprig's.
    add("upper", |a| {
        Ok(Value::from(s("upper", a, 0)?.to_uppercase()))
    });
    add("lower", |a| {
        Ok(Value::from(s("lower", a, 0)?.to_lowercase()))
    });
    add("trim", |a| {
        Ok(Value::from(s("trim", a, 0)?.trim().to_string()))
    });
    add("trimPrefix", |a| {
        let (p, t) = (s("trimPrefix", a, 0)?, s("trimPrefix", a, 1)?);
        Ok(Value::from(t.strip_prefix(&p).unwrap_or(&t).to_string()))
    });
    add("trimSuffix", |a| {
        let (p, t) = (s("trimSuffix", a, 0)?, s("trimSuffix", a, 1)?);
        Ok(Value::from(t.strip_suffix(&p).unwrap_or(&t).to_string()))
    });
    add("replace", |a| {
        let (old, new, t) = (
            s("replace", a, 0)?,
            s("replace", a, 1)?,
            s("replace", a, 2)?,
        );
        Ok(Value::from(t.replace(&old, &new)))
    });
    add("contains", |a| {
        Ok(Value::Bool(
            s("contains", a, 1)?.contains(&s("contains", a, 0)?),
        ))
    });
    add("hasPrefix", |a| {
        Ok(Value::Bool(s("hasPrefix", a, 1)?.starts_with(&s(
            "hasPrefix",
            a,
            0,
        )?)))
    });
    add("hasSuffix", |a| {
        Ok(Value::Bool(s("hasSuffix", a, 1)?.ends_with(&s(
            "hasSuffix",
            a,
            0,
        )?)))
    });
    add("splitList", |a| {
        let (sep, t) = (s("splitList", a, 0)?, s("splitList", a, 1)?);
        Ok(Value::from(
            t.split(sep.as_str()).map(Value::from).collect::<Vec<_>>(),
        ))
    });
    add("join", |a| {
        let sep = s("join", a, 0)?;
        let items: Vec<String> = list(arg("join", a, 1)?).iter().map(text).collect();
        Ok(Value::from(items.join(&sep)))
    });
    add("list", |a| Ok(Value::from(a.to_vec())));
    add("has", |a| {
        let needle = text(arg("has", a, 0)?);
        Ok(Value::Bool(
            list(arg("has", a, 1)?).iter().any(|v| text(v) == needle),
        ))
    });
    add("hasKey", |a| {
        let key = s("hasKey", a, 1)?;
        Ok(Value::Bool(
            matches!(arg("hasKey", a, 0)?, Value::Map(m) if m.contains_key(key.as_str())),
        ))
    });
    add("default", |a| {
        let given = a.get(1).cloned().unwrap_or(Value::Nil);
        Ok(if given.is_truthy() {
            given
        } else {
            arg("default", a, 0)?.clone()
        })
    });
    add("empty", |a| {
        Ok(Value::Bool(!a.first().is_some_and(Value::is_truthy)))
    });
    add("coalesce", |a| {
        Ok(a.iter()
            .find(|v| v.is_truthy())
            .cloned()
            .unwrap_or(Value::Nil))
    });
    add("ternary", |a| {
        let pick = if arg("ternary", a, 2)?.is_truthy() {
            0
        } else {
            1
        };
        Ok(arg("ternary", a, pick)?.clone())
    });
    add("quote", |a| {
        let q: Vec<String> = a.iter().map(|v| go_quote(&text(v))).collect();
        Ok(Value::from(q.join(" ")))
    });
    add("squote", |a| {
        let q: Vec<String> = a.iter().map(|v| format!("'{}'", text(v))).collect();
        Ok(Value::from(q.join(" ")))
    });
    add("toString", |a| Ok(Value::from(s("toString", a, 0)?)));
    add("atoi", |a| {
        Ok(Value::Int(int(arg("atoi", a, 0)?).unwrap_or(0)))
    });
    add("int", |a| {
        Ok(Value::Int(int(arg("int", a, 0)?).unwrap_or(0)))
    });
    add("add", |a| Ok(Value::Int(a.iter().filter_map(int).sum())));
    add("sub", |a| {
        let (x, y) = (arg("sub", a, 0)?, arg("sub", a, 1)?);
        Ok(Value::Int(int(x).unwrap_or(0) - int(y).unwrap_or(0)))
    });
    add("indent", |a| {
        let n = int(arg("indent", a, 0)?).unwrap_or(0).max(0) as usize;
        let pad = " ".repeat(n);
        let t = s("indent", a, 1)?;
        Ok(Value::from(format!(
            "{pad}{}",
            t.replace('\n', &format!("\n{pad}"))
        )))
    });
    add("nindent", |a| {
        let n = int(arg("nindent", a, 0)?).unwrap_or(0).max(0) as usize;
        let pad = " ".repeat(n);
        let t = s("nindent", a, 1)?;
        Ok(Value::from(format!(
            "\n{pad}{}",
            t.replace('\n', &format!("\n{pad}"))
        )))
    });
    add("regexFind", |a| {
        let r = re("regexFind", &s("regexFind", a, 0)?)?;
        let t = s("regexFind", a, 1)?;
        Ok(Value::from(
            r.find(&t).map_or("", |m| m.as_str()).to_string(),
        ))
    });
    add("regexReplaceAll", |a| {
        let r = re("regexReplaceAll", &s("regexReplaceAll", a, 0)?)?;
        let (t, with) = (s("regexReplaceAll", a, 1)?, s("regexReplaceAll", a, 2)?);
        Ok(Value::from(r.replace_all(&t, with.as_str()).into_owned()))
    });
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(text: &str, vars: &str) -> std::result::Result<String, String> {
        let r = Renderer::new(&GossVars {
            files: vec![],
            inline: Some(vars.to_string()),
        })
        .map_err(|e| e.to_string())?;
        r.render(Path::new("goss.yaml"), text)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn vars_env_and_control_flow_render_as_goss_would() {
        std::env::set_var("BAKERY_TEMPLATE_TEST", "from-env");
        let out = render(
            "{{ if .Vars.web }}package:\n  {{ .Vars.web.pkg }}: {installed: true}\n{{ end }}\
             {{- range .Vars.users }}\nuser:\n  {{ . }}: {}{{ end }}\n\
             env: {{ .Env.BAKERY_TEMPLATE_TEST }} {{ getEnv \"BAKERY_NOPE_XYZ\" \"dflt\" }}\n\
             {{ range mkSlice \"a\" \"b\" }}{{ toUpper . }}{{ end }} {{ \"X\" | toLower }}\n\
             {{ if regexMatch \"^1\\\\.\" .Vars.ver }}v1{{ end }} {{ (findStringSubmatch \"(?P<maj>\\\\d+)\\\\.\" .Vars.ver).maj }}\n\
             {{ join \",\" (splitList \":\" \"a:b:c\") }} {{ .Vars.missing | default \"d\" | quote }}",
            r#"{"web": {"pkg": "nginx"}, "users": ["alice"], "ver": "1.22", "missing": ""}"#,
        )
        .unwrap();
        assert_eq!(
            out,
            "package:\n  nginx: {installed: true}\n\nuser:\n  alice: {}\nenv: from-env dflt\nAB x\nv1 1\na,b,c \"d\""
        );
    }

    #[test]
    fn template_errors_name_the_line_and_the_expression() {
        let e = render("file:\n  /etc/{{ .Vars.name }}:\n    exists: true\n", "{}").unwrap_err();
        assert_eq!(
            e,
            "goss.yaml:2:8: Goss template: map has no entry for key: name in `{{ .Vars.name }}`; \
             vars come from `vars:` or `vars-inline:` on the pipeline's `goss:` entry, or \
             `--vars`/`--vars-inline`"
        );
        let e = render("a: 1\nb: {{ if .Vars.x }}\n", r#"{"x": 1}"#).unwrap_err();
        assert_eq!(
            e,
            "goss.yaml:2:4: Goss template: this {{if}} has no {{end}} (unexpected end of file)"
        );
        let e = render("a: {{ if true }}1{{ end }}\n{{- end }}\nb: 2\n", "{}").unwrap_err();
        assert!(
            e.starts_with("goss.yaml:2:1: Goss template: unexpected {{end}}"),
            "{e}"
        );
        let ok = render(
            "{{/* if */}}{{- range $i, $v := .Vars.l }}{{ with $v }}{{ . }}{{ end }}{{ end }}",
            r#"{"l": [1]}"#,
        );
        assert_eq!(ok.unwrap(), "1");
        let e = render("a: {{ nosuchfn 1 }}\n", "{}").unwrap_err();
        assert!(e.starts_with("goss.yaml:1:"), "{e}");
        assert!(e.contains("nosuchfn"), "{e}");
        let e = render("a: 1\nb: {{ readFile \"/no/such/file\" }}\n", "{}").unwrap_err();
        assert!(e.starts_with("goss.yaml:2:4: Goss template: "), "{e}");
        assert!(e.contains("/no/such/file"), "{e}");
        let e = render("a", "[1, 2]").unwrap_err();
        assert!(
            e.contains("--vars-inline: Goss vars must be a mapping"),
            "{e}"
        );
    }

    #[test]
    fn vars_files_merge_deeply_and_inline_vars_replace() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let b = dir.path().join("b.json");
        std::fs::write(&a, "web: {port: 80, pkg: nginx}\nlevel: 1\n").unwrap();
        std::fs::write(&b, r#"{"web": {"port": 8080}}"#).unwrap();
        let r = Renderer::new(&GossVars {
            files: vec![a.clone(), b],
            inline: Some("level: 2".into()),
        })
        .unwrap();
        let out = r
            .render(
                Path::new("g.yaml"),
                "{{ .Vars.web.pkg }} {{ .Vars.web.port }} {{ .Vars.level }}",
            )
            .unwrap();
        assert_eq!(out, "nginx 8080 2");
        std::fs::write(&a, "web: [unclosed\n").unwrap();
        let e = Renderer::new(&GossVars {
            files: vec![a.clone()],
            inline: None,
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.starts_with(&format!("{}:", a.display())), "{e}");
        assert!(e.contains("not valid JSON or YAML"), "{e}");
    }
}
