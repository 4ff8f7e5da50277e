//! The local image store: qcow2 disks with JSON metadata, and pointers with their history.
//!
//! Layout under the data directory:
//! ```text
//! images/<ami-id>/image.json   metadata (written last: a directory without it is incomplete)
//! images/<ami-id>/disk.qcow2   the disk; a baked image is an overlay on its parent's disk
//! images/<ami-id>/boot/        kernel and initrd of an older base image booted directly
//! images/<ami-id>/manifest.json what the image holds (src/manifest), when it was read
//! pointers.json                pointer name -> versions
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cloud::{Image, Tags};
use crate::error::{Error, IoContext, Result};

/// How QEMU boots an image that has no boot loader of its own: base images bootstrapped by
/// Bakery before recipe 4, and the images baked from them. Current base images boot from their
/// disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
}

/// An image's metadata file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    #[serde(flatten)]
    pub image: Image,
    /// Set for images whose disk has no boot loader (base images of recipes before 4);
    /// inherited by images baked from them.
    #[serde(default)]
    pub boot: Option<DirectBoot>,
}

/// One value a pointer has had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointerVersion {
    pub version: u64,
    pub image_id: String,
    pub time: String,
}

/// The local image store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of image `id`.
    pub fn image_dir(&self, id: &str) -> PathBuf {
        self.root.join("images").join(id)
    }

    /// The disk of image `id`.
    pub fn disk(&self, id: &str) -> PathBuf {
        self.image_dir(id).join("disk.qcow2")
    }

    /// Reads one image's record.
    pub fn record(&self, id: &str) -> Result<ImageRecord> {
        let path = self.image_dir(id).join("image.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Config(format!(
                    "no image `{id}` in the local store at {}; `bakery images` lists the images there",
                    self.root.display()
                )))
            }
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let damaged = |what: String| {
            Error::Infra(format!(
                "{what}; the record of image {id} is damaged, so the image cannot be used. Restore \
                 the file from a backup, or move {} out of the store (or delete it) and bake \
                 the image again",
                self.image_dir(id).display()
            ))
        };
        let mut record: ImageRecord =
            serde_json::from_str(&text).map_err(|e| damaged(json_error(&path, &e)))?;
        if record.image.id != id {
            return Err(damaged(format!(
                "{}: the record names image `{}`, not the `{id}` of its directory",
                path.display(),
                record.image.id
            )));
        }
        record.image.size_bytes = allocated_bytes(&self.disk(id));
        // Boot files inside the image's own directory are recorded relative to it, so a store
        // can be moved or copied; hand out absolute paths.
        let dir = self.image_dir(id);
        if let Some(boot) = &mut record.boot {
            for file in [&mut boot.kernel, &mut boot.initrd] {
                if file.is_relative() {
                    *file = dir.join(&*file);
                }
            }
        }
        Ok(record)
    }

    /// Writes an image's record (atomically).
    pub fn save(&self, record: &ImageRecord) -> Result<()> {
        let dir = self.image_dir(&record.image.id);
        std::fs::create_dir_all(&dir).at("creating", &dir)?;
        let mut record = record.clone();
        if let Some(boot) = &mut record.boot {
            for file in [&mut boot.kernel, &mut boot.initrd] {
                if let Ok(inside) = file.strip_prefix(&dir) {
                    *file = inside.to_path_buf();
                }
            }
        }
        write_json(&dir.join("image.json"), &record)
    }

    /// Every complete image, oldest first.
    pub fn records(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images");
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("listing", &dir, e)),
        };
        for entry in entries {
            let entry = entry.at("listing", &dir)?;
            let id = entry.file_name().to_string_lossy().into_owned();
            if entry.path().join("image.json").is_file() {
                out.push(self.record(&id)?);
            }
        }
        out.sort_by(|a, b| (&a.image.created, &a.image.id).cmp(&(&b.image.created, &b.image.id)));
        Ok(out)
    }

    /// Merges `tags` into image `id`'s tags.
    pub fn tag(&self, id: &str, tags: &Tags) -> Result<()> {
        let mut record = self.record(id)?;
        record.image.tags.extend(tags.clone());
        self.save(&record)
    }

    /// Deletes image `id`, unless another image is baked on top of it.
    pub fn delete(&self, id: &str) -> Result<()> {
        self.record(id)?;
        if let Some(child) = self
            .records()?
            .into_iter()
            .find(|r| r.image.parent.as_deref() == Some(id))
        {
            return Err(Error::Config(format!(
                "image {id} is the parent of {} ({}); delete that one first",
                child.image.id, child.image.name
            )));
        }
        let dir = self.image_dir(id);
        // Remove the record first, so a half-deleted image is never listed.
        std::fs::remove_file(dir.join("image.json")).at("removing", &dir)?;
        std::fs::remove_dir_all(&dir).at("removing", &dir)
    }

    /// The history of every pointer.
    pub fn pointer_table(&self) -> Result<BTreeMap<String, Vec<PointerVersion>>> {
        let path = self.root.join("pointers.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::Infra(format!(
                    "{}; the pointer file is damaged. Restore it from a backup, or move it \
                     aside and promote each pointer's image again (`bakery promote --image ID`; \
                     promoted images keep their tags, `bakery images` lists them)",
                    json_error(&path, &e)
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::io("reading", &path, e)),
        }
    }

    /// Points `name` at `image_id` unless it already does; returns the current version.
    /// Runs that promote at the same time take turns (an exclusive lock on `pointers.lock`),
    /// so no version is lost.
    pub fn set_pointer(&self, name: &str, image_id: &str, time: &str) -> Result<u64> {
        self.set_pointer_waiting(name, image_id, time, POINTER_LOCK_WAIT)
    }

    /// [`Store::set_pointer`], waiting at most `wait` for another run's lock.
    fn set_pointer_waiting(
        &self,
        name: &str,
        image_id: &str,
        time: &str,
        wait: std::time::Duration,
    ) -> Result<u64> {
        std::fs::create_dir_all(&self.root).at("creating", &self.root)?;
        let _lock = self.lock_pointers(wait)?;
        let mut table = self.pointer_table()?;
        let history = table.entry(name.to_string()).or_default();
        if let Some(last) = history.last() {
            if last.image_id == image_id {
                return Ok(last.version);
            }
        }
        let version = history.last().map_or(1, |v| v.version + 1);
        history.push(PointerVersion {
            version,
            image_id: image_id.to_string(),
            time: time.to_string(),
        });
        write_json(&self.root.join("pointers.json"), &table)?;
        Ok(version)
    }
}

/// How long a promotion waits for another run that holds the store's pointer lock.
const POINTER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl Store {
    /// Takes the exclusive lock on `pointers.lock` (released when the file is dropped), which
    /// then holds this process's id. Waits up to `wait` for another holder, stopping early on a
    /// signal; after that the error names the run that holds it.
    fn lock_pointers(&self, wait: std::time::Duration) -> Result<std::fs::File> {
        use std::io::{Read, Seek, Write};
        let path = self.root.join("pointers.lock");
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at("creating", &path)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("locking", &path, e)),
            }
            crate::signals::check()?;
            if std::time::Instant::now() >= deadline {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another run".to_string(),
                    pid => format!("another run (pid {pid})"),
                };
                return Err(Error::Infra(format!(
                    "the local store {} is locked by {holder}, which has held {} for more than {}s; let that run finish (or stop it), then run `bakery promote` again",
                    self.root.display(),
                    path.display(),
                    wait.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        Ok(lock)
    }
}

/// `file:line:col: what is wrong` for a JSON file Bakery wrote and something changed since.
pub fn json_error(path: &Path, e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => &msg,
    };
    let msg = crate::config::plain_words(msg);
    if e.line() == 0 {
        return format!("{}: {msg}", path.display());
    }
    format!(
        "{}:{}:{}: {msg}",
        path.display(),
        e.line(),
        e.column().max(1)
    )
}

/// Writes `value` as pretty JSON to `path` through a temporary file and a rename.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(value).expect("metadata serializes");
    std::fs::write(&tmp, text).at("writing", &tmp)?;
    std::fs::rename(&tmp, path).at("writing", path)
}

fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, parent: Option<&str>) -> ImageRecord {
        ImageRecord {
            image: Image {
                id: id.into(),
                name: format!("name-{id}"),
                parent: parent.map(Into::into),
                tags: Tags::new(),
                state: "available".into(),
                created: "2026-11-22T00:00:00Z".into(),
                size_bytes: 0,
            },
            boot: None,
        }
    }

    #[test]
    fn pointer_keeps_history_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        assert_eq!(store.set_pointer("/golden/web", "ami-1", "t1").unwrap(), 1);
        assert_eq!(store.set_pointer("/golden/web", "ami-1", "t2").unwrap(), 1);
        assert_eq!(store.set_pointer("/golden/web", "ami-2", "t3").unwrap(), 2);
        let table = store.pointer_table().unwrap();
        let ids: Vec<_> = table["/golden/web"]
            .iter()
            .map(|v| v.image_id.as_str())
            .collect();
        assert_eq!(ids, ["ami-1", "ami-2"]);
    }

    #[test]
    fn boot_files_are_stored_relative_and_read_absolute() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let mut record = image("ami-base", None);
        let image_dir = store.image_dir("ami-base");
        record.boot = Some(DirectBoot {
            kernel: image_dir.join("boot/vmlinuz"),
            initrd: image_dir.join("boot/initrd.img"),
            append: "console=ttyS0".into(),
        });
        store.save(&record).unwrap();
        let text = std::fs::read_to_string(image_dir.join("image.json")).unwrap();
        assert!(text.contains("\"kernel\": \"boot/vmlinuz\""), "{text}");
        let read = store.record("ami-base").unwrap().boot.unwrap();
        assert_eq!(read.kernel, image_dir.join("boot/vmlinuz"));

        // A copied store finds its boot files in the new place.
        let moved = tempfile::tempdir().unwrap();
        let copy = Store::new(moved.path());
        std::fs::create_dir_all(copy.image_dir("ami-base")).unwrap();
        std::fs::copy(
            image_dir.join("image.json"),
            copy.image_dir("ami-base").join("image.json"),
        )
        .unwrap();
        let read = copy.record("ami-base").unwrap().boot.unwrap();
        assert_eq!(
            read.initrd,
            copy.image_dir("ami-base").join("boot/initrd.img")
        );
    }

    #[test]
    fn refuses_to_delete_a_parent_and_names_unknown_images() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.save(&image("ami-parent", None)).unwrap();
        store.save(&image("ami-child", Some("ami-parent"))).unwrap();
        let err = store.delete("ami-parent").unwrap_err().to_string();
        assert!(err.contains("ami-child"), "{err}");
        store.delete("ami-child").unwrap();
        store.delete("ami-parent").unwrap();
        let err = store.record("ami-parent").unwrap_err().to_string();
        assert!(err.contains("bakery images"), "{err}");
    }

    #[test]
    fn a_store_locked_by_another_run_is_named_and_left_intact() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.set_pointer("golden", "ami-1", "t1").unwrap();
        // Another run holds the lock (a lock on another open file conflicts, as between
        // processes).
        let mut other = std::fs::File::create(dir.path().join("pointers.lock")).unwrap();
        other.lock().unwrap();
        std::io::Write::write_all(&mut other, b"4242").unwrap();
        let err = store
            .set_pointer_waiting(
                "golden",
                "ami-2",
                "t2",
                std::time::Duration::from_millis(300),
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("locked by another run (pid 4242)"), "{err}");
        assert!(!err.contains('\n'), "one sentence: {err}");
        assert_eq!(store.pointer_table().unwrap()["golden"].len(), 1);
        drop(other);
        assert_eq!(store.set_pointer("golden", "ami-2", "t2").unwrap(), 2);
    }
}
