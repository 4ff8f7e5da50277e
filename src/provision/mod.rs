//! The provisioners: the steps of `build.provisioners`, run in order on the builder.
//!
//! `shell` runs commands over the transport, `file` uploads, `reboot` restarts the builder
//! through its provider, and `ansible` runs `ansible-playbook` on this machine against the
//! builder over SSH. Steps that restart the builder (`reboot`, a `shell` step with
//! `expect_disconnect`, a playbook that reboots) hand the next step a fresh connection.

pub mod ansible;
pub mod reboot;

use crate::cloud::Instance;
use crate::config::{Provisioner, ShellStep};
use crate::error::{Error, IoContext, Result};
use crate::progress;
use crate::run::Run;
use crate::transport::{shell_quote, ExecOutput, Stream, Transport};

/// Runs every provisioner of the pipeline on `builder`; returns the connection to use next
/// (a new one when a step restarted the builder).
pub fn provision(
    run: &Run,
    builder: &Instance,
    transport: Box<dyn Transport>,
) -> Result<Box<dyn Transport>> {
    // One ssh-agent for the run's Ansible steps, started at the first of them.
    let mut agent: Option<ansible::Agent> = None;
    let result = steps(run, builder, transport, &mut agent);
    let stopped = agent.map_or(Ok(()), |a| a.stop(&run.ledger));
    let transport = result?;
    stopped?;
    Ok(transport)
}

fn steps(
    run: &Run,
    builder: &Instance,
    mut transport: Box<dyn Transport>,
    agent: &mut Option<ansible::Agent>,
) -> Result<Box<dyn Transport>> {
    for (i, step) in run.loaded.pipeline.build.provisioners.iter().enumerate() {
        crate::signals::check()?;
        progress::announce(&format!("provisioner-{i}"));
        match step {
            Provisioner::Shell(shell) => {
                transport = run_shell(run, builder, transport, i, shell)?;
            }
            Provisioner::File(file) => {
                let local = run.loaded.resolve(&file.source);
                progress::note(&format!(
                    "[{i}] file: {} -> {}",
                    local.display(),
                    file.destination
                ));
                transport.upload_path(&local, &file.destination)?;
            }
            Provisioner::Reboot(r) => {
                progress::note(&format!("[{i}] reboot"));
                transport = reboot::reboot(run, builder, transport, r.timeout.0)?;
            }
            Provisioner::Ansible(step) => {
                if agent.is_none() {
                    *agent = Some(ansible::Agent::start(run)?);
                }
                let agent = agent.as_ref().expect("started above");
                ansible::run_step(run, builder, transport.as_ref(), agent, i, step)?;
                // A play may have rebooted the builder, which leaves this side's
                // connections dead: log in again (same host key check).
                drop(transport);
                transport = reboot::reconnect(run, builder)?;
            }
        }
    }
    Ok(transport)
}

/// Checks, before anything is launched, that the tools the steps need are installed.
pub fn preflight(run: &Run) -> Result<()> {
    let steps = &run.loaded.pipeline.build.provisioners;
    if let Some(i) = steps
        .iter()
        .position(|s| matches!(s, Provisioner::Ansible(_)))
    {
        ansible::preflight(&run.loaded, i)?;
    }
    Ok(())
}

fn run_shell(
    run: &Run,
    builder: &Instance,
    transport: Box<dyn Transport>,
    index: usize,
    step: &ShellStep,
) -> Result<Box<dyn Transport>> {
    let (script, label) = match &step.script {
        Some(path) => {
            let local = run.loaded.resolve(path);
            (
                std::fs::read(&local).at("reading", &local)?,
                path.display().to_string(),
            )
        }
        None => {
            let mut text = step.inline.join("\n");
            text.push('\n');
            let first = step.inline.first().map(String::as_str).unwrap_or("");
            (
                text.into_bytes(),
                format!(
                    "inline: {first}{}",
                    if step.inline.len() > 1 { " …" } else { "" }
                ),
            )
        }
    };
    progress::note(&format!("[{index}] shell: {label}"));
    let boot_before = if step.expect_disconnect {
        Some(reboot::boot_id(transport.as_ref())?)
    } else {
        None
    };
    let remote = format!("/tmp/bakery-step-{}-{index}.sh", run.id);
    transport.upload(&script, &remote, 0o700)?;
    let env: Vec<String> = step
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    let sudo = if run.loaded.pipeline.build.instance.ssh_user == "root" {
        ""
    } else {
        "sudo -n -E "
    };
    let command = format!(
        "{sudo}env {} sh -e {remote}; rc=$?; rm -f {remote}; exit $rc",
        env.join(" ")
    );
    let out = transport.exec(&command, step.timeout.0, &mut |stream, line| {
        let mark = if stream == Stream::Stderr { "!" } else { " " };
        crate::say!("      {mark}| {line}");
    });
    let failed = |out: &ExecOutput| {
        Error::Build(format!(
            "build.provisioners[{index}] ({label}) failed with exit code {} after {:.1}s; its output is above",
            out.exit_code,
            out.duration.as_secs_f64()
        ))
    };
    let Some(old) = boot_before else {
        let out = out?;
        if out.exit_code != 0 {
            return Err(failed(&out));
        }
        return Ok(transport);
    };
    // The script may have rebooted the builder: the connection dropped, or a reboot is
    // under way; then wait for the new boot.
    let dropped = match &out {
        Err(Error::Transport(msg)) => {
            tracing::debug!(%msg, "shell step: connection dropped");
            true
        }
        Err(_) => return out.map(|_| transport),
        Ok(_) => false,
    };
    let timeout = step.reboot_timeout.0;
    if !dropped && !reboot::under_way(transport.as_ref(), &old)? {
        let out = out?;
        if out.exit_code != 0 {
            return Err(failed(&out));
        }
        progress::note(&format!("[{index}] the builder did not reboot"));
        return Ok(transport);
    }
    drop(transport);
    reboot::wait_for_new_boot(
        run,
        builder,
        &old,
        timeout,
        &format!("build.provisioners[{index}] ({label})"),
    )
}
