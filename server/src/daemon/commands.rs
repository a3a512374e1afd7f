//! The driver of `execute` statements (dhcp-eval(5) "EXECUTE"): the engine returns the commands
//! as values ([`crate::engine::statements::Command`]); this thread starts them off the packet
//! path, at most [`MAX_RUNNING`] at a time, each bounded by [`TIME_LIMIT`], and logs how each
//! ended. ISC runs the command in its only thread and waits for it, so a slow script stops its
//! DHCP service; here a slow or hung script costs one slot, and a queue that is full drops the
//! command with a counted `dropped`.

use std::collections::VecDeque;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::statements::Command;
use crate::metrics::{ExecuteResult, Metrics};

/// Commands waiting to start; more are dropped (counted).
const QUEUE: usize = 1024;
/// Children running at once.
const MAX_RUNNING: usize = 8;
/// A child still running after this is killed.
const TIME_LIMIT: Duration = Duration::from_secs(30);
/// How often running children are polled for their exit.
const POLL: Duration = Duration::from_millis(20);

/// The handle the workers use to hand commands over.
pub(super) struct CommandRunner {
    queue: SyncSender<Command>,
    metrics: Arc<Metrics>,
}

impl CommandRunner {
    /// Starts the runner thread; it ends when `shutdown` is set and nothing runs.
    pub fn spawn(metrics: Arc<Metrics>, shutdown: Arc<AtomicBool>) -> std::io::Result<Self> {
        let (queue, commands) = sync_channel(QUEUE);
        let thread_metrics = metrics.clone();
        std::thread::Builder::new()
            .name("xdhcpd-execute".into())
            .spawn(move || run(commands, &thread_metrics, &shutdown))?;
        Ok(Self { queue, metrics })
    }

    /// Queues `commands` (never blocks the caller).
    pub fn start(&self, commands: &[Command]) {
        for command in commands {
            match self.queue.try_send(command.clone()) {
                Ok(()) => {}
                Err(TrySendError::Full(command) | TrySendError::Disconnected(command)) => {
                    tracing::warn!(
                        "execute: {} not run: too many commands queued",
                        command.program
                    );
                    self.metrics.count_execute(ExecuteResult::Dropped);
                }
            }
        }
    }
}

struct Running {
    program: String,
    child: Child,
    deadline: Instant,
}

fn run(commands: Receiver<Command>, metrics: &Metrics, shutdown: &AtomicBool) {
    let mut waiting: VecDeque<Command> = VecDeque::new();
    let mut running: Vec<Running> = Vec::new();
    loop {
        match commands.recv_timeout(POLL) {
            Ok(command) => waiting.push_back(command),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if running.is_empty() && waiting.is_empty() {
                    return;
                }
            }
        }
        while let Ok(command) = commands.try_recv() {
            waiting.push_back(command);
        }
        while running.len() < MAX_RUNNING {
            let Some(command) = waiting.pop_front() else {
                break;
            };
            if let Some(child) = start(&command, metrics) {
                running.push(Running {
                    program: command.program,
                    child,
                    deadline: crate::clock::monotonic() + TIME_LIMIT,
                });
            }
        }
        running.retain_mut(|entry| !finished(entry, metrics));
        if shutdown.load(Ordering::Relaxed) && running.is_empty() {
            return;
        }
    }
}

fn start(command: &Command, metrics: &Metrics) -> Option<Child> {
    use std::os::unix::ffi::OsStrExt;
    let arguments = command
        .arguments
        .iter()
        .map(|argument| std::ffi::OsStr::from_bytes(argument));
    match std::process::Command::new(&command.program)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => Some(child),
        Err(error) => {
            // ISC: "execute: <command> fork/exec failed".
            tracing::error!("execute: {}: {error}", command.program);
            metrics.count_execute(ExecuteResult::NotStarted);
            None
        }
    }
}

/// Whether `entry` is done (then logged and counted).
fn finished(entry: &mut Running, metrics: &Metrics) -> bool {
    match entry.child.try_wait() {
        Ok(Some(status)) => {
            if status.success() {
                tracing::debug!("execute: {} exit status 0", entry.program);
                metrics.count_execute(ExecuteResult::Succeeded);
            } else {
                // ISC logs a non-zero status: "execute: <command> exit status N".
                tracing::error!("execute: {} {status}", entry.program);
                metrics.count_execute(ExecuteResult::Failed);
            }
            true
        }
        Ok(None) if crate::clock::monotonic() >= entry.deadline => {
            let _ = entry.child.kill();
            let _ = entry.child.wait();
            tracing::error!(
                "execute: {} still running after {} s: killed",
                entry.program,
                TIME_LIMIT.as_secs()
            );
            metrics.count_execute(ExecuteResult::TimedOut);
            true
        }
        Ok(None) => false,
        Err(error) => {
            tracing::error!("execute: {}: {error}", entry.program);
            metrics.count_execute(ExecuteResult::Failed);
            true
        }
    }
}
