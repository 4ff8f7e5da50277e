//! What a person watching a run sees: stage headers, spinners on long waits, prefixed output.
//! In GitHub Actions each stage is a collapsible `::group::`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// `eprintln!` that never panics: when stderr's reader has gone away (a closed pipe), the run
/// must still release its resources, so the write error is ignored.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics (`bakery images | head -1` closes stdout early).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// `text` with every line after the first quoted by `    | `, so that no line a guest printed
/// starts a line of Bakery's output (a GitHub runner reads a line starting with `::` as a
/// workflow command).
pub fn continued(text: &str) -> String {
    text.replace('\n', "\n    | ")
}

/// Prints an indented note line.
pub fn note(message: &str) {
    crate::say!("    {message}");
}

/// The variable that makes a run announce each stage it enters (see [`announce`]).
pub const ANNOUNCE_VAR: &str = "BAKERY_ANNOUNCE_STAGES";

/// With `BAKERY_ANNOUNCE_STAGES` set, prints `bakery-stage: <stage> <unix ms>` on stderr as a
/// run enters a stage (`builder-boot`, `provisioner-0`, `capture`, `probe-boot`, `suites`,
/// `fault`, `promote-copies`, ...), receives a signal (`signal-SIGINT`) and, after it, starts
/// releasing resources (`cleanup`, see [`crate::signals::releasing`]). Tests use it to interrupt a run at a given stage and to measure,
/// from the run's own clock, how soon after a signal its cleanup began.
pub fn announce(stage: &str) {
    announce_at(stage, std::time::SystemTime::now());
}

/// [`announce`] with the time the stage was entered, taken earlier.
pub fn announce_at(stage: &str, at: std::time::SystemTime) {
    if std::env::var_os(ANNOUNCE_VAR).is_some() {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        crate::say!("bakery-stage: {stage} {ms}");
    }
}

/// A stage of the pipeline; prints its header now and its duration when finished.
pub struct Stage {
    name: String,
    started: Instant,
}

impl Stage {
    /// Starts stage `name`.
    pub fn start(name: &str) -> Stage {
        if in_github_actions() {
            crate::say!("::group::{name}");
        } else {
            crate::say!("==> {name}");
        }
        Stage {
            name: name.to_string(),
            started: Instant::now(),
        }
    }

    /// Ends the stage and returns how long it took.
    pub fn finish(self) -> Duration {
        let took = self.started.elapsed();
        if in_github_actions() {
            crate::say!("::endgroup::");
        }
        crate::say!("    {} took {:.1}s", self.name, took.as_secs_f64());
        took
    }
}

/// A spinner for a wait of unknown length; a plain line when stderr is not a terminal.
pub struct Spinner {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Spinner {
    /// Starts a spinner showing `message`.
    pub fn start(message: &str) -> Spinner {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("    {spinner} {msg} {elapsed}")
                    .expect("a valid template"),
            );
            bar.set_message(message.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            crate::say!("    {message} ...");
        }
        Spinner {
            bar,
            started: Instant::now(),
        }
    }

    /// Prints a line above the spinner.
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => crate::say!("{line}"),
        }
    }

    /// Stops the spinner, leaving `done` and the time taken.
    pub fn finish(self, done: &str) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        crate::say!("    {done} ({:.1}s)", self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn continuation_lines_are_quoted() {
        assert_eq!(super::continued("one"), "one");
        assert_eq!(
            super::continued("got 1\n::set-output name=x::y"),
            "got 1\n    | ::set-output name=x::y"
        );
    }
}
