//! Reboots during provisioning: a `reboot` step, a `shell` step whose script reboots, a
//! playbook that reboots. The builder is restarted and reached again through its provider
//! (the same host key check as the first login), never by naming QEMU or EC2 here.

use std::time::{Duration, Instant};

use crate::cloud::{Instance, PowerAction};
use crate::error::{Error, Result};
use crate::progress::Spinner;
use crate::run::Run;
use crate::transport::{as_root, Transport};

/// How long a script that ended has to start a reboot before Bakery decides it did not.
const GRACE: Duration = Duration::from_secs(10);

/// The kernel's id of the current boot of the machine behind `transport`.
pub fn boot_id(transport: &dyn Transport) -> Result<String> {
    let out = transport.run(
        "cat /proc/sys/kernel/random/boot_id",
        Duration::from_secs(30),
    )?;
    let id = out.stdout.trim().to_string();
    if out.exit_code != 0 || id.is_empty() {
        return Err(Error::Transport(format!(
            "{}: no boot id in /proc/sys/kernel/random/boot_id",
            transport.endpoint()
        )));
    }
    Ok(id)
}

/// Reboots the builder cleanly through its provider and returns a connection to the new boot.
pub fn reboot(
    run: &Run,
    builder: &Instance,
    transport: Box<dyn Transport>,
    timeout: Duration,
) -> Result<Box<dyn Transport>> {
    let old = boot_id(transport.as_ref())?;
    let root = as_root(transport, &builder.user);
    run.provider
        .power(builder, PowerAction::Reboot, root.as_ref())?;
    drop(root);
    wait_for_new_boot(run, builder, &old, timeout, "the reboot step")
}

/// True when the machine is going down or has come back since boot `old`: the connection
/// fails, systemd reports `stopping`, or the boot id changed. Watches for [`GRACE`].
pub fn under_way(transport: &dyn Transport, old: &str) -> Result<bool> {
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline {
        crate::signals::check()?;
        let probe = transport.run(
            "cat /proc/sys/kernel/random/boot_id; systemctl is-system-running 2>/dev/null || true",
            Duration::from_secs(5),
        );
        match probe {
            Err(Error::Interrupted(sig)) => return Err(Error::Interrupted(sig)),
            Err(_) => return Ok(true),
            Ok(out) => {
                let mut lines = out.stdout.lines();
                let id = lines.next().unwrap_or("").trim();
                let state = lines.next().unwrap_or("").trim();
                if (!id.is_empty() && id != old) || state == "stopping" {
                    return Ok(true);
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(false)
}

/// Waits until the builder answers on a boot other than `old`, with its verified host key,
/// and cloud-init has finished; `what` names the step in the error.
pub fn wait_for_new_boot(
    run: &Run,
    builder: &Instance,
    old: &str,
    timeout: Duration,
    what: &str,
) -> Result<Box<dyn Transport>> {
    let started = Instant::now();
    let deadline = started + timeout;
    let spinner = Spinner::start(&format!("waiting for {} to boot again", builder.id));
    let mut last_error = String::from("it still ran the boot from before the reboot");
    while Instant::now() < deadline {
        crate::signals::check()?;
        let mut settings = run.loaded.pipeline.build.instance.clone();
        settings.boot_timeout = crate::config::HumanDuration(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        );
        match run.provider.connect(builder, &run.key, &settings) {
            Ok(t) => match boot_id(t.as_ref()) {
                Ok(id) if id != old => {
                    let t = settle(t, &settings)?;
                    spinner.finish(&format!(
                        "{} is up again on a new boot: {}",
                        builder.id,
                        t.endpoint()
                    ));
                    run.timings.record("reboot builder", started.elapsed());
                    return Ok(t);
                }
                Ok(_) => {}
                Err(e) => last_error = e.to_string(),
            },
            Err(e @ Error::Interrupted(_)) => return Err(e),
            Err(e) => last_error = e.to_string(),
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    drop(spinner);
    Err(Error::Build(format!(
        "{what}: {} did not come back within {}s after rebooting ({last_error}); last console lines:\n{}",
        builder.id,
        timeout.as_secs(),
        run.provider.console_tail(builder, 20)
    )))
}

/// Logs in to the builder again (after a step that may have rebooted it), waiting for it to
/// answer within the builder's boot timeout.
pub fn reconnect(run: &Run, builder: &Instance) -> Result<Box<dyn Transport>> {
    let settings = &run.loaded.pipeline.build.instance;
    let t = run.provider.connect(builder, &run.key, settings)?;
    let t = settle(t, settings)?;
    tracing::debug!(endpoint = %t.endpoint(), "connected to the builder again");
    Ok(t)
}

/// Waits for cloud-init's per-boot work, as the first login does.
fn settle(
    t: Box<dyn Transport>,
    settings: &crate::config::InstanceSettings,
) -> Result<Box<dyn Transport>> {
    t.run(
        "if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null 2>&1 || true; fi",
        settings.boot_timeout.0,
    )?;
    Ok(t)
}
