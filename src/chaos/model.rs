//! Experiments as written in suite files: a steady state, one fault, checks during the fault,
//! how soon the steady state must be back, and the fault's parameters.
//!
//! ```yaml
//! experiments:
//!   - id: nginx-sigkill
//!     title: nginx is back within 10 s of a SIGKILL
//!     steady-state:
//!       - {id: serves, http: {url: "http://127.0.0.1/"}}
//!     fault:
//!       kill-process: {service: nginx}
//!     recover-within: 10s
//! ```

use std::borrow::Cow;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use crate::config::HumanDuration;
use crate::suites::Check;

/// How long a sustained fault lasts when `duration` is not given.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// How long the steady state has to come back when `recover-within` is not given.
pub const DEFAULT_RECOVER_WITHIN: Duration = Duration::from_secs(60);

/// One experiment: steady state → fault → observe → rollback → steady state.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// Unique within the suite (checks and experiments share the id space).
    pub id: String,
    /// A sentence for reports.
    pub title: Option<String>,
    /// Labels for `--tag` filters.
    pub tags: Vec<String>,
    /// When set, the experiment is reported as skipped with this reason.
    pub skip: Option<String>,
    /// Checks that must hold before the fault and again after it.
    pub steady_state: Vec<Check>,
    /// The fault.
    pub fault: Fault,
    /// Checks that must hold while the fault is active.
    pub during: Vec<Check>,
    /// After the fault ends, the steady state must hold again within this time.
    pub recover_within: Duration,
    /// Every service that was enabled and active before the fault must be active again.
    pub restores_units: bool,
}

impl Experiment {
    /// The title, or the id when there is none.
    pub fn title_or_id(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.id)
    }
}

/// The experiment as written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Experiment")]
pub struct RawExperiment {
    /// Unique within the suite.
    pub id: String,
    /// A sentence for reports.
    pub title: Option<String>,
    /// Labels for `--tag` filters.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Report the experiment as skipped with this reason.
    pub skip: Option<String>,
    /// Checks (any resource type) that must hold before the fault, and again after it.
    pub steady_state: Vec<Check>,
    /// The one fault to inject.
    pub fault: Fault,
    /// Checks that must hold while the fault is active (sustained faults only).
    #[serde(default)]
    pub during: Vec<Check>,
    /// After the fault ends, the steady state must hold again within this time (default 60s).
    pub recover_within: Option<HumanDuration>,
    /// Every systemd service that was enabled and active before the fault must be active again
    /// for the steady state to hold (default false).
    #[serde(default)]
    pub restores_units: bool,
}

impl TryFrom<RawExperiment> for Experiment {
    type Error = String;
    fn try_from(raw: RawExperiment) -> Result<Self, String> {
        if raw.id.trim().is_empty() {
            return Err("an experiment `id` cannot be empty".into());
        }
        if raw.steady_state.is_empty() {
            return Err(format!(
                "experiment `{}`: `steady-state` needs at least one check: without one nothing shows that the system recovered",
                raw.id
            ));
        }
        if !raw.during.is_empty() && !raw.fault.kind.sustained() {
            return Err(format!(
                "experiment `{}`: `during` checks need a fault that lasts (`{}` is over in an instant); accepted with: {}",
                raw.id,
                raw.fault.kind.name(),
                FaultKind::SUSTAINED.join(", ")
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for c in raw.steady_state.iter().chain(&raw.during) {
            if !ids.insert(c.id.as_str()) {
                return Err(format!(
                    "experiment `{}`: duplicate check id `{}` in `steady-state`/`during`",
                    raw.id, c.id
                ));
            }
        }
        Ok(Experiment {
            id: raw.id,
            title: raw.title,
            tags: raw.tags,
            skip: raw.skip,
            steady_state: raw.steady_state,
            fault: raw.fault,
            during: raw.during,
            recover_within: raw
                .recover_within
                .map(|d| d.0)
                .unwrap_or(DEFAULT_RECOVER_WITHIN),
            restores_units: raw.restores_units,
        })
    }
}

impl<'de> Deserialize<'de> for Experiment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Experiment::try_from(RawExperiment::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Experiment {
    fn schema_name() -> Cow<'static, str> {
        RawExperiment::schema_name()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        RawExperiment::json_schema(g)
    }
}

/// A fault and how long it lasts.
#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: FaultKind,
    /// How long a sustained fault is held (ignored by instant ones).
    pub duration: Duration,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    // Through the provider.
    Reboot,
    HardReset,
    StopStart,
    Pause,
    NetworkPartition,
    // Inside the probe.
    KillProcess(KillProcess),
    StopService(ServiceName),
    DiskFill(DiskFill),
    CpuStress(Stress),
    MemoryStress(MemoryStress),
    IoStress(Stress),
    NetworkLatency(Latency),
    PacketLoss(PacketLoss),
    BlackholePort(Blackhole),
    DnsFailure(Empty),
    ClockSkew(ClockSkew),
    MetadataUnavailable(Empty),
}

impl FaultKind {
    /// Every fault key, as written.
    pub const NAMES: &'static [&'static str] = &[
        "reboot",
        "hard-reset",
        "stop-start",
        "pause",
        "network-partition",
        "kill-process",
        "stop-service",
        "disk-fill",
        "cpu-stress",
        "memory-stress",
        "io-stress",
        "network-latency",
        "packet-loss",
        "blackhole-port",
        "dns-failure",
        "clock-skew",
        "metadata-unavailable",
    ];

    /// The faults that last for `duration`.
    pub const SUSTAINED: &'static [&'static str] = &[
        "pause",
        "network-partition",
        "stop-service",
        "disk-fill",
        "cpu-stress",
        "memory-stress",
        "io-stress",
        "network-latency",
        "packet-loss",
        "blackhole-port",
        "dns-failure",
        "clock-skew",
        "metadata-unavailable",
    ];

    /// The key the fault is written with.
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Reboot => "reboot",
            FaultKind::HardReset => "hard-reset",
            FaultKind::StopStart => "stop-start",
            FaultKind::Pause => "pause",
            FaultKind::NetworkPartition => "network-partition",
            FaultKind::KillProcess(_) => "kill-process",
            FaultKind::StopService(_) => "stop-service",
            FaultKind::DiskFill(_) => "disk-fill",
            FaultKind::CpuStress(_) => "cpu-stress",
            FaultKind::MemoryStress(_) => "memory-stress",
            FaultKind::IoStress(_) => "io-stress",
            FaultKind::NetworkLatency(_) => "network-latency",
            FaultKind::PacketLoss(_) => "packet-loss",
            FaultKind::BlackholePort(_) => "blackhole-port",
            FaultKind::DnsFailure(_) => "dns-failure",
            FaultKind::ClockSkew(_) => "clock-skew",
            FaultKind::MetadataUnavailable(_) => "metadata-unavailable",
        }
    }

    /// Whether the fault lasts for a duration (else it is over once injected).
    pub fn sustained(&self) -> bool {
        Self::SUSTAINED.contains(&self.name())
    }

    /// Whether the provider injects it (else a script on the probe does).
    pub fn through_provider(&self) -> bool {
        matches!(
            self,
            FaultKind::Reboot
                | FaultKind::HardReset
                | FaultKind::StopStart
                | FaultKind::Pause
                | FaultKind::NetworkPartition
        )
    }

    /// Whether the fault is over once injected and leaves nothing on the probe to undo (a
    /// signal sent): no rollback, no dead-man's switch, no ledger entry.
    pub fn leaves_nothing(&self) -> bool {
        matches!(self, FaultKind::KillProcess(_))
    }

    /// Whether the instance boots again (its boot id must change).
    pub fn restarts(&self) -> bool {
        matches!(
            self,
            FaultKind::Reboot | FaultKind::HardReset | FaultKind::StopStart
        )
    }
}

/// A fault without parameters: `dns-failure: {}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// `kill-process`: a signal to processes by name, or to a service's main process.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KillProcess {
    /// Executable name (as in `/proc/PID/comm`): every process of that name gets the signal.
    pub name: Option<String>,
    /// A systemd service whose main process gets the signal (`ssh`, `nginx`).
    pub service: Option<String>,
    /// The signal (default `KILL`): `KILL`, `TERM`, `SEGV`, `ABRT`, ...
    #[serde(default = "default_signal")]
    pub signal: String,
}

fn default_signal() -> String {
    "KILL".into()
}

/// `stop-service`: a systemd service stopped for the duration.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceName {
    /// The unit (`.service` implied).
    pub name: String,
}

/// `disk-fill`: a file filling a filesystem.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskFill {
    /// A directory on the filesystem to fill (default `/`).
    #[serde(default = "default_fill_path")]
    pub path: String,
    /// Fill the filesystem up to this many percent of its blocks (1-100, default 95).
    #[serde(default = "default_fill_percent")]
    pub percent: u8,
}

fn default_fill_path() -> String {
    "/".into()
}
fn default_fill_percent() -> u8 {
    95
}

/// `cpu-stress` and `io-stress`: busy workers.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Stress {
    /// How many workers (default: one per CPU).
    pub workers: Option<u32>,
}

/// `memory-stress`: memory held for the duration.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryStress {
    /// How much of the memory available now to take, in percent (1-100, default 90).
    #[serde(default = "default_memory_percent")]
    pub percent: u8,
}

fn default_memory_percent() -> u8 {
    90
}

/// `network-latency`: outgoing packets delayed (the control channel excepted).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Latency {
    /// Added delay (default 200ms).
    #[serde(default = "default_delay")]
    pub delay: HumanDuration,
    /// Random variation around the delay (default none).
    pub jitter: Option<HumanDuration>,
    /// The interface (default: the one of the default route).
    pub interface: Option<String>,
}

fn default_delay() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}

/// `packet-loss`: outgoing packets dropped (the control channel excepted).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PacketLoss {
    /// Percent of packets dropped (1-100, default 20).
    #[serde(default = "default_loss")]
    pub percent: u8,
    /// The interface (default: the one of the default route).
    pub interface: Option<String>,
}

fn default_loss() -> u8 {
    20
}

/// `blackhole-port`: packets to a local port dropped (with nftables, or iptables).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blackhole {
    /// The port (never the control channel's).
    pub port: u16,
    /// `tcp` (default) or `udp`.
    #[serde(default = "default_protocol")]
    pub protocol: String,
}

fn default_protocol() -> String {
    "tcp".into()
}

/// `clock-skew`: the system clock moved.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockSkew {
    /// Seconds to move the clock by; negative moves it back (default 3600).
    #[serde(default = "default_offset")]
    pub offset: i64,
}

fn default_offset() -> i64 {
    3600
}

/// The fault as written: one key per fault, plus `duration`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[schemars(rename = "Fault")]
pub struct RawFault {
    /// How long a sustained fault is held (default 30s).
    pub duration: Option<HumanDuration>,
    /// (provider) A clean reboot of the instance.
    pub reboot: Option<Empty>,
    /// (provider) A power cycle without shutdown.
    pub hard_reset: Option<Empty>,
    /// (provider) Power off, then start again (a new host on EC2, a new QEMU process locally).
    pub stop_start: Option<Empty>,
    /// (provider) The instance frozen for the duration.
    pub pause: Option<Empty>,
    /// (provider) The instance's network link down for the duration.
    pub network_partition: Option<Empty>,
    /// A signal to processes by name, or to a service's main process.
    pub kill_process: Option<KillProcess>,
    /// A systemd service stopped for the duration.
    pub stop_service: Option<ServiceName>,
    /// A filesystem filled to a percentage.
    pub disk_fill: Option<DiskFill>,
    /// CPUs kept busy.
    pub cpu_stress: Option<Stress>,
    /// Memory taken.
    pub memory_stress: Option<MemoryStress>,
    /// The disk kept busy with writes.
    pub io_stress: Option<Stress>,
    /// Outgoing packets delayed.
    pub network_latency: Option<Latency>,
    /// Outgoing packets dropped.
    pub packet_loss: Option<PacketLoss>,
    /// Incoming packets to a port dropped.
    pub blackhole_port: Option<Blackhole>,
    /// Name resolution fails.
    pub dns_failure: Option<Empty>,
    /// The clock moved.
    pub clock_skew: Option<ClockSkew>,
    /// The instance metadata service (169.254.169.254) unreachable.
    pub metadata_unavailable: Option<Empty>,
}

impl TryFrom<RawFault> for Fault {
    type Error = String;
    fn try_from(r: RawFault) -> Result<Self, String> {
        let mut found: Vec<FaultKind> = Vec::new();
        found.extend(r.reboot.map(|_| FaultKind::Reboot));
        found.extend(r.hard_reset.map(|_| FaultKind::HardReset));
        found.extend(r.stop_start.map(|_| FaultKind::StopStart));
        found.extend(r.pause.map(|_| FaultKind::Pause));
        found.extend(r.network_partition.map(|_| FaultKind::NetworkPartition));
        found.extend(r.kill_process.map(FaultKind::KillProcess));
        found.extend(r.stop_service.map(FaultKind::StopService));
        found.extend(r.disk_fill.map(FaultKind::DiskFill));
        found.extend(r.cpu_stress.map(FaultKind::CpuStress));
        found.extend(r.memory_stress.map(FaultKind::MemoryStress));
        found.extend(r.io_stress.map(FaultKind::IoStress));
        found.extend(r.network_latency.map(FaultKind::NetworkLatency));
        found.extend(r.packet_loss.map(FaultKind::PacketLoss));
        found.extend(r.blackhole_port.map(FaultKind::BlackholePort));
        found.extend(r.dns_failure.map(FaultKind::DnsFailure));
        found.extend(r.clock_skew.map(FaultKind::ClockSkew));
        found.extend(r.metadata_unavailable.map(FaultKind::MetadataUnavailable));
        if found.len() != 1 {
            let names: Vec<String> = found.iter().map(|k| format!("`{}`", k.name())).collect();
            return Err(format!(
                "a fault needs exactly one of its keys, found {}; accepted: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                },
                FaultKind::NAMES.join(", ")
            ));
        }
        let kind = found.remove(0);
        validate(&kind)?;
        if r.duration.is_some() && !kind.sustained() {
            return Err(format!(
                "`duration` does not apply to `{}`, which is over in an instant; it applies to: {}",
                kind.name(),
                FaultKind::SUSTAINED.join(", ")
            ));
        }
        let duration = r.duration.map(|d| d.0).unwrap_or(DEFAULT_DURATION);
        if kind.sustained() && duration.is_zero() {
            return Err(format!("`{}` needs a `duration` above 0s", kind.name()));
        }
        Ok(Fault { kind, duration })
    }
}

fn percent(key: &str, p: u8) -> Result<(), String> {
    if (1..=100).contains(&p) {
        Ok(())
    } else {
        Err(format!("`{key}.percent` must be 1 to 100, got {p}"))
    }
}

fn validate(kind: &FaultKind) -> Result<(), String> {
    let word = |key: &str, what: &str, v: &str| {
        if !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@:".contains(&b))
        {
            Ok(())
        } else {
            Err(format!(
                "`{key}` must be a {what} of letters, digits and `-_.@:`, got `{v}`"
            ))
        }
    };
    match kind {
        FaultKind::KillProcess(k) => {
            match (&k.name, &k.service) {
                (Some(n), None) => word("kill-process.name", "process name", n)?,
                (None, Some(s)) => word("kill-process.service", "unit name", s)?,
                _ => {
                    return Err(
                        "`kill-process` needs exactly one of `name` (an executable name) or `service` (a systemd service)".into(),
                    )
                }
            }
            let sig = k.signal.trim_start_matches("SIG");
            if !sig
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                || sig.is_empty()
            {
                return Err(format!(
                    "`kill-process.signal` must be a signal name such as `KILL` or `TERM`, got `{}`",
                    k.signal
                ));
            }
            Ok(())
        }
        FaultKind::StopService(s) => word("stop-service.name", "unit name", &s.name),
        FaultKind::DiskFill(d) => {
            percent("disk-fill", d.percent)?;
            if !d.path.starts_with('/') || d.path.contains('\'') {
                return Err(format!(
                    "`disk-fill.path` must be an absolute path, got `{}`",
                    d.path
                ));
            }
            Ok(())
        }
        FaultKind::MemoryStress(m) => percent("memory-stress", m.percent),
        FaultKind::PacketLoss(p) => {
            percent("packet-loss", p.percent)?;
            p.interface.as_deref().map_or(Ok(()), |i| {
                word("packet-loss.interface", "interface name", i)
            })
        }
        FaultKind::NetworkLatency(l) => l.interface.as_deref().map_or(Ok(()), |i| {
            word("network-latency.interface", "interface name", i)
        }),
        FaultKind::BlackholePort(b) => {
            if b.port == 0 {
                return Err("`blackhole-port.port` must be 1 to 65535".into());
            }
            if b.port == 22 && b.protocol == "tcp" {
                return Err(
                    "`blackhole-port.port` 22 would cut Bakery's own connection to the probe; choose another port".into(),
                );
            }
            if b.protocol != "tcp" && b.protocol != "udp" {
                return Err(format!(
                    "`blackhole-port.protocol` must be `tcp` or `udp`, got `{}`",
                    b.protocol
                ));
            }
            Ok(())
        }
        FaultKind::CpuStress(s) | FaultKind::IoStress(s) => match s.workers {
            Some(0) => Err("`workers` must be at least 1".into()),
            _ => Ok(()),
        },
        FaultKind::ClockSkew(c) if c.offset == 0 => Err("`clock-skew.offset` must not be 0".into()),
        _ => Ok(()),
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fault::try_from(RawFault::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Fault {
    fn schema_name() -> Cow<'static, str> {
        RawFault::schema_name()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        RawFault::json_schema(g)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::suites::parse_suite;

    fn parse(yaml: &str) -> crate::Result<crate::suites::Suite> {
        parse_suite(yaml, Path::new("chaos.yml"))
    }

    fn err(yaml: &str) -> String {
        parse(yaml).unwrap_err().to_string()
    }

    const STEADY: &str = "    steady-state: [{id: up, service: {name: ssh}}]\n";

    #[test]
    fn an_experiment_reads_with_its_fault_and_defaults() {
        let s = parse(&format!(
            "name: c\nexperiments:\n  - id: fill\n    title: fills\n{STEADY}    fault: {{disk-fill: {{percent: 90}}, duration: 5s}}\n    during: [{{id: d, mount: {{path: /}}}}]\n    recover-within: 7s\n"
        ))
        .unwrap();
        let e = &s.experiments[0];
        assert_eq!(e.title_or_id(), "fills");
        assert_eq!(e.recover_within, Duration::from_secs(7));
        assert_eq!(e.fault.duration, Duration::from_secs(5));
        assert_eq!(
            e.fault.kind,
            FaultKind::DiskFill(DiskFill {
                path: "/".into(),
                percent: 90
            })
        );
        assert!(s.checks.is_empty());
        let s = parse(&format!(
            "experiments:\n  - id: k\n{STEADY}    fault: {{reboot: {{}}}}\n"
        ))
        .unwrap();
        assert_eq!(s.experiments[0].recover_within, DEFAULT_RECOVER_WITHIN);
        assert!(s.experiments[0].fault.kind.restarts());
    }

    #[test]
    fn mistakes_name_the_place_and_what_is_accepted() {
        let e = err(&format!(
            "experiments:\n  - id: x\n{STEADY}    fault: {{disk-full: {{}}}}\n"
        ));
        assert!(e.starts_with("chaos.yml:4:"), "{e}");
        assert!(e.contains("unknown field `disk-full`"), "{e}");
        assert!(e.contains("`disk-fill`"), "{e}");
        let e = err(&format!(
            "experiments:\n  - id: x\n{STEADY}    fault: {{duration: 3s}}\n"
        ));
        assert!(
            e.contains("found none; accepted: reboot, hard-reset"),
            "{e}"
        );
        let e = err(&format!(
            "experiments:\n  - id: x\n{STEADY}    fault: {{reboot: {{}}, duration: 3s}}\n"
        ));
        assert!(e.contains("`duration` does not apply to `reboot`"), "{e}");
        let e = err(&format!(
            "experiments:\n  - id: x\n{STEADY}    fault: {{disk-fill: {{percent: 120}}}}\n"
        ));
        assert!(
            e.contains("`disk-fill.percent` must be 1 to 100, got 120"),
            "{e}"
        );
        let e = err(&format!(
            "experiments:\n  - id: x\n{STEADY}    fault: {{blackhole-port: {{port: 22}}}}\n"
        ));
        assert!(e.contains("would cut Bakery's own connection"), "{e}");
        let e = err(&format!(
            "experiments:\n  - id: x\n{STEADY}    fault: {{kill-process: {{name: 'a;b'}}}}\n"
        ));
        assert!(
            e.contains("`kill-process.name` must be a process name"),
            "{e}"
        );
        let e = err("experiments:\n  - id: x\n    steady-state: []\n    fault: {reboot: {}}\n");
        assert!(e.contains("`steady-state` needs at least one check"), "{e}");
        let e = err(&format!(
            "experiments:\n  - id: x\n{STEADY}    fault: {{reboot: {{}}}}\n    during: [{{id: d, mount: {{path: /}}}}]\n"
        ));
        assert!(e.contains("`during` checks need a fault that lasts"), "{e}");
        let e = err(&format!(
            "checks: [{{id: x, command: {{run: 'true'}}}}]\nexperiments:\n  - id: x\n{STEADY}    fault: {{reboot: {{}}}}\n"
        ));
        assert!(e.contains("duplicate id `x`"), "{e}");
    }

    #[test]
    fn the_builtin_suite_is_embedded_and_valid() {
        let s = crate::suites::builtin::suite("chaos-systemd").unwrap();
        assert_eq!(s.name, "chaos-systemd");
        assert_eq!(s.probe.as_deref(), Some("chaos"));
        let faults: Vec<&str> = s.experiments.iter().map(|e| e.fault.kind.name()).collect();
        for f in [
            "reboot",
            "stop-start",
            "kill-process",
            "disk-fill",
            "memory-stress",
            "packet-loss",
        ] {
            assert!(faults.contains(&f), "{f} missing from {faults:?}");
        }
        let ids: Vec<&str> = s.experiments.iter().map(|e| e.id.as_str()).collect();
        assert!(!ids
            .iter()
            .any(|i| i.ends_with("-sigkill") && *i != "sshd-sigkill"));
    }

    #[test]
    fn the_builtin_suite_takes_its_variables_from_the_pipeline() {
        let given: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"services": ["nginx", "cron"], "service_recover_within": "10s", "disk_fill_percent": 90}"#,
        )
        .unwrap();
        let s = crate::suites::builtin::suite_with("chaos-systemd", &given).unwrap();
        let by_id = |id: &str| s.experiments.iter().find(|e| e.id == id).unwrap();
        for service in ["nginx", "cron"] {
            let e = by_id(&format!("{service}-sigkill"));
            assert_eq!(e.recover_within, std::time::Duration::from_secs(10));
            assert_eq!(e.fault.kind.name(), "kill-process");
        }
        assert_eq!(
            by_id("sshd-sigkill").recover_within,
            std::time::Duration::from_secs(10)
        );
        assert!(by_id("root-disk-full").title_or_id().contains("90 %"));

        let wrong = |json: &str| {
            let given = serde_json::from_str(json).unwrap();
            crate::suites::builtin::suite_with("chaos-systemd", &given)
                .unwrap_err()
                .to_string()
        };
        let e = wrong(r#"{"service": ["nginx"]}"#);
        assert!(
            e.contains("variables.service: `chaos-systemd` has no such variable; it has ssh_service, services"),
            "{e}"
        );
        let e = wrong(r#"{"services": "nginx"}"#);
        assert!(
            e.contains("variables.services: expected a list (like the default, []), got a string"),
            "{e}"
        );
        let e = crate::suites::builtin::suite_with("smoke", &given)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the built-in suite `smoke` has no variables"),
            "{e}"
        );
    }
}
