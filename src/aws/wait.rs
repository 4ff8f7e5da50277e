//! Waiting without fixed sleeps: exponential backoff with jitter under an overall deadline.

use std::time::{Duration, Instant};

use crate::error::Result;

/// Delays that grow by half each time up to a cap, each shortened by up to a quarter at random,
/// so that many waiters do not poll in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// Starts at `first`, never exceeds `cap`.
    pub fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff { next: first, cap }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 3 / 2).min(self.cap);
        let jitter = base.as_millis() as u64 / 4;
        let cut = if jitter == 0 {
            0
        } else {
            random_u64() % (jitter + 1)
        };
        base.saturating_sub(Duration::from_millis(cut))
    }
}

fn random_u64() -> u64 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u64()
}

/// What one poll found.
pub enum Poll<T> {
    /// Done, with the value.
    Ready(T),
    /// Not yet; the description says what state the resource is in (for the timeout error).
    Pending(String),
}

/// Whether a wait stops when a signal arrives. Releases during unwinding must not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSignal {
    Stop,
    Continue,
}

/// Polls until `poll` is ready, backing off between attempts, until `timeout` has passed. The
/// timeout error names `what`, the last state seen, and whatever `explain` adds (console tail).
pub fn until<T>(
    what: &str,
    timeout: Duration,
    backoff: Backoff,
    on_signal: OnSignal,
    mut poll: impl FnMut() -> Result<Poll<T>>,
    explain: impl FnOnce() -> String,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut backoff = backoff;
    let mut last;
    loop {
        if on_signal == OnSignal::Stop {
            crate::signals::check()?;
        }
        match poll()? {
            Poll::Ready(v) => return Ok(v),
            Poll::Pending(state) => last = state,
        }
        let now = Instant::now();
        // After a signal, a release gets what is left of the runner's window and no more;
        // what it leaves stays on the ledger for `bakery cleanup`.
        let window = match on_signal {
            OnSignal::Continue => crate::signals::release_deadline(),
            OnSignal::Stop => None,
        };
        if let Some((end, signal)) = window.filter(|(end, _)| *end < deadline) {
            if now >= end {
                return Err(crate::Error::Infra(format!(
                    "still waiting for {what} {}s after {signal} (last state: {last}); left on the run ledger for `bakery cleanup`, which the GitHub Action's post step runs",
                    crate::signals::RELEASE_WINDOW.as_secs()
                )));
            }
            sleep(backoff.next_delay().min(end - now), false)?;
            continue;
        }
        if now >= deadline {
            let extra = explain();
            return Err(crate::Error::Infra(format!(
                "timed out after {}s waiting for {what}; last state: {last}{}",
                timeout.as_secs(),
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("\n{extra}")
                }
            )));
        }
        sleep(
            backoff.next_delay().min(deadline - now),
            on_signal == OnSignal::Stop,
        )?;
    }
}

/// Sleeps in short slices, returning early with an error when a signal arrives (if asked to).
pub fn sleep(total: Duration, check_signals: bool) -> Result<()> {
    let end = Instant::now() + total;
    loop {
        if check_signals {
            crate::signals::check()?;
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(200)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_bounded_jitter() {
        let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(4000));
        let delays: Vec<Duration> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] <= Duration::from_millis(1000));
        assert!(delays[0] >= Duration::from_millis(750));
        for d in &delays {
            assert!(*d <= Duration::from_millis(4000));
            assert!(*d >= Duration::from_millis(750));
        }
        assert!(delays[7] >= Duration::from_millis(3000), "{delays:?}");
    }

    #[test]
    fn a_wait_that_never_finishes_reports_the_last_state() {
        let mut polls = 0;
        let err = until::<()>(
            "thing to happen",
            Duration::from_millis(50),
            Backoff::new(Duration::from_millis(5), Duration::from_millis(10)),
            OnSignal::Continue,
            || {
                polls += 1;
                Ok(Poll::Pending(format!("pending (poll {polls})")))
            },
            || "console: nothing".into(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("thing to happen"), "{err}");
        assert!(err.contains("last state: pending"), "{err}");
        assert!(err.contains("console: nothing"), "{err}");
    }
}
