//! The `ansible` provisioner: `ansible-playbook` on this machine against the builder over SSH.
//!
//! The run's login key never touches the disk: it goes from memory into a per-run `ssh-agent`
//! (on the run's ledger with everything else Ansible starts, so it dies on success, error,
//! Ctrl-C, SIGTERM, or by `bakery cleanup`). Host key checking stays on: the `known_hosts`
//! written for the run holds exactly the host key the builder proved it holds to Bakery.
//!
//! Failures are read from the output of Ansible's `default` stdout callback as it streams
//! (`TASK [name]` headers, `fatal: [host]: FAILED! => {json}` lines, `...ignoring`, `ERROR!`):
//! the user sees the play live, and the error names the task that stopped it, its host and
//! its message. A JSON callback would name the task as well, but prints nothing until the
//! play ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cloud::Instance;
use crate::config::{AnsibleStep, LoadedPipeline, Provisioner};
use crate::error::{Error, IoContext, Result};
use crate::ledger::{Ledger, Resource, Token};
use crate::progress;
use crate::run::Run;
use crate::transport::{shell_quote, SshEndpoint, Transport};

/// The builder's name in the inventory.
pub const HOST: &str = "builder";

/// How to install `ansible-playbook`, for the error that says it is missing.
pub const INSTALL_ANSIBLE: &str = "install it on this machine: `python3 -m pip install --user ansible-core` (or `pipx install ansible-core`, or `apt-get install ansible-core`), or run `scripts/ansible.sh install` in a Bakery checkout and put `.cache/ansible-venv/bin` on PATH";

/// Words that would turn host key checking off or hand Ansible a key file.
const FORBIDDEN: &[(&str, &str)] = &[
    ("stricthostkeychecking", "host key checking stays on: Bakery trusts exactly the host key the builder proved it holds"),
    ("userknownhostsfile", "host key checking stays on: Bakery writes the known_hosts file with the builder's verified host key"),
    ("host_key_checking", "host key checking stays on: Bakery trusts exactly the host key the builder proved it holds"),
    ("private_key_file", "the run's key is held in an ssh-agent, never in a file"),
];

/// `ansible-playbook` arguments Bakery owns, and what to write instead.
const OWNED_ARGUMENTS: &[(&str, &str)] = &[
    (
        "-i",
        "Bakery writes the inventory (the host `builder`); put the builder in groups with `groups`",
    ),
    (
        "--inventory",
        "Bakery writes the inventory (the host `builder`); put the builder in groups with `groups`",
    ),
    (
        "--inventory-file",
        "Bakery writes the inventory (the host `builder`); put the builder in groups with `groups`",
    ),
    (
        "--private-key",
        "the run's key is held in an ssh-agent, never in a file",
    ),
    (
        "--key-file",
        "the run's key is held in an ssh-agent, never in a file",
    ),
    ("-u", "use the step's `user`"),
    ("--user", "use the step's `user`"),
    (
        "-k",
        "nobody can answer a password prompt during a bake; the run's key logs in",
    ),
    (
        "--ask-pass",
        "nobody can answer a password prompt during a bake; the run's key logs in",
    ),
    (
        "-K",
        "nobody can answer a password prompt during a bake; the builder's sudo needs no password",
    ),
    (
        "--ask-become-pass",
        "nobody can answer a password prompt during a bake; the builder's sudo needs no password",
    ),
];

/// Environment variables Bakery sets for `ansible-playbook` itself.
const OWNED_ENVIRONMENT: &[(&str, &str)] = &[
    ("ANSIBLE_HOST_KEY_CHECKING", "host key checking stays on"),
    ("ANSIBLE_PRIVATE_KEY_FILE", "the run's key is held in an ssh-agent, never in a file"),
    ("SSH_AUTH_SOCK", "Ansible uses the run's own ssh-agent"),
    ("ANSIBLE_INVENTORY", "Bakery writes the inventory; put the builder in groups with `groups`"),
    ("ANSIBLE_SSH_ARGS", "Bakery sets the SSH options that check the host key; add yours with `extra_arguments: [--ssh-extra-args, \"...\"]`"),
    ("ANSIBLE_REMOTE_USER", "use the step's `user`"),
];

/// Inventory variables Bakery sets for the builder.
const OWNED_VARIABLES: &[&str] = &[
    "ansible_host",
    "ansible_port",
    "ansible_user",
    "ansible_ssh_host",
    "ansible_ssh_port",
    "ansible_ssh_user",
    "ansible_connection",
    "ansible_ssh_pass",
    "ansible_password",
];

/// What is wrong with an `ansible` step, as (key below the step, message); the pipeline's
/// validation locates them.
pub fn problems(step: &AnsibleStep, loaded: &LoadedPipeline) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let playbook = loaded.resolve(&step.playbook);
    if !playbook.is_file() {
        out.push((
            ".playbook".into(),
            format!(
                "{} is not a file; give a playbook relative to the pipeline file",
                playbook.display()
            ),
        ));
    }
    if let Some(r) = &step.requirements {
        let path = loaded.resolve(r);
        if !path.is_file() {
            out.push((
                ".requirements".into(),
                format!(
                    "{} is not a file; give a requirements file (`roles:` and `collections:`) relative to the pipeline file",
                    path.display()
                ),
            ));
        }
    }
    let group = regex::Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("a valid regex");
    for (j, g) in step.groups.iter().enumerate() {
        if !group.is_match(g) {
            out.push((
                format!(".groups[{j}]"),
                format!("`{g}` is not a group name Ansible accepts; use letters, digits and `_`, not starting with a digit (`web_servers`)"),
            ));
        } else if g == "all" || g == "ungrouped" {
            out.push((
                format!(".groups[{j}]"),
                format!("`{g}` is Ansible's own group, which the builder is in already; remove it"),
            ));
        }
    }
    if let Some(user) = &step.user {
        if user.trim().is_empty() || user.contains(|c: char| c.is_whitespace() || c == '\'') {
            out.push((
                ".user".into(),
                format!("`{user}` is not a user name; give the account Ansible logs in as, or leave `user` out for `build.instance.ssh_user`"),
            ));
        }
    }
    if step.become_user.is_some() && !step.r#become {
        out.push((
            ".become_user".into(),
            "is set but `become` is not; add `become: true`, or remove `become_user`".into(),
        ));
    }
    for (j, arg) in step.extra_arguments.iter().enumerate() {
        let name = arg.split('=').next().unwrap_or("");
        if let Some((_, why)) = OWNED_ARGUMENTS.iter().find(|(a, _)| *a == name) {
            out.push((
                format!(".extra_arguments[{j}]"),
                format!("`{arg}` is not allowed: {why}"),
            ));
        } else if let Some(why) = forbidden(arg) {
            out.push((
                format!(".extra_arguments[{j}]"),
                format!("`{arg}` is not allowed: {why}"),
            ));
        }
    }
    for (k, v) in &step.environment {
        if let Some((_, why)) = OWNED_ENVIRONMENT
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(k))
        {
            out.push((
                format!(".environment.{k}"),
                format!("Bakery sets `{k}` itself: {why}"),
            ));
        } else if let Some(why) = forbidden(&format!("{k}={v}")) {
            out.push((format!(".environment.{k}"), format!("not allowed: {why}")));
        }
    }
    for (k, v) in &step.extra_vars {
        if OWNED_VARIABLES.contains(&k.as_str()) {
            out.push((
                format!(".extra_vars.{k}"),
                format!("Bakery sets `{k}` to reach the builder; remove it (the login user is the step's `user`)"),
            ));
        } else if let Some(why) = forbidden(&format!("{k}={v}")) {
            out.push((format!(".extra_vars.{k}"), format!("not allowed: {why}")));
        }
    }
    out
}

fn forbidden(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    FORBIDDEN
        .iter()
        .find(|(word, _)| lower.contains(word))
        .map(|(_, why)| *why)
}

/// The first executable file called `name` on PATH.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Checks that `ansible-playbook` (and `ansible-galaxy` where a step has requirements) and
/// the OpenSSH client tools are installed; `first` is the first `ansible` step's index.
pub fn preflight(loaded: &LoadedPipeline, first: usize) -> Result<()> {
    let key = format!("build.provisioners[{first}].ansible");
    let at = crate::config::at(
        &loaded.path,
        &std::fs::read_to_string(&loaded.path).unwrap_or_default(),
        &key,
        "",
    );
    let at = at.trim_end_matches(": ");
    if find_program("ansible-playbook").is_none() {
        return Err(Error::Config(format!(
            "{at}: `ansible-playbook` is not on PATH; {INSTALL_ANSIBLE}"
        )));
    }
    let galaxy = loaded
        .pipeline
        .build
        .provisioners
        .iter()
        .any(|s| matches!(s, Provisioner::Ansible(a) if a.requirements.is_some()));
    if galaxy && galaxy_program().is_none() {
        return Err(Error::Config(format!(
            "{at}: `ansible-galaxy`, which installs the step's `requirements`, is neither beside `ansible-playbook` nor on PATH; it comes with ansible-core: {INSTALL_ANSIBLE}"
        )));
    }
    for tool in ["ssh", "ssh-agent", "ssh-add"] {
        if find_program(tool).is_none() {
            return Err(Error::Config(format!(
                "{at}: `{tool}` is not on PATH; Ansible logs in with the OpenSSH client: install it (`apt-get install openssh-client`, `dnf install openssh-clients`)"
            )));
        }
    }
    Ok(())
}

/// `ansible-galaxy` beside the `ansible-playbook` in use, else on PATH.
fn galaxy_program() -> Option<PathBuf> {
    find_program("ansible-playbook")
        .and_then(|p| p.parent().map(|d| d.join("ansible-galaxy")))
        .filter(|p| p.is_file())
        .or_else(|| find_program("ansible-galaxy"))
}

/// The run's ssh-agent and the private directory beside it (inventory, known_hosts, the
/// agent's socket, SSH control sockets). Both are on the run's ledger.
pub struct Agent {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Child,
    processes: Token,
    files: Token,
}

impl Agent {
    /// Starts the agent and adds the run's key to it, from memory.
    pub fn start(run: &Run) -> Result<Agent> {
        let dir = private_dir_base().join(format!("bakery-ansible-{}", run.id));
        let files = run.ledger.record(
            Resource::Path { path: dir.clone() },
            "the ansible provisioner's files (inventory, known_hosts, agent socket)",
        )?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .at("creating", &dir)?;
        let socket = dir.join("agent.sock");
        // Everything started for Ansible names this directory on its command line: the agent
        // (its socket), ansible-playbook (its inventory) and SSH (its control sockets).
        let marker = dir.display().to_string();
        let processes = run.ledger.record(
            Resource::Process {
                pid: 0,
                marker: marker.clone(),
            },
            "ssh-agent holding the run's key, and the ansible provisioner's processes",
        )?;
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                Error::Config(format!(
                    "starting `ssh-agent`: {e}; install the OpenSSH client (`apt-get install openssh-client`)"
                ))
            })?;
        run.ledger.update(
            processes,
            Resource::Process {
                pid: child.id(),
                marker,
            },
        )?;
        let mut agent = Agent {
            dir,
            socket,
            child,
            processes,
            files,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = agent.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return Err(Error::Infra(format!(
                    "ssh-agent exited ({status}) before it opened {}: {}",
                    agent.socket.display(),
                    err.trim()
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::Infra(format!(
                    "ssh-agent did not open {} within 10s",
                    agent.socket.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        agent.add_key(&run.key.private_openssh())?;
        tracing::debug!(socket = %agent.socket.display(), pid = agent.child.id(), "ssh-agent started");
        // Ensure its exit is noticed by `stop` even when it is killed by the ledger.
        agent.child.stderr.take();
        Ok(agent)
    }

    /// `ssh-add -` with the key on standard input.
    fn add_key(&self, private: &str) -> Result<()> {
        let mut add = Command::new("ssh-add")
            .args(["-q", "-"])
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Config(format!("starting `ssh-add`: {e}; install the OpenSSH client (`apt-get install openssh-client`)")))?;
        if let Some(mut stdin) = add.stdin.take() {
            stdin
                .write_all(private.as_bytes())
                .map_err(|e| Error::Infra(format!("handing the run's key to ssh-add: {e}")))?;
        }
        let out = add
            .wait_with_output()
            .map_err(|e| Error::Infra(format!("ssh-add: {e}")))?;
        if !out.status.success() {
            return Err(Error::Infra(format!(
                "ssh-add could not add the run's key to the agent ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Stops the agent and whatever Ansible left running, and removes the directory.
    pub fn stop(mut self, ledger: &Ledger) -> Result<()> {
        let stopped = ledger.release(self.processes, None);
        let _ = self.child.kill();
        let _ = self.child.wait();
        stopped?;
        ledger.release(self.files, None)
    }
}

/// Where the agent's directory goes: the temporary directory, unless its path is so long that
/// the sockets in it (SSH's control sockets: `cp/` and 40 hex digits) would pass the 108
/// bytes a Unix socket's path may have; `/tmp` then.
fn private_dir_base() -> PathBuf {
    let tmp = std::env::temp_dir();
    // bakery-ansible-run-YYYYMMDDTHHMMSS-xxxxxx/cp/<40 hex>
    if tmp.as_os_str().len() + 1 + 41 + 4 + 40 < 104 {
        tmp
    } else {
        PathBuf::from("/tmp")
    }
}

/// Everything one `ansible-playbook` run needs, decided before it starts.
pub struct Plan<'a> {
    pub step: &'a AnsibleStep,
    pub index: usize,
    /// The playbook, resolved against the pipeline file.
    pub playbook: PathBuf,
    /// This step's directory inside the agent's.
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// Where Ansible logs in, as whom, and the host key to expect.
    pub endpoint: SshEndpoint,
    pub instance_id: String,
    pub run_id: String,
    /// Where `requirements` were installed: (roles, collections).
    pub installed: Option<(PathBuf, PathBuf)>,
}

/// An `ansible-playbook` command line with its environment and the files it reads.
#[derive(Debug)]
pub struct Invocation {
    pub args: Vec<String>,
    /// Set for the process, in order (later ones win).
    pub env: Vec<(String, String)>,
    /// Removed from the inherited environment.
    pub remove_env: Vec<&'static str>,
    /// Written before the run: path → contents.
    pub files: Vec<(PathBuf, String)>,
}

/// Builds the command line, environment and files of one step.
pub fn invocation(plan: &Plan) -> Invocation {
    let step = plan.step;
    let known_hosts = plan.dir.join("known_hosts");
    let inventory = plan.dir.join("inventory.json");
    let vars_file = plan.dir.join("extra-vars.json");
    // Beside the agent's socket, not in the step's directory: a socket's path is short.
    let control = plan.socket.with_file_name("cp");

    let mut host = serde_json::Map::new();
    host.insert("ansible_connection".into(), "ssh".into());
    host.insert("ansible_host".into(), plan.endpoint.host.clone().into());
    host.insert("ansible_port".into(), plan.endpoint.port.into());
    host.insert("ansible_user".into(), plan.endpoint.user.clone().into());
    let mut children = serde_json::Map::new();
    for g in &step.groups {
        children.insert(
            g.clone(),
            serde_json::json!({"hosts": {HOST: serde_json::Value::Null}}),
        );
    }
    let inventory_doc = serde_json::json!({
        "all": {"hosts": {HOST: host}, "children": children}
    });

    let mut vars = serde_json::Map::new();
    vars.insert("bakery_run_id".into(), plan.run_id.clone().into());
    vars.insert("bakery_instance_id".into(), plan.instance_id.clone().into());
    for (k, v) in &step.extra_vars {
        vars.insert(k.clone(), v.clone());
    }

    let mut args = vec![
        "-i".to_string(),
        inventory.display().to_string(),
        "--extra-vars".to_string(),
        format!("@{}", vars_file.display()),
    ];
    if step.r#become {
        args.push("--become".into());
        if let Some(u) = &step.become_user {
            args.push("--become-user".into());
            args.push(u.clone());
        }
    }
    args.extend(step.extra_arguments.iter().cloned());
    args.push(plan.playbook.display().to_string());

    let ssh_args = [
        "-o ControlMaster=auto".to_string(),
        "-o ControlPersist=60s".to_string(),
        "-o StrictHostKeyChecking=yes".to_string(),
        format!(
            "-o UserKnownHostsFile={}",
            shell_quote(&known_hosts.display().to_string())
        ),
        "-o GlobalKnownHostsFile=/dev/null".to_string(),
        format!(
            "-o IdentityAgent={}",
            shell_quote(&plan.socket.display().to_string())
        ),
        "-o IdentityFile=none".to_string(),
        "-o PasswordAuthentication=no".to_string(),
        "-o KbdInteractiveAuthentication=no".to_string(),
        "-o ServerAliveInterval=15".to_string(),
    ]
    .join(" ");

    // Defaults the step's `environment` may change.
    let mut env: Vec<(String, String)> = [
        ("ANSIBLE_NOCOLOR", "1"),
        ("ANSIBLE_FORCE_COLOR", "0"),
        ("PYTHONUNBUFFERED", "1"),
        ("ANSIBLE_STDOUT_CALLBACK", "default"),
        ("ANSIBLE_RETRY_FILES_ENABLED", "False"),
        ("ANSIBLE_PIPELINING", "True"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some((roles, collections)) = &plan.installed {
        env.push(("ANSIBLE_ROLES_PATH".into(), roles.display().to_string()));
        env.push((
            "ANSIBLE_COLLECTIONS_PATH".into(),
            collections.display().to_string(),
        ));
    }
    for (k, v) in &step.environment {
        let value = match (k.as_str(), &plan.installed) {
            // The step's own paths come after the installed requirements.
            ("ANSIBLE_ROLES_PATH", Some((roles, _))) => format!("{}:{v}", roles.display()),
            ("ANSIBLE_COLLECTIONS_PATH", Some((_, c))) => format!("{}:{v}", c.display()),
            _ => v.clone(),
        };
        env.push((k.clone(), value));
    }
    // What keeps the key off the disk and host key checking on, last so nothing overrides it.
    env.extend([
        ("ANSIBLE_HOST_KEY_CHECKING".to_string(), "True".to_string()),
        ("ANSIBLE_SSH_ARGS".to_string(), ssh_args),
        (
            "ANSIBLE_SSH_CONTROL_PATH_DIR".to_string(),
            control.display().to_string(),
        ),
        (
            "SSH_AUTH_SOCK".to_string(),
            plan.socket.display().to_string(),
        ),
    ]);

    Invocation {
        args,
        env,
        remove_env: vec![
            "ANSIBLE_PRIVATE_KEY_FILE",
            "ANSIBLE_INVENTORY",
            "ANSIBLE_REMOTE_USER",
            "ANSIBLE_SSH_COMMON_ARGS",
            "ANSIBLE_SSH_EXTRA_ARGS",
        ],
        files: vec![
            (known_hosts, plan.endpoint.known_hosts_line()),
            (
                inventory,
                serde_json::to_string_pretty(&inventory_doc).expect("JSON serializes"),
            ),
            (
                vars_file,
                serde_json::to_string_pretty(&vars).expect("JSON serializes"),
            ),
        ],
    }
}

/// Runs one `ansible` step against the builder reached through `transport`.
pub fn run_step(
    run: &Run,
    builder: &Instance,
    transport: &dyn Transport,
    agent: &Agent,
    index: usize,
    step: &AnsibleStep,
) -> Result<()> {
    let label = format!("ansible: {}", step.playbook.display());
    progress::note(&format!("[{index}] {label}"));
    let what = format!("build.provisioners[{index}] ({label})");
    let mut endpoint = transport.ssh_endpoint().ok_or_else(|| {
        Error::Config(format!(
            "{what}: Ansible reaches the builder over SSH, and this builder is reached through {}; use `aws.transport: ssh`",
            transport.endpoint()
        ))
    })?;
    let program = find_program("ansible-playbook").ok_or_else(|| {
        Error::Config(format!(
            "{what}: `ansible-playbook` is not on PATH; {INSTALL_ANSIBLE}"
        ))
    })?;
    if let Some(user) = &step.user {
        if *user != endpoint.user {
            authorize(transport, &endpoint.user, user, &run.key.public_openssh())
                .map_err(|e| Error::Build(format!("{what}: `user: {user}`: {e}")))?;
            endpoint.user = user.clone();
        }
    }
    let dir = agent.dir.join(format!("step-{index}"));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .at("creating", &dir)?;
    let installed = match &step.requirements {
        Some(r) => Some(install_requirements(&run.loaded.resolve(r), &dir, &what)?),
        None => None,
    };
    let plan = Plan {
        step,
        index,
        playbook: run.loaded.resolve(&step.playbook),
        dir,
        socket: agent.socket.clone(),
        endpoint,
        instance_id: builder.id.clone(),
        run_id: run.id.clone(),
        installed,
    };
    let inv = invocation(&plan);
    for (path, contents) in &inv.files {
        std::fs::write(path, contents).at("writing", path)?;
    }
    let mut cmd = Command::new(&program);
    cmd.args(&inv.args).current_dir(&run.loaded.dir);
    for k in &inv.remove_env {
        cmd.env_remove(k);
    }
    cmd.envs(inv.env.iter().map(|(k, v)| (k, v)));
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let status = stream(cmd, step.timeout.0, &what, &mut |line| outcome.line(line))?;
    run.timings
        .record(&format!("ansible [{index}]"), started.elapsed());
    if status == 0 {
        return Ok(());
    }
    Err(Error::Build(outcome.describe(
        &what,
        status,
        &builder.id,
        started.elapsed(),
    )))
}

/// Authorises the run's key for `user` on the builder, reached as `login` (passwordless sudo
/// when that is not root). The key is removed with the rest when the bake ends.
fn authorize(transport: &dyn Transport, login: &str, user: &str, public: &str) -> Result<()> {
    let script = format!(
        "set -e; u={u}; home=$(getent passwd \"$u\" | cut -d: -f6); \
         if [ -z \"$home\" ]; then echo \"there is no user $u on the builder\" >&2; exit 3; fi; \
         install -d -m 700 -o \"$u\" -g \"$(id -gn \"$u\")\" \"$home/.ssh\"; \
         printf '%s\\n' {k} >> \"$home/.ssh/authorized_keys\"; \
         chown \"$u\" \"$home/.ssh/authorized_keys\"; chmod 600 \"$home/.ssh/authorized_keys\"",
        u = shell_quote(user),
        k = shell_quote(public)
    );
    let command = if login == "root" {
        script
    } else {
        format!("sudo -n sh -c {}", shell_quote(&script))
    };
    let out = transport.run(&command, Duration::from_secs(60))?;
    if out.exit_code != 0 {
        return Err(Error::Build(format!(
            "authorising the run's key for it failed: {}",
            out.stderr.trim()
        )));
    }
    Ok(())
}

/// The shell command that removes the run's key from every account's `authorized_keys`
/// (run as root before the image is captured).
pub fn revoke_command(public: &str) -> String {
    let blob = public.split_whitespace().nth(1).unwrap_or("");
    format!(
        "for f in $(getent passwd | cut -d: -f6 | sort -u); do f=\"$f/.ssh/authorized_keys\"; \
         if [ -f \"$f\" ] && grep -qF {b} \"$f\"; then grep -vF {b} \"$f\" > \"$f.bakery\" || true; \
         cat \"$f.bakery\" > \"$f\"; rm -f \"$f.bakery\"; fi; done",
        b = shell_quote(blob)
    )
}

/// Installs a requirements file's roles and collections into `dir` with `ansible-galaxy`.
fn install_requirements(file: &Path, dir: &Path, what: &str) -> Result<(PathBuf, PathBuf)> {
    let galaxy = galaxy_program().ok_or_else(|| {
        Error::Config(format!(
            "{what}: `ansible-galaxy` is not on PATH; {INSTALL_ANSIBLE}"
        ))
    })?;
    let text = std::fs::read_to_string(file).at("reading", file)?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "{}: {e}; a requirements file is a list of roles, or a mapping with `roles` and `collections`",
            file.display()
        ))
    })?;
    let (roles, collections) = match &doc {
        serde_yaml::Value::Sequence(_) => (true, false),
        serde_yaml::Value::Mapping(m) => (m.contains_key("roles"), m.contains_key("collections")),
        _ => (false, false),
    };
    if !roles && !collections {
        return Err(Error::Config(format!(
            "{}: names no roles and no collections; a requirements file is a list of roles, or a mapping with `roles` and `collections`",
            file.display()
        )));
    }
    let roles_dir = dir.join("roles");
    let collections_dir = dir.join("collections");
    let cwd = file.parent().unwrap_or(Path::new("."));
    for (kind, wanted, target) in [
        ("role", roles, &roles_dir),
        ("collection", collections, &collections_dir),
    ] {
        if !wanted {
            continue;
        }
        progress::note(&format!(
            "      installing the {kind}s of {} with ansible-galaxy",
            file.display()
        ));
        let mut cmd = Command::new(&galaxy);
        cmd.arg(kind)
            .arg("install")
            .arg("-r")
            .arg(file)
            .arg("-p")
            .arg(target)
            .current_dir(cwd)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("PYTHONUNBUFFERED", "1");
        let status = stream(cmd, Duration::from_secs(600), what, &mut |_| {})?;
        if status != 0 {
            return Err(Error::Build(format!(
                "{what}: installing the {kind}s of {} with ansible-galaxy failed (exit {status}); its output is above",
                file.display()
            )));
        }
    }
    Ok((roles_dir, collections_dir))
}

/// Runs `cmd`, printing its output with the provisioners' prefix and handing every line to
/// `on_line`; returns its exit code (-1 for a signal). Stops it on timeout or a signal.
fn stream(
    mut cmd: Command,
    timeout: Duration,
    what: &str,
    on_line: &mut dyn FnMut(&str),
) -> Result<i32> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Infra(format!("{what}: starting {program}: {e}")))?;
    let (tx, rx) = mpsc::channel::<(bool, String)>();
    let mut readers = Vec::new();
    for (is_err, pipe) in [
        (
            false,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let Some(pipe) = pipe else { continue };
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(pipe).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_string();
                if tx.send((is_err, text)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let stop = |child: &mut Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((is_err, line)) => {
                let mark = if is_err { "!" } else { " " };
                crate::say!("      {mark}| {line}");
                on_line(&line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Err(e) = crate::signals::check() {
            stop(&mut child);
            return Err(e);
        }
        if Instant::now() >= deadline {
            stop(&mut child);
            return Err(Error::Build(format!(
                "{what}: {program} did not finish within {}s (the step's `timeout`); its output is above",
                timeout.as_secs()
            )));
        }
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child
        .wait()
        .map_err(|e| Error::Infra(format!("{what}: waiting for {program}: {e}")))?;
    Ok(status.code().unwrap_or(-1))
}

/// A task that failed on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub task: String,
    pub host: String,
    /// `FAILED` or `UNREACHABLE`.
    pub kind: String,
    pub message: String,
}

/// What the output of `ansible-playbook` (default callback) says, read line by line.
#[derive(Debug, Default)]
pub struct Outcome {
    task: Option<String>,
    /// Failures not ignored, in order.
    pub failures: Vec<TaskFailure>,
    /// The first `ERROR!` line (a playbook that does not parse, a missing role).
    pub error: Option<String>,
    /// The play recap's host lines.
    pub recap: Vec<String>,
    in_recap: bool,
}

impl Outcome {
    /// Reads one line of output.
    pub fn line(&mut self, line: &str) {
        let t = line.trim_end();
        if let Some(rest) = t
            .strip_prefix("TASK [")
            .or_else(|| t.strip_prefix("RUNNING HANDLER ["))
        {
            let name = rest.trim_end_matches('*').trim_end();
            self.task = Some(name.strip_suffix(']').unwrap_or(name).to_string());
            self.in_recap = false;
        } else if t.starts_with("PLAY RECAP") {
            self.in_recap = true;
        } else if self.in_recap && t.contains(": ok=") {
            self.recap
                .push(t.split_whitespace().collect::<Vec<_>>().join(" "));
        } else if t.trim() == "...ignoring" {
            self.failures.pop();
        } else if let Some(msg) = t.strip_prefix("ERROR! ") {
            self.error.get_or_insert_with(|| msg.to_string());
        } else if let Some(f) = self.failure(t) {
            self.failures.push(f);
        }
    }

    /// `fatal: [host]: FAILED! => {...}`, `fatal: [host]: UNREACHABLE! => {...}` or
    /// `failed: [host] (item=...) => {...}`.
    fn failure(&self, t: &str) -> Option<TaskFailure> {
        let rest = t
            .strip_prefix("fatal: [")
            .or_else(|| t.strip_prefix("failed: ["))?;
        let (host, rest) = rest.split_once(']')?;
        let (head, result) = match rest.split_once("=>") {
            Some((h, r)) => (h, r.trim()),
            None => (rest, ""),
        };
        let kind = if head.contains("UNREACHABLE!") {
            "UNREACHABLE"
        } else {
            "FAILED"
        };
        let item = head
            .trim()
            .strip_prefix('(')
            .and_then(|h| h.strip_suffix(')'))
            .map(|i| format!(" ({i})"))
            .unwrap_or_default();
        Some(TaskFailure {
            task: self.task.clone().unwrap_or_else(|| "(no task)".into()),
            host: host.to_string(),
            kind: kind.into(),
            message: format!("{}{item}", result_message(result)),
        })
    }

    /// The error for an `ansible-playbook` that exited with `status`.
    pub fn describe(&self, what: &str, status: i32, instance: &str, took: Duration) -> String {
        let took = took.as_secs_f64();
        if let Some(f) = self.failures.last() {
            let verb = if f.kind == "UNREACHABLE" {
                "could not reach"
            } else {
                "failed on"
            };
            let mut msg = format!(
                "{what}: task `{}` {verb} {} ({instance}) after {took:.1}s",
                f.task, f.host
            );
            if !f.message.is_empty() {
                msg.push_str(&format!(": {}", f.message));
            }
            if let Some(r) = self.recap.first() {
                msg.push_str(&format!("\nplay recap: {r}"));
            }
            return msg;
        }
        if let Some(e) = &self.error {
            return format!("{what}: ansible-playbook failed (exit {status}): ERROR! {e}");
        }
        format!(
            "{what}: ansible-playbook exited with {status} after {took:.1}s; its output is above"
        )
    }
}

/// The message of a task result printed as JSON: `msg`, then the end of `stderr` and `rc`.
fn result_message(result: &str) -> String {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(result) else {
        let first = result.lines().next().unwrap_or("");
        return first.chars().take(300).collect();
    };
    let mut parts = Vec::new();
    match m.get("msg") {
        Some(serde_json::Value::String(s)) => parts.push(s.clone()),
        Some(v) if !v.is_null() => parts.push(v.to_string()),
        _ => {}
    }
    if let Some(serde_json::Value::String(e)) = m.get("stderr") {
        if let Some(last) = e.lines().rev().find(|l| !l.trim().is_empty()) {
            parts.push(format!("stderr: {}", last.trim()));
        }
    }
    if let Some(rc) = m.get("rc").and_then(|v| v.as_i64()) {
        parts.push(format!("exit code {rc}"));
    }
    let text = parts.join("; ");
    if text.chars().count() > 500 {
        format!("{}…", text.chars().take(500).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(yaml: &str) -> AnsibleStep {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn plan(step: &AnsibleStep) -> Plan<'_> {
        Plan {
            step,
            index: 1,
            playbook: PathBuf::from("/work/site.yml"),
            dir: PathBuf::from("/tmp/bakery-ansible-r-1/step-1"),
            socket: PathBuf::from("/tmp/bakery-ansible-r-1/agent.sock"),
            endpoint: SshEndpoint {
                host: "127.0.0.1".into(),
                port: 2201,
                user: "root".into(),
                host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB root@i-0abc".into(),
            },
            instance_id: "i-0abc".into(),
            run_id: "r-1".into(),
            installed: None,
        }
    }

    fn env<'a>(inv: &'a Invocation, key: &str) -> Option<&'a str> {
        inv.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_command_line_names_inventory_vars_become_and_the_playbook_last() {
        let s = step(
            "playbook: site.yml\nbecome: true\nbecome_user: www\nextra_arguments: [--tags, web]\ngroups: [web, golden]\nextra_vars: {port: 8080, names: [a, b]}\n",
        );
        let inv = invocation(&plan(&s));
        assert_eq!(
            inv.args,
            [
                "-i",
                "/tmp/bakery-ansible-r-1/step-1/inventory.json",
                "--extra-vars",
                "@/tmp/bakery-ansible-r-1/step-1/extra-vars.json",
                "--become",
                "--become-user",
                "www",
                "--tags",
                "web",
                "/work/site.yml"
            ]
        );
        let file = |name: &str| {
            inv.files
                .iter()
                .find(|(p, _)| p.ends_with(name))
                .map(|(_, c)| c.clone())
                .unwrap()
        };
        let inventory: serde_json::Value = serde_json::from_str(&file("inventory.json")).unwrap();
        let host = &inventory["all"]["hosts"]["builder"];
        assert_eq!(host["ansible_host"], "127.0.0.1");
        assert_eq!(host["ansible_port"], 2201);
        assert_eq!(host["ansible_user"], "root");
        assert!(inventory["all"]["children"]["web"]["hosts"]
            .as_object()
            .unwrap()
            .contains_key("builder"));
        assert!(inventory["all"]["children"]["golden"].is_object());
        let vars: serde_json::Value = serde_json::from_str(&file("extra-vars.json")).unwrap();
        assert_eq!(vars["port"], 8080, "values keep their YAML types");
        assert_eq!(vars["names"][1], "b");
        assert_eq!(vars["bakery_instance_id"], "i-0abc");
        assert_eq!(
            file("known_hosts"),
            "[127.0.0.1]:2201 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB\n",
            "the forwarded port is part of the host's name"
        );
    }

    #[test]
    fn host_key_checking_stays_on_and_no_key_file_is_named() {
        // Even a step whose environment tries to change the SSH settings.
        let s = step("playbook: site.yml\nenvironment: {ANSIBLE_PIPELINING: 'False', MY_VAR: x}\n");
        let inv = invocation(&plan(&s));
        assert_eq!(env(&inv, "ANSIBLE_HOST_KEY_CHECKING"), Some("True"));
        assert_eq!(
            env(&inv, "SSH_AUTH_SOCK"),
            Some("/tmp/bakery-ansible-r-1/agent.sock")
        );
        assert_eq!(
            env(&inv, "ANSIBLE_PIPELINING"),
            Some("False"),
            "the step's own setting wins"
        );
        assert_eq!(env(&inv, "MY_VAR"), Some("x"));
        let ssh = env(&inv, "ANSIBLE_SSH_ARGS").unwrap();
        assert!(ssh.contains("-o StrictHostKeyChecking=yes"), "{ssh}");
        assert!(
            ssh.contains("-o UserKnownHostsFile=/tmp/bakery-ansible-r-1/step-1/known_hosts"),
            "{ssh}"
        );
        assert!(ssh.contains("-o IdentityFile=none"), "{ssh}");
        assert!(inv.remove_env.contains(&"ANSIBLE_PRIVATE_KEY_FILE"));
        let everything = format!("{:?} {:?} {:?}", inv.args, inv.env, inv.files).to_lowercase();
        for bad in [
            "stricthostkeychecking=no",
            "host_key_checking=false",
            "private_key",
            "--private-key",
            "begin openssh private key",
        ] {
            assert!(!everything.contains(bad), "`{bad}` in {everything}");
        }
    }

    #[test]
    fn installed_requirements_come_before_the_steps_own_paths() {
        let s = step("playbook: site.yml\nenvironment: {ANSIBLE_ROLES_PATH: /opt/roles}\n");
        let mut p = plan(&s);
        p.installed = Some((PathBuf::from("/t/roles"), PathBuf::from("/t/collections")));
        let inv = invocation(&p);
        assert_eq!(env(&inv, "ANSIBLE_ROLES_PATH"), Some("/t/roles:/opt/roles"));
        assert_eq!(
            env(&inv, "ANSIBLE_COLLECTIONS_PATH"),
            Some("/t/collections")
        );
        // Port 22 (an EC2 address) has no brackets.
        p.endpoint.host = "10.0.1.7".into();
        p.endpoint.port = 22;
        let inv = invocation(&p);
        assert!(inv
            .files
            .iter()
            .any(|(_, c)| c.starts_with("10.0.1.7 ssh-ed25519 ")));
    }

    fn read(output: &str) -> Outcome {
        let mut o = Outcome::default();
        for l in output.lines() {
            o.line(l);
        }
        o
    }

    #[test]
    fn a_failed_task_is_named_with_its_host_and_message() {
        let o = read(
            r#"PLAY [Web server] **************************************************************

TASK [Install nginx] ***********************************************************
ok: [builder]

TASK [Check the config] ********************************************************
fatal: [builder]: FAILED! => {"changed": true, "cmd": ["nginx", "-t"], "msg": "non-zero return code", "rc": 1, "stderr": "nginx: [emerg] unknown directive\nnginx: configuration file test failed", "stdout": ""}

PLAY RECAP *********************************************************************
builder                    : ok=1    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
"#,
        );
        assert_eq!(o.failures.len(), 1);
        let f = &o.failures[0];
        assert_eq!(f.task, "Check the config");
        assert_eq!(f.host, "builder");
        assert_eq!(
            f.message,
            "non-zero return code; stderr: nginx: configuration file test failed; exit code 1"
        );
        let msg = o.describe(
            "build.provisioners[0] (ansible: site.yml)",
            2,
            "i-0abc",
            Duration::from_secs(3),
        );
        assert!(
            msg.starts_with("build.provisioners[0] (ansible: site.yml): task `Check the config` failed on builder (i-0abc) after 3.0s: non-zero return code"),
            "{msg}"
        );
        assert!(
            msg.contains("play recap: builder : ok=1 changed=0 unreachable=0 failed=1"),
            "{msg}"
        );
    }

    #[test]
    fn ignored_failures_items_handlers_roles_and_errors() {
        let o = read(
            r#"TASK [Optional thing] **********
fatal: [builder]: FAILED! => {"msg": "not there"}
...ignoring

TASK [web : Install packages] *******
failed: [builder] (item=nginx) => {"ansible_loop_var": "item", "item": "nginx", "msg": "No package matching 'nginx' is available"}
"#,
        );
        assert_eq!(o.failures.len(), 1, "the ignored failure does not count");
        assert_eq!(o.failures[0].task, "web : Install packages");
        assert_eq!(
            o.failures[0].message,
            "No package matching 'nginx' is available (item=nginx)"
        );

        let o = read(
            "RUNNING HANDLER [Restart nginx] ****\nfatal: [builder]: UNREACHABLE! => {\"changed\": false, \"msg\": \"Failed to connect to the host via ssh: Host key verification failed.\", \"unreachable\": true}\n",
        );
        let msg = o.describe("step", 4, "i-1", Duration::ZERO);
        assert!(
            msg.contains("task `Restart nginx` could not reach builder (i-1)"),
            "{msg}"
        );
        assert!(msg.contains("Host key verification failed."), "{msg}");

        let o = read("ERROR! the role 'missing' was not found in /work/roles\n\nThe error appears to be in '/work/site.yml': line 4\n");
        assert!(o.failures.is_empty());
        assert_eq!(
            o.describe("step", 1, "i-1", Duration::ZERO),
            "step: ansible-playbook failed (exit 1): ERROR! the role 'missing' was not found in /work/roles"
        );
        // Output that says nothing recognisable still gives the exit code.
        assert!(read("something else\n")
            .describe("step", 250, "i-1", Duration::ZERO)
            .starts_with("step: ansible-playbook exited with 250"));
    }

    #[test]
    fn settings_that_turn_host_key_checking_off_or_name_a_key_file_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.yml"), "- hosts: all\n").unwrap();
        let loaded = LoadedPipeline {
            pipeline: serde_yaml::from_str("source: {local: debian-12}\nimage: {name: x}\n")
                .unwrap(),
            path: dir.path().join("bakery.yml"),
            dir: dir.path().to_path_buf(),
        };
        let s = step(
            r#"playbook: site.yml
groups: [web, 2bad, all]
become_user: www
requirements: reqs.yml
extra_arguments: [--ssh-common-args=-o StrictHostKeyChecking=no, -i, inventory.ini, --private-key=/k, -v]
environment: {ANSIBLE_HOST_KEY_CHECKING: "False", OTHER: "host_key_checking=False", FINE: "1"}
extra_vars: {ansible_ssh_private_key_file: /k, ansible_port: 22, app: web}
"#,
        );
        let found: Vec<String> = problems(&s, &loaded)
            .into_iter()
            .map(|(k, m)| format!("{k}: {m}"))
            .collect();
        let expect = [
            ".requirements: ",
            ".groups[1]: `2bad` is not a group name",
            ".groups[2]: `all` is Ansible's own group",
            ".become_user: is set but `become` is not",
            ".extra_arguments[0]: `--ssh-common-args=-o StrictHostKeyChecking=no` is not allowed: host key checking stays on",
            ".extra_arguments[1]: `-i` is not allowed: Bakery writes the inventory",
            ".extra_arguments[3]: `--private-key=/k` is not allowed: the run's key is held in an ssh-agent",
            ".environment.ANSIBLE_HOST_KEY_CHECKING: Bakery sets `ANSIBLE_HOST_KEY_CHECKING` itself",
            ".environment.OTHER: not allowed: host key checking stays on",
            ".extra_vars.ansible_port: Bakery sets `ansible_port`",
            ".extra_vars.ansible_ssh_private_key_file: not allowed: the run's key is held in an ssh-agent",
        ];
        assert_eq!(found.len(), expect.len(), "{found:#?}");
        for (f, e) in found.iter().zip(expect) {
            assert!(f.starts_with(e), "{f}\ndoes not start with\n{e}");
        }
    }

    #[test]
    fn revoking_removes_only_the_runs_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join(".ssh/authorized_keys");
        std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
        std::fs::write(
            &keys,
            "ssh-ed25519 AAAAother user@laptop\nssh-ed25519 AAAArun bakery\n",
        )
        .unwrap();
        // The command as root sees every home directory; here, a stand-in for `getent passwd`.
        let command = revoke_command("ssh-ed25519 AAAArun bakery").replace(
            "getent passwd",
            &format!("echo x:x:0:0::{}:/bin/sh", dir.path().display()),
        );
        let status = std::process::Command::new("sh")
            .args(["-c", &command])
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(&keys).unwrap(),
            "ssh-ed25519 AAAAother user@laptop\n"
        );
    }
}
