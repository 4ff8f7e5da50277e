//! Runs the action's entrypoint the way GitHub's runner runs a Docker container action: a
//! workspace, a home, file-command files (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`,
//! `GITHUB_STATE`), an event payload, `GITHUB_*` and `INPUT_*` variables, and the argument
//! `action.yml` passes (`action`). On the host the same layout lives in a temporary directory;
//! in the container it is mounted at the runner's paths (`/github/workspace`, ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the entrypoint runs.
#[derive(Debug, Clone)]
pub enum Where {
    /// The `bakery` binary built for the tests, with a cleared environment.
    Host,
    /// `podman run` of this image (built by scripts/container-test.sh).
    Container(String),
}

/// One step's world.
pub struct Job {
    pub root: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

/// What one run of the step left.
#[derive(Debug)]
pub struct Step {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// `$GITHUB_OUTPUT`, parsed.
    pub outputs: BTreeMap<String, String>,
    /// `$GITHUB_STEP_SUMMARY`.
    pub summary: String,
    /// `$GITHUB_STATE`, parsed.
    pub state: BTreeMap<String, String>,
}

impl Step {
    /// Output `name`; panics when the step did not set it.
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).unwrap_or_else(|| {
            panic!(
                "no output `{name}` in {:?}\nstderr:\n{}",
                self.outputs, self.stderr
            )
        })
    }

    /// Workflow commands of a kind (`error`, `warning`, `add-mask`) printed on stdout.
    pub fn commands(&self, kind: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| {
                l.starts_with(&format!("::{kind} ")) || l.starts_with(&format!("::{kind}::"))
            })
            .collect()
    }
}

impl Job {
    /// A fresh job with the variables every runner sets.
    pub fn new() -> Job {
        let root = tempfile::tempdir().unwrap();
        for d in ["workspace", "home", "file_commands", "workflow"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        for f in ["set_output", "step_summary", "save_state"] {
            std::fs::write(root.path().join("file_commands").join(f), "").unwrap();
        }
        std::fs::write(root.path().join("workflow/event.json"), "{}").unwrap();
        let vars = [
            ("CI", "true"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "octo-org/images"),
            ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
            ("GITHUB_REF", "refs/heads/main"),
            ("GITHUB_EVENT_NAME", "push"),
            ("GITHUB_RUN_ID", "987654321"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_API_URL", "http://127.0.0.1:9"),
            ("GITHUB_WORKFLOW", "images"),
            ("GITHUB_JOB", "bake"),
            ("RUNNER_OS", "Linux"),
            ("RUNNER_TEMP", "/tmp"),
        ];
        Job {
            root,
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The workspace on this machine.
    pub fn workspace(&self) -> PathBuf {
        self.root.path().join("workspace")
    }

    /// The data directory the action uses by default: `$HOME/.local/share/bakery`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("home/.local/share/bakery")
    }

    /// Sets a variable (replacing an earlier value).
    pub fn set(&mut self, name: &str, value: &str) -> &mut Job {
        self.vars.retain(|(k, _)| k != name);
        self.vars.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets input `name` as the runner does: `INPUT_` + the name upper-cased, hyphens kept.
    pub fn input(&mut self, name: &str, value: &str) -> &mut Job {
        self.set(
            &format!("INPUT_{}", name.replace(' ', "_").to_uppercase()),
            value,
        )
    }

    /// Writes the event payload.
    pub fn event(&mut self, payload: &serde_json::Value) -> &mut Job {
        std::fs::write(
            self.root.path().join("workflow/event.json"),
            payload.to_string(),
        )
        .unwrap();
        self
    }

    /// Runs the entrypoint once, after emptying the file-command files as the runner gives
    /// each step fresh ones.
    pub fn run(&self, place: &Where) -> Step {
        let out = self
            .command(place)
            .output()
            .expect("running the entrypoint");
        self.step(out)
    }

    /// What a finished run of [`Job::command`] left.
    pub fn step(&self, out: std::process::Output) -> Step {
        let files = self.root.path().join("file_commands");
        let read = |f: &str| std::fs::read_to_string(files.join(f)).unwrap();
        Step {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs: parse_file_command(&read("set_output")),
            summary: read("step_summary"),
            state: parse_file_command(&read("save_state")),
        }
    }

    /// The command that runs the entrypoint once (fresh file-command files), to spawn.
    pub fn command(&self, place: &Where) -> Command {
        let files = self.root.path().join("file_commands");
        for f in ["set_output", "step_summary", "save_state"] {
            std::fs::write(files.join(f), "").unwrap();
        }
        let (base, mut cmd) = match place {
            Where::Host => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_bakery"));
                cmd.env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .current_dir(self.workspace());
                (self.root.path().to_path_buf(), cmd)
            }
            Where::Container(_) => {
                let mut cmd = Command::new("podman");
                cmd.args(["--runtime", "runc", "run", "--rm", "--network", "none"])
                    .args([
                        "--ulimit",
                        "nofile=1024:1024",
                        "--ulimit",
                        "nproc=1024:1024",
                    ])
                    .args(["--workdir", "/github/workspace"]);
                for (dir, at) in [
                    ("workspace", "/github/workspace"),
                    ("home", "/github/home"),
                    ("file_commands", "/github/file_commands"),
                    ("workflow", "/github/workflow"),
                ] {
                    cmd.arg("--volume")
                        .arg(format!("{}:{at}", self.root.path().join(dir).display()));
                }
                (PathBuf::from("/github"), cmd)
            }
        };
        let p = |rel: &str| base.join(rel).display().to_string();
        let mut vars = self.vars.clone();
        vars.extend([
            ("HOME".to_string(), p("home")),
            ("GITHUB_WORKSPACE".to_string(), p("workspace")),
            ("GITHUB_OUTPUT".to_string(), p("file_commands/set_output")),
            (
                "GITHUB_STEP_SUMMARY".to_string(),
                p("file_commands/step_summary"),
            ),
            ("GITHUB_STATE".to_string(), p("file_commands/save_state")),
            ("GITHUB_EVENT_PATH".to_string(), p("workflow/event.json")),
        ]);
        match place {
            Where::Host => {
                cmd.envs(vars).arg("action");
            }
            Where::Container(image) => {
                for (k, v) in vars {
                    cmd.arg("--env").arg(format!("{k}={v}"));
                }
                // action.yml: `runs.args: [action]` after the image's ENTRYPOINT.
                cmd.arg(image).arg("action");
            }
        }
        cmd
    }
}

/// Parses a `$GITHUB_OUTPUT`-style file as the runner does: `name=value` lines and
/// `name<<DELIMITER` … `DELIMITER` blocks. Anything else fails the test.
pub fn parse_file_command(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            let mut closed = false;
            for l in lines.by_ref() {
                if l == delimiter {
                    closed = true;
                    break;
                }
                value.push(l);
            }
            assert!(
                closed,
                "the block of `{name}` is not closed by {delimiter}:\n{text}"
            );
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        } else {
            panic!("not a file command line: {line:?}\n{text}");
        }
    }
    out
}

/// Builds the action's container image with scripts/container-test.sh (once per test binary)
/// and returns its name. Fails the test when it cannot be built.
pub fn container_image() -> String {
    static IMAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = Command::new(repo.join("scripts/container-test.sh"))
                .arg("build")
                .current_dir(repo)
                .output()
                .expect("running scripts/container-test.sh build");
            assert!(
                out.status.success(),
                "scripts/container-test.sh build failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .expect("the script prints the image name")
                .trim()
                .to_string()
        })
        .clone()
}
