//! The shard loop (see the crate header for its order and the reasons).

use crate::ordering::Ordering;
use crate::{sys, Board, Command, RuntimeConfig, Sink, MAX_PARK};
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The time slice shard 0 asks the scheduler for (the shortest EEVDF accepts): see
/// `sys::request_short_slice`.
const SHARD_SLICE: Duration = Duration::from_micros(100);

/// Shard 0: owns the group core and everything ordered.
pub(crate) struct Shard0 {
    config: RuntimeConfig,
    commands: Receiver<Command>,
    waker: Arc<sys::EventFd>,
    ordering: Ordering,
}

impl Shard0 {
    pub fn new(
        config: RuntimeConfig,
        sink: Arc<dyn Sink>,
        commands: Receiver<Command>,
        waker: Arc<sys::EventFd>,
        board: Arc<Board>,
        links: Vec<crate::shards::ShardLink>,
        inbox: Sender<Command>,
    ) -> Shard0 {
        let ordering = Ordering::new(config.clone(), sink, board, links, inbox, waker.clone());
        Shard0 {
            config,
            commands,
            waker,
            ordering,
        }
    }

    pub fn run(mut self, core: Option<usize>) {
        if let Some(id) = core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
                log::warn!("could not pin shard 0 to core {id}");
            }
        }
        if let Err(e) = sys::request_short_slice(SHARD_SLICE) {
            log::debug!("shard 0 keeps the default time slice: {e}");
        }
        let tick = self.config.tick;
        let mut next_tick = Instant::now() + tick;
        let mut last_activity = Instant::now();
        loop {
            // A panic here must not take mariadbd down: the shard reports it, leaves the
            // group (deliveries stop, waiters fail) and keeps answering commands.
            let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run_once(&mut next_tick, tick)
            }));
            match step {
                Ok(Step::Stop) => break,
                Ok(Step::Busy) => last_activity = Instant::now(),
                Ok(Step::Idle) => self.park(&mut last_activity, next_tick),
                Err(_) => {
                    log::error!("internal error on shard 0; leaving the group");
                    self.ordering.fail_session("internal error on shard 0");
                }
            }
        }
        self.ordering.shutdown();
    }

    fn run_once(&mut self, next_tick: &mut Instant, tick: Duration) -> Step {
        let mut busy = false;
        // 1. commands
        loop {
            match self.commands.try_recv() {
                Ok(Command::Stop) => return Step::Stop,
                Ok(command) => {
                    busy = true;
                    self.ordering.command(command);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Step::Stop,
            }
        }
        // Everything proposed by the commands above goes to the group as one batch.
        self.ordering.flush_proposals();
        // 2. I/O: frames from peers, without blocking
        if self.ordering.poll_network(Some(Duration::ZERO)) {
            busy = true;
        }
        // 3. ticks, catching up with the monotonic clock
        let now = Instant::now();
        while *next_tick <= now {
            self.ordering.tick();
            *next_tick += tick;
            busy = true;
        }
        // 4. ready work
        if self.ordering.process_ready() {
            busy = true;
        }
        if busy {
            Step::Busy
        } else {
            Step::Idle
        }
    }

    /// Spins briefly after recent activity while replies are due (local proposals or read
    /// points in flight), then sleeps on the eventfd until the next tick. A node with
    /// nothing in flight (a follower that just acknowledged an append) parks at once: on a
    /// small VM its spinning would take the CPU the other nodes need to answer.
    fn park(&mut self, last_activity: &mut Instant, next_tick: Instant) {
        if self.ordering.awaiting_replies() && last_activity.elapsed() < self.config.spin_budget {
            std::hint::spin_loop();
            return;
        }
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(MAX_PARK);
        let timeout_ms = wait.as_millis().max(1) as i32;
        // From here on, senders signal the eventfd; a command queued before this is seen by
        // the check below.
        self.waker.set_sleeping(true);
        if !self.commands.is_empty() {
            self.waker.set_sleeping(false);
            return;
        }
        if self.ordering.has_network() {
            // The transport waits on the sockets and the wake eventfd together.
            self.ordering.poll_network(Some(wait));
            self.waker.set_sleeping(false);
            return;
        }
        if let Err(e) = self.waker.wait(&[], timeout_ms) {
            log::warn!("shard 0 wait failed: {e}");
            std::thread::sleep(Duration::from_millis(1));
        }
        self.waker.set_sleeping(false);
    }
}

enum Step {
    Busy,
    Idle,
    Stop,
}
