//! A minimal client for QEMU's machine protocol (QMP): power, reset, pause, link state.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// A connected QMP session with capabilities negotiated.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to the QMP socket at `path` and leaves capabilities negotiation mode.
    pub fn connect(path: &Path) -> Result<Qmp> {
        let fail = |e: std::io::Error| Error::Infra(format!("QMP {}: {e}", path.display()));
        let stream = UnixStream::connect(path).map_err(fail)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(fail)?;
        let writer = stream.try_clone().map_err(fail)?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(Error::Infra(format!(
                "QMP {}: unexpected greeting {greeting}",
                path.display()
            )));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// Runs a command and returns its `return` value; events that arrive meanwhile are skipped.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let request = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}")
            .map_err(|e| Error::Infra(format!("QMP {command}: {e}")))?;
        loop {
            let message = self.read_message()?;
            if let Some(ret) = message.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = message.get("error") {
                return Err(Error::Infra(format!("QMP {command}: {err}")));
            }
        }
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| Error::Infra(format!("QMP: {e}")))?;
        if n == 0 {
            return Err(Error::Infra("QMP: QEMU closed the connection".into()));
        }
        serde_json::from_str(&line)
            .map_err(|e| Error::Infra(format!("QMP: bad message {line:?}: {e}")))
    }
}
