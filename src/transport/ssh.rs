//! The SSH transport (libssh2 through the `ssh2` crate) and the run's ephemeral keys.
//!
//! Each run makes a fresh ed25519 key pair for logging in. The instance's host key is never
//! trusted on first sight: it is either a key Bakery generated and injected, or one the instance
//! printed on its console, and the server must present exactly that key.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::{shell_quote, ExecOutput, SshEndpoint, Stream, Transport};
use crate::error::{Error, Result};

/// An ed25519 key pair in OpenSSH formats. The private half stays in memory unless a provider
/// writes it into an instance's seed data.
#[derive(Clone)]
pub struct KeyPair {
    private: ssh_key::PrivateKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair({})", self.public_openssh())
    }
}

impl KeyPair {
    /// A new random ed25519 key pair with `comment` on its public half.
    pub fn generate(comment: &str) -> Result<KeyPair> {
        let mut private = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519)
            .map_err(|e| Error::Infra(format!("generating an ed25519 key: {e}")))?;
        private.set_comment(comment);
        Ok(KeyPair { private })
    }

    /// The private key in OpenSSH's PEM-like format.
    pub fn private_openssh(&self) -> String {
        self.private
            .to_openssh(LineEnding::LF)
            .map(|z| z.to_string())
            .expect("an ed25519 key encodes")
    }

    /// The public key as one `ssh-ed25519 AAAA… comment` line.
    pub fn public_openssh(&self) -> String {
        self.private
            .public_key()
            .to_openssh()
            .expect("an ed25519 public key encodes")
    }

    /// The SHA-256 fingerprint, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.private
            .public_key()
            .fingerprint(Default::default())
            .to_string()
    }
}

/// Where and how to connect.
pub struct SshTarget<'a> {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The host key the server must present, as an OpenSSH public key line.
    pub host_key: String,
    pub key: &'a KeyPair,
    /// How long to keep trying while the instance boots.
    pub timeout: Duration,
}

/// SSH to one instance: a pool of authenticated connections, each used by one exec or upload
/// at a time. libssh2 keeps per-session state across the calls of a non-blocking operation, so
/// two threads sharing a session can corrupt each other's half-sent packets and kill the
/// connection; concurrent checks get connections of their own instead. A connection whose
/// operation failed is dropped, and the next operation logs in again.
pub struct SshTransport {
    login: Login,
    /// The target as an SSH client reaches it, with the host key it proved it holds.
    ssh: SshEndpoint,
    endpoint: String,
    idle: Mutex<Vec<Conn>>,
}

/// What a connection needs to log in again.
struct Login {
    addr: SocketAddr,
    user: String,
    public: String,
    private: String,
    expected_blob: Vec<u8>,
}

/// One authenticated, non-blocking libssh2 session.
struct Conn {
    session: ssh2::Session,
    socket: i32,
    endpoint: String,
    _tcp: TcpStream,
}

/// Connects, retrying while the instance boots. Before each retry `still_booting` is asked
/// whether waiting makes sense (an instance that died makes it return an error).
pub fn connect(target: &SshTarget, still_booting: &dyn Fn() -> Result<()>) -> Result<SshTransport> {
    let deadline = Instant::now() + target.timeout;
    let addr = resolve(&target.host, target.port)?;
    let expected = ssh_key::PublicKey::from_openssh(&target.host_key)
        .map_err(|e| Error::Infra(format!("the expected host key is not valid: {e}")))?;
    let expected_blob = expected
        .to_bytes()
        .map_err(|e| Error::Infra(format!("encoding the expected host key: {e}")))?;
    let login = Login {
        addr,
        user: target.user.clone(),
        public: target.key.public_openssh(),
        private: target.key.private_openssh(),
        expected_blob,
    };
    let mut last_error;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        // Short: while the guest boots, the forwarded port accepts connections before sshd
        // answers them, and the loop retries.
        match login.connect(Duration::from_secs(5)) {
            Ok(conn) => {
                tracing::debug!(attempts, endpoint = %conn.endpoint, "ssh: connected");
                return Ok(SshTransport {
                    ssh: SshEndpoint {
                        host: target.host.clone(),
                        port: target.port,
                        user: target.user.clone(),
                        host_key: target.host_key.clone(),
                    },
                    endpoint: conn.endpoint.clone(),
                    idle: Mutex::new(vec![conn]),
                    login,
                });
            }
            Err(e) => last_error = e,
        }
        crate::signals::check()?;
        still_booting()?;
        if Instant::now() >= deadline {
            return Err(Error::Transport(format!(
                "no SSH login to {}@{addr} within {}s ({attempts} attempts); last error: {last_error}",
                target.user,
                target.timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| Error::Transport(format!("cannot resolve {host}:{port}")))
}

impl Login {
    /// Opens, verifies and authenticates one connection. The handshake and the login each get
    /// `patience` (as libssh2's own per-call timeout would give them).
    fn connect(&self, patience: Duration) -> std::result::Result<Conn, String> {
        let tcp = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let mut session = ssh2::Session::new().map_err(|e| e.to_string())?;
        session.set_tcp_stream(tcp.try_clone().map_err(|e| e.to_string())?);
        // Non-blocking, so that a signal is noticed within milliseconds even mid-handshake (an
        // emulated guest takes seconds to answer one).
        session.set_blocking(false);
        let fd = tcp.as_raw_fd();
        until_done(&mut session, fd, patience, "handshake", |s| s.handshake())?;
        let (blob, _) = session.host_key().ok_or("the server sent no host key")?;
        if blob != self.expected_blob.as_slice() {
            let got = ssh_key::PublicKey::from_bytes(blob)
                .map(|k| k.fingerprint(Default::default()).to_string())
                .unwrap_or_else(|_| "an unreadable key".into());
            return Err(format!(
                "host key mismatch: the server presented {got}, not the key injected into the instance; refusing to log in"
            ));
        }
        let login = format!("public-key login as {}", self.user);
        until_done(&mut session, fd, patience, &login, |s| {
            s.userauth_pubkey_memory(&self.user, Some(&self.public), &self.private, None)
        })?;
        Ok(Conn {
            socket: fd,
            session,
            endpoint: format!("ssh {}@{}", self.user, self.addr),
            _tcp: tcp,
        })
    }
}

/// Whether a non-blocking libssh2 call said "would block" (LIBSSH2_ERROR_EAGAIN).
fn would_block(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(-37)
}

/// Before a connection is up: repeats the non-blocking `op` until it is done, waiting briefly
/// for the socket between tries; stops at a signal or after `patience`.
fn until_done(
    session: &mut ssh2::Session,
    fd: std::os::unix::io::RawFd,
    patience: Duration,
    what: &str,
    mut op: impl FnMut(&mut ssh2::Session) -> std::result::Result<(), ssh2::Error>,
) -> std::result::Result<(), String> {
    let deadline = Instant::now() + patience;
    loop {
        match op(session) {
            Ok(()) => return Ok(()),
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(format!("{what}: {e}")),
        }
        crate::signals::check().map_err(|e| format!("{what}: {e}"))?;
        if Instant::now() >= deadline {
            return Err(format!("{what}: timed out"));
        }
        poll_session(session, fd);
    }
}

/// Waits up to 10 ms for `fd` to be ready in the direction `session` is blocked on.
fn poll_session(session: &ssh2::Session, fd: std::os::unix::io::RawFd) {
    let dirs = session.block_directions();
    let mut events = 0;
    if matches!(
        dirs,
        ssh2::BlockDirections::Inbound | ssh2::BlockDirections::Both
    ) {
        events |= libc::POLLIN;
    }
    if matches!(
        dirs,
        ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
    ) {
        events |= libc::POLLOUT;
    }
    if events == 0 {
        events = libc::POLLIN;
    }
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, owned by this frame.
    unsafe { libc::poll(&mut pfd, 1, 10) };
}

impl Conn {
    /// Repeats a non-blocking libssh2 call until it stops saying "would block".
    fn retry<T>(
        &self,
        deadline: Instant,
        what: &str,
        mut op: impl FnMut() -> std::result::Result<T, ssh2::Error>,
    ) -> Result<T> {
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(e) if would_block(&e) => self.wait_socket(deadline, what)?,
                Err(e) => return Err(Error::Transport(format!("{}: {what}: {e}", self.endpoint))),
            }
        }
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, for a short
    /// while at most (other threads may have consumed the data meanwhile).
    fn wait_socket(&self, deadline: Instant, what: &str) -> Result<()> {
        crate::signals::check()?;
        if Instant::now() >= deadline {
            return Err(Error::Transport(format!(
                "{}: timed out: {what}",
                self.endpoint
            )));
        }
        poll_session(&self.session, self.socket);
        Ok(())
    }

    /// Opens a channel and starts `command` on it. The server may refuse a channel while
    /// others are closing (MaxSessions); the command has not run then, so this tries again.
    fn open_exec(&self, command: &str, deadline: Instant, what: &str) -> Result<ssh2::Channel> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            let opened = self
                .retry(deadline, what, || self.session.channel_session())
                .and_then(|mut channel| {
                    self.retry(deadline, what, || channel.exec(command))?;
                    Ok(channel)
                });
            match opened {
                Ok(channel) => return Ok(channel),
                Err(Error::Transport(msg)) if attempt < ATTEMPTS && Instant::now() < deadline => {
                    tracing::debug!(attempt, %msg, "ssh: channel refused, trying again");
                    std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn write_all(
        &self,
        channel: &mut ssh2::Channel,
        mut data: &[u8],
        deadline: Instant,
    ) -> Result<()> {
        while !data.is_empty() {
            match channel.write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.wait_socket(deadline, "upload")?
                }
                Err(e) => return Err(Error::Transport(format!("{}: upload: {e}", self.endpoint))),
            }
        }
        Ok(())
    }
}

/// Splits streamed bytes into lines for the caller's callback.
#[derive(Default)]
struct LineBuffer {
    all: Vec<u8>,
    pending: Vec<u8>,
}

impl LineBuffer {
    fn push(&mut self, bytes: &[u8], stream: Stream, on_line: &mut dyn FnMut(Stream, &str)) {
        self.all.extend_from_slice(bytes);
        self.pending.extend_from_slice(bytes);
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            on_line(stream, &as_displayed(&line[..i]));
        }
    }

    fn finish(mut self, stream: Stream, on_line: &mut dyn FnMut(Stream, &str)) -> String {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            on_line(stream, &as_displayed(&rest));
        }
        String::from_utf8_lossy(&self.all).into_owned()
    }
}

/// A line as a terminal shows it: text overwritten after a carriage return is dropped.
fn as_displayed(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches('\r');
    text.rsplit('\r').next().unwrap_or("").to_string()
}

impl Conn {
    /// Runs `command` on a channel of this connection (see [`Transport::exec`]).
    fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExecOutput> {
        let started = Instant::now();
        let deadline = started + timeout;
        let what = || format!("running `{}`", first_line(command));
        let mut channel = self.open_exec(command, deadline, &what())?;
        let (mut out, mut err) = (LineBuffer::default(), LineBuffer::default());
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            crate::signals::check()?;
            let mut progressed = false;
            for (stream, sink) in [(Stream::Stdout, &mut out), (Stream::Stderr, &mut err)] {
                let read = match stream {
                    Stream::Stdout => channel.read(&mut buf),
                    Stream::Stderr => channel.stderr().read(&mut buf),
                };
                match read {
                    Ok(0) => {}
                    Ok(n) => {
                        sink.push(&buf[..n], stream, on_line);
                        progressed = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => {
                        return Err(Error::Transport(format!(
                            "{}: {}: {e}",
                            self.endpoint,
                            what()
                        )))
                    }
                }
            }
            if !progressed {
                if channel.eof() {
                    break;
                }
                if Instant::now() >= deadline {
                    // Close for real, so the server frees the session slot (sshd allows
                    // only MaxSessions channels per connection).
                    let _ = self.retry(Instant::now() + Duration::from_secs(2), "closing", || {
                        channel.close()
                    });
                    return Err(Error::Transport(format!(
                        "{}: timed out after {}s {}",
                        self.endpoint,
                        timeout.as_secs(),
                        what()
                    )));
                }
                self.wait_socket(deadline, &what())?;
            }
        }
        self.retry(deadline, &what(), || channel.wait_close())?;
        let exit_code = match channel.exit_signal() {
            Ok(sig) if sig.exit_signal.is_some() => -1,
            _ => channel.exit_status().unwrap_or(-1),
        };
        Ok(ExecOutput {
            exit_code,
            stdout: out.finish(Stream::Stdout, on_line),
            stderr: err.finish(Stream::Stderr, on_line),
            duration: started.elapsed(),
        })
    }

    /// Writes `contents` to `remote_path` (see [`Transport::upload`]).
    fn upload(&self, contents: &[u8], remote_path: &str, mode: u32) -> Result<()> {
        let deadline = Instant::now()
            + Duration::from_secs(60)
            + Duration::from_millis(contents.len() as u64 / 100);
        let path = shell_quote(remote_path);
        let command =
            format!("set -e; mkdir -p \"$(dirname {path})\"; cat > {path}; chmod {mode:o} {path}");
        let what = format!("uploading {remote_path}");
        let mut channel = self.open_exec(&command, deadline, &what)?;
        self.write_all(&mut channel, contents, deadline)?;
        self.retry(deadline, &what, || channel.send_eof())?;
        let mut stderr = String::new();
        let mut buf = [0u8; 4096];
        while !channel.eof() {
            match channel.stderr().read(&mut buf) {
                Ok(n) => stderr.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.wait_socket(deadline, &what)?,
                Err(e) => return Err(Error::Transport(format!("{}: {what}: {e}", self.endpoint))),
            }
            let _ = channel.read(&mut buf);
        }
        self.retry(deadline, &what, || channel.wait_close())?;
        match channel.exit_status() {
            Ok(0) => Ok(()),
            Ok(code) => Err(Error::Transport(format!(
                "{}: {what} failed (exit {code}): {}",
                self.endpoint,
                stderr.trim()
            ))),
            Err(e) => Err(Error::Transport(format!("{}: {what}: {e}", self.endpoint))),
        }
    }
}

impl SshTransport {
    /// Runs `op` on an idle connection, or on a new one when all are busy. The connection
    /// goes back to the pool only when `op` succeeded.
    fn with_conn<T>(&self, op: impl FnOnce(&Conn) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.reconnect()?,
        };
        let result = op(&conn);
        if result.is_ok() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
        result
    }

    /// A new connection to an instance that has answered before: a few attempts, each
    /// patient, since a slow answer now means a loaded guest (three emulated guests on two
    /// cores take more than 5 s for a handshake and a login), not one still booting.
    fn reconnect(&self) -> Result<Conn> {
        let mut last_error = String::new();
        for attempt in 1..=3u64 {
            crate::signals::check()?;
            match self.login.connect(Duration::from_secs(20)) {
                Ok(conn) => return Ok(conn),
                Err(e) => last_error = e,
            }
            std::thread::sleep(Duration::from_millis(300 * attempt));
        }
        Err(Error::Transport(format!(
            "{}: connecting again: {last_error}",
            self.endpoint
        )))
    }
}

impl Transport for SshTransport {
    fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExecOutput> {
        self.with_conn(|conn| conn.exec(command, timeout, on_line))
    }

    fn upload(&self, contents: &[u8], remote_path: &str, mode: u32) -> Result<()> {
        self.with_conn(|conn| conn.upload(contents, remote_path, mode))
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn ssh_endpoint(&self) -> Option<SshEndpoint> {
        Some(self.ssh.clone())
    }
}

fn first_line(command: &str) -> String {
    let line = command.lines().next().unwrap_or("");
    if line.len() > 80 || command.lines().nth(1).is_some() {
        format!("{}…", &line[..line.floor_char_boundary(line.len().min(80))])
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_openssh_format() {
        let key = KeyPair::generate("bakery-test").unwrap();
        let public = key.public_openssh();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert!(public.ends_with(" bakery-test"));
        let private = key.private_openssh();
        let parsed = PrivateKey::from_openssh(&private).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), public);
        assert!(key.fingerprint().starts_with("SHA256:"));
    }

    /// A server that accepts and then says nothing (a guest whose sshd is stuck, or a
    /// forwarded port with no sshd behind it yet): the handshake gives up at its limit instead
    /// of waiting for ever.
    #[test]
    fn a_silent_server_times_the_handshake_out() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let key = KeyPair::generate("bakery-test").unwrap();
        let login = Login {
            addr: listener.local_addr().unwrap(),
            user: "root".into(),
            public: key.public_openssh(),
            private: key.private_openssh(),
            expected_blob: Vec::new(),
        };
        let held = std::thread::spawn(move || listener.accept().map(|(socket, _)| socket));
        let err = login
            .connect(Duration::from_millis(200))
            .err()
            .expect("no login without a server");
        assert_eq!(err, "handshake: timed out");
        drop(held.join().unwrap().unwrap());
    }

    #[test]
    fn line_buffer_splits_lines_across_chunks() {
        let mut lines = Vec::new();
        let mut buffer = LineBuffer::default();
        let mut sink = |_: Stream, l: &str| lines.push(l.to_string());
        buffer.push(b"one\ntw", Stream::Stdout, &mut sink);
        buffer.push(b"o\r\n10%\r100%\nthree", Stream::Stdout, &mut sink);
        let all = buffer.finish(Stream::Stdout, &mut sink);
        assert_eq!(lines, ["one", "two", "100%", "three"]);
        assert_eq!(all, "one\ntwo\r\n10%\r100%\nthree");
    }
}
