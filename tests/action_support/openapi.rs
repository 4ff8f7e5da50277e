//! GitHub's published REST description (the `@octokit/openapi` npm package, which
//! scripts/test.sh installs into `.cache/github-openapi`), and a validator for requests:
//! the path must be one GitHub serves, the method one it accepts there, path parameters of the
//! declared type, and the JSON body valid against the operation's request schema (types,
//! required fields, enums, lengths, `maxItems`, `anyOf`/`oneOf`/`allOf`, `$ref`s).

use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;

/// Where scripts/test.sh installs the package.
pub fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".cache/github-openapi/node_modules/@octokit/openapi/generated/api.github.com.json")
}

/// The REST description, with its routes compiled.
pub struct Spec {
    pub doc: Value,
    routes: Vec<Route>,
}

struct Route {
    template: String,
    regex: Regex,
    params: Vec<String>,
}

/// The operation a request matched.
#[derive(Debug, Clone)]
pub struct Matched {
    pub operation_id: String,
    pub template: String,
    pub params: Vec<(String, String)>,
}

impl Spec {
    /// Loads the description; panics (failing the test) when it is not installed.
    pub fn load() -> Spec {
        let path = spec_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\nGitHub's REST description is missing: run scripts/test.sh, which installs the npm package @octokit/openapi into .cache/github-openapi",
                path.display()
            )
        });
        let doc: Value = serde_json::from_str(&text).expect("the REST description is JSON");
        let mut routes: Vec<Route> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(|template| {
                let params: Vec<String> = Regex::new(r"\{([^}]+)\}")
                    .unwrap()
                    .captures_iter(template)
                    .map(|c| c[1].to_string())
                    .collect();
                let pattern = regex::escape(template);
                // A git reference at the end of a path keeps its slashes
                // (`/git/ref/tags/v1.2.3`); every other parameter is one segment.
                let pattern = pattern.replace(r"\{ref\}", "(.+)");
                let pattern = Regex::new(r"\\\{[^}]+\\\}")
                    .unwrap()
                    .replace_all(&pattern, "([^/]+)");
                Route {
                    template: template.clone(),
                    regex: Regex::new(&format!("^{pattern}$")).unwrap(),
                    params,
                }
            })
            .collect();
        // Literal segments win over parameters: /repos/{o}/{r}/check-runs before /repos/{o}/{r}/{x},
        // and /commits/{ref}/check-runs before /commits/{ref}, whose `ref` may hold slashes.
        routes.sort_by_key(|r| (r.params.len(), std::cmp::Reverse(r.template.len())));
        Spec { doc, routes }
    }

    /// The operation object of `template` and `method`.
    pub fn operation(&self, template: &str, method: &str) -> &Value {
        &self.doc["paths"][template][method.to_lowercase()]
    }

    /// Checks a request; returns the operation it is (when its method and path are GitHub's)
    /// and every problem found.
    pub fn check(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (Option<Matched>, Vec<String>) {
        match self.check_inner(method, path, body) {
            Ok(m) => (Some(m), Vec::new()),
            Err((m, problems)) => (m, problems),
        }
    }

    fn check_inner(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Matched, (Option<Matched>, Vec<String>)> {
        let path = path.split('?').next().unwrap_or(path);
        let Some((route, caps)) = self
            .routes
            .iter()
            .find_map(|r| r.regex.captures(path).map(|c| (r, c)))
        else {
            return Err((
                None,
                vec![format!(
                    "{method} {path}: no such path in GitHub's REST API"
                )],
            ));
        };
        let op = self.operation(&route.template, method);
        if op.is_null() {
            return Err((
                None,
                vec![format!(
                    "{method} {}: GitHub does not accept {method} here",
                    route.template
                )],
            ));
        }
        let params: Vec<(String, String)> = route
            .params
            .iter()
            .zip(caps.iter().skip(1))
            .map(|(n, v)| (n.clone(), v.map_or("", |m| m.as_str()).to_string()))
            .collect();
        let mut problems = Vec::new();
        let declared: Vec<Value> = self.doc["paths"][&route.template]["parameters"]
            .as_array()
            .into_iter()
            .chain(op["parameters"].as_array())
            .flatten()
            .map(|p| self.resolve(p).clone())
            .collect();
        for (name, value) in &params {
            let Some(p) = declared
                .iter()
                .find(|p| p["in"] == "path" && p["name"] == name.as_str())
            else {
                problems.push(format!("path parameter `{name}` is not declared"));
                continue;
            };
            if p["schema"]["type"] == "integer" && value.parse::<i64>().is_err() {
                problems.push(format!(
                    "path parameter `{name}`: `{value}` is not an integer"
                ));
            }
            if value.is_empty() {
                problems.push(format!("path parameter `{name}` is empty"));
            }
        }
        let request_body = self.resolve(&op["requestBody"]);
        match (body, request_body.is_null()) {
            (None, false) if request_body["required"] == true => {
                problems.push("the request needs a JSON body".to_string())
            }
            (Some(body), false) => {
                let schema = &request_body["content"]["application/json"]["schema"];
                self.validate(schema, body, "body", &mut problems);
            }
            _ => {}
        }
        let matched = Matched {
            operation_id: op["operationId"].as_str().unwrap_or("").to_string(),
            template: route.template.clone(),
            params,
        };
        if problems.is_empty() {
            Ok(matched)
        } else {
            Err((Some(matched), problems))
        }
    }

    /// Follows `$ref`s (`#/components/...`).
    pub fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut v = v;
        for _ in 0..32 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    v = self
                        .doc
                        .pointer(r.trim_start_matches('#'))
                        .unwrap_or_else(|| panic!("dangling $ref {r}"))
                }
                None => return v,
            }
        }
        panic!("a $ref cycle");
    }

    /// An example response body the description gives for `template`/`method`/`status`.
    pub fn example(&self, template: &str, method: &str, status: &str) -> Value {
        let content = &self.resolve(&self.operation(template, method)["responses"][status])
            ["content"]["application/json"];
        if let Some(examples) = content["examples"].as_object() {
            let first = examples.values().next().expect("an example");
            return self.resolve(first)["value"].clone();
        }
        content["example"].clone()
    }

    /// Validates `value` against `schema`, pushing every problem found with its location.
    pub fn validate(&self, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if schema.is_null() || schema == &Value::Bool(true) {
            return;
        }
        if value.is_null() && schema["nullable"] == true {
            return;
        }
        if let Some(all) = schema["allOf"].as_array() {
            for s in all {
                self.validate(s, value, at, problems);
            }
        }
        for (key, need_one) in [("anyOf", false), ("oneOf", true)] {
            if let Some(options) = schema[key].as_array() {
                let passing = options
                    .iter()
                    .filter(|s| {
                        let mut p = Vec::new();
                        self.validate(s, value, at, &mut p);
                        p.is_empty()
                    })
                    .count();
                if passing == 0 || (need_one && passing > 1) {
                    let mut why = Vec::new();
                    for s in options {
                        self.validate(s, value, at, &mut why);
                    }
                    problems.push(format!(
                        "{at}: matches {passing} of the {key} alternatives ({})",
                        why.join("; ")
                    ));
                }
            }
        }
        if let Some(t) = schema["type"].as_str() {
            let ok = match t {
                "object" => value.is_object(),
                "array" => value.is_array(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "null" => value.is_null(),
                _ => true,
            };
            if !ok {
                problems.push(format!("{at}: expected {t}, got {value}"));
                return;
            }
        }
        if let Some(types) = schema["type"].as_array() {
            let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            let ok = names.iter().any(|t| match *t {
                "null" => value.is_null(),
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "object" => value.is_object(),
                "array" => value.is_array(),
                _ => true,
            });
            if !ok {
                problems.push(format!("{at}: expected one of {names:?}, got {value}"));
                return;
            }
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                problems.push(format!(
                    "{at}: {value} is not one of {}",
                    Value::Array(allowed.clone())
                ));
            }
        }
        if let Some(s) = value.as_str() {
            let chars = s.chars().count() as u64;
            if let Some(max) = schema["maxLength"].as_u64() {
                if chars > max {
                    problems.push(format!(
                        "{at}: {chars} characters, more than maxLength {max}"
                    ));
                }
            }
            if let Some(min) = schema["minLength"].as_u64() {
                if chars < min {
                    problems.push(format!(
                        "{at}: {chars} characters, fewer than minLength {min}"
                    ));
                }
            }
            if schema["format"] == "date-time" && chrono::DateTime::parse_from_rfc3339(s).is_err() {
                problems.push(format!("{at}: `{s}` is not an RFC 3339 date-time"));
            }
        }
        if let Some(items) = value.as_array() {
            if let Some(max) = schema["maxItems"].as_u64() {
                if items.len() as u64 > max {
                    problems.push(format!(
                        "{at}: {} items, more than maxItems {max}",
                        items.len()
                    ));
                }
            }
            if let Some(min) = schema["minItems"].as_u64() {
                if (items.len() as u64) < min {
                    problems.push(format!(
                        "{at}: {} items, fewer than minItems {min}",
                        items.len()
                    ));
                }
            }
            if !schema["items"].is_null() {
                for (i, item) in items.iter().enumerate() {
                    self.validate(&schema["items"], item, &format!("{at}[{i}]"), problems);
                }
            }
        }
        if let Some(object) = value.as_object() {
            for req in schema["required"].as_array().into_iter().flatten() {
                let name = req.as_str().unwrap_or("");
                if !object.contains_key(name) {
                    problems.push(format!("{at}: the required field `{name}` is missing"));
                }
            }
            let properties = schema["properties"].as_object();
            for (k, v) in object {
                match properties.and_then(|p| p.get(k)) {
                    Some(s) => self.validate(s, v, &format!("{at}.{k}"), problems),
                    // Stricter than GitHub, which ignores unknown fields: a field the
                    // description does not declare is a typo or a misunderstanding.
                    None => match &schema["additionalProperties"] {
                        Value::Bool(true) => {}
                        s @ Value::Object(_) => self.validate(s, v, &format!("{at}.{k}"), problems),
                        _ if properties.is_some() => problems.push(format!(
                            "{at}: the field `{k}` is not in GitHub's description"
                        )),
                        _ => {}
                    },
                }
            }
        }
    }
}
