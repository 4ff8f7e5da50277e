//! Matchers: how an expected value written in a suite is compared with what the probe reported.
//!
//! In YAML a matcher is one of:
//! - a scalar (`true`, `200`, `"0644"`): equality. Numbers compare numerically, and two strings
//!   of digits compare as integers (`"644"` equals `"0644"`).
//! - a list: every item must hold. Against text (command output, file contents, a body) each
//!   item is a Goss pattern checked line by line: `text` (some line contains it), `/regex/`
//!   (some line matches), `!text` or `!/regex/` (no line does), `\\!text` (a literal `!`).
//!   Against a list (groups, versions, addresses) each item must match some element.
//! - a mapping with one key: `equal`, `contains` (a substring of text, or an element of a list;
//!   also `contain-substring`), `contain-element` (an element, text split into lines),
//!   `contains-all` (also `contain-elements`), `consist-of`, `regex` (also `match-regexp`),
//!   `have-prefix`, `have-suffix`, `have-len`, `not`, `and`, `or`, `lt`, `le`, `gt`, `ge`,
//!   `semver` (also `semver-constraint`, e.g. `">=1.2, <2"` or Goss's `">=1.2 <2 || 3.x"`).

use std::borrow::Cow;
use std::fmt;

use regex::Regex;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// An expectation about one attribute of a resource.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to a value (see the module documentation for the lenient rules).
    Equal(Value),
    /// A string contains the text, or a list has an element matching.
    Contains(Box<Matcher>),
    /// Some element matches (text is split into lines).
    ContainElement(Box<Matcher>),
    /// Every matcher matches some element (text is split into lines).
    ContainsAll(Vec<Matcher>),
    /// A YAML list: element matchers against a list, Goss line patterns against text.
    List(Vec<Matcher>, Option<Vec<Pattern>>),
    /// A list has exactly these elements, in any order.
    ConsistOf(Vec<Matcher>),
    /// A string matches the regular expression.
    Regex(Regex),
    /// A string starts with the text.
    HavePrefix(String),
    /// A string ends with the text.
    HaveSuffix(String),
    /// A string or list has this length.
    HaveLen(usize),
    /// A numeric comparison.
    Compare(Cmp, f64),
    /// A version satisfies a semantic-version constraint (alternatives separated by `||`).
    Semver(Vec<semver::VersionReq>, String),
    /// The inner matcher does not hold.
    Not(Box<Matcher>),
    /// All inner matchers hold.
    And(Vec<Matcher>),
    /// At least one inner matcher holds.
    Or(Vec<Matcher>),
    /// An expectation that could not be read (why), kept from a Goss file: Goss reads such a
    /// file and reports the check as failed, so the check is an error rather than the file
    /// refused.
    Invalid(String),
}

thread_local! {
    static LENIENT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `read` with matchers that cannot be read kept as [`Matcher::Invalid`] instead of
/// failing it (for Goss files, as Goss reads them).
pub(crate) fn leniently<T>(read: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            LENIENT.with(|l| l.set(false));
        }
    }
    LENIENT.with(|l| l.set(true));
    let _reset = Reset;
    read()
}

impl Matcher {
    /// A matcher for equality with `v`.
    pub fn equal(v: impl Into<Value>) -> Self {
        Matcher::Equal(v.into())
    }

    /// Builds a matcher from a parsed YAML/JSON value, naming what is accepted when it is wrong.
    pub fn from_value(v: Value) -> Result<Self, String> {
        match v {
            Value::Array(items) => {
                let patterns = if items.iter().all(Value::is_string) {
                    let p = items.iter().filter_map(Value::as_str).map(Pattern::parse);
                    Some(p.collect::<Result<Vec<_>, _>>()?)
                } else {
                    None
                };
                let elements = items
                    .into_iter()
                    .map(Self::element)
                    .collect::<Result<_, _>>()?;
                Ok(Matcher::List(elements, patterns))
            }
            Value::Object(map) => {
                if map.len() != 1 {
                    let keys: Vec<_> = map.keys().map(String::as_str).collect();
                    return Err(format!(
                        "a matcher mapping has exactly one key, got [{}]; accepted: {}",
                        keys.join(", "),
                        KEYS.join(", ")
                    ));
                }
                let (k, v) = map.into_iter().next().expect("one entry");
                Self::from_key(&k, v)
            }
            Value::Null => Err("a matcher cannot be empty (null)".into()),
            scalar => Ok(Matcher::Equal(scalar)),
        }
    }

    fn from_key(k: &str, v: Value) -> Result<Self, String> {
        let list = |v: Value| -> Result<Vec<Matcher>, String> {
            match v {
                Value::Array(items) => items.into_iter().map(Self::element).collect(),
                other => Ok(vec![Self::element(other)?]),
            }
        };
        let text = |v: Value| -> Result<String, String> {
            match v {
                Value::String(s) => Ok(s),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("`{k}` takes a string, got {other}")),
            }
        };
        let number = |v: &Value| -> Result<f64, String> {
            as_f64(v).ok_or_else(|| format!("`{k}` takes a number, got {v}"))
        };
        Ok(match k {
            "equal" | "equals" => Matcher::Equal(v),
            "contains" | "contain-substring" => Matcher::Contains(Box::new(Self::element(v)?)),
            "contain-element" => Matcher::ContainElement(Box::new(Self::element(v)?)),
            "contains-all" | "contain-elements" => Matcher::ContainsAll(list(v)?),
            "have-key" | "gjson" | "xml" | "have-patterns" => {
                return Err(format!(
                    "the Goss matcher `{k}` is not supported; accepted: {}",
                    KEYS.join(", ")
                ))
            }
            "consist-of" => Matcher::ConsistOf(list(v)?),
            "regex" | "match-regexp" => Matcher::Regex(regex(&text(v)?)?),
            "have-prefix" => Matcher::HavePrefix(text(v)?),
            "have-suffix" => Matcher::HaveSuffix(text(v)?),
            "have-len" => Matcher::HaveLen(
                v.as_u64()
                    .ok_or_else(|| format!("`have-len` takes a non-negative integer, got {v}"))?
                    as usize,
            ),
            "lt" => Matcher::Compare(Cmp::Lt, number(&v)?),
            "le" => Matcher::Compare(Cmp::Le, number(&v)?),
            "gt" => Matcher::Compare(Cmp::Gt, number(&v)?),
            "ge" => Matcher::Compare(Cmp::Ge, number(&v)?),
            "semver" | "semver-constraint" => {
                let s = text(v)?;
                Matcher::Semver(semver_req(&s)?, s)
            }
            "not" => Matcher::Not(Box::new(Self::from_value(v)?)),
            "and" => Matcher::And(list_of_matchers(v)?),
            "or" => Matcher::Or(list_of_matchers(v)?),
            other => {
                return Err(format!(
                    "unknown matcher `{other}`; accepted: {}",
                    KEYS.join(", ")
                ))
            }
        })
    }

    /// An element of `contains`/`consist-of`: a scalar is equality, a mapping a matcher.
    fn element(v: Value) -> Result<Self, String> {
        match v {
            Value::Object(_) => Self::from_value(v),
            Value::Array(_) => Err(format!("a list element matcher cannot be a list, got {v}")),
            scalar => Ok(Matcher::Equal(scalar)),
        }
    }

    /// Whether `actual` satisfies this matcher.
    pub fn matches(&self, actual: &Value) -> bool {
        match self {
            Matcher::Equal(e) => values_equal(e, actual),
            Matcher::Contains(m) => match (actual, m.as_ref()) {
                (Value::Array(items), m) => items.iter().any(|a| m.matches(a)),
                (a, Matcher::Equal(e)) => text(a).contains(text(e).as_ref()),
                (a, m) => m.matches(a),
            },
            Matcher::ContainElement(m) => to_array(actual).iter().any(|a| m.matches(a)),
            Matcher::ContainsAll(ms) => {
                let items = to_array(actual);
                ms.iter().all(|m| items.iter().any(|a| m.matches(a)))
            }
            Matcher::List(ms, patterns) => match (actual, patterns) {
                (Value::String(text), Some(p)) => Pattern::all_hold(p, text),
                (Value::String(_), None) => false,
                (a, _) => {
                    let items = to_array(a);
                    ms.iter().all(|m| items.iter().any(|a| m.matches(a)))
                }
            },
            Matcher::ConsistOf(ms) => consist_of(ms, &to_array(actual)),
            Matcher::Regex(re) => match actual {
                Value::Array(items) => items.iter().any(|a| re.is_match(&text(a))),
                a => re.is_match(&text(a)),
            },
            Matcher::HavePrefix(p) => text(actual).starts_with(p.as_str()),
            Matcher::HaveSuffix(p) => text(actual).ends_with(p.as_str()),
            Matcher::HaveLen(n) => match actual {
                Value::Array(items) => items.len() == *n,
                a => text(a).chars().count() == *n,
            },
            Matcher::Compare(op, n) => match single(actual).and_then(as_f64) {
                Some(a) => match op {
                    Cmp::Lt => a < *n,
                    Cmp::Le => a <= *n,
                    Cmp::Gt => a > *n,
                    Cmp::Ge => a >= *n,
                },
                None => false,
            },
            Matcher::Semver(reqs, _) => {
                let versions: Vec<&Value> = match actual {
                    Value::Array(items) => items.iter().collect(),
                    a => vec![a],
                };
                !versions.is_empty()
                    && versions.iter().all(|v| {
                        lenient_version(&text(v))
                            .is_some_and(|v| reqs.iter().any(|r| r.matches(&v)))
                    })
            }
            Matcher::Not(m) => !m.matches(actual),
            Matcher::And(ms) => ms.iter().all(|m| m.matches(actual)),
            Matcher::Or(ms) => ms.iter().any(|m| m.matches(actual)),
            Matcher::Invalid(_) => false,
        }
    }
}

/// The keys a matcher may start with.
pub(crate) const KEYS: &[&str] = &[
    "equal",
    "contains",
    "contain-element",
    "contains-all",
    "consist-of",
    "regex",
    "have-prefix",
    "have-suffix",
    "have-len",
    "not",
    "and",
    "or",
    "lt",
    "le",
    "gt",
    "ge",
    "semver",
];

fn list_of_matchers(v: Value) -> Result<Vec<Matcher>, String> {
    match v {
        Value::Array(items) => items.into_iter().map(Matcher::from_value).collect(),
        other => Err(format!("`and`/`or` take a list of matchers, got {other}")),
    }
}

fn regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| {
        // The regex crate's message spans lines (the pattern, a caret, the error): keep the
        // last one, which says what is wrong.
        let why = e.to_string();
        let why = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        format!("invalid regular expression /{s}/: {why}")
    })
}

/// Parses a constraint: `||` separates alternatives, whitespace or commas separate comparators.
fn semver_req(s: &str) -> Result<Vec<semver::VersionReq>, String> {
    let spaced = Regex::new(r"([0-9xX*])\s+([<>=!~^0-9])").expect("static regex");
    s.split("||")
        .map(|alt| {
            let alt = spaced.replace_all(alt.trim(), "$1, $2");
            semver::VersionReq::parse(&alt)
                .map_err(|e| format!("invalid semantic-version constraint `{s}`: {e}"))
        })
        .collect()
}

/// Reads a version leniently: drops a Debian epoch (`1:`), keeps the leading `x.y.z` digits and
/// pads missing components with zeros (`9.2p1-2` reads as 9.2.0).
pub fn lenient_version(s: &str) -> Option<semver::Version> {
    let s = s.trim().trim_start_matches('v');
    let s = match s.split_once(':') {
        Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => rest,
        _ => s,
    };
    let mut parts = [0u64; 3];
    let mut n = 0;
    for piece in s.split('.') {
        let digits: String = piece.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() || n == 3 {
            break;
        }
        parts[n] = digits.parse().ok()?;
        n += 1;
        if digits.len() != piece.len() {
            break;
        }
    }
    (n > 0).then(|| semver::Version::new(parts[0], parts[1], parts[2]))
}

fn consist_of(ms: &[Matcher], items: &[Value]) -> bool {
    if ms.len() != items.len() {
        return false;
    }
    // Small lists: a greedy assignment with backtracking is enough.
    fn assign(ms: &[Matcher], items: &[Value], used: &mut Vec<bool>) -> bool {
        let Some((m, rest)) = ms.split_first() else {
            return true;
        };
        for (i, item) in items.iter().enumerate() {
            if !used[i] && m.matches(item) {
                used[i] = true;
                if assign(rest, items, used) {
                    return true;
                }
                used[i] = false;
            }
        }
        false
    }
    assign(ms, items, &mut vec![false; items.len()])
}

/// A value as a list: lists as they are, text split into lines (as Goss does), else one item.
fn to_array(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::String(s) => s.split('\n').map(Value::from).collect(),
        other => vec![other.clone()],
    }
}

/// One Goss line pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Option<Regex>,
    text: String,
    inverse: bool,
}

impl Pattern {
    /// Parses `text`, `/regex/`, `!text`, `!/regex/` or `\\!text`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (inverse, body) = match s.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('\\').unwrap_or(s)),
        };
        let regex = if body.len() >= 2 && body.starts_with('/') && body.ends_with('/') {
            Some(regex(&body[1..body.len() - 1])?)
        } else {
            None
        };
        Ok(Pattern {
            source: s.to_string(),
            regex,
            text: body.to_string(),
            inverse,
        })
    }

    fn hits(&self, line: &str) -> bool {
        match &self.regex {
            Some(re) => re.is_match(line),
            None => line.contains(&self.text),
        }
    }

    /// Goss's rule: a plain pattern holds when some line matches, an inverse one when none does;
    /// an empty pattern always holds.
    fn all_hold(patterns: &[Pattern], text: &str) -> bool {
        patterns.iter().all(|p| {
            if p.text.is_empty() {
                return true;
            }
            let hit = text.lines().any(|l| p.hits(l));
            hit != p.inverse
        })
    }
}

fn single(v: &Value) -> Option<&Value> {
    match v {
        Value::Array(items) if items.len() == 1 => items.first(),
        Value::Array(_) => None,
        v => Some(v),
    }
}

/// A value as text, the way it is compared and shown.
pub fn text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        Value::Null => Cow::Borrowed(""),
        Value::Array(items) => Cow::Owned(
            items
                .iter()
                .map(|i| text(i).into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Cow::Owned(other.to_string()),
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(_) | Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn values_equal(e: &Value, a: &Value) -> bool {
    match (e, a) {
        (Value::Array(es), Value::Array(items)) => {
            es.len() == items.len() && es.iter().zip(items).all(|(e, a)| values_equal(e, a))
        }
        (e, Value::Array(items)) if items.len() == 1 => values_equal(e, &items[0]),
        (Value::Bool(b), a) => as_bool(a) == Some(*b),
        (Value::Number(_), a) => as_f64(e) == as_f64(a) && as_f64(a).is_some(),
        (Value::String(s), a) => {
            let t = text(a);
            if s == t.as_ref() {
                return true;
            }
            let digits = |x: &str| !x.is_empty() && x.chars().all(|c| c.is_ascii_digit());
            digits(s) && digits(&t) && s.parse::<u128>().ok() == t.parse::<u128>().ok()
        }
        (e, a) => e == a,
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |ms: &[Matcher], sep: &str| {
            ms.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(sep)
        };
        match self {
            Matcher::Equal(v) => write!(f, "{}", show(v)),
            Matcher::Contains(m) => match m.as_ref() {
                Matcher::Equal(v) => write!(f, "contains {}", show(v)),
                m => write!(f, "contains an element that is {m}"),
            },
            Matcher::ContainElement(m) => write!(f, "has an element that is {m}"),
            Matcher::ContainsAll(ms) => write!(f, "has elements [{}]", join(ms, ", ")),
            Matcher::List(ms, patterns) => match patterns {
                Some(p) => {
                    let p: Vec<String> = p.iter().map(|p| format!("{:?}", p.source)).collect();
                    write!(f, "[{}]", p.join(", "))
                }
                None => write!(f, "[{}]", join(ms, ", ")),
            },
            Matcher::ConsistOf(ms) => write!(f, "exactly [{}] in any order", join(ms, ", ")),
            Matcher::Regex(r) => write!(f, "matches /{}/", r.as_str()),
            Matcher::HavePrefix(p) => write!(f, "starts with {p:?}"),
            Matcher::HaveSuffix(p) => write!(f, "ends with {p:?}"),
            Matcher::HaveLen(n) => write!(f, "has length {n}"),
            Matcher::Compare(op, n) => {
                let op = match op {
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                write!(f, "{op} {n}")
            }
            Matcher::Semver(_, s) => write!(f, "version {s}"),
            Matcher::Not(m) => write!(f, "not ({m})"),
            Matcher::And(ms) => write!(f, "({})", join(ms, " and ")),
            Matcher::Or(ms) => write!(f, "({})", join(ms, " or ")),
            Matcher::Invalid(why) => write!(
                f,
                "a valid matcher, but the file has one that is not ({why})"
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Read as YAML first, so a YAML tag is not an error: Goss's reader takes a scalar
        // under a tag it does not know as that scalar's text (`- !'text'` is the tag `!'text'`
        // on an empty scalar, so the empty text).
        let v = serde_yaml::Value::deserialize(d)?;
        match Matcher::from_value(untagged(v)) {
            // What Goss itself cannot use is kept; what Bakery lacks is still refused by name.
            Err(why) if LENIENT.with(|l| l.get()) && !why.contains("is not supported") => {
                Ok(Matcher::Invalid(why))
            }
            m => m.map_err(serde::de::Error::custom),
        }
    }
}

/// A YAML value as JSON, tags dropped: a tagged scalar is its text, as Goss reads it.
fn untagged(v: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, Some(f)) => {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
            _ => Value::Null,
        },
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(untagged).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match untagged(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, untagged(v))
                })
                .collect(),
        ),
        Y::Tagged(t) => match t.value {
            Y::Null => Value::String(String::new()),
            Y::Bool(b) => Value::String(b.to_string()),
            Y::Number(n) => Value::String(n.to_string()),
            other => untagged(other),
        },
    }
}

impl JsonSchema for Matcher {
    fn schema_name() -> Cow<'static, str> {
        "Matcher".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An expected value: a scalar (equality), a list (all of these \
                patterns: `/regex/`, `!negated`, substring), or a mapping with one of the keys \
                equal, contains, contains-all, consist-of, regex, have-prefix, have-suffix, \
                have-len, not, and, or, lt, le, gt, ge, semver.",
            "anyOf": [
                {"type": ["string", "number", "boolean"]},
                {"type": "array"},
                {"type": "object", "minProperties": 1, "maxProperties": 1}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(yaml: &str) -> Matcher {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn equality_is_lenient_about_numbers_and_modes() {
        assert!(m("200").matches(&json!("200")));
        assert!(m("'0644'").matches(&json!("644")));
        assert!(m("644").matches(&json!("0644")));
        assert!(!m("'0644'").matches(&json!("0640")));
        assert!(m("true").matches(&json!(true)));
        assert!(!m("true").matches(&json!("yes")));
        assert!(m("'1.10'").matches(&json!("1.10")));
        assert!(!m("'1.10'").matches(&json!("1.1")));
        assert!(m("'2.36-9'").matches(&json!(["2.36-9"])));
    }

    #[test]
    fn contains_regex_not_and_prefixes() {
        assert!(m("{contains: Baked}").matches(&json!("<h1>Baked by Bakery</h1>")));
        assert!(!m("{contains: Fried}").matches(&json!("Baked")));
        assert!(m("{contains: sudo}").matches(&json!(["adm", "sudo"])));
        assert!(m("{regex: '^OpenSSH_9\\.'}").matches(&json!("OpenSSH_9.2p1")));
        assert!(m("{not: {contains: error}}").matches(&json!("all good")));
        assert!(m("{have-prefix: /usr}").matches(&json!("/usr/bin")));
        assert!(m("{have-suffix: bin}").matches(&json!("/usr/bin")));
        assert!(m("{have-len: 2}").matches(&json!(["a", "b"])));
        assert!(m("{and: [{contains: a}, {contains: b}]}").matches(&json!("ab")));
        assert!(m("{or: [{contains: x}, {contains: b}]}").matches(&json!("ab")));
    }

    #[test]
    fn goss_pattern_lists_against_text_and_lists() {
        let pat = m(r#"["Linux", "/x86_64|aarch64/", "!Windows"]"#);
        assert!(pat.matches(&json!("Linux probe 6.1.0 x86_64 GNU/Linux")));
        assert!(!pat.matches(&json!("Linux probe 6.1.0 riscv64")));
        assert!(!pat.matches(&json!("Windows Linux x86_64")));
        assert!(m("[adm, sudo]").matches(&json!(["sudo", "adm", "users"])));
        assert!(!m("[adm, wheel]").matches(&json!(["sudo", "adm"])));
        assert!(m("{contains-all: [adm, sudo]}").matches(&json!(["sudo", "adm", "x"])));
        assert!(m("{consist-of: [adm, sudo]}").matches(&json!(["sudo", "adm"])));
        assert!(!m("{consist-of: [adm, sudo]}").matches(&json!(["sudo", "adm", "x"])));
        assert!(m("{consist-of: [{regex: '^a'}, sudo]}").matches(&json!(["sudo", "adm"])));
    }

    #[test]
    fn goss_patterns_work_line_by_line() {
        let text = json!("alpha\nbeta\ngamma\n");
        assert!(m("['/^beta$/', '!/^delta$/', eta]").matches(&text));
        assert!(!m("['/^bet$/']").matches(&text));
        assert!(!m("['!gam']").matches(&text));
        assert!(m(r#"["\\!x"]"#).matches(&json!("a !x b")));
        assert!(!m(r#"["\\!x"]"#).matches(&json!("a x b")));
        assert!(m("['']").matches(&json!("")));
        assert!(!m("[x]").matches(&json!("")));
        assert!(m("{contain-element: beta}").matches(&text));
        assert!(!m("{contain-element: bet}").matches(&text));
        assert!(m("{contain-element: {have-prefix: gam}}").matches(&text));
        assert!(m("[1, {gt: 5}]").matches(&json!([1, 7])));
    }

    #[test]
    fn yaml_tags_are_read_as_their_values() {
        // The tag `!'init=x'` on an empty scalar: the empty pattern, which every text has.
        let m: Matcher = serde_yaml::from_str("- root\n- !'init=x'\n").unwrap();
        assert!(m.matches(&Value::from("root=/dev/a")));
        assert!(!m.matches(&Value::from("init=x")));
        let m: Matcher = serde_yaml::from_str("!custom 0644").unwrap();
        assert!(m.matches(&Value::from("0644")));
    }

    #[test]
    fn unsupported_goss_matchers_are_named() {
        let err = serde_yaml::from_str::<Matcher>("{gjson: {a: b}}")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the Goss matcher `gjson` is not supported"),
            "{err}"
        );
    }

    #[test]
    fn numeric_comparisons() {
        assert!(m("{lt: 90}").matches(&json!("42")));
        assert!(m("{ge: 1024}").matches(&json!(1024)));
        assert!(!m("{gt: 5}").matches(&json!("five")));
        assert!(m("{not: {gt: 5}}").matches(&json!(3)));
    }

    #[test]
    fn semantic_versions() {
        assert_eq!(
            lenient_version("1:9.2p1-2+deb12u3"),
            Some(semver::Version::new(9, 2, 0))
        );
        assert_eq!(
            lenient_version("2.36-9+deb12u14"),
            Some(semver::Version::new(2, 36, 0))
        );
        assert_eq!(lenient_version("garbage"), None);
        assert!(m("{semver: '>=2.36'}").matches(&json!("2.36-9+deb12u14")));
        assert!(m("{semver-constraint: '>=1.2 <2'}").matches(&json!("1.5.0")));
        assert!(!m("{semver-constraint: '>=1.2 <2'}").matches(&json!("2.0.1")));
        assert!(m("{semver: '<1 || >=3'}").matches(&json!(["3.1"])));
        assert!(!m("{semver: '>=1'}").matches(&json!([])));
    }

    #[test]
    fn bad_matchers_say_what_is_accepted() {
        let err = serde_yaml::from_str::<Matcher>("{containz: x}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown matcher `containz`"), "{err}");
        assert!(err.contains("contains-all"), "{err}");
        let err = serde_yaml::from_str::<Matcher>("{regex: '('}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid regular expression"), "{err}");
        let err = serde_yaml::from_str::<Matcher>("{lt: 1, gt: 0}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one key"), "{err}");
    }

    #[test]
    fn descriptions_read_as_expectations() {
        assert_eq!(m("{contains: x}").to_string(), "contains \"x\"");
        assert_eq!(m("{not: {lt: 3}}").to_string(), "not (< 3)");
        assert_eq!(m("200").to_string(), "200");
    }
}
