//! In-guest faults over SSM, on a real guest: the probe is an EC2 instance in moto, reached
//! through Bakery's own SSM transport, and its Run Command is stood in for by a relay to one
//! real Debian 12 QEMU guest (tests/aws_common/relay.rs). moto only holds the instance record;
//! every script (fault, rollback upload, dead-man's timer, checks) travels as a SendCommand,
//! runs on the guest, and comes back as the guest's own exit status and output, so the
//! verdicts are the guest's. The test reads the guest directly over SSH as well, to see what
//! the faults really did there.
//!
//! Each experiment id starts with the verdict it must get: `pass-` or `fail-`.
#![cfg(feature = "aws")]

mod aws_common;
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_common::relay::Sent;
use aws_common::{launch, Endpoint, Launched};
use bakery::chaos::{self, Experiment};
use bakery::cloud::aws::{AwsProvider, Clients};
use bakery::cloud::local::LocalProvider;
use bakery::cloud::{Instance, LaunchRequest, Provider, Role, Tags};
use bakery::config::{AwsSettings, AwsTransport, InstanceSettings};
use bakery::ledger::Ledger;
use bakery::suites::{parse_suite, CheckResult, RunOptions, Status};
use bakery::transport::ssh::KeyPair;
use bakery::transport::ssm::{SsmOptions, SsmTransport};
use bakery::transport::{ExecOutput, Stream, Transport};

/// A bash connect to the host (QEMU's user network answers for it at 10.0.2.2): its exit
/// status, 124 when nothing came back within 3 s. Port 443 is refused (or taken) at once; so
/// is 4443, unless a fault drops the packets.
fn connect(port: u16) -> String {
    format!("timeout 3 bash -c ': <>/dev/tcp/10.0.2.2/{port}' 2>/dev/null; echo $?")
}

fn experiments() -> String {
    format!(
        r#"
experiments:
  - id: pass-kill-with-restart-policy
    steady-state:
      - {{id: restarting-active, service: {{name: bakery-restarting, running: true}}}}
    fault: {{kill-process: {{service: bakery-restarting}}}}
    recover-within: 30s
  - id: fail-kill-without-restart-policy
    steady-state:
      - {{id: dummy-active, service: {{name: bakery-dummy, running: true}}}}
    fault: {{kill-process: {{service: bakery-dummy}}}}
    recover-within: 3s
  - id: pass-disk-fill
    steady-state:
      - {{id: root-has-room, mount: {{path: /, usage: {{lt: 90}}}}}}
    fault: {{disk-fill: {{path: /, percent: 95}}, duration: 4s}}
    during:
      - {{id: root-full, mount: {{path: /, usage: {{ge: 90}}}}}}
    recover-within: 30s
  - id: fail-disk-fill-during
    steady-state:
      - {{id: root-has-room, mount: {{path: /, usage: {{lt: 90}}}}}}
    fault: {{disk-fill: {{path: /, percent: 95}}, duration: 3s}}
    during:
      - {{id: root-half-empty, mount: {{path: /, usage: {{lt: 50}}}}}}
    recover-within: 10s
  - id: pass-packet-loss-spares-the-ssm-channel
    steady-state:
      - {{id: no-netem, command: {{run: "tc qdisc show dev eth0", stdout: ["!netem"]}}}}
      - {{id: https-answers, command: {{run: "{https}", stdout: {{lt: 124}}}}}}
      - {{id: other-port-answers, command: {{run: "{other}", stdout: {{lt: 124}}}}}}
    fault: {{packet-loss: {{percent: 100}}, duration: 6s}}
    during:
      - {{id: netem-on, command: {{run: "tc qdisc show dev eth0", stdout: ["loss 100%"]}}}}
      - id: every-spare-filter-taken
        command: {{run: "tc filter show dev eth0 | grep -c 'flowid 1:1'", stdout: 8}}
      - {{id: https-still-answers, command: {{run: "{https}", stdout: {{lt: 124}}}}}}
      - {{id: other-port-dropped, command: {{run: "{other}", stdout: 124}}}}
    recover-within: 30s
  - id: fail-packet-loss-during
    steady-state:
      - {{id: other-port-answers, command: {{run: "{other}", stdout: {{lt: 124}}}}}}
    fault: {{packet-loss: {{percent: 100}}, duration: 3s}}
    during:
      - {{id: other-port-still-answers, command: {{run: "{other}", stdout: {{lt: 124}}}}}}
    recover-within: 10s
"#,
        https = connect(443),
        other = connect(4443),
    )
}

/// Left running with nobody to roll it back.
const ABANDONED: &str = r#"
experiments:
  - id: fail-abandoned-packet-loss
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {packet-loss: {percent: 100}, duration: 3s}
    recover-within: 2s
"#;

/// The SSM transport until the fault is injected, then a lost way in: as if Bakery had been
/// killed, or its network had gone, right after injecting. The probe hears nothing more.
struct CutAfterInject {
    inner: Box<dyn Transport>,
    cut: AtomicBool,
}

impl CutAfterInject {
    fn lost(&self) -> bakery::Error {
        bakery::Error::Transport(format!("{}: no way in any more", self.inner.endpoint()))
    }
}

impl Transport for CutAfterInject {
    fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> bakery::Result<ExecOutput> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(self.lost());
        }
        let out = self.inner.exec(command, timeout, on_line);
        // The script that readies and injects a fault carries this line between the two.
        if command.contains(bakery::chaos::guest::INJECT_BEGINS) {
            self.cut.store(true, Ordering::SeqCst);
        }
        out
    }

    fn upload(&self, contents: &[u8], remote_path: &str, mode: u32) -> bakery::Result<()> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(self.lost());
        }
        self.inner.upload(contents, remote_path, mode)
    }

    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }
}

/// The probe as Bakery sees it: an EC2 instance reached through SSM.
struct Probe<'a> {
    provider: &'a AwsProvider,
    instance: &'a Instance,
    key: &'a KeyPair,
    settings: &'a InstanceSettings,
    ledger: &'a Ledger,
}

impl Probe<'_> {
    fn run(
        &self,
        exp: &Experiment,
        transport: &mut Box<dyn Transport>,
        grace: Duration,
    ) -> CheckResult {
        let options = RunOptions {
            probe: self.instance.id.clone(),
            ..Default::default()
        };
        let r = chaos::run_experiment(
            exp,
            &mut chaos::Target {
                provider: self.provider,
                instance: self.instance,
                key: self.key,
                settings: self.settings,
                ledger: self.ledger,
                transport,
                options: &options,
                grace,
            },
        );
        eprintln!("=== {} {}: {}\n{}", r.id, r.status, r.message, r.output);
        r
    }
}

/// The fault's tag (`bakery-chaos-…`), from the experiment's journal.
fn tag_of(r: &CheckResult) -> String {
    let journal = &r.experiment.as_ref().expect("a record").journal;
    journal
        .iter()
        .find_map(|a| a.what.strip_prefix("dead-man's switch armed: "))
        .and_then(|t| t.strip_suffix("-deadman.timer"))
        .unwrap_or_else(|| panic!("{}: no dead-man's switch in the journal", r.id))
        .to_string()
}

/// Where in `sent` the first script containing `needle` is.
fn find(sent: &[Sent], needle: &str) -> Option<usize> {
    sent.iter().position(|s| s.script.contains(needle))
}

/// A signal leaves nothing to undo: it travels in one SendCommand (the preflight, then the
/// injection), with no rollback written, no dead-man's timer and no rollback run.
fn signal_travelled(r: &CheckResult, sent: &[Sent], inject: &str) -> Result<(), String> {
    let id = &r.id;
    let journal = &r.experiment.as_ref().expect("a record").journal;
    if journal.iter().any(|a| a.what.contains("dead-man's switch")) {
        return Err(format!("{id}: a dead-man's switch was armed for a signal"));
    }
    let with_inject: Vec<&Sent> = sent.iter().filter(|s| s.script.contains(inject)).collect();
    let [script] = with_inject.as_slice() else {
        return Err(format!(
            "{id}: {} SendCommands carry the injection, not one",
            with_inject.len()
        ));
    };
    let script = &script.script;
    let begins = script.find(bakery::chaos::guest::INJECT_BEGINS);
    let injected = script.rfind(inject).unwrap_or(0);
    if begins.is_none_or(|b| b >= injected) {
        return Err(format!(
            "{id}: the injection does not follow the preparation: {script}"
        ));
    }
    for needle in ["rollback.sh", "systemd-run", "-deadman"] {
        if sent.iter().any(|s| s.script.contains(needle)) {
            return Err(format!("{id}: a SendCommand carries {needle}"));
        }
    }
    Ok(())
}

/// Checks that the fault `tag` went through Run Command in the safe order: the rollback
/// uploaded, the dead-man's timer armed, the fault injected (`inject` is a piece of its script),
/// and — unless `rolled_back` is false — the rollback run and verified. Returns the position of
/// the inject script.
fn travelled(sent: &[Sent], tag: &str, inject: &str, rolled_back: bool) -> Result<usize, String> {
    let dir = format!("/var/lib/bakery-chaos/{tag}");
    let at = |what: &str, needle: &str| {
        find(sent, needle).ok_or_else(|| format!("{tag}: no SendCommand {what} ({needle})"))
    };
    // One script readies the fault: the rollback written (a here-document under a temporary
    // name, moved into place), then the dead-man's timer armed to run it.
    let prepare = at(
        "readying the fault",
        &format!("cat > {dir}/rollback.sh.bakery-part <<'"),
    )?;
    let script = &sent[prepare].script;
    let pos = |needle: &str| {
        script
            .find(needle)
            .ok_or_else(|| format!("{tag}: the readying script lacks {needle}: {script}"))
    };
    let written = pos(&format!("# Bakery chaos rollback of {tag}"))?;
    let placed = pos(&format!(
        "mv -f {dir}/rollback.sh.bakery-part {dir}/rollback.sh"
    ))?;
    let armed = pos(&format!("--unit={tag}-deadman --on-active="))?;
    if !script[armed..].contains(&format!("/bin/sh {dir}/rollback.sh")) {
        return Err(format!("{tag}: the timer does not run the rollback"));
    }
    if !(written < placed && placed < armed) {
        return Err(format!(
            "{tag}: out of order: written at {written}, in place at {placed}, armed at {armed}"
        ));
    }
    // The injection follows in the same script, after the line that ends the readying.
    let injected = at("injecting", inject)?;
    if injected != prepare {
        return Err(format!(
            "{tag}: readied in SendCommand {prepare}, injected in another ({injected})"
        ));
    }
    let begins = pos(bakery::chaos::guest::INJECT_BEGINS)?;
    let inject_at = script.rfind(inject).unwrap_or(0);
    if !(armed < begins && begins < inject_at) {
        return Err(format!(
            "{tag}: out of order: armed at {armed}, injection begins at {begins}, injected at {inject_at}"
        ));
    }
    if rolled_back {
        // The rollback runs with the check that nothing is left in one script: when a
        // sustained fault ends, else after the recovery.
        let run = format!("if [ -f {dir}/rollback.sh ]; then /bin/sh {dir}/rollback.sh");
        let rollback = at("running the rollback", &run)?;
        let verified = sent
            .iter()
            .position(|s| {
                s.script.contains(&run) && s.script.contains("the dead-man timer is still armed")
            })
            .ok_or_else(|| format!("{tag}: no SendCommand rolling back and verifying"))?;
        let script = &sent[verified].script;
        if script.find(&run) > script.find("the dead-man timer is still armed") {
            return Err(format!("{tag}: verified before the rollback ran"));
        }
        if !(injected < rollback && rollback <= verified) {
            return Err(format!(
                "{tag}: out of order: injected {injected}, rolled back {rollback}, verified {verified}"
            ));
        }
    }
    Ok(injected)
}

#[test]
fn in_guest_faults_rollbacks_and_the_dead_mans_switch_travel_over_ssm() {
    let _aws = aws_common::serial();
    let _vm = common::vm_lock();
    let started = Instant::now();

    // The real guest, and a way into it that does not go through the stand-in.
    let data = common::data_dir("aws-chaos-ssm");
    let local = LocalProvider::new(&data);
    let local_ledger = Ledger::create(&data.join("runs"), "r-ssm-guest").unwrap();
    let image = local.image(&common::base_image(&data)).unwrap();
    let guest_key = KeyPair::generate("ssm-guest").unwrap();
    let settings = InstanceSettings::default();
    let vm = local
        .launch(
            &LaunchRequest {
                image: &image,
                role: Role::Probe,
                settings: &settings,
                key: &guest_key,
                tags: Tags::new(),
            },
            &local_ledger,
        )
        .unwrap();
    let guest: Arc<dyn Transport> = Arc::from(local.connect(&vm, &guest_key, &settings).unwrap());
    let direct = |command: &str| -> ExecOutput {
        guest
            .run(command, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("`{command}` on the guest: {e}"))
    };
    direct("cloud-init status --wait >/dev/null 2>&1 || true");
    // Two services: one that systemd restarts, one that it does not.
    let out = direct(
        "printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/bakery-dummy.service && \
         printf '[Service]\\nExecStart=/bin/sleep infinity\\nRestart=always\\nRestartSec=1\\n' > /etc/systemd/system/bakery-restarting.service && \
         systemctl daemon-reload && systemctl start bakery-dummy bakery-restarting",
    );
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    let booted = started.elapsed();

    // The probe Bakery sees: an instance in moto, launched for SSM, whose Run Command is the
    // guest.
    let e = Endpoint::start();
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let clients = Clients::load(Some("us-east-1"), Some(&e.url())).unwrap();
    let p = AwsProvider::with_clients(
        clients.clone(),
        AwsSettings {
            transport: AwsTransport::Ssm,
            instance_profile: Some("bakery-ssm".into()),
            ..Default::default()
        },
        "test.yml",
    );
    let Launched {
        dir: _dir,
        ledger,
        key,
        instance,
    } = launch(
        &p,
        "run-20260101T000000-cccccc",
        Role::Probe,
        &settings,
        Tags::new(),
    );
    let relay = &e.instances.relay;
    relay.add(&instance.id, guest.clone());
    // Bakery's own way in: DescribeInstanceInformation until the agent is online, then the
    // SSM transport; the provider makes it so, and the test makes its own with quicker polls.
    let made = p.connect(&instance, &key, &settings).unwrap();
    assert_eq!(made.endpoint(), format!("ssm {}", instance.id));
    let ssm_transport = || -> Box<dyn Transport> {
        let t = SsmTransport::new(
            clients.rt.clone(),
            clients.ssm.clone(),
            &instance.id,
            SsmOptions {
                first_poll: Duration::from_millis(100),
                max_poll: Duration::from_secs(1),
                grace: Duration::from_secs(60),
            },
        );
        t.wait_managed(Duration::from_secs(60)).unwrap();
        Box::new(t)
    };
    let mut transport = ssm_transport();
    let probe = Probe {
        provider: &p,
        instance: &instance,
        key: &key,
        settings: &settings,
        ledger: &ledger,
    };

    let mut wrong = Vec::new();
    let suite = parse_suite(&experiments(), Path::new("chaos-ssm.yml")).unwrap();
    let main_pid = || {
        direct("systemctl show -p MainPID --value bakery-restarting")
            .stdout
            .trim()
            .to_string()
    };
    let pid_before = main_pid();
    let mut results = Vec::new();
    let ran = Instant::now();
    for exp in &suite.experiments {
        let first = relay.sent().len();
        let r = probe.run(exp, &mut transport, Duration::from_secs(30));
        let sent = relay.sent()[first..].to_vec();
        let want = if r.id.starts_with("pass-") {
            Status::Passed
        } else {
            Status::Failed
        };
        if r.status != want {
            wrong.push(format!("{}: {} ({})", r.id, r.status, r.message));
        }
        let inject = match exp.fault.kind.name() {
            "kill-process" => "the main process of",
            "disk-fill" => "fallocate -l",
            _ => "netem loss 100%",
        };
        let route = if exp.fault.kind.name() == "kill-process" {
            signal_travelled(&r, &sent, inject)
        } else {
            travelled(&sent, &tag_of(&r), inject, true).map(drop)
        };
        if let Err(why) = route {
            wrong.push(why);
        }
        // Every rollback ran and was verified, failing experiments included.
        let x = r.experiment.as_ref().unwrap();
        match x.phases.iter().find(|p| p.phase == chaos::Phase::Rollback) {
            Some(p) if p.status == Status::Passed => {}
            other => wrong.push(format!("{}: rollback {other:?}", r.id)),
        }
        results.push(r);
    }
    let experiments_took = ran.elapsed();
    let by_id = |id: &str| results.iter().find(|r| r.id == id).unwrap();

    // What the guest itself shows.
    let pid_after = main_pid();
    let restarts = direct("systemctl show -p NRestarts --value bakery-restarting");
    let dummy = direct("systemctl is-active bakery-dummy").stdout;
    let fill_files = direct("ls -a / | grep -c '^\\.bakery-chaos-' || true").stdout;
    let netem = direct("tc qdisc show dev eth0 | grep -c netem || true").stdout;

    // Bakery killed (or cut off) right after injecting: nobody rolls back, the switch does.
    let first = relay.sent().len();
    let abandoned = parse_suite(ABANDONED, Path::new("abandoned.yml")).unwrap();
    let mut cut: Box<dyn Transport> = Box::new(CutAfterInject {
        inner: ssm_transport(),
        cut: AtomicBool::new(false),
    });
    let grace = Duration::from_secs(10);
    let dead = probe.run(&abandoned.experiments[0], &mut cut, grace);
    let sent = relay.sent()[first..].to_vec();
    let tag = tag_of(&dead);
    let injected = travelled(&sent, &tag, "netem loss 100%", false);
    let armed_at = find(&sent, &format!("--unit={tag}-deadman")).map(|i| sent[i].at);
    let left_after_cut = direct(&format!(
        "tc qdisc show dev eth0 | grep -c 'netem.*loss 100%'; systemctl is-active {tag}-deadman.timer; true"
    ))
    .stdout;
    let deadline = Duration::from_secs(3) + grace;
    let gone_after = armed_at.map(|at| loop {
        let on = direct("tc qdisc show dev eth0 | grep -c netem || true");
        if on.stdout.trim() == "0" {
            break Some(at.elapsed());
        }
        if at.elapsed() > deadline + Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(250));
    });
    // The rollback removes the qdisc first, then its own files: give it the moment it needs.
    let mut after_switch = String::new();
    for _ in 0..40 {
        after_switch = direct(&format!(
            "ls /var/lib/bakery-chaos 2>/dev/null; systemctl list-units '{tag}-*' --all --no-legend --plain; true"
        ))
        .stdout;
        if after_switch.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // When the switch fired, by the guest's own clock: systemd's journal stamps the timer's
    // start (armed) and the rollback's start (fired). The runner's view adds the relay's and
    // the polls' delays, which an emulated guest on a busy host stretches by seconds.
    let journal = direct(&format!(
        "for u in timer service; do journalctl -q -o short-unix --no-pager UNIT={tag}-deadman.$u JOB_TYPE=start | head -n 1 | sed \"s/^/$u /\"; done"
    ))
    .stdout;
    let start_of = |unit: &str| -> Option<f64> {
        journal.lines().find_map(|l| {
            l.strip_prefix(unit)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
    };
    let fired_after = start_of("timer")
        .zip(start_of("service"))
        .map(|(armed, fired)| Duration::from_secs_f64(fired - armed));
    let sent_after_cut = relay.sent().len() - first - injected.clone().map_or(0, |i| i + 1);

    // The execution timeout reaches the guest: the script is stopped there.
    let timed_out = transport
        .exec(
            "sleep 31; echo late",
            Duration::from_secs(2),
            &mut |_, _| {},
        )
        .map(|o| o.stdout);
    let sleeping = |secs: u32| {
        direct(&format!(
            "for d in /proc/[0-9]*; do tr '\\0' ' ' < $d/cmdline 2>/dev/null; echo; done | grep -c '^sleep {secs} $' || true"
        ))
        .stdout
        .trim()
        .to_string()
    };
    std::thread::sleep(Duration::from_secs(1));
    let sleeping_31 = sleeping(31);
    // CancelCommand ends the command on the guest.
    let ssm = &clients.ssm;
    let command_id = clients
        .rt
        .block_on(
            ssm.send_command()
                .instance_ids(&instance.id)
                .document_name("AWS-RunShellScript")
                .parameters("commands", vec!["sleep 32".to_string()])
                .send(),
        )
        .unwrap()
        .command
        .and_then(|c| c.command_id)
        .unwrap();
    let running = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        sleeping(32) == "1"
    });
    clients
        .rt
        .block_on(ssm.cancel_command().command_id(&command_id).send())
        .unwrap();
    let mut cancelled = String::new();
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(250));
        let inv = clients.rt.block_on(
            ssm.get_command_invocation()
                .command_id(&command_id)
                .instance_id(&instance.id)
                .send(),
        );
        if let Ok(inv) = inv {
            cancelled = inv
                .status
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            if cancelled == "Cancelled" {
                break;
            }
        }
    }
    let sleeping_32 = sleeping(32);

    // Nothing of any fault is left, as Bakery sees it through SSM.
    let left = transport
        .run(
            "ls /var/lib/bakery-chaos 2>/dev/null; ls -a / | grep '^\\.bakery-chaos-'; \
             tc qdisc show | grep netem; systemctl list-units 'bakery-chaos-*' --no-legend --plain; \
             true",
            Duration::from_secs(60),
        )
        .unwrap()
        .stdout;
    eprintln!(
        "guest booted in {:.1}s; six experiments over SSM took {:.1}s; {} SendCommands in all; whole test {:.1}s",
        booted.as_secs_f64(),
        experiments_took.as_secs_f64(),
        relay.sent().len(),
        started.elapsed().as_secs_f64()
    );

    p.terminate(&instance, &ledger).unwrap();
    assert!(ledger.unwind(Some(&p)).is_empty());
    assert_eq!(e.leftovers(), Vec::<String>::new());
    local.terminate(&vm, &local_ledger).unwrap();
    assert!(local_ledger.unwind(None).is_empty());
    common::assert_nothing_left(&data);

    assert!(wrong.is_empty(), "wrong:\n{}", wrong.join("\n"));
    assert_eq!(left.trim(), "", "left on the probe");

    // The verdicts are the guest's.
    let kill = by_id("pass-kill-with-restart-policy");
    assert!(
        kill.experiment.as_ref().unwrap().journal.iter().any(|a| a
            .what
            .contains(&format!("sent SIGKILL to {pid_before}, the main process"))),
        "the guest's main process {pid_before} got the signal:\n{}",
        kill.output
    );
    assert_ne!(pid_after, pid_before, "systemd started a new process");
    assert!(
        restarts.stdout.trim().parse::<u32>().unwrap() >= 1,
        "{}",
        restarts.stdout
    );
    let no_restart = by_id("fail-kill-without-restart-policy");
    assert!(
        no_restart.message.starts_with("recovery:"),
        "{}",
        no_restart.message
    );
    assert_ne!(dummy.trim(), "active", "the guest's unit stayed down");
    let full = by_id("fail-disk-fill-during");
    assert!(full.message.starts_with("during:"), "{}", full.message);
    assert_eq!(fill_files.trim(), "0", "the fill files are gone");
    // The runner saw that it came through SSM and spared the agent's way out.
    let spared = by_id("pass-packet-loss-spares-the-ssm-channel");
    assert!(
        spared.output.contains("outgoing HTTPS and DNS spared"),
        "{}",
        spared.output
    );
    let lossy = by_id("fail-packet-loss-during");
    assert!(lossy.message.starts_with("during:"), "{}", lossy.message);
    assert!(lossy.message.contains("124"), "{}", lossy.message);
    assert_eq!(netem.trim(), "0", "the qdiscs are gone");

    // The abandoned fault: injected over SSM, then nothing more reached the probe, and the
    // switch fired at its deadline (by the guest's clock; the timer's accuracy is 1 s) and
    // removed the fault.
    assert_eq!(dead.status, Status::Failed, "{}", dead.message);
    assert!(dead.message.starts_with("rollback:"), "{}", dead.message);
    injected.unwrap();
    assert_eq!(sent_after_cut, 0, "nothing was sent after the cut");
    assert_eq!(
        left_after_cut.split_whitespace().collect::<Vec<_>>(),
        ["1", "active"],
        "the fault and its timer were in place after the cut"
    );
    let gone_after = gone_after
        .expect("the dead-man's timer was armed through SSM")
        .expect("the dead-man's switch removed the fault");
    let fired_after = fired_after.unwrap_or_else(|| {
        panic!("the guest's journal shows the switch armed and fired:\n{journal}")
    });
    eprintln!(
        "the dead-man's switch fired {:.1}s after it was armed by the guest's clock, and the runner saw the fault gone {:.1}s after it sent the arming (deadline {}s)",
        fired_after.as_secs_f64(),
        gone_after.as_secs_f64(),
        deadline.as_secs()
    );
    assert!(
        fired_after >= deadline - Duration::from_secs(1)
            && fired_after <= deadline + Duration::from_secs(2),
        "fired {:.1}s after arming; the deadline was {}s",
        fired_after.as_secs_f64(),
        deadline.as_secs()
    );
    assert!(
        gone_after >= deadline - Duration::from_secs(1),
        "removed {:.1}s after arming, before the deadline of {}s",
        gone_after.as_secs_f64(),
        deadline.as_secs()
    );
    assert_eq!(
        after_switch.trim(),
        "",
        "the switch cleaned up after itself"
    );

    // Execution timeout and cancel reach the guest.
    let err = timed_out.expect_err("the command outlived its execution timeout");
    assert!(err.to_string().contains("TimedOut"), "{err}");
    assert_eq!(
        sleeping_31, "0",
        "the timed-out script was stopped on the guest"
    );
    assert!(running, "the command to cancel ran on the guest");
    assert_eq!(cancelled, "Cancelled");
    assert_eq!(
        sleeping_32, "0",
        "the cancelled script was stopped on the guest"
    );
    assert_eq!(relay.cancelled.lock().unwrap().as_slice(), [command_id]);
}
