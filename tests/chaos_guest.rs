//! Failure-mode experiments on a real Debian 12 guest: every fault, passing and failing; the
//! dead-man's switch removing a fault nobody rolled back; SIGTERM of `bakery` during a fault.
//!
//! One probe serves every experiment of a test. Each experiment id starts with the verdict it
//! must get: `pass-`, `fail-` or `error-`.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bakery::chaos::{self, guest};
use bakery::cloud::local::LocalProvider;
use bakery::cloud::{Instance, LaunchRequest, Provider, Role, Tags};
use bakery::config::InstanceSettings;
use bakery::ledger::Ledger;
use bakery::suites::{parse_suite, CheckResult, RunOptions, Status};
use bakery::transport::ssh::KeyPair;
use bakery::transport::Transport;
use common::*;

/// A probe from the base image, driven through the library as the verify stage drives it.
struct Probe {
    provider: LocalProvider,
    ledger: std::sync::Arc<Ledger>,
    key: KeyPair,
    settings: InstanceSettings,
    instance: Instance,
    transport: Box<dyn Transport>,
}

impl Probe {
    fn boot(data: &Path) -> Probe {
        let provider = LocalProvider::new(data);
        let ledger = Ledger::create(&data.join("runs"), "r-chaos").unwrap();
        let image = provider.image(&base_image(data)).unwrap();
        let key = KeyPair::generate("chaos-test").unwrap();
        let settings = InstanceSettings::default();
        let instance = provider
            .launch(
                &LaunchRequest {
                    image: &image,
                    role: Role::Probe,
                    settings: &settings,
                    key: &key,
                    tags: Tags::new(),
                },
                &ledger,
            )
            .unwrap();
        let transport = provider.connect(&instance, &key, &settings).unwrap();
        transport
            .run(
                "cloud-init status --wait >/dev/null 2>&1 || true",
                Duration::from_secs(300),
            )
            .unwrap();
        Probe {
            provider,
            ledger,
            key,
            settings,
            instance,
            transport,
        }
    }

    fn sh(&self, command: &str) -> String {
        self.sh_within(command, Duration::from_secs(60))
    }

    fn sh_within(&self, command: &str, timeout: Duration) -> String {
        let out = self.transport.run(command, timeout).unwrap();
        assert_eq!(out.exit_code, 0, "`{command}`: {}", out.stderr);
        out.stdout
    }

    /// Runs every experiment of `yaml`; the verdicts that do not match their id's prefix are
    /// added to `wrong`.
    fn experiments(&mut self, yaml: &str, wrong: &mut Vec<String>) -> Vec<CheckResult> {
        let suite = parse_suite(yaml, Path::new("chaos-test.yml")).unwrap();
        let options = RunOptions {
            probe: self.instance.id.clone(),
            ..Default::default()
        };
        let mut results = Vec::new();
        for exp in &suite.experiments {
            let r = chaos::run_experiment(
                exp,
                &mut chaos::Target {
                    provider: &self.provider,
                    instance: &self.instance,
                    key: &self.key,
                    settings: &self.settings,
                    ledger: &self.ledger,
                    transport: &mut self.transport,
                    options: &options,
                    grace: Duration::from_secs(30),
                },
            );
            eprintln!("=== {} {}: {}\n{}", r.id, r.status, r.message, r.output);
            let want = match r.id.split('-').next() {
                Some("pass") => Status::Passed,
                Some("fail") => Status::Failed,
                Some("error") => Status::Error,
                _ => panic!("experiment ids start with pass-, fail- or error-"),
            };
            if r.status != want {
                wrong.push(format!("{}: {} ({})", r.id, r.status, r.message));
            }
            results.push(r);
        }
        results
    }

    /// A new connection, once the probe answers again (within its boot timeout).
    fn reconnect(&mut self) {
        self.transport = self
            .provider
            .connect(&self.instance, &self.key, &self.settings)
            .unwrap();
    }

    fn stop(self, data: &Path) {
        self.provider
            .terminate(&self.instance, &self.ledger)
            .unwrap();
        assert!(self.ledger.unwind(None).is_empty());
        assert_nothing_left(data);
    }
}

fn by_id<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|r| r.id == id).unwrap()
}

/// Faults made inside the guest, each passing and failing, and a missing tool.
const IN_GUEST: &str = r#"
experiments:
  - id: pass-kill-sshd
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
      - {id: ssh-port, port: {port: 22}}
    fault: {kill-process: {service: ssh}}
    recover-within: 15s
  - id: fail-kill-without-restart-policy
    steady-state:
      - {id: dummy-active, service: {name: bakery-dummy, running: true}}
    fault: {kill-process: {service: bakery-dummy}}
    recover-within: 3s
  - id: pass-kill-by-name
    steady-state:
      - {id: restarting-active, service: {name: bakery-restarting, running: true}}
    fault: {kill-process: {name: sleep, signal: TERM}}
    recover-within: 10s
  - id: error-kill-nothing
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {kill-process: {name: no-such-daemon}}
  - id: pass-stop-service
    steady-state:
      - {id: restarting-active, service: {name: bakery-restarting, running: true}}
    fault: {stop-service: {name: bakery-restarting}, duration: 3s}
    during:
      - {id: is-stopped, service: {name: bakery-restarting, running: false}}
    recover-within: 10s
  - id: fail-stop-service-during
    steady-state:
      - {id: restarting-active, service: {name: bakery-restarting, running: true}}
    fault: {stop-service: {name: bakery-restarting}, duration: 3s}
    during:
      - {id: still-active, service: {name: bakery-restarting, running: true}}
    recover-within: 10s
  - id: pass-disk-fill
    steady-state:
      - {id: root-has-room, mount: {path: /, usage: {lt: 90}}}
    fault: {disk-fill: {path: /, percent: 95}, duration: 4s}
    during:
      - {id: root-full, mount: {path: /, usage: {ge: 90}}}
    recover-within: 10s
  - id: fail-disk-fill-during
    steady-state:
      - {id: root-has-room, mount: {path: /, usage: {lt: 90}}}
    fault: {disk-fill: {path: /, percent: 95}, duration: 3s}
    during:
      - {id: root-half-empty, mount: {path: /, usage: {lt: 50}}}
    recover-within: 10s
  - id: pass-cpu-stress
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {cpu-stress: {workers: 2}, duration: 3s}
    during:
      - id: load-runs
        command: {run: "systemctl list-units 'bakery-chaos-*-load.service' --state=active --no-legend | wc -l", stdout: {ge: 1}}
    recover-within: 10s
  - id: pass-memory-stress
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {memory-stress: {percent: 60}, duration: 15s}
    during:
      - id: memory-taken
        eventually: 14s
        command:
          run: "a=$(sed -n 's/^MemAvailable:[[:space:]]*\\([0-9]*\\) kB/\\1/p' /proc/meminfo); t=$(sed -n 's/^MemTotal:[[:space:]]*\\([0-9]*\\) kB/\\1/p' /proc/meminfo); echo $((a * 100 / t))"
          stdout: {lt: 50}
      - {id: sshd-survives, service: {name: ssh, running: true}}
    recover-within: 20s
  - id: pass-io-stress
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {io-stress: {workers: 1}, duration: 3s}
    during:
      - id: writers-run
        command: {run: "systemctl list-units 'bakery-chaos-*-load.service' --state=active --no-legend | wc -l", stdout: {ge: 1}}
    recover-within: 10s
  - id: pass-network-latency
    steady-state:
      - {id: ssh-port, port: {port: 22}}
    fault: {network-latency: {delay: 300ms}, duration: 3s}
    during:
      - {id: netem-on, command: {run: "tc qdisc show dev eth0", stdout: [netem, "delay 300ms"]}}
    recover-within: 10s
  - id: pass-packet-loss-spares-ssh
    steady-state:
      - {id: ssh-port, port: {port: 22}}
    fault: {packet-loss: {percent: 100}, duration: 4s}
    during:
      - {id: control-channel-alive, command: {run: "tc qdisc show dev eth0", stdout: ["loss 100%"]}}
    recover-within: 10s
  - id: error-blackhole-without-firewall-tools
    steady-state:
      - {id: ssh-port, port: {port: 22}}
    fault: {blackhole-port: {port: 80}, duration: 3s}
  - id: pass-dns-failure
    steady-state:
      - {id: resolv-conf, file: {path: /etc/resolv.conf, contents: [nameserver]}}
    fault: {dns-failure: {}, duration: 3s}
    during:
      - {id: no-name-servers, file: {path: /etc/resolv.conf, contents: ["!nameserver"]}}
    recover-within: 10s
  - id: pass-clock-skew
    steady-state:
      - {id: clock-in-step, clock: {max-offset: 5s}}
    fault: {clock-skew: {offset: -600}, duration: 3s}
    during:
      - {id: clock-off, command: {run: "date +%s", stdout: {lt: 9999999999}}}
    recover-within: 10s
  - id: fail-clock-skew-during
    steady-state:
      - {id: clock-in-step, clock: {max-offset: 5s}}
    fault: {clock-skew: {offset: 3600}, duration: 3s}
    during:
      - {id: clock-still-in-step, clock: {max-offset: 5s}}
    recover-within: 10s
  - id: pass-metadata-unavailable
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {metadata-unavailable: {}, duration: 3s}
    during:
      - {id: route-dropped, command: {run: "ip route show type blackhole", stdout: ["169.254.169.254"]}}
    recover-within: 10s
  - id: fail-cpu-stress-during
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {cpu-stress: {workers: 1}, duration: 3s}
    during:
      - id: nothing-loads-the-cpu
        command: {run: "systemctl list-units 'bakery-chaos-*-load.service' --state=active --no-legend | wc -l", stdout: {lt: 1}}
    recover-within: 10s
  - id: fail-memory-stress-during
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {memory-stress: {percent: 60}, duration: 3s}
    during:
      - id: most-memory-available
        command:
          run: "a=$(sed -n 's/^MemAvailable:[[:space:]]*\\([0-9]*\\) kB/\\1/p' /proc/meminfo); t=$(sed -n 's/^MemTotal:[[:space:]]*\\([0-9]*\\) kB/\\1/p' /proc/meminfo); echo $((a * 100 / t))"
          stdout: {ge: 60}
    recover-within: 10s
  - id: fail-io-stress-during
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {io-stress: {workers: 1}, duration: 3s}
    during:
      - id: no-writers
        command: {run: "systemctl list-units 'bakery-chaos-*-load.service' --state=active --no-legend | wc -l", stdout: {lt: 1}}
    recover-within: 10s
  - id: fail-network-latency-during
    steady-state:
      - {id: ssh-port, port: {port: 22}}
    fault: {network-latency: {delay: 300ms}, duration: 3s}
    during:
      - {id: no-delay, command: {run: "tc qdisc show dev eth0", stdout: ["!netem"]}}
    recover-within: 10s
  - id: fail-packet-loss-during
    steady-state:
      - {id: ssh-port, port: {port: 22}}
    fault: {packet-loss: {percent: 100}, duration: 3s}
    during:
      - {id: no-loss, command: {run: "tc qdisc show dev eth0", stdout: ["!loss"]}}
    recover-within: 10s
  - id: fail-dns-failure-during
    steady-state:
      - {id: resolv-conf, file: {path: /etc/resolv.conf, contents: [nameserver]}}
    fault: {dns-failure: {}, duration: 3s}
    during:
      - {id: name-servers-kept, file: {path: /etc/resolv.conf, contents: [nameserver]}}
    recover-within: 10s
"#;

/// An agent that exits when the metadata service's route is gone, and has no restart policy
/// (started just before: the passing case above takes the route away too).
const AGENT_GIVES_UP: &str = r#"
experiments:
  - id: fail-metadata-agent-gives-up
    steady-state:
      - {id: agent-active, service: {name: bakery-imds-agent, running: true}}
    fault: {metadata-unavailable: {}, duration: 3s}
    recover-within: 5s
"#;

/// `blackhole-port` once the probe has nftables.
const WITH_NFTABLES: &str = r#"
experiments:
  - id: pass-blackhole-port
    steady-state:
      - {id: ssh-port, port: {port: 22}}
    fault: {blackhole-port: {port: 8080}, duration: 3s}
    during:
      - {id: rule-in-place, command: {run: "nft list ruleset", stdout: ["dport 8080", drop]}}
    recover-within: 10s
  - id: fail-blackhole-port-during
    steady-state:
      - {id: ssh-port, port: {port: 22}}
    fault: {blackhole-port: {port: 8080}, duration: 3s}
    during:
      - {id: no-rule, command: {run: "nft list ruleset", stdout: ["!8080"]}}
    recover-within: 10s
"#;

/// Faults made through the provider (QMP locally). The passing clean reboot is the local
/// example's `web-reboot.yml`, run on a real guest by tests/local_pipeline.rs: each boot costs a
/// minute or more, so it is not repeated here.
const THROUGH_PROVIDER: &str = r#"
experiments:
  - id: pass-stop-start
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    restores-units: true
    fault: {stop-start: {}}
    recover-within: 300s
  - id: pass-hard-reset
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {hard-reset: {}}
    recover-within: 300s
  - id: pass-pause
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {pause: {}, duration: 3s}
    recover-within: 30s
  - id: pass-network-partition
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {network-partition: {}, duration: 3s}
    recover-within: 30s
"#;

/// Failing cases of the provider's faults, one at a time, each after its setup. A reset, a
/// reboot and a stop-start lose what was only in memory (`/run`), so the steady state cannot
/// come back within its 30 s (on a slow host the probe is not even answering by then: that
/// rejects it too). A daemon that exits when its link goes down and has no restart policy
/// stays dead. A frozen guest's clock stands still, so after the pause it is behind, and
/// nothing on the base image sets it right within 10 s.
const PROVIDER_FAILS: &[(&str, &str)] = &[
    (
        "touch /run/bakery-marker",
        "experiments:\n  - id: fail-hard-reset-loses-run-files\n    steady-state: [{id: marker, file: {path: /run/bakery-marker}}]\n    fault: {hard-reset: {}}\n    recover-within: 30s\n",
    ),
    (
        "touch /run/bakery-marker",
        "experiments:\n  - id: fail-reboot-loses-run-files\n    steady-state: [{id: marker, file: {path: /run/bakery-marker}}]\n    fault: {reboot: {}}\n    recover-within: 30s\n",
    ),
    (
        "touch /run/bakery-marker",
        "experiments:\n  - id: fail-stop-start-loses-run-files\n    steady-state: [{id: marker, file: {path: /run/bakery-marker}}]\n    fault: {stop-start: {}}\n    recover-within: 30s\n",
    ),
    (
        "systemd-run --quiet --unit=bakery-carrier /bin/sh -c 'while ip link show eth0 | grep -q LOWER_UP; do sleep 0.2; done'",
        "experiments:\n  - id: fail-network-partition-kills-a-daemon\n    steady-state: [{id: carrier-watch, service: {name: bakery-carrier, running: true}}]\n    fault: {network-partition: {}, duration: 3s}\n    recover-within: 10s\n",
    ),
    (
        "true",
        "experiments:\n  - id: fail-pause-leaves-the-clock-behind\n    steady-state: [{id: clock-in-step, clock: {max-offset: 3s}}]\n    fault: {pause: {}, duration: 8s}\n    recover-within: 10s\n",
    ),
];

#[test]
fn in_guest_faults_pass_and_fail_on_a_real_guest() {
    let _vm = vm_lock();
    let data = data_dir("chaos-faults");
    let mut probe = Probe::boot(&data);
    // Two services: one that systemd restarts, one that it does not.
    probe.sh(
        "printf '[Service]\\nExecStart=/bin/sleep infinity\\n' > /etc/systemd/system/bakery-dummy.service && \
         printf '[Service]\\nExecStart=/bin/sleep infinity\\nRestart=always\\nRestartSec=1\\n' > /etc/systemd/system/bakery-restarting.service && \
         printf '[Service]\\nExecStart=/bin/sh -c \"while ! ip route show type blackhole | grep -q 169.254.169.254; do sleep 0.5; done\"\\n' > /etc/systemd/system/bakery-imds-agent.service && \
         systemctl daemon-reload && systemctl start bakery-dummy bakery-restarting",
    );
    let mut wrong = Vec::new();
    let started = Instant::now();
    let mut r = probe.experiments(IN_GUEST, &mut wrong);
    probe.sh("systemctl start bakery-imds-agent");
    r.extend(probe.experiments(AGENT_GIVES_UP, &mut wrong));
    // blackhole-port needs nftables, which the base image lacks (the error case above).
    probe.sh_within(
        "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
         apt-get install -y -qq --no-install-recommends nftables >/dev/null",
        Duration::from_secs(300),
    );
    r.extend(probe.experiments(WITH_NFTABLES, &mut wrong));
    the_dead_mans_switch_removes_a_fault_nobody_rolled_back(&probe);
    eprintln!(
        "in-guest experiments: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // Nothing of any fault is left on the probe.
    let left = probe.sh(
        "ls /var/lib/bakery-chaos 2>/dev/null; ls /.bakery-chaos-* 2>/dev/null; \
         tc qdisc show | grep netem; ip route show type blackhole; nft list ruleset | grep 8080; \
         systemctl list-units 'bakery-chaos-*' --no-legend --plain; true",
    );

    probe.stop(&data);

    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    assert_eq!(left.trim(), "", "left on the probe");
    let kill = by_id(&r, "fail-kill-without-restart-policy");
    assert!(kill.message.starts_with("recovery:"), "{}", kill.message);
    assert_eq!(kill.experiment.as_ref().unwrap().time_to_recover_secs, None);
    let sshd = by_id(&r, "pass-kill-sshd").experiment.as_ref().unwrap();
    assert!(sshd.time_to_recover_secs.is_some());
    assert!(by_id(&r, "error-kill-nothing")
        .message
        .contains("no process named no-such-daemon"));
    assert!(by_id(&r, "fail-stop-service-during")
        .message
        .starts_with("during:"));
    assert!(by_id(&r, "fail-disk-fill-during")
        .message
        .starts_with("during:"));
    for id in [
        "fail-clock-skew-during",
        "fail-cpu-stress-during",
        "fail-memory-stress-during",
        "fail-io-stress-during",
        "fail-network-latency-during",
        "fail-packet-loss-during",
        "fail-dns-failure-during",
        "fail-blackhole-port-during",
    ] {
        let m = &by_id(&r, id).message;
        assert!(m.starts_with("during:"), "{id}: {m}");
    }
    let agent = by_id(&r, "fail-metadata-agent-gives-up");
    assert!(agent.message.starts_with("recovery:"), "{}", agent.message);
    let fw = by_id(&r, "error-blackhole-without-firewall-tools");
    assert!(
        fw.message.contains("nft (nftables) or iptables"),
        "a missing tool is named: {}",
        fw.message
    );
    // Every rollback ran and was verified, failing experiments included.
    for res in &r {
        let x = res.experiment.as_ref().unwrap();
        let rollback = x.phases.iter().find(|p| p.phase == chaos::Phase::Rollback);
        let rollback = rollback.unwrap_or_else(|| panic!("{}: no rollback", res.id));
        assert_eq!(
            rollback.status,
            Status::Passed,
            "{}: {}",
            res.id,
            rollback.detail
        );
    }
}

#[test]
fn provider_faults_pass_and_fail_on_a_real_guest() {
    let _vm = vm_lock();
    let data = data_dir("chaos-provider");
    let mut probe = Probe::boot(&data);
    let mut wrong = Vec::new();
    let started = Instant::now();
    let mut rp = probe.experiments(THROUGH_PROVIDER, &mut wrong);
    for (setup, yaml) in PROVIDER_FAILS {
        // The probe may still be coming back from the previous failing case.
        probe.reconnect();
        probe.sh(setup);
        rp.extend(probe.experiments(yaml, &mut wrong));
    }
    eprintln!(
        "provider experiments: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    probe.stop(&data);
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
    for res in &rp {
        let x = res.experiment.as_ref().unwrap();
        let rollback = x.phases.iter().find(|p| p.phase == chaos::Phase::Rollback);
        let rollback = rollback.unwrap_or_else(|| panic!("{}: no rollback", res.id));
        assert_eq!(
            rollback.status,
            Status::Passed,
            "{}: {}",
            res.id,
            rollback.detail
        );
    }
    let restarted = by_id(&rp, "pass-stop-start").experiment.as_ref().unwrap();
    assert!(restarted.time_to_recover_secs.is_some());
    assert!(
        restarted
            .journal
            .iter()
            .any(|a| a.what.contains("enabled services are active")),
        "the services that ran before are listed"
    );
    for id in [
        "fail-hard-reset-loses-run-files",
        "fail-reboot-loses-run-files",
        "fail-stop-start-loses-run-files",
        "fail-network-partition-kills-a-daemon",
        "fail-pause-leaves-the-clock-behind",
    ] {
        let m = &by_id(&rp, id).message;
        assert!(m.starts_with("recovery:"), "{id}: {m}");
    }
}

/// The dead-man's switch removes a fault nobody rolled back (on the in-guest test's probe).
fn the_dead_mans_switch_removes_a_fault_nobody_rolled_back(probe: &Probe) {
    // As if Bakery were killed right after injecting: nobody runs the rollback.
    let kind = parse_suite(
        "experiments:\n  - id: x\n    steady-state: [{id: a, command: {run: 'true'}}]\n    fault: {disk-fill: {percent: 95}, duration: 2s}\n",
        Path::new("t.yml"),
    )
    .unwrap()
    .experiments[0]
        .fault
        .kind
        .clone();
    let control = guest::Control {
        ssh_port: 22,
        https: false,
    };
    let plan = guest::plan(
        &kind,
        "bakery-chaos-deadman1",
        Duration::from_secs(6),
        control,
    )
    .unwrap();
    let t = probe.transport.as_ref();
    let prepared = t.run(&plan.prepare(), Duration::from_secs(30)).unwrap();
    assert_eq!(prepared.exit_code, 0, "{}", prepared.stderr);
    let injected = t.run(&plan.inject, Duration::from_secs(60)).unwrap();
    assert_eq!(injected.exit_code, 0, "{}", injected.stderr);
    let armed_at = Instant::now();
    assert_ne!(
        t.run(&plan.verify, Duration::from_secs(30))
            .unwrap()
            .exit_code,
        0,
        "the fault is in place"
    );
    // The switch fires 6 s after arming; give it that and a margin.
    let gone = loop {
        let v = t.run(&plan.verify, Duration::from_secs(30)).unwrap();
        if v.exit_code == 0 {
            break true;
        }
        if armed_at.elapsed() > Duration::from_secs(40) {
            eprintln!("still there: {}", v.stdout);
            break false;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(gone, "the dead-man's switch removed the fault");
}

const SIGTERM_PIPELINE: &str = r#"
provider: local
source:
  local: debian-12
image:
  name: "unused-{{timestamp}}"
verify:
  suites: [hold.yml]
  junit: results/junit.xml
"#;

const HOLD: &str = r#"
name: hold
experiments:
  - id: long-disk-fill
    steady-state:
      - {id: ssh-active, service: {name: ssh, running: true}}
    fault: {disk-fill: {percent: 95}, duration: 300s}
"#;

#[test]
fn sigterm_during_a_fault_stops_the_run_and_leaves_nothing() {
    let _vm = vm_lock();
    let data = data_dir("chaos-sigterm");
    let dir = data.join("pipeline");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bakery.yml"), SIGTERM_PIPELINE).unwrap();
    std::fs::write(dir.join("hold.yml"), HOLD).unwrap();
    let base = base_image(&data);
    let mut child = bakery(&data)
        .args(["verify", "-f"])
        .arg(dir.join("bakery.yml"))
        .args(["--image", &base])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the fault to be on the ledger.
    let started = Instant::now();
    let on_ledger = loop {
        let text: String = std::fs::read_dir(data.join("runs"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        if text.contains("\"type\": \"fault\"") {
            break true;
        }
        if started.elapsed() > Duration::from_secs(300) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(on_ledger, "the fault was recorded on the ledger");
    std::thread::sleep(Duration::from_secs(2));
    // SAFETY: kill has no memory effects; the pid is our own child's.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    eprintln!("{err}");
    assert_eq!(status.code(), Some(143), "SIGTERM exits 143");
    assert_nothing_left(&data);
}
