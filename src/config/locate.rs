//! Where a key path (`build.provisioners[1].shell.script`) is written in a YAML file, for
//! errors found after parsing: serde_yaml's values carry no positions, so the text is scanned.
//!
//! Block style is followed (mappings by indentation, lists by `- `); inside flow style
//! (`{a: 1}`, `[x, y]`) the position of the deepest key found is returned instead.

/// One step of a key path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A list index (0-based).
    Index(usize),
}

/// A content line: its number (1-based), the column its content starts at (0-based) and the
/// content.
#[derive(Debug, Clone, Copy)]
struct Line<'t> {
    number: usize,
    indent: usize,
    body: &'t str,
}

/// `(line, column)`, both 1-based, of the value at `path` in `text`, or of the deepest part of
/// the path that is found; `None` when not even the first key is.
pub fn position(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let mut lines: Vec<Line> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let body = l.trim_start_matches(' ');
            let indent = l.len() - body.len();
            let body = body.trim_end();
            (!body.is_empty() && !body.starts_with('#') && body != "---").then_some(Line {
                number: i + 1,
                indent,
                body,
            })
        })
        .collect();
    let mut found = None;
    for seg in path {
        let Some(first) = lines.first().copied() else {
            break;
        };
        let level = first.indent;
        match *seg {
            Seg::Key(key) => {
                let Some(at) = lines
                    .iter()
                    .position(|l| l.indent == level && key_of(l.body) == Some(key))
                else {
                    break;
                };
                let line = lines[at];
                found = Some((line.number, line.indent + 1));
                let mut block: Vec<Line> = Vec::new();
                let rest = line.body[key_len(line.body)..].trim_start();
                if !rest.is_empty() && !rest.starts_with('#') {
                    // `key: value` or `key: {flow}`: nothing below to follow.
                    lines = Vec::new();
                    continue;
                }
                for l in &lines[at + 1..] {
                    if l.indent > level || (l.indent == level && l.body.starts_with("- ")) {
                        block.push(*l);
                    } else {
                        break;
                    }
                }
                lines = block;
            }
            Seg::Index(n) => {
                if !first.body.starts_with('-') {
                    break;
                }
                let items: Vec<usize> = lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.indent == level && is_item(l.body))
                    .map(|(i, _)| i)
                    .collect();
                let Some(&at) = items.get(n) else { break };
                let end = items.get(n + 1).copied().unwrap_or(lines.len());
                let item = lines[at];
                found = Some((item.number, item.indent + 1));
                // The item's content: what follows `- ` is a line of its own, indented past it.
                let after = item.body[1..].trim_start_matches(' ');
                let mut block = Vec::new();
                if !after.is_empty() && !after.starts_with('#') {
                    block.push(Line {
                        number: item.number,
                        indent: item.indent + (item.body.len() - after.len()),
                        body: after,
                    });
                }
                block.extend(lines[at + 1..end].iter().copied());
                lines = block;
            }
        }
    }
    found
}

fn is_item(body: &str) -> bool {
    body == "-" || body.starts_with("- ")
}

/// The key of a `key: ...` line, unquoted.
fn key_of(body: &str) -> Option<&str> {
    let len = key_len(body);
    if len == 0 {
        return None;
    }
    let key = body[..len].trim_end_matches(':').trim_end();
    Some(
        key.strip_prefix('"')
            .and_then(|k| k.strip_suffix('"'))
            .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
            .unwrap_or(key),
    )
}

/// The length of `key:` at the start of `body` (0 when the line is no `key:` line).
fn key_len(body: &str) -> usize {
    if body.starts_with(['-', '{', '[', '?', '&', '*', '!', '|', '>']) {
        return 0;
    }
    let bytes = body.as_bytes();
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') if i == 0 => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b':') if i + 1 == bytes.len() || bytes[i + 1] == b' ' => return i + 1,
            _ => {}
        }
    }
    0
}

/// A key path written as in messages: `build.provisioners[1].shell.script`.
pub fn parse_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(n) = r[..end].parse() {
                out.push(Seg::Index(n));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = "\
# a pipeline
source:
  local: debian-12
build:
  instance: {cpus: 0}
  provisioners:
    - shell:
        inline: [a]
    - file:
        source: site/
        destination: /srv
verify:
  suites:
  - smoke.yml
  - goss: g.yaml
    vars: [v.yaml, w.yaml]
";

    fn at(path: &str) -> Option<(usize, usize)> {
        position(PIPELINE, &parse_path(path))
    }

    #[test]
    fn block_keys_and_items_are_found() {
        assert_eq!(at("source.local"), Some((3, 3)));
        assert_eq!(at("build.provisioners[1].file.source"), Some((10, 9)));
        assert_eq!(at("build.provisioners[0].shell"), Some((7, 7)));
        assert_eq!(at("verify.suites[0]"), Some((14, 3)));
        assert_eq!(at("verify.suites[1].vars"), Some((16, 5)));
    }

    #[test]
    fn flow_style_gives_the_deepest_key_found() {
        assert_eq!(at("build.instance.cpus"), Some((5, 3)));
        assert_eq!(at("verify.suites[1].vars[1]"), Some((16, 5)));
        assert_eq!(at("verify.suites[7]"), Some((13, 3)));
        assert_eq!(at("promote.keep"), None);
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("a.b[2].c"),
            vec![Seg::Key("a"), Seg::Key("b"), Seg::Index(2), Seg::Key("c")]
        );
    }
}
