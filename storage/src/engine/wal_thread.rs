//! The WAL thread: it owns the open WAL file, takes every append queued since its last fsync,
//! writes them, fsyncs once (group commit), inserts the batches into the head and only then
//! acknowledges the writers. Freezing the head happens on this thread too, between two groups, so
//! a frozen buffer holds exactly the WAL records up to its `max_seq`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use parking_lot::Mutex;

use super::commit::State;
use crate::error::{Result, StorageError};
use crate::head::FrozenBuffer;
use crate::schema::Table;
use crate::wal::WalFile;

enum WalCommand {
    Append {
        table: Table,
        batch: RecordBatch,
        ipc: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Result<()>>,
    },
    Freeze {
        reply: Sender<Result<Option<Arc<FrozenBuffer>>>>,
    },
    Stop,
}

/// Largest amount of WAL payload one group commit takes before it fsyncs.
const GROUP_COMMIT_BYTES: usize = 8 << 20;

/// The handle on the WAL thread: where appends and freezes are sent.
pub(super) struct WalThread {
    tx: Mutex<Option<Sender<WalCommand>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WalThread {
    /// Starts the thread over `wal` (the file new writes go to).
    pub(super) fn start(
        wal: WalFile,
        state: Arc<Mutex<State>>,
        head_bytes: Arc<AtomicUsize>,
    ) -> Result<WalThread> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lumen-wal".into())
            .spawn(move || wal_loop(wal, rx, state, head_bytes))
            .map_err(|e| StorageError::io("starting the WAL thread", e))?;
        Ok(WalThread {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `batch` (and its IPC encoding) for the next group commit; the answer comes once it
    /// is fsync'd and in the head.
    pub(super) fn append(
        &self,
        table: Table,
        batch: RecordBatch,
        ipc: Vec<u8>,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<()>>> {
        let (reply, done) = tokio::sync::oneshot::channel();
        let tx = self.tx.lock();
        let tx = tx.as_ref().ok_or(StorageError::ShuttingDown)?;
        tx.send(WalCommand::Append {
            table,
            batch,
            ipc,
            reply,
        })
        .map_err(|_| StorageError::ShuttingDown)?;
        Ok(done)
    }

    /// Commits what is queued, freezes the head's active buffer and starts a new WAL file, so the
    /// frozen buffer covers exactly the WAL files before it. Nothing when the thread has stopped.
    pub(super) fn freeze_active(&self) -> Result<()> {
        let (reply, done) = mpsc::channel();
        let sent = match self.tx.lock().as_ref() {
            Some(tx) => tx.send(WalCommand::Freeze { reply }).is_ok(),
            None => false,
        };
        if sent && let Ok(result) = done.recv() {
            result?;
        }
        Ok(())
    }

    /// Commits what is queued and ends the thread; later appends answer `ShuttingDown`.
    pub(super) fn stop(&self) {
        if let Some(tx) = self.tx.lock().take() {
            let _ = tx.send(WalCommand::Stop);
        }
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
    }
}

type Pending = Vec<(
    u64,
    Table,
    RecordBatch,
    tokio::sync::oneshot::Sender<Result<()>>,
)>;

fn wal_loop(
    mut wal: WalFile,
    rx: Receiver<WalCommand>,
    state: Arc<Mutex<State>>,
    head_bytes: Arc<AtomicUsize>,
) {
    let mut pending: Pending = Vec::new();
    // After a failed write or fsync the file's contents are unknown; refuse further appends rather
    // than acknowledge data that may not be durable.
    let mut poisoned: Option<String> = None;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut group_bytes = 0usize;
        while let Some(command) = next.take() {
            match command {
                WalCommand::Append {
                    table,
                    batch,
                    ipc,
                    reply,
                } => {
                    if let Some(why) = &poisoned {
                        let _ = reply.send(Err(StorageError::io(
                            "WAL",
                            std::io::Error::other(why.clone()),
                        )));
                    } else {
                        match wal.append(table, &ipc) {
                            Ok(seq) => pending.push((seq, table, batch, reply)),
                            Err(e) => {
                                poisoned = Some(format!("an earlier WAL write failed: {e}"));
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    group_bytes += ipc.len();
                    if group_bytes < GROUP_COMMIT_BYTES {
                        next = rx.try_recv().ok();
                    }
                }
                WalCommand::Freeze { reply } => {
                    group_commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
                    let frozen = state.lock().head.freeze();
                    let result = match frozen {
                        Some(f) => wal.rotate().map(|()| Some(f)),
                        None => Ok(None),
                    };
                    let _ = reply.send(result);
                }
                WalCommand::Stop => {
                    group_commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
                    return;
                }
            }
        }
        group_commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
    }
    group_commit(&mut wal, &mut pending, &state, &head_bytes, &mut poisoned);
}

/// fsyncs the appends written since the last commit, then puts them in the head and acknowledges them.
fn group_commit(
    wal: &mut WalFile,
    pending: &mut Pending,
    state: &Mutex<State>,
    head_bytes: &AtomicUsize,
    poisoned: &mut Option<String>,
) {
    if pending.is_empty() {
        return;
    }
    let started = Instant::now();
    match wal.sync() {
        Ok(bytes) => {
            metrics::histogram!("lumen_wal_fsync_seconds").record(started.elapsed().as_secs_f64());
            metrics::counter!("lumen_wal_bytes_total").increment(bytes);
            metrics::counter!("lumen_wal_records_total").increment(pending.len() as u64);
            let mut replies = Vec::with_capacity(pending.len());
            {
                let mut state = state.lock();
                for (seq, table, batch, reply) in pending.drain(..) {
                    state.head.active.insert(seq, table, batch);
                    replies.push(reply);
                }
                head_bytes.store(state.head.bytes(), Ordering::Release);
                metrics::gauge!("lumen_head_bytes").set(state.head.bytes() as f64);
                metrics::gauge!("lumen_head_rows").set(state.head.rows() as f64);
            }
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "WAL fsync failed; refusing further writes until restart");
            *poisoned = Some(format!("WAL fsync failed: {e}"));
            for (_, _, _, reply) in pending.drain(..) {
                let _ = reply.send(Err(StorageError::io(
                    "WAL fsync",
                    std::io::Error::other(e.to_string()),
                )));
            }
        }
    }
}
