//! Test helpers: a [`Transport`] that runs commands with `sh -c` on this host.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::transport::{ExecOutput, Stream, Transport};

/// Runs every command on the local machine; for tests of the runner without a VM.
pub(crate) struct LocalShell;

impl Transport for LocalShell {
    fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExecOutput> {
        let start = Instant::now();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Transport(format!("sh: {e}")))?;
        let mut out = child.stdout.take().expect("piped");
        let mut err = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = out.read_to_end(&mut s);
            s
        });
        let err_reader = std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = err.read_to_end(&mut s);
            s
        });
        let status = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| Error::Transport(e.to_string()))?
            {
                break status;
            }
            if start.elapsed() > timeout {
                // The shell goes; a grandchild may linger until it ends, holding the pipes,
                // so the reader threads are left behind rather than joined.
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Transport(format!(
                    "`{command}` timed out after {timeout:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
        let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
        for l in stdout.lines() {
            on_line(Stream::Stdout, l);
        }
        Ok(ExecOutput {
            exit_code: status.code().unwrap_or(-1),
            stdout,
            stderr,
            duration: start.elapsed(),
        })
    }

    fn upload(&self, contents: &[u8], remote_path: &str, _mode: u32) -> Result<()> {
        std::fs::write(remote_path, contents).map_err(|e| Error::Transport(e.to_string()))
    }

    fn endpoint(&self) -> String {
        "local sh".into()
    }
}
