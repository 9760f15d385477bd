//! How the engine waits for its next message: it polls for a little
//! while before it sleeps, when recent messages came soon after it began
//! to wait.
//!
//! Waking a sleeping thread costs tens of microseconds, more on a virtual
//! machine, where the idle CPU it sleeps on must be woken as well. Along a
//! chain of tasks whose worker answers in a fraction of a millisecond,
//! that wake-up is a tenth of every step. Polling costs CPU instead, so
//! the engine polls only as long as its recent waits say a message is
//! about to come, the way the kernel's halt polling decides for an idle
//! CPU:
//!
//! - a message that arrives while polling leaves the budget as it is;
//! - one that arrives after the engine fell asleep, yet within the
//!   longest poll, doubles the budget (from [`FIRST_POLL`]);
//! - a longer wait halves it, down to none.
//!
//! It polls only while few calls are in flight ([`FEW_IN_FLIGHT`]). Then
//! each wake-up lies on the path from one answer to the next call. With
//! more, answers come in batches anyway, and on a small machine the CPU is
//! worth more to the calls themselves (measured: polling then slowed a
//! 1,000-task fan-in and continuations by a tenth to a quarter). While
//! polling, the engine yields its CPU between two looks, so that a thread
//! with work to do is not kept waiting by it.

use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

/// The budget after the first short wait.
const FIRST_POLL: Duration = Duration::from_micros(25);
/// Most calls in flight with which the engine still polls.
const FEW_IN_FLIGHT: u32 = 4;

/// Poll-then-sleep waits on the engine's channel, with a budget that
/// follows how long recent waits lasted.
#[derive(Debug)]
pub(crate) struct IdlePoll {
    /// The longest poll; zero: never poll.
    max: Duration,
    /// How long the next wait polls before it sleeps.
    budget: Duration,
}

impl IdlePoll {
    /// Polls for at most `max` before sleeping (zero: always sleep at
    /// once).
    pub(crate) fn new(max: Duration) -> Self {
        IdlePoll {
            max,
            budget: Duration::ZERO,
        }
    }

    /// Waits up to `timeout` for the next message: polls for the budget
    /// if no more than [`FEW_IN_FLIGHT`] calls are in flight, then sleeps
    /// for the rest.
    pub(crate) fn recv<T>(
        &mut self,
        rx: &Receiver<T>,
        timeout: Duration,
        in_flight: u32,
    ) -> Result<T, RecvTimeoutError> {
        let start = Instant::now();
        let poll = self.poll_for(timeout, in_flight);
        if !poll.is_zero() {
            loop {
                match rx.try_recv() {
                    Ok(m) => return Ok(m),
                    Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                    Err(TryRecvError::Empty) => {}
                }
                if start.elapsed() >= poll {
                    break;
                }
                std::thread::yield_now();
            }
        }
        let r = rx.recv_timeout(timeout.saturating_sub(start.elapsed()));
        if !matches!(r, Err(RecvTimeoutError::Disconnected)) {
            self.waited(start.elapsed());
        }
        r
    }

    /// How long a wait of at most `timeout` polls, with `in_flight` calls
    /// in flight.
    fn poll_for(&self, timeout: Duration, in_flight: u32) -> Duration {
        if in_flight <= FEW_IN_FLIGHT {
            self.budget.min(timeout)
        } else {
            Duration::ZERO
        }
    }

    /// Adjusts the budget after a wait that outlasted its poll and ended
    /// (with a message or the timeout) after `waited` in all.
    fn waited(&mut self, waited: Duration) {
        self.budget = if waited <= self.max {
            (self.budget * 2).max(FIRST_POLL).min(self.max)
        } else if self.budget > FIRST_POLL {
            self.budget / 2
        } else {
            Duration::ZERO
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const MAX: Duration = Duration::from_micros(400);

    /// An `IdlePoll` after enough short waits to poll for `max`.
    fn warmed(max: Duration) -> IdlePoll {
        let mut p = IdlePoll::new(max);
        for _ in 0..20 {
            p.waited(Duration::ZERO);
        }
        assert_eq!(p.budget, max);
        p
    }

    #[test]
    fn short_waits_grow_the_budget_up_to_the_longest_poll() {
        let mut p = IdlePoll::new(MAX);
        assert_eq!(p.budget, Duration::ZERO);
        p.waited(Duration::from_micros(100));
        assert_eq!(p.budget, FIRST_POLL);
        p.waited(Duration::from_micros(100));
        assert_eq!(p.budget, FIRST_POLL * 2);
        for _ in 0..10 {
            p.waited(Duration::from_micros(100));
        }
        assert_eq!(p.budget, MAX);
    }

    #[test]
    fn long_waits_shrink_the_budget_to_none() {
        let mut p = warmed(MAX);
        p.waited(Duration::from_millis(5));
        assert_eq!(p.budget, MAX / 2);
        for _ in 0..10 {
            p.waited(Duration::from_millis(5));
        }
        assert_eq!(p.budget, Duration::ZERO);
    }

    #[test]
    fn no_longest_poll_means_never_polling() {
        let mut p = IdlePoll::new(Duration::ZERO);
        p.waited(Duration::ZERO);
        assert_eq!(p.budget, Duration::ZERO);
    }

    #[test]
    fn a_message_already_sent_is_taken_while_polling_and_keeps_the_budget() {
        let mut p = warmed(MAX);
        let (tx, rx) = mpsc::channel();
        tx.send(7).unwrap();
        assert_eq!(p.recv(&rx, Duration::from_secs(5), 1), Ok(7));
        assert_eq!(p.budget, MAX);
    }

    #[test]
    fn with_many_calls_in_flight_the_engine_sleeps_at_once() {
        let p = warmed(MAX);
        let long = Duration::from_secs(1);
        assert_eq!(p.poll_for(long, 0), MAX);
        assert_eq!(p.poll_for(long, FEW_IN_FLIGHT), MAX);
        assert_eq!(p.poll_for(long, FEW_IN_FLIGHT + 1), Duration::ZERO);
        // Never past the wait's own end.
        let short = Duration::from_micros(10);
        assert_eq!(p.poll_for(short, 1), short);
    }

    #[test]
    fn a_message_sent_from_another_thread_after_the_poll_is_received() {
        let mut p = IdlePoll::new(MAX);
        let (tx, rx) = mpsc::channel();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(9).unwrap();
            // Held until the receiver has its message.
            tx
        });
        assert_eq!(p.recv(&rx, Duration::from_secs(5), 1), Ok(9));
        drop(sender.join().unwrap());
        // A 20 ms wait is longer than the longest poll.
        assert_eq!(p.budget, Duration::ZERO);
    }

    #[test]
    fn the_timeout_still_ends_a_wait_and_a_closed_channel_is_reported() {
        let mut p = warmed(MAX);
        let (tx, rx) = mpsc::channel::<u8>();
        assert_eq!(
            p.recv(&rx, Duration::from_millis(2), 0),
            Err(RecvTimeoutError::Timeout)
        );
        drop(tx);
        assert_eq!(
            p.recv(&rx, Duration::from_secs(5), 0),
            Err(RecvTimeoutError::Disconnected)
        );
    }
}
