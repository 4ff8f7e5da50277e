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

static SIGNAL: AtomicI32 = AtomicI32::new(0);

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
            SIGNAL.store(first, Ordering::SeqCst);
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

/// A signal's conventional name.
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
