//! How Bakery reaches into an instance: run a command, upload a file.
//!
//! Stages and checks only see the [`Transport`] trait; whether the bytes travel over SSH or
//! through a cloud's run-command service is the implementation's business.

pub mod ssh;
#[cfg(feature = "aws")]
pub mod ssm;

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, IoContext, Result};

/// Which stream a piece of command output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a finished command left behind.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// The exit status; -1 when the command was killed by a signal.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
}

/// A way into a running instance.
pub trait Transport: Send + Sync {
    /// Runs `command` with `sh -c` semantics, calling `on_line` for every complete line of
    /// output as it arrives, and returns when it exits. Exceeding `timeout` is an error.
    fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExecOutput>;

    /// Writes `contents` to `remote_path` with permission bits `mode`, creating parent
    /// directories as needed.
    fn upload(&self, contents: &[u8], remote_path: &str, mode: u32) -> Result<()>;

    /// A short description of the connection for logs and reports ("ssh root@127.0.0.1:2201").
    fn endpoint(&self) -> String;

    /// Where an SSH client on this machine reaches the instance, with the host key the
    /// instance proved it holds; `None` for transports that are not SSH.
    fn ssh_endpoint(&self) -> Option<SshEndpoint> {
        None
    }
}

/// An instance's SSH server as this machine reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    /// The address to dial (an instance's public or private address, or 127.0.0.1 for a
    /// forwarded port).
    pub host: String,
    pub port: u16,
    /// The user the run's key is authorised for.
    pub user: String,
    /// The host key the server presented and Bakery verified, as an OpenSSH public key line.
    pub host_key: String,
}

impl SshEndpoint {
    /// The host as `known_hosts` and OpenSSH name it: `host`, or `[host]:port` off port 22.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.host.clone()
        } else {
            format!("[{}]:{}", self.host, self.port)
        }
    }

    /// The `known_hosts` line that trusts exactly the verified host key.
    pub fn known_hosts_line(&self) -> String {
        let mut fields = self.host_key.split_whitespace();
        let kind = fields.next().unwrap_or("");
        let blob = fields.next().unwrap_or("");
        format!("{} {kind} {blob}\n", self.known_hosts_name())
    }
}

/// Runs every command of another transport as root through `sudo -n`, for instances reached
/// as a user other than root (whose account has passwordless sudo, as cloud images' do).
pub struct Sudo(pub Box<dyn Transport>);

/// `transport` as root: itself when it logs in as `user` root, else wrapped in [`Sudo`].
pub fn as_root(transport: Box<dyn Transport>, user: &str) -> Box<dyn Transport> {
    if user == "root" {
        transport
    } else {
        Box::new(Sudo(transport))
    }
}

impl Transport for Sudo {
    fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExecOutput> {
        self.0.exec(
            &format!("sudo -n sh -c {}", shell_quote(command)),
            timeout,
            on_line,
        )
    }

    fn upload(&self, contents: &[u8], remote_path: &str, mode: u32) -> Result<()> {
        self.0.upload(contents, remote_path, mode)
    }

    fn endpoint(&self) -> String {
        format!("{} (sudo)", self.0.endpoint())
    }

    fn ssh_endpoint(&self) -> Option<SshEndpoint> {
        self.0.ssh_endpoint()
    }
}

impl dyn Transport + '_ {
    /// Runs `command` and collects its output without streaming it.
    pub fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput> {
        self.exec(command, timeout, &mut |_, _| {})
    }

    /// Uploads a local file or a whole directory tree to `remote_path`, keeping permission bits.
    pub fn upload_path(&self, local: &Path, remote_path: &str) -> Result<()> {
        let meta = std::fs::metadata(local).at("reading", local)?;
        if meta.is_file() {
            let contents = std::fs::read(local).at("reading", local)?;
            return self.upload(&contents, remote_path, file_mode(&meta));
        }
        if !meta.is_dir() {
            return Err(Error::Config(format!(
                "{} is neither a file nor a directory",
                local.display()
            )));
        }
        self.run(
            &format!("mkdir -p {}", shell_quote(remote_path)),
            Duration::from_secs(60),
        )?;
        let mut entries: Vec<_> = std::fs::read_dir(local)
            .at("listing", local)?
            .collect::<std::io::Result<_>>()
            .at("listing", local)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let remote = format!(
                "{}/{}",
                remote_path.trim_end_matches('/'),
                name.to_string_lossy()
            );
            self.upload_path(&entry.path(), &remote)?;
        }
        Ok(())
    }
}

fn file_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Quotes `s` for a POSIX shell, so that it is passed as exactly one word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::{shell_quote, SshEndpoint};

    #[test]
    fn known_hosts_names_a_forwarded_port_in_brackets() {
        let mut e = SshEndpoint {
            host: "127.0.0.1".into(),
            port: 2201,
            user: "root".into(),
            host_key: "ssh-ed25519 AAAAC3Nza root@i-0".into(),
        };
        assert_eq!(
            e.known_hosts_line(),
            "[127.0.0.1]:2201 ssh-ed25519 AAAAC3Nza\n"
        );
        e.host = "10.0.1.7".into();
        e.port = 22;
        assert_eq!(e.known_hosts_line(), "10.0.1.7 ssh-ed25519 AAAAC3Nza\n");
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("/etc/nginx"), "/etc/nginx");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
