//! GitHub Actions' side of the conversation: workflow commands on stdout (`::error`,
//! `::warning`, `::add-mask::`) and the environment files (`$GITHUB_OUTPUT`,
//! `$GITHUB_STEP_SUMMARY`).

use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// The severity of a workflow annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// An annotation shown on the workflow run (and on a pull request's changed files when it
/// names one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    pub title: Option<String>,
    /// A path relative to the repository root.
    pub file: Option<String>,
    pub line: Option<u32>,
    pub col: Option<u32>,
}

impl Annotation {
    /// An annotation with only a message.
    pub fn new(level: Level, message: impl Into<String>) -> Annotation {
        Annotation {
            level,
            message: message.into(),
            title: None,
            file: None,
            line: None,
            col: None,
        }
    }

    /// Sets the title.
    pub fn title(mut self, title: impl Into<String>) -> Annotation {
        self.title = Some(title.into());
        self
    }

    /// Sets the file and line (and column) the annotation points at.
    pub fn at(mut self, file: impl Into<String>, line: u32, col: Option<u32>) -> Annotation {
        self.file = Some(file.into());
        self.line = Some(line);
        self.col = col;
        self
    }

    /// The workflow command, e.g. `::error file=a.yml,line=3,title=T::message`.
    pub fn command(&self) -> String {
        let mut props = Vec::new();
        if let Some(f) = &self.file {
            props.push(format!("file={}", escape_property(f)));
        }
        if let Some(l) = self.line {
            props.push(format!("line={l}"));
        }
        if let Some(c) = self.col {
            props.push(format!("col={c}"));
        }
        if let Some(t) = &self.title {
            props.push(format!("title={}", escape_property(t)));
        }
        let props = if props.is_empty() {
            String::new()
        } else {
            format!(" {}", props.join(","))
        };
        format!(
            "::{}{props}::{}",
            self.level.command(),
            escape_data(&self.message)
        )
    }
}

/// Escapes a workflow command's message.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `::add-mask::` commands for `secret`: one per line, since the runner masks line by line.
pub fn mask_commands(secret: &str) -> Vec<String> {
    secret
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("::add-mask::{}", escape_data(l)))
        .collect()
}

/// Writes a workflow command to stdout, where the runner reads it.
pub fn emit(command: &str) {
    crate::out!("{command}");
    let _ = std::io::stdout().flush();
}

/// One `name<<DELIMITER … DELIMITER` block of `$GITHUB_OUTPUT`, with a delimiter that does not
/// occur in the value, so multi-line values cannot end the block early or inject outputs.
pub fn output_block(name: &str, value: &str) -> String {
    let delimiter = loop {
        let d = format!("ghadelimiter_{}", &crate::cloud::new_id("d")[2..]);
        if !value.contains(&d) {
            break d;
        }
    };
    format!("{name}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// Appends outputs to the `$GITHUB_OUTPUT` file.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> Result<()> {
    let text: String = outputs.iter().map(|(n, v)| output_block(n, v)).collect();
    append(path, &text)
}

/// Appends `text` to a file (the environment files are shared by every step of the job).
pub fn append(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .at("opening", path)?;
    file.write_all(text.as_bytes()).at("writing", path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_messages_and_properties() {
        let a = Annotation::new(Level::Error, "50% done\nnext: line")
            .title("a, b: c")
            .at("suites/web.yml", 12, Some(5));
        assert_eq!(
            a.command(),
            "::error file=suites/web.yml,line=12,col=5,title=a%2C b%3A c::50%25 done%0Anext: line"
        );
        assert_eq!(
            Annotation::new(Level::Warning, "plain").command(),
            "::warning::plain"
        );
    }

    #[test]
    fn masks_are_per_line() {
        assert_eq!(
            mask_commands("abc\n def \n\n"),
            vec!["::add-mask::abc", "::add-mask::def"]
        );
    }

    #[test]
    fn output_blocks_survive_values_with_newlines_and_delimiter_lookalikes() {
        let value = "line one\nimage-id<<EOF\nghadelimiter_x\nEOF";
        let block = output_block("summary", value);
        let first = block.lines().next().unwrap();
        let delimiter = first.strip_prefix("summary<<").unwrap();
        assert!(delimiter.starts_with("ghadelimiter_"));
        assert!(!value.contains(delimiter));
        assert_eq!(
            block,
            format!("summary<<{delimiter}\n{value}\n{delimiter}\n")
        );
    }
}
