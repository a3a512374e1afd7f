//! The control plane's one runtime: every service that talks to the outside world other than
//! DHCP clients — failover peers, OMAPI, the JSON control API, the metrics endpoint, dynamic
//! DNS — runs as tasks of one tokio runtime with one cancellation token (DESIGN.md
//! "Threads"). The DHCP workers, the group committer, the XDP consumer and the ping driver
//! stay on threads of their own: they block on sockets, fsync and ring buffers, and must never
//! wait behind an OMAPI client.
//!
//! Stopping is in two steps: [`ControlPlane::cancel`] tells every task to finish what it is
//! doing (a task selects on [`ControlPlane::token`]); [`ControlPlane::shutdown`] then gives
//! them a bounded time and drops what is left.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio_util::sync::CancellationToken;

/// Worker threads of the runtime. The control plane is I/O-bound and light: two threads keep
/// one slow task (a BNDUPD burst, a TSIG signature) from delaying an OMAPI answer.
const WORKER_THREADS: usize = 2;

/// The runtime and its cancellation token.
pub struct ControlPlane {
    runtime: Runtime,
    token: CancellationToken,
}

impl ControlPlane {
    /// Starts the runtime's threads (named `control-plane`).
    pub fn start() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("control-plane")
            .enable_all()
            .build()?;
        Ok(Self {
            runtime,
            token: CancellationToken::new(),
        })
    }

    /// Where services spawn their tasks.
    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// Cancelled when the daemon stops; every long-running task selects on it.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Asks every task to stop.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Cancels, then waits at most `grace` for the tasks to end; the rest are dropped.
    pub fn shutdown(self, grace: Duration) {
        self.token.cancel();
        self.runtime.shutdown_timeout(grace);
    }
}

/// Runs `work`, which may block (an fsync wait of the group commit, a store lock), from a
/// control-plane task: on the multi-thread runtime the thread's other tasks move to another
/// thread meanwhile (`tokio::task::block_in_place`), so one failover peer waiting for the disk
/// does not stall OMAPI. Elsewhere (a test's current-thread runtime, a plain thread) it just
/// runs `work`.
pub fn blocking<R>(work: impl FnOnce() -> R) -> R {
    let multi_thread = Handle::try_current()
        .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work)
    } else {
        work()
    }
}

/// Binds a TCP listener for a control-plane task (OMAPI, the JSON control API, metrics, bulk
/// leasequery): bound before returning, so a busy port is a start-up error; SO_REUSEADDR, so a
/// restart is not refused for the old connections' TIME_WAIT; registered with the runtime of
/// `handle` without blocking on it.
pub fn bind_tcp(handle: &Handle, address: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    let _runtime = handle.enter();
    tokio::net::TcpListener::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_task_selecting_on_the_token_ends_at_cancel() {
        let plane = ControlPlane::start().expect("runtime");
        let ended = Arc::new(AtomicBool::new(false));
        let task = plane.handle().spawn({
            let token = plane.token();
            let ended = ended.clone();
            async move {
                token.cancelled().await;
                ended.store(true, Ordering::SeqCst);
            }
        });
        plane.cancel();
        plane.handle().block_on(task).expect("task");
        assert!(ended.load(Ordering::SeqCst));
        plane.shutdown(Duration::from_secs(1));
    }
}
