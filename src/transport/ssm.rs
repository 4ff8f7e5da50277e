//! The SSM transport: commands through SSM Run Command (`AWS-RunShellScript`).
//!
//! Run Command does not stream: each exec sends one command, polls its invocation with backoff
//! until it finishes, then hands the output to `on_line`. The service returns at most 24,000
//! characters of stdout and 8,000 of stderr, so every command runs inside a small wrapper that
//! keeps the full output in files on the instance and prints a header first:
//! `BAKERY-SSM <nonce> <exit> <stdout bytes> <stderr bytes>`. When the text that came back is
//! shorter than the header says, the rest is read back in base64 chunks that fit the limit,
//! and the files are removed. Uploads travel base64-encoded inside the command.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ssm::types::InstanceInformationStringFilter;
use aws_sdk_ssm::Client;
use base64::Engine;

use super::{shell_quote, ExecOutput, Stream, Transport};
use crate::aws::wait::{self, Backoff, OnSignal, Poll};
use crate::aws::{ssm_code, ssm_error};
use crate::error::{Error, Result};

/// The most stdout characters `GetCommandInvocation` returns.
pub const STDOUT_LIMIT: usize = 24_000;
/// The most stderr characters `GetCommandInvocation` returns.
pub const STDERR_LIMIT: usize = 8_000;
/// Raw bytes per chunk when reading long output back (base64 of it stays under the limit).
const FETCH_CHUNK: usize = 15_000;
/// Raw bytes per upload command.
const UPLOAD_CHUNK: usize = 24_000;
/// Where the wrapper keeps output on the instance.
const OUTPUT_DIR: &str = "/var/tmp/bakery-ssm";

/// Tuning of the transport.
#[derive(Debug, Clone)]
pub struct SsmOptions {
    /// The first delay between polls of an invocation.
    pub first_poll: Duration,
    /// The longest delay between polls.
    pub max_poll: Duration,
    /// Extra time beyond a command's own timeout for delivery and polling.
    pub grace: Duration,
}

impl Default for SsmOptions {
    fn default() -> Self {
        SsmOptions {
            first_poll: Duration::from_millis(500),
            max_poll: Duration::from_secs(5),
            grace: Duration::from_secs(60),
        }
    }
}

/// A way into one instance through SSM Run Command.
pub struct SsmTransport {
    rt: Arc<tokio::runtime::Runtime>,
    client: Client,
    instance_id: String,
    options: SsmOptions,
}

/// What the wrapper's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    nonce: String,
    exit: i32,
    stdout_bytes: usize,
    stderr_bytes: usize,
}

/// The outcome of one invocation as the service reports it.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    pub status: String,
    pub status_details: String,
    pub response_code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl SsmTransport {
    /// A transport into `instance_id`.
    pub fn new(
        rt: Arc<tokio::runtime::Runtime>,
        client: Client,
        instance_id: &str,
        options: SsmOptions,
    ) -> SsmTransport {
        SsmTransport {
            rt,
            client,
            instance_id: instance_id.to_string(),
            options,
        }
    }

    /// Waits until the instance's SSM agent has registered and is online.
    pub fn wait_managed(&self, timeout: Duration) -> Result<()> {
        let id = self.instance_id.clone();
        wait::until(
            &format!("{id} to be managed by SSM (agent online)"),
            timeout,
            Backoff::new(Duration::from_secs(2), Duration::from_secs(15)),
            OnSignal::Stop,
            || {
                let out = self
                    .rt
                    .block_on(
                        self.client
                            .describe_instance_information()
                            .filters(
                                InstanceInformationStringFilter::builder()
                                    .key("InstanceIds")
                                    .values(&id)
                                    .build()
                                    .map_err(|e| Error::Infra(e.to_string()))?,
                            )
                            .send(),
                    )
                    .map_err(|e| ssm_error("ssm:DescribeInstanceInformation", e))?;
                let ping = out
                    .instance_information_list()
                    .iter()
                    .find(|i| i.instance_id.as_deref() == Some(id.as_str()))
                    .and_then(|i| i.ping_status.as_ref().map(|p| p.as_str().to_string()));
                Ok(match ping.as_deref() {
                    Some("Online") => Poll::Ready(()),
                    Some(other) => Poll::Pending(format!("agent {other}")),
                    None => Poll::Pending(
                        "not registered with SSM (needs the agent, an instance profile with AmazonSSMManagedInstanceCore, and a route to SSM)".into(),
                    ),
                })
            },
            String::new,
        )
    }

    /// Sends `script` as one AWS-RunShellScript command and waits for its invocation.
    pub fn invoke(&self, script: &str, timeout: Duration) -> Result<Invocation> {
        let exec_timeout = timeout.as_secs().clamp(1, 172_800);
        let sent = self
            .rt
            .block_on(
                self.client
                    .send_command()
                    .instance_ids(&self.instance_id)
                    .document_name("AWS-RunShellScript")
                    .comment("bakery")
                    .timeout_seconds(60)
                    .parameters("commands", vec![script.to_string()])
                    .parameters("executionTimeout", vec![exec_timeout.to_string()])
                    .send(),
            )
            .map_err(|e| ssm_error("ssm:SendCommand", e))?;
        let command_id = sent
            .command
            .and_then(|c| c.command_id)
            .ok_or_else(|| Error::Transport("ssm:SendCommand returned no command id".into()))?;
        let deadline = Instant::now() + timeout + self.options.grace;
        let mut backoff = Backoff::new(self.options.first_poll, self.options.max_poll);
        let mut last;
        loop {
            if let Err(e) = crate::signals::check() {
                self.cancel(&command_id);
                return Err(e);
            }
            let polled = self.rt.block_on(
                self.client
                    .get_command_invocation()
                    .command_id(&command_id)
                    .instance_id(&self.instance_id)
                    .send(),
            );
            match polled {
                Ok(o) => {
                    let status = o
                        .status
                        .as_ref()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    let inv = Invocation {
                        status: status.clone(),
                        status_details: o.status_details.clone().unwrap_or_default(),
                        response_code: o.response_code,
                        stdout: o.standard_output_content.clone().unwrap_or_default(),
                        stderr: o.standard_error_content.clone().unwrap_or_default(),
                    };
                    match status.as_str() {
                        "Success" | "Failed" => return Ok(inv),
                        "Pending" | "InProgress" | "Delayed" | "" => {
                            last = format!("{status} ({})", inv.status_details)
                        }
                        _ => {
                            return Err(Error::Transport(format!(
                                "{}: command {command_id} ended {status} ({}){}",
                                self.endpoint(),
                                inv.status_details,
                                tail_note(&inv.stderr)
                            )))
                        }
                    }
                }
                // The invocation appears a moment after SendCommand returns.
                Err(e) if ssm_code(&e) == "InvocationDoesNotExist" => {
                    last = "invocation not visible yet".into()
                }
                Err(e) => return Err(ssm_error("ssm:GetCommandInvocation", e)),
            }
            let now = Instant::now();
            if now >= deadline {
                self.cancel(&command_id);
                return Err(Error::Transport(format!(
                    "{}: command {command_id} timed out after {}s; last status: {last}",
                    self.endpoint(),
                    timeout.as_secs()
                )));
            }
            let delay = backoff.next_delay().min(deadline - now);
            if let Err(e) = wait::sleep(delay, true) {
                self.cancel(&command_id);
                return Err(e);
            }
        }
    }

    fn cancel(&self, command_id: &str) {
        let _ = self.rt.block_on(
            self.client
                .cancel_command()
                .command_id(command_id)
                .instance_ids(&self.instance_id)
                .send(),
        );
    }

    /// Reads `bytes` bytes of an output file on the instance in chunks, then removes it.
    fn fetch(&self, path: &str, bytes: usize, timeout: Duration) -> Result<Vec<u8>> {
        let mut data = Vec::with_capacity(bytes);
        let chunks = bytes.div_ceil(FETCH_CHUNK);
        for _ in 0..chunks {
            let script = format!(
                "tail -c +{} {} | head -c {FETCH_CHUNK} | base64 | tr -d '\\n'",
                data.len() + 1,
                shell_quote(path)
            );
            let inv = self.invoke(&script, timeout)?;
            if inv.status != "Success" {
                return Err(Error::Transport(format!(
                    "{}: reading {path} back failed ({}): {}",
                    self.endpoint(),
                    inv.status,
                    inv.stderr.trim()
                )));
            }
            let chunk = base64::engine::general_purpose::STANDARD
                .decode(inv.stdout.trim())
                .map_err(|e| {
                    Error::Transport(format!(
                        "{}: reading {path} back: not base64 ({e})",
                        self.endpoint()
                    ))
                })?;
            if chunk.is_empty() {
                break;
            }
            data.extend_from_slice(&chunk);
            if data.len() >= bytes {
                break;
            }
        }
        Ok(data)
    }
}

fn tail_note(stderr: &str) -> String {
    let t = stderr.trim();
    if t.is_empty() {
        String::new()
    } else {
        format!(": {}", &t[t.len().saturating_sub(400)..])
    }
}

/// A fresh nonce for the wrapper's files and header.
fn nonce() -> String {
    crate::cloud::new_id("c")[2..].to_string()
}

/// The wrapper around `command`: full output to files, a header, then the output itself.
fn wrap(command: &str, nonce: &str) -> String {
    format!(
        "d={OUTPUT_DIR}; mkdir -p \"$d\" && chmod 700 \"$d\"; o=\"$d/{nonce}.out\"; e=\"$d/{nonce}.err\"\n\
         sh -c {} >\"$o\" 2>\"$e\" </dev/null\n\
         rc=$?\n\
         so=$(wc -c <\"$o\" | tr -d ' '); se=$(wc -c <\"$e\" | tr -d ' ')\n\
         echo \"BAKERY-SSM {nonce} $rc $so $se\"\n\
         cat \"$o\"; cat \"$e\" >&2\n\
         if [ \"$so\" -le {} ] && [ \"$se\" -le {} ]; then rm -f \"$o\" \"$e\"; fi\n\
         exit $rc\n",
        shell_quote(command),
        STDOUT_LIMIT - 200,
        STDERR_LIMIT - 200,
    )
}

pub(crate) fn parse_header(stdout: &str) -> Option<(Header, &str)> {
    let (first, rest) = stdout.split_once('\n').unwrap_or((stdout, ""));
    let mut w = first.trim().split(' ');
    if w.next()? != "BAKERY-SSM" {
        return None;
    }
    let header = Header {
        nonce: w.next()?.to_string(),
        exit: w.next()?.parse().ok()?,
        stdout_bytes: w.next()?.parse().ok()?,
        stderr_bytes: w.next()?.parse().ok()?,
    };
    Some((header, rest))
}

impl Transport for SsmTransport {
    fn exec(
        &self,
        command: &str,
        timeout: Duration,
        on_line: &mut dyn FnMut(Stream, &str),
    ) -> Result<ExecOutput> {
        let started = Instant::now();
        let nonce = nonce();
        let inv = self.invoke(&wrap(command, &nonce), timeout)?;
        let Some((header, body)) = parse_header(&inv.stdout).filter(|(h, _)| h.nonce == nonce)
        else {
            return Err(Error::Transport(format!(
                "{}: the command's output did not start with Bakery's header (status {}, code {}){}",
                self.endpoint(),
                inv.status,
                inv.response_code,
                tail_note(&inv.stderr)
            )));
        };
        let mut stdout = body.to_string();
        let mut stderr = inv.stderr.clone();
        let truncated_out = stdout.len() < header.stdout_bytes;
        let truncated_err = stderr.len() < header.stderr_bytes;
        if truncated_out || truncated_err {
            tracing::debug!(
                stdout = header.stdout_bytes,
                stderr = header.stderr_bytes,
                "ssm: output truncated by the service; reading it back"
            );
            let base = format!("{OUTPUT_DIR}/{nonce}");
            if truncated_out {
                let bytes = self.fetch(&format!("{base}.out"), header.stdout_bytes, timeout)?;
                stdout = String::from_utf8_lossy(&bytes).into_owned();
            }
            if truncated_err {
                let bytes = self.fetch(&format!("{base}.err"), header.stderr_bytes, timeout)?;
                stderr = String::from_utf8_lossy(&bytes).into_owned();
            }
            let _ = self.invoke(
                &format!("rm -f {base}.out {base}.err"),
                Duration::from_secs(60),
            );
            if stdout.len() < header.stdout_bytes || stderr.len() < header.stderr_bytes {
                return Err(Error::Transport(format!(
                    "{}: output truncated: the command wrote {} bytes of stdout and {} of stderr, only {} and {} could be read back",
                    self.endpoint(),
                    header.stdout_bytes,
                    header.stderr_bytes,
                    stdout.len(),
                    stderr.len()
                )));
            }
        }
        for line in stdout.lines() {
            on_line(Stream::Stdout, line);
        }
        for line in stderr.lines() {
            on_line(Stream::Stderr, line);
        }
        Ok(ExecOutput {
            exit_code: header.exit,
            stdout,
            stderr,
            duration: started.elapsed(),
        })
    }

    fn upload(&self, contents: &[u8], remote_path: &str, mode: u32) -> Result<()> {
        let quoted = shell_quote(remote_path);
        let part = shell_quote(&format!("{remote_path}.bakery-part"));
        let mut first = true;
        let chunks: Vec<&[u8]> = if contents.is_empty() {
            vec![&[][..]]
        } else {
            contents.chunks(UPLOAD_CHUNK).collect()
        };
        for chunk in chunks {
            let b64 = base64::engine::general_purpose::STANDARD.encode(chunk);
            let redirect = if first { ">" } else { ">>" };
            let prefix = if first {
                format!("mkdir -p \"$(dirname {quoted})\" && ")
            } else {
                String::new()
            };
            let script = format!("{prefix}printf '%s' '{b64}' | base64 -d {redirect} {part}");
            let inv = self.invoke(&script, Duration::from_secs(120))?;
            if inv.status != "Success" {
                return Err(Error::Transport(format!(
                    "{}: uploading {remote_path} failed ({}){}",
                    self.endpoint(),
                    inv.status,
                    tail_note(&inv.stderr)
                )));
            }
            first = false;
        }
        let inv = self.invoke(
            &format!("chmod {mode:o} {part} && mv -f {part} {quoted}"),
            Duration::from_secs(60),
        )?;
        if inv.status != "Success" {
            return Err(Error::Transport(format!(
                "{}: uploading {remote_path} failed ({}){}",
                self.endpoint(),
                inv.status,
                tail_note(&inv.stderr)
            )));
        }
        Ok(())
    }

    fn endpoint(&self) -> String {
        format!("ssm {}", self.instance_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `command` wrapped, with the wrapper's output files in `dir`.
    fn run_wrapped(command: &str, nonce: &str, dir: &std::path::Path) -> std::process::Output {
        let script = wrap(command, nonce).replace(OUTPUT_DIR, &dir.display().to_string());
        std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap()
    }

    #[test]
    fn the_wrapper_reports_exit_code_and_sizes_and_keeps_only_long_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = run_wrapped("echo out; echo err >&2; exit 3", "n1", dir.path());
        assert_eq!(out.status.code(), Some(3));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let (h, body) = parse_header(&stdout).unwrap();
        assert_eq!(
            h,
            Header {
                nonce: "n1".into(),
                exit: 3,
                stdout_bytes: 4,
                stderr_bytes: 4
            }
        );
        assert_eq!(body, "out\n");
        assert_eq!(String::from_utf8(out.stderr).unwrap(), "err\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let out = run_wrapped("head -c 30000 /dev/zero | tr '\\0' x", "n2", dir.path());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(parse_header(&stdout).unwrap().0.stdout_bytes, 30000);
        assert!(dir.path().join("n2.out").exists(), "long output is kept");
    }

    #[test]
    fn quotes_in_commands_survive_the_wrapper() {
        let dir = tempfile::tempdir().unwrap();
        let out = run_wrapped("printf '%s\\n' \"it's\"", "n3", dir.path());
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(parse_header(&stdout).unwrap().1, "it's\n");
    }
}
