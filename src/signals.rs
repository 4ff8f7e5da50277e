//! SIGINT and SIGTERM: stop creating, release what exists, exit.
//!
//! A signal sets a flag. Every wait in Bakery (SSH, boot, shutdown, child programs) checks it
//! and returns [`Error::Interrupted`], so the pipeline unwinds its ledger the ordinary way. If
//! the pipeline has not finished within [`GRACE`] (a wait that cannot notice, say), the signal
//! thread runs the registered emergency cleanup itself and exits — GitHub's runner sends SIGINT,
//! then SIGTERM 7.5 s later, then kills the process tree 2.5 s after that.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long the pipeline gets to unwind by itself after the first signal.
pub const GRACE: Duration = Duration::from_secs(6);

/// How long after the first signal releases may keep waiting (an instance to terminate, a
/// security group to be free): the runner kills the job 10 s after its SIGINT, and what is not
/// released by then must be left on the ledger, written, for the post step.
pub const RELEASE_WINDOW: Duration = Duration::from_secs(8);

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static RECEIVED_AT: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

type Cleanup = Box<dyn Fn() + Send>;
static EMERGENCY: Mutex<Option<Cleanup>> = Mutex::new(None);

/// Starts the signal thread. Call once, early in `main`.
pub fn install() -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| Error::Infra(format!("installing signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Some(first) = signals.forever().next() else {
                return;
            };
            // The time is taken before the flag is set: the pipeline may see the flag and
            // announce its cleanup before this thread announces the signal.
            let at = std::time::SystemTime::now();
            let _ = RECEIVED_AT.set(std::time::Instant::now());
            SIGNAL.store(first, Ordering::SeqCst);
            crate::progress::announce_at(&format!("signal-{}", name(first)), at);
            crate::say!(
                "\nbakery: {} received: stopping and releasing every resource of the run",
                name(first)
            );
            std::thread::sleep(GRACE);
            crate::say!(
                "bakery: the run did not stop within {}s; releasing its resources now",
                GRACE.as_secs()
            );
            if let Some(cleanup) = EMERGENCY.lock().unwrap_or_else(|p| p.into_inner()).take() {
                cleanup();
            }
            std::process::exit(128 + first);
        })
        .map_err(|e| Error::Infra(format!("starting the signal thread: {e}")))?;
    Ok(())
}

/// Registers what to run if the pipeline does not unwind within [`GRACE`]; replaces any
/// earlier registration.
pub fn set_emergency_cleanup(cleanup: impl Fn() + Send + 'static) {
    *EMERGENCY.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(cleanup));
}

/// Drops the emergency cleanup once the pipeline has unwound by itself.
pub fn clear_emergency_cleanup() {
    EMERGENCY.lock().unwrap_or_else(|p| p.into_inner()).take();
}

thread_local! {
    static SHIELDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with [`check`] reporting no signal on this thread: for the few seconds of work
/// that must finish even when the run is stopping (undoing a fault on an instance).
pub fn shielded<T>(f: impl FnOnce() -> T) -> T {
    let before = SHIELDED.with(|s| s.replace(true));
    let out = f();
    SHIELDED.with(|s| s.set(before));
    out
}

/// The error to stop with if a signal has arrived.
pub fn check() -> Result<()> {
    if SHIELDED.with(|s| s.get()) {
        return Ok(());
    }
    match SIGNAL.load(Ordering::SeqCst) {
        0 => Ok(()),
        sig => Err(Error::Interrupted(sig)),
    }
}

static RELEASING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called where resources start being released (an instance terminated, a ledger entry
/// released or unwound): the first such call after a signal is announced as `cleanup`
/// ([`crate::progress::announce`]), which is when the run's cleanup began.
pub fn releasing() {
    if SIGNAL.load(Ordering::SeqCst) != 0 && !RELEASING.swap(true, Ordering::SeqCst) {
        crate::progress::announce("cleanup");
    }
}

/// When a release must give up: [`RELEASE_WINDOW`] after the first signal, if one arrived,
/// with that signal's name.
pub fn release_deadline() -> Option<(std::time::Instant, &'static str)> {
    let at = RECEIVED_AT.get()?;
    Some((*at + RELEASE_WINDOW, name(SIGNAL.load(Ordering::SeqCst))))
}

/// A signal's conventional name.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
