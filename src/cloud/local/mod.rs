//! The `local` provider: QEMU virtual machines on this machine, qcow2 images in a local store.
//!
//! An instance is one QEMU process whose disk is a copy-on-write overlay on its image, whose
//! SSH port is forwarded to a free port on 127.0.0.1, whose serial console goes to a file, and
//! whose QMP socket takes power and network commands. Creating an image shuts the builder down
//! cleanly and moves its overlay into the store.

pub mod accel;
pub mod bootstrap;
pub mod qemu;
pub mod qmp;
pub mod seed;
pub mod store;
pub mod tools;

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use self::qemu::Machine;
use self::seed::Seed;
use self::store::{ImageRecord, Store};
use super::{new_id, Image, Instance, LaunchRequest, PowerAction, Provider, Tags};
use crate::clock::now_rfc3339;
use crate::config::{InstanceSettings, Source};
use crate::error::{Error, IoContext, Result};
use crate::ledger::{Ledger, Release, Resource, Token};
use crate::transport::ssh::{self, KeyPair, SshTarget};
use crate::transport::Transport;

/// How long a clean shutdown may take before it is an error.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(180);

/// The tag recording which file an imported image came from.
const SOURCE_FILE_TAG: &str = "bakery:source-file";

/// The local provider.
pub struct LocalProvider {
    store: Store,
    running: Mutex<HashMap<String, Running>>,
}

/// What the provider keeps about a running instance.
struct Running {
    child: Child,
    dir: PathBuf,
    /// QEMU's command line, to start the machine again after a stop.
    args: Vec<std::ffi::OsString>,
    /// 127.0.0.1 port → guest port; the first is SSH.
    forwards: Vec<(u16, u16)>,
    host_key: KeyPair,
    process: Token,
    files: Token,
}

impl LocalProvider {
    /// A provider whose store and instance files live under `data_dir`.
    pub fn new(data_dir: &Path) -> LocalProvider {
        LocalProvider {
            store: Store::new(data_dir),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// The image store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Builds base image `name` (`debian-12`) into the store.
    pub fn bootstrap(&self, name: &str, ledger: &Ledger) -> Result<Image> {
        let work = self
            .store
            .root()
            .join("work")
            .join(format!("bootstrap-{}", ledger.run_id()));
        bootstrap::bootstrap(&self.store, name, &work, ledger).map(|r| r.image)
    }

    /// The instance's QMP socket, for power and network faults.
    pub fn qmp(&self, instance: &Instance) -> Result<qmp::Qmp> {
        let dir = self.lock().get(&instance.id).map(|r| r.dir.clone());
        let dir = dir.ok_or_else(|| Error::Infra(format!("{} is not running", instance.id)))?;
        qmp::Qmp::connect(&Machine::qmp_path(&dir))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn newest_available(&self, pick: impl Fn(&Image) -> bool) -> Result<Option<Image>> {
        Ok(self
            .store
            .records()?
            .into_iter()
            .map(|r| r.image)
            .rfind(|i| i.state == "available" && pick(i)))
    }

    /// True if `record` is a base image Bakery bootstrapped or baked from one (its boot loader
    /// and kernel print to the serial console).
    fn descends_from_a_base(&self, record: &ImageRecord) -> Result<bool> {
        let mut record = record.clone();
        // Bakes are not this deep: a longer chain is a loop in damaged records.
        for _ in 0..1000 {
            if record.image.tags.contains_key(bootstrap::BASE_TAG) {
                return Ok(true);
            }
            match &record.image.parent {
                Some(parent) => record = self.store.record(parent)?,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Imports a disk image file once; later runs reuse the import while the file is unchanged.
    fn import_file(&self, path: &Path, ledger: &Ledger) -> Result<Image> {
        let abs = std::fs::canonicalize(path)
            .map_err(|e| Error::Config(format!("source.file: {}: {e}", path.display())))?;
        let meta = std::fs::metadata(&abs).at("reading", &abs)?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        let stamp = format!(
            "{}:{}:{}",
            abs.display(),
            meta.len(),
            modified.map_or(0, |d| d.as_secs())
        );
        if let Some(image) =
            self.newest_available(|i| i.tags.get(SOURCE_FILE_TAG) == Some(&stamp))?
        {
            return Ok(image);
        }
        let info = tools::run(
            "qemu-img",
            &[
                OsStr::new("info"),
                OsStr::new("--output=json"),
                abs.as_os_str(),
            ],
        )?;
        let format = serde_json::from_str::<serde_json::Value>(&info)
            .ok()
            .and_then(|v| v["format"].as_str().map(str::to_string))
            .filter(|f| f == "qcow2" || f == "raw")
            .ok_or_else(|| {
                Error::Config(format!(
                    "source.file: {} is not a qcow2 or raw disk image",
                    abs.display()
                ))
            })?;
        let id = new_id("ami");
        let dir = self.store.image_dir(&id);
        let token = ledger.record(Resource::Path { path: dir.clone() }, "image being imported")?;
        std::fs::create_dir_all(&dir).at("creating", &dir)?;
        let disk = self.store.disk(&id);
        tools::run(
            "qemu-img",
            &[
                OsStr::new("convert"),
                OsStr::new("-f"),
                OsStr::new(&format),
                OsStr::new("-O"),
                OsStr::new("qcow2"),
                abs.as_os_str(),
                disk.as_os_str(),
            ],
        )?;
        let record = ImageRecord {
            image: Image {
                id,
                name: abs
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                parent: None,
                tags: Tags::from([(SOURCE_FILE_TAG.to_string(), stamp)]),
                state: "available".into(),
                created: now_rfc3339(),
                size_bytes: 0,
            },
            boot: None,
        };
        self.store.save(&record)?;
        ledger.forget(token)?;
        Ok(record.image)
    }

    /// Presses the virtual power button until the guest powers off (a press during early boot
    /// is lost); an error with the console's last lines if it did not within
    /// [`SHUTDOWN_TIMEOUT`].
    fn power_down(&self, instance: &Instance) -> Result<()> {
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            match self.qmp(instance) {
                Ok(mut qmp) => {
                    qmp.execute("system_powerdown", serde_json::json!({}))?;
                }
                // QEMU closes its socket as it exits.
                Err(_) if self.wait_exit(&instance.id, Duration::ZERO)? => return Ok(()),
                Err(e) => return Err(e),
            }
            if self.wait_exit(&instance.id, Duration::from_secs(10))? {
                return Ok(());
            }
        }
        Err(Error::Infra(format!(
            "{} did not power off within {}s; last console lines:\n{}",
            instance.id,
            SHUTDOWN_TIMEOUT.as_secs(),
            self.console_tail(instance, 20)
        )))
    }

    /// Waits for the instance's QEMU to exit; false if it did not within `timeout`.
    fn wait_exit(&self, id: &str, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            crate::signals::check()?;
            match self.lock().get_mut(id).map(|r| r.child.try_wait()) {
                Some(Ok(None)) => {}
                _ => return Ok(true),
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Release for LocalProvider {
    fn provider_name(&self) -> &str {
        "local"
    }

    fn release(&self, resource: &Resource) -> Result<()> {
        Err(Error::Infra(format!(
            "the local provider does not own {resource}"
        )))
    }
}

impl Provider for LocalProvider {
    fn resolve_source(&self, source: &Source, ledger: &Ledger) -> Result<Image> {
        match source {
            Source::Local(name) => {
                let found = self.newest_available(|i| bootstrap::is_current_base(i, name))?;
                match found {
                    Some(image) => Ok(image),
                    None if bootstrap::known().contains(&name.as_str()) => {
                        crate::progress::note(&format!(
                            "no base image `{name}` of recipe {} in the store yet: bootstrapping it (about a minute)",
                            bootstrap::RECIPE
                        ));
                        self.bootstrap(name, ledger)
                    }
                    None => Err(Error::Config(format!(
                        "source.local: no base image `{name}`; Bakery can bootstrap: {}",
                        bootstrap::known().join(", ")
                    ))),
                }
            }
            Source::File(path) => self.import_file(path, ledger),
            Source::Image(id) => self.image(id),
            other => Err(Error::Config(format!(
                "source.{}: needs `provider: aws`",
                other.key()
            ))),
        }
    }

    fn launch(&self, request: &LaunchRequest, ledger: &Ledger) -> Result<Instance> {
        let record = self.store.record(&request.image.id)?;
        let id = new_id("i");
        let dir = self.store.root().join("instances").join(&id);
        let purpose = format!("{} {id} files", request.role.as_str());
        let files = ledger.record(Resource::Path { path: dir.clone() }, &purpose)?;
        std::fs::create_dir_all(&dir).at("creating", &dir)?;

        let disk = dir.join("disk.qcow2");
        let base = self.store.disk(&record.image.id);
        tools::run(
            "qemu-img",
            &[
                OsStr::new("create"),
                OsStr::new("-q"),
                OsStr::new("-f"),
                OsStr::new("qcow2"),
                OsStr::new("-F"),
                OsStr::new("qcow2"),
                OsStr::new("-b"),
                base.as_os_str(),
                disk.as_os_str(),
            ],
        )?;
        let host_key = KeyPair::generate(&format!("root@{id}"))?;
        let seed_path = dir.join("seed.iso");
        Seed {
            instance_id: &id,
            hostname: &format!("bakery-{}-{}", request.role.as_str(), &id[2..10]),
            user: &request.settings.ssh_user,
            login_key: request.key,
            host_key: &host_key,
        }
        .write_iso(&seed_path)?;

        let probe = match &record.boot {
            Some(boot) => Some(accel::ProbeBoot::Kernel(boot)),
            None if self.descends_from_a_base(&record)? => Some(accel::ProbeBoot::Disk(&disk)),
            // An imported image may print nothing on the serial console: a KVM probe could not
            // tell that from a hang.
            None => None,
        };
        let accel = accel::choose(&self.store.root().join("accel.json"), probe)?;
        let mut forwards = vec![(qemu::free_port()?, 22)];
        for &guest in &request.settings.forward_ports {
            forwards.push((qemu::free_port()?, guest));
        }
        let marker = dir.display().to_string();
        let process = ledger.record(
            Resource::Process {
                pid: 0,
                marker: marker.clone(),
            },
            &format!("{} {id} QEMU", request.role.as_str()),
        )?;
        let machine = Machine {
            dir: &dir,
            disk: &disk,
            seed: &seed_path,
            boot: record.boot.as_ref(),
            cpus: accel::vcpus(request.settings.cpus)?,
            memory_mb: request.settings.memory_mb,
            forwards: &forwards,
            accel,
        };
        let args = machine.args();
        let child = qemu::spawn(&dir, &args)?;
        ledger.update(
            process,
            Resource::Process {
                pid: child.id(),
                marker,
            },
        )?;
        tracing::info!(instance = %id, image = %record.image.id, ?accel, ?forwards, "instance started");
        self.lock().insert(
            id.clone(),
            Running {
                child,
                dir,
                args,
                forwards,
                host_key,
                process,
                files,
            },
        );
        Ok(Instance {
            id,
            image_id: record.image.id,
            role: request.role,
            user: request.settings.ssh_user.clone(),
        })
    }

    fn connect(
        &self,
        instance: &Instance,
        key: &KeyPair,
        settings: &InstanceSettings,
    ) -> Result<Box<dyn Transport>> {
        let (port, host_key) = {
            let running = self.lock();
            let r = running
                .get(&instance.id)
                .ok_or_else(|| Error::Infra(format!("{} is not running", instance.id)))?;
            (r.forwards[0].0, r.host_key.public_openssh())
        };
        let target = SshTarget {
            host: "127.0.0.1".into(),
            port,
            user: instance.user.clone(),
            host_key,
            key,
            timeout: settings.boot_timeout.0,
        };
        let still_booting = || match self
            .lock()
            .get_mut(&instance.id)
            .map(|r| r.child.try_wait())
        {
            Some(Ok(None)) => Ok(()),
            Some(Ok(Some(status))) => Err(Error::Infra(format!(
                "{} stopped while booting (QEMU {status}); last console lines:\n{}",
                instance.id,
                self.console_tail(instance, 30)
            ))),
            _ => Err(Error::Infra(format!("{} is gone", instance.id))),
        };
        let transport = ssh::connect(&target, &still_booting).map_err(|e| match e {
            Error::Transport(msg) => Error::Transport(format!(
                "{} did not answer: {msg}\nlast console lines:\n{}",
                instance.id,
                self.console_tail(instance, 30)
            )),
            other => other,
        })?;
        Ok(Box::new(transport))
    }

    fn power(&self, instance: &Instance, action: PowerAction, guest: &dyn Transport) -> Result<()> {
        match action {
            // QEMU has no reboot button: the guest is asked, as an EC2 reboot asks it via ACPI.
            PowerAction::Reboot => {
                let out = guest.run("systemctl --no-block reboot", Duration::from_secs(30))?;
                if out.exit_code != 0 {
                    return Err(Error::Infra(format!(
                        "{}: `systemctl reboot` failed: {}",
                        instance.id,
                        out.stderr.trim()
                    )));
                }
                Ok(())
            }
            PowerAction::HardReset => self
                .qmp(instance)?
                .execute("system_reset", serde_json::json!({}))
                .map(drop),
            PowerAction::StopStart => {
                self.power_down(instance)?;
                let mut running = self.lock();
                let r = running
                    .get_mut(&instance.id)
                    .ok_or_else(|| Error::Infra(format!("{} is not running", instance.id)))?;
                // The ledger's entry finds the new process by its marker (the directory).
                let _ = std::fs::remove_file(Machine::qmp_path(&r.dir));
                r.child = qemu::spawn(&r.dir, &r.args)?;
                tracing::info!(instance = %instance.id, pid = r.child.id(), "instance started again");
                Ok(())
            }
        }
    }

    fn set_paused(&self, instance: &Instance, paused: bool) -> Result<()> {
        let command = if paused { "stop" } else { "cont" };
        self.qmp(instance)?
            .execute(command, serde_json::json!({}))
            .map(drop)
    }

    fn set_link(&self, instance: &Instance, up: bool) -> Result<()> {
        self.qmp(instance)?
            .execute("set_link", serde_json::json!({"name": "n0", "up": up}))
            .map(drop)
    }

    fn create_image(
        &self,
        instance: &Instance,
        name: &str,
        tags: &Tags,
        ledger: &Ledger,
    ) -> Result<Image> {
        if let Some(existing) = self.newest_available(|i| i.name == name)? {
            return Err(Error::Config(format!(
                "image.name: an image named `{name}` exists already ({}); names are unique, so put `{{{{timestamp}}}}` or `{{{{git.sha}}}}` in the template",
                existing.id
            )));
        }
        self.power_down(instance)?;
        let overlay = self
            .lock()
            .get(&instance.id)
            .map(|r| r.dir.join("disk.qcow2"))
            .ok_or_else(|| Error::Infra(format!("{} is not running", instance.id)))?;
        let parent = self.store.record(&instance.image_id)?;
        let id = new_id("ami");
        let dir = self.store.image_dir(&id);
        let token = ledger.record(Resource::Path { path: dir.clone() }, "image being created")?;
        std::fs::create_dir_all(&dir).at("creating", &dir)?;
        std::fs::rename(&overlay, self.store.disk(&id)).at("moving", &overlay)?;
        let record = ImageRecord {
            image: Image {
                id,
                name: name.to_string(),
                parent: Some(parent.image.id.clone()),
                tags: tags.clone(),
                state: "available".into(),
                created: now_rfc3339(),
                size_bytes: 0,
            },
            boot: parent.boot.clone(),
        };
        self.store.save(&record)?;
        ledger.forget(token)?;
        self.store.record(&record.image.id).map(|r| r.image)
    }

    fn terminate(&self, instance: &Instance, ledger: &Ledger) -> Result<()> {
        crate::signals::releasing();
        let Some(mut running) = self.lock().remove(&instance.id) else {
            return Ok(());
        };
        ledger.release(running.process, None)?;
        let _ = running.child.kill();
        let _ = running.child.wait();
        ledger.release(running.files, None)
    }

    fn image_files(&self, id: &str) -> Option<PathBuf> {
        Some(self.store.image_dir(id))
    }

    fn reach(&self, instance: &Instance) -> Option<super::Reach> {
        let running = self.lock();
        let r = running.get(&instance.id)?;
        Some(super::Reach {
            host: "127.0.0.1".into(),
            ports: r
                .forwards
                .iter()
                .map(|&(host, guest)| (guest, host))
                .collect(),
        })
    }

    fn console_tail(&self, instance: &Instance, lines: usize) -> String {
        let dir = self.store.root().join("instances").join(&instance.id);
        let text = std::fs::read(Machine::console_path(&dir)).unwrap_or_default();
        let tail = super::console_tail(&String::from_utf8_lossy(&text), lines);
        if tail.is_empty() {
            "(the console is empty)".into()
        } else {
            tail
        }
    }

    fn image(&self, id: &str) -> Result<Image> {
        if !super::is_id("ami", id) {
            return Err(Error::Config(format!(
                "`{id}` is not an image id; ids look like ami-0123456789abcdef0 (`bakery images` lists them)"
            )));
        }
        self.store.record(id).map(|r| r.image)
    }

    fn images(&self) -> Result<Vec<Image>> {
        Ok(self.store.records()?.into_iter().map(|r| r.image).collect())
    }

    fn tag_image(&self, id: &str, tags: &Tags) -> Result<()> {
        self.store.tag(id, tags)
    }

    fn delete_image(&self, id: &str) -> Result<()> {
        self.image(id)?;
        if let Some((pointer, _)) = self.pointers()?.into_iter().find(|(_, i)| i == id) {
            return Err(Error::Config(format!(
                "image {id} is what pointer `{pointer}` names now; promote another image first"
            )));
        }
        self.store.delete(id)
    }

    fn pointer(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .store
            .pointer_table()?
            .get(name)
            .and_then(|h| h.last())
            .map(|v| v.image_id.clone()))
    }

    fn set_pointer(&self, name: &str, image_id: &str) -> Result<u64> {
        self.store.set_pointer(name, image_id, &now_rfc3339())
    }

    fn pointers(&self) -> Result<BTreeMap<String, String>> {
        Ok(self
            .store
            .pointer_table()?
            .into_iter()
            .filter_map(|(name, h)| h.last().map(|v| (name, v.image_id.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_img_available() -> bool {
        std::process::Command::new("qemu-img")
            .arg("--version")
            .output()
            .is_ok()
    }

    #[test]
    fn a_disk_file_is_imported_once_and_again_when_it_changes() {
        assert!(
            qemu_img_available(),
            "qemu-img is needed (scripts/setup.sh installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let provider = LocalProvider::new(&dir.path().join("data"));
        let ledger = Ledger::create(&dir.path().join("runs"), "r-import").unwrap();
        let disk = dir.path().join("cloud.qcow2");
        tools::run(
            "qemu-img",
            &[
                OsStr::new("create"),
                OsStr::new("-q"),
                OsStr::new("-f"),
                OsStr::new("qcow2"),
                disk.as_os_str(),
                OsStr::new("64M"),
            ],
        )
        .unwrap();

        let first = provider
            .resolve_source(&Source::File(disk.clone()), &ledger)
            .unwrap();
        let again = provider
            .resolve_source(&Source::File(disk.clone()), &ledger)
            .unwrap();
        assert_eq!(
            first.id, again.id,
            "an unchanged file is not imported twice"
        );
        assert_eq!(first.name, "cloud.qcow2");
        assert!(
            provider.store().record(&first.id).unwrap().boot.is_none(),
            "boots with its own loader"
        );

        std::thread::sleep(Duration::from_millis(1100));
        tools::run(
            "qemu-img",
            &[
                OsStr::new("resize"),
                OsStr::new("-q"),
                disk.as_os_str(),
                OsStr::new("128M"),
            ],
        )
        .unwrap();
        let changed = provider
            .resolve_source(&Source::File(disk), &ledger)
            .unwrap();
        assert_ne!(changed.id, first.id, "a changed file is imported again");
        assert!(ledger.unwind(None).is_empty());
    }

    #[test]
    fn a_missing_file_or_a_wrong_image_id_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let provider = LocalProvider::new(&dir.path().join("data"));
        let ledger = Ledger::create(&dir.path().join("runs"), "r-bad").unwrap();
        let missing =
            provider.resolve_source(&Source::File(dir.path().join("nope.qcow2")), &ledger);
        assert!(matches!(missing, Err(Error::Config(m)) if m.contains("nope.qcow2")));
        // A wrong image id is refused by its shape, or by lookup.
        assert!(
            matches!(provider.image("ami-xyz"), Err(Error::Config(m)) if m.contains("not an image id"))
        );
        assert!(
            matches!(provider.image("ami-0123456789abcdef0"), Err(Error::Config(m)) if m.contains("bakery images"))
        );
    }

    #[test]
    fn only_images_descending_from_a_bootstrapped_base_count_as_printing_to_the_console() {
        let dir = tempfile::tempdir().unwrap();
        let provider = LocalProvider::new(dir.path());
        let record = |id: &str, parent: Option<&str>, tags: &[(&str, &str)]| ImageRecord {
            image: Image {
                id: id.into(),
                name: id.into(),
                parent: parent.map(Into::into),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                state: "available".into(),
                created: "2026-12-01T00:00:00Z".into(),
                size_bytes: 0,
            },
            boot: None,
        };
        let base = record("ami-base", None, &[(bootstrap::BASE_TAG, "debian-12")]);
        let baked = record("ami-baked", Some("ami-base"), &[]);
        let rebaked = record("ami-rebaked", Some("ami-baked"), &[]);
        let imported = record("ami-imported", None, &[(SOURCE_FILE_TAG, "x")]);
        for r in [&base, &baked, &rebaked, &imported] {
            provider.store().save(r).unwrap();
        }
        assert!(provider.descends_from_a_base(&base).unwrap());
        assert!(provider.descends_from_a_base(&rebaked).unwrap());
        assert!(!provider.descends_from_a_base(&imported).unwrap());
        // Damaged records whose parents form a loop end the walk.
        let a = record("ami-a", Some("ami-b"), &[]);
        let b = record("ami-b", Some("ami-a"), &[]);
        provider.store().save(&a).unwrap();
        provider.store().save(&b).unwrap();
        assert!(!provider.descends_from_a_base(&a).unwrap());
    }
}
