//! The `{{variable}}` templates of image names and tags.

use std::collections::BTreeMap;

/// The variables a template may use.
pub const VARIABLES: &[&str] = &["git.sha", "git.short_sha", "timestamp", "run_id"];

/// Checks that `template` only uses known variables and closes every `{{`.
pub fn check(template: &str) -> Result<(), String> {
    let empty = BTreeMap::new();
    render_with(template, &empty, true).map(|_| ())
}

/// Replaces every `{{variable}}` in `template` with its value in `vars`.
pub fn render(template: &str, vars: &BTreeMap<&str, String>) -> Result<String, String> {
    render_with(template, vars, false)
}

fn render_with(
    template: &str,
    vars: &BTreeMap<&str, String>,
    names_only: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`{{{{` at byte {start} of `{template}` is never closed"))?;
        let name = after[..end].trim();
        if !VARIABLES.contains(&name) {
            return Err(format!(
                "unknown template variable `{name}`; known: {}",
                VARIABLES.join(", ")
            ));
        }
        if !names_only {
            let value = vars
                .get(name)
                .ok_or_else(|| format!("no value for `{{{{{name}}}}}` here"))?;
            out.push_str(value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_known_variables() {
        let vars = BTreeMap::from([("git.short_sha", "abc1234".to_string())]);
        assert_eq!(
            render("web-{{ git.short_sha }}", &vars).unwrap(),
            "web-abc1234"
        );
    }

    #[test]
    fn rejects_unknown_and_unclosed() {
        assert!(check("web-{{git.branch}}")
            .unwrap_err()
            .contains("git.branch"));
        assert!(check("web-{{timestamp")
            .unwrap_err()
            .contains("never closed"));
        assert!(check("plain").is_ok());
    }
}
