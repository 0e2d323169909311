//! The spool: every accepted record, per destination, until it is delivered or
//! dead-lettered; SQLite in WAL mode, on local disk.
//!
//! One thread owns the database connection and runs every command sent to it.
//! It takes all the commands waiting at once into one transaction (group
//! commit): under load a whole batch of requests costs one `fsync`, not one
//! each. A transaction that stores records is synced (`synchronous = FULL`)
//! before any of its senders hears back, which is what lets the receiver
//! answer 2xx. Leases, acknowledgements and retries are written with
//! `synchronous = NORMAL`: lost in a power cut, they only mean that a record
//! is delivered once more (at least once), never that one is lost.
//!
//! A record is leased to a delivery worker while it is in flight. Leases are
//! kept in memory by the spool thread, not written: after a restart nothing
//! is leased, so whatever was in flight when the process died is delivered
//! again.
//!
//! Checkpoints (copying the write-ahead log into the database file) run on a
//! connection of their own, every second, so that commits never wait for one.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

/// The database file inside the spool folder.
pub const FILE_NAME: &str = "spool.sqlite";

/// The write-ahead log's size beyond which the writer checkpoints it itself.
const WAL_LIMIT: u64 = 32 << 20;

/// At most this many commands go into one transaction.
const GROUP_COMMIT_MAX: usize = 512;

/// How long a group with a store may wait for requests on their way to a
/// store of their own, at most, and in steps of how long (see [`Worker::run`]).
const GATHER_MAX: Duration = Duration::from_micros(1000);
const GATHER_STEP: Duration = Duration::from_micros(250);

/// How much the spool may hold before it refuses new records (503).
#[derive(Debug, Clone, Copy)]
pub struct SpoolLimits {
    /// Bytes of record bodies queued, over all destinations (default 1 GiB).
    pub max_bytes: u64,
    /// Records queued, over all destinations (default 1,000,000).
    pub max_records: u64,
}

impl Default for SpoolLimits {
    fn default() -> Self {
        SpoolLimits {
            max_bytes: 1 << 30,
            max_records: 1_000_000,
        }
    }
}

/// A record to store for one destination.
#[derive(Debug, Clone)]
pub struct NewRecord {
    pub destination: Arc<str>,
    pub record_id: Arc<str>,
    pub source: Arc<str>,
    pub body: Vec<u8>,
}

/// A record that failed before it reached any destination (the transform
/// failed on it), or one a destination will never take.
#[derive(Debug, Clone)]
pub struct DeadRecord {
    pub destination: Option<Arc<str>>,
    pub record_id: Arc<str>,
    pub source: Arc<str>,
    pub received_ms: i64,
    pub reason: String,
    /// Every delivery attempt, as JSON (`[]` when there was none).
    pub attempts: String,
    pub body: Vec<u8>,
}

/// A queued record leased to a delivery worker.
#[derive(Debug, Clone)]
pub struct Leased {
    pub seq: i64,
    pub record_id: String,
    pub received_ms: i64,
    pub attempts: u32,
    /// Earlier attempts, a JSON array.
    pub attempt_log: String,
    pub body: Vec<u8>,
}

/// What a delivery worker asks for.
#[derive(Debug, Clone, Copy)]
pub struct Fetch {
    pub max_records: usize,
    /// Records in one request: lingering waits only while fewer are due.
    pub batch_records: usize,
    pub max_bytes: usize,
    /// For batching destinations: lease nothing while fewer than
    /// `max_records` are due and the oldest waited less than this.
    pub linger: Duration,
}

/// The answer to a [`Fetch`].
#[derive(Debug, Default)]
pub struct Fetched {
    pub records: Vec<Leased>,
    /// When the next record not leased now becomes due (epoch ms), if any.
    pub next_due_ms: Option<i64>,
}

/// What became of a leased record.
#[derive(Debug, Clone)]
pub enum Settle {
    /// Delivered: removed from the queue.
    Delivered(i64),
    /// To be tried again at `due_ms`.
    Retry {
        seq: i64,
        due_ms: i64,
        attempt_log: String,
    },
    /// Given up: moved to the dead letters with its reason.
    Dead {
        seq: i64,
        reason: String,
        attempt_log: String,
    },
    /// Not attempted (a stop, or a disabled destination): free to lease again.
    Release(i64),
}

impl Settle {
    fn seq(&self) -> i64 {
        match self {
            Settle::Delivered(seq) | Settle::Release(seq) => *seq,
            Settle::Retry { seq, .. } | Settle::Dead { seq, .. } => *seq,
        }
    }
}

/// Queue depth of one destination.
#[derive(Debug, Clone, Default)]
pub struct Depth {
    pub records: u64,
    pub bytes: u64,
    pub oldest_ms: Option<i64>,
}

/// Counts over the whole spool, for `xf spool stats` and `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Overview {
    pub queued: Vec<(String, Depth)>,
    /// Dead letters by destination (`None`: the transform failed).
    pub dead: Vec<(Option<String>, u64)>,
    pub disabled: Vec<String>,
}

/// Why the spool did not take a write.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool is full ({0})")]
    Full(String),
    #[error("the spool cannot be written: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("the spool is closed")]
    Closed,
    /// The queue's server cannot be reached or did not confirm (JetStream).
    #[error("the queue is unavailable: {0}")]
    Unavailable(String),
}

type Reply<T> = oneshot::Sender<Result<T, SpoolError>>;

/// A request on its way to a store, while it is held ([`Spool::arriving`]).
pub struct Arriving(Option<Arc<AtomicUsize>>);

impl Arriving {
    /// For a queue that does not gather stores.
    pub fn untracked() -> Arriving {
        Arriving(None)
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        if let Some(count) = &self.0 {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What became of leased records of one destination, to be written.
struct Settlement {
    destination: Arc<str>,
    settles: Vec<Settle>,
    dead: Vec<DeadRecord>,
}

enum Command {
    Store {
        records: Vec<NewRecord>,
        dead: Vec<DeadRecord>,
        reply: Reply<()>,
    },
    Fetch {
        destination: Arc<str>,
        fetch: Fetch,
        reply: Reply<Fetched>,
    },
    /// Not answered: written with the next group (see [`Spool::settle`]).
    Settle(Settlement),
    /// Answered once everything sent before it is written.
    Flush {
        reply: Reply<()>,
    },
    SetDisabled {
        destination: String,
        disabled: bool,
        reply: Reply<()>,
    },
    /// Reads the queue sizes back (changes made by `xf spool` beside the server).
    Refresh,
    Disabled {
        reply: Reply<Vec<String>>,
    },
    Overview {
        reply: Reply<Overview>,
    },
}

impl Command {
    fn syncs(&self) -> bool {
        matches!(self, Command::Store { .. } | Command::SetDisabled { .. })
    }
}

/// Queue sizes kept in memory, so that a full spool is refused without a query:
/// what the database holds (read back after each transaction that changes it,
/// and every few seconds for changes by `xf spool`), and what stores in
/// progress have reserved.
#[derive(Debug, Default)]
struct Usage {
    records: AtomicU64,
    bytes: AtomicU64,
    reserved_records: AtomicU64,
    reserved_bytes: AtomicU64,
}

/// Room taken in [`Usage`] by a store in progress.
struct Reservation {
    usage: Arc<Usage>,
    records: u64,
    bytes: u64,
    /// What other stores had reserved before this one.
    before: (u64, u64),
}

impl Reservation {
    fn take(usage: &Arc<Usage>, records: u64, bytes: u64) -> Reservation {
        let before = (
            usage.reserved_records.fetch_add(records, Ordering::SeqCst),
            usage.reserved_bytes.fetch_add(bytes, Ordering::SeqCst),
        );
        Reservation {
            usage: Arc::clone(usage),
            records,
            bytes,
            before,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.usage
            .reserved_records
            .fetch_sub(self.records, Ordering::SeqCst);
        self.usage
            .reserved_bytes
            .fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// A handle on the spool thread; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    commands: mpsc::UnboundedSender<Command>,
    usage: Arc<Usage>,
    limits: SpoolLimits,
    /// Per destination: (records, bytes) queued, for metrics.
    depths: Arc<Mutex<HashMap<String, (u64, u64)>>>,
    /// Requests admitted and not yet at their store.
    arriving: Arc<AtomicUsize>,
}

impl Spool {
    /// Opens (or creates) the spool in folder `dir` and starts its thread.
    pub fn open(dir: &Path, limits: SpoolLimits) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(|error| {
            SpoolError::Storage(rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
        })?;
        let connection = open_database(&dir.join(FILE_NAME))?;
        // Checkpoints run beside the writer (see the module's comment).
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = open_database(&dir.join(FILE_NAME))?;
        let usage = Arc::new(Usage::default());
        let depths = Arc::new(Mutex::new(HashMap::new()));
        refresh(&connection, &usage, &depths)?;
        let (commands, receiver) = mpsc::unbounded_channel();
        let arriving = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            connection,
            usage: Arc::clone(&usage),
            depths: Arc::clone(&depths),
            synchronous_full: None,
            leased: HashMap::new(),
            wal: dir.join(format!("{FILE_NAME}-wal")),
            wal_checked: std::time::Instant::now(),
            unwritten: Vec::new(),
            arriving: Arc::clone(&arriving),
        };
        let refresher = commands.clone();
        std::thread::Builder::new()
            .name("xf-spool-checkpoint".into())
            .spawn(move || {
                let mut tick = 0u64;
                while !refresher.is_closed() {
                    std::thread::sleep(Duration::from_secs(1));
                    // PASSIVE: copies what it can without blocking the writer.
                    if let Err(error) = checkpoints.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
                    {
                        tracing::warn!(%error, "spool checkpoint failed");
                    }
                    tick += 1;
                    if tick % 2 == 0 && refresher.send(Command::Refresh).is_err() {
                        break;
                    }
                }
            })
            .map_err(|error| {
                SpoolError::Storage(rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
            })?;
        std::thread::Builder::new()
            .name("xf-spool".into())
            .spawn(move || worker.run(receiver))
            .map_err(|error| {
                SpoolError::Storage(rusqlite::Error::ToSqlConversionFailure(Box::new(error)))
            })?;
        Ok(Spool {
            commands,
            usage,
            limits,
            depths,
            arriving,
        })
    }

    async fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> Result<T, SpoolError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .map_err(|_| SpoolError::Closed)?;
        answer.await.map_err(|_| SpoolError::Closed)?
    }

    /// Stores records and dead letters durably; returns once they are synced
    /// to disk. Refused whole when the records would pass the spool's limits.
    pub async fn store(
        &self,
        records: Vec<NewRecord>,
        dead: Vec<DeadRecord>,
    ) -> Result<(), SpoolError> {
        let count = records.len() as u64;
        let size: u64 = records.iter().map(|r| r.body.len() as u64).sum();
        // Reserved first, so that concurrent requests cannot overshoot together;
        // let go when this ends, however it ends (a dropped request too).
        let reservation = Reservation::take(&self.usage, count, size);
        if count > 0 {
            let records_then = self.usage.records.load(Ordering::SeqCst) + reservation.before.0;
            let bytes_then = self.usage.bytes.load(Ordering::SeqCst) + reservation.before.1;
            if records_then + count > self.limits.max_records {
                return Err(SpoolError::Full(format!(
                    "{records_then} records queued, the limit is {}",
                    self.limits.max_records
                )));
            }
            if bytes_then + size > self.limits.max_bytes {
                return Err(SpoolError::Full(format!(
                    "{bytes_then} bytes queued, the limit is {}",
                    self.limits.max_bytes
                )));
            }
        }
        // Committed records are counted in `usage` by the time the reply comes.
        let result = self
            .ask(|reply| Command::Store {
                records,
                dead,
                reply,
            })
            .await;
        drop(reservation);
        result
    }

    /// Leases the records of `destination` that are due now.
    pub async fn fetch(&self, destination: &Arc<str>, fetch: Fetch) -> Result<Fetched, SpoolError> {
        self.ask(|reply| Command::Fetch {
            destination: Arc::clone(destination),
            fetch,
            reply,
        })
        .await
    }

    /// Records what became of leased records; `dead` are written beside.
    ///
    /// Returns once the spool thread has it, before it is written: the
    /// worker that settles need not wait for a transaction (nor be woken by
    /// its end), and settles are written with the next group, many in one.
    /// Leases are let go once written, so a fetch in between never hands out
    /// a settled record again; a write that fails is tried again with the
    /// next group. Nothing is lost by not waiting: a settle is written with
    /// `synchronous = NORMAL` anyway, so a crash before it is written means
    /// one more delivery, as a crash before the settle was sent does.
    /// [`Spool::flush`] waits for every settle sent before it.
    pub async fn settle(
        &self,
        destination: &Arc<str>,
        settles: Vec<Settle>,
        dead: Vec<DeadRecord>,
    ) -> Result<(), SpoolError> {
        self.commands
            .send(Command::Settle(Settlement {
                destination: Arc::clone(destination),
                settles,
                dead,
            }))
            .map_err(|_| SpoolError::Closed)
    }

    /// Says that a request is on its way to a store, until the answer is
    /// dropped: a group that syncs waits a little for it (up to `GATHER_MAX`).
    pub fn arriving(&self) -> Arriving {
        self.arriving.fetch_add(1, Ordering::Relaxed);
        Arriving(Some(Arc::clone(&self.arriving)))
    }

    /// Waits until everything sent to the spool before is written (at a stop).
    pub async fn flush(&self) -> Result<(), SpoolError> {
        self.ask(|reply| Command::Flush { reply }).await
    }

    /// Marks a destination disabled (after a 410) or enabled again.
    pub async fn set_disabled(&self, destination: &str, disabled: bool) -> Result<(), SpoolError> {
        self.ask(|reply| Command::SetDisabled {
            destination: destination.to_string(),
            disabled,
            reply,
        })
        .await
    }

    /// The destinations disabled (after a 410) and not enabled since.
    pub async fn disabled(&self) -> Result<Vec<String>, SpoolError> {
        self.ask(|reply| Command::Disabled { reply }).await
    }

    /// Queue depths, dead-letter counts and disabled destinations.
    pub async fn overview(&self) -> Result<Overview, SpoolError> {
        self.ask(|reply| Command::Overview { reply }).await
    }

    /// Records and bytes queued for each destination, from memory.
    pub fn depths(&self) -> HashMap<String, (u64, u64)> {
        self.depths.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Records and bytes queued over all destinations, from memory.
    pub fn usage(&self) -> (u64, u64) {
        (
            self.usage.records.load(Ordering::Relaxed),
            self.usage.bytes.load(Ordering::Relaxed),
        )
    }
}

/// Opens the database with the spool's settings and schema.
pub fn open_database(path: &Path) -> Result<Connection, SpoolError> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(Duration::from_secs(10))?;
    // WAL: readers (`xf spool stats` beside a running server) never block the writer.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    // After a checkpoint has emptied it, the log file is cut back to this size.
    connection.pragma_update(None, "journal_size_limit", WAL_LIMIT as i64)?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS queue (
             -- AUTOINCREMENT: a seq is never reused, also after `xf spool purge`
             -- deleted a record that is in flight (its settle must not hit a newer one).
             seq INTEGER PRIMARY KEY AUTOINCREMENT,
             destination TEXT NOT NULL,
             record_id TEXT NOT NULL,
             source TEXT NOT NULL,
             received_ms INTEGER NOT NULL,
             due_ms INTEGER NOT NULL,
             attempts INTEGER NOT NULL DEFAULT 0,
             attempt_log TEXT NOT NULL DEFAULT '[]',
             body BLOB NOT NULL
         );
         CREATE INDEX IF NOT EXISTS queue_due ON queue (destination, due_ms);
         -- The oldest record per destination, for metrics, without a scan of the queue.
         CREATE INDEX IF NOT EXISTS queue_received ON queue (destination, received_ms);
         CREATE TABLE IF NOT EXISTS dead (
             seq INTEGER PRIMARY KEY,
             destination TEXT,
             record_id TEXT NOT NULL,
             source TEXT NOT NULL,
             received_ms INTEGER NOT NULL,
             dead_ms INTEGER NOT NULL,
             reason TEXT NOT NULL,
             attempts TEXT NOT NULL,
             body BLOB NOT NULL
         );
         -- Dead letters counted per destination from the index, not the bodies.
         CREATE INDEX IF NOT EXISTS dead_destination ON dead (destination);
         CREATE TABLE IF NOT EXISTS disabled (destination TEXT PRIMARY KEY, since_ms INTEGER NOT NULL);
         -- Queue sizes per destination, kept exact by triggers, whoever changes the queue.
         CREATE TABLE IF NOT EXISTS depth (
             destination TEXT PRIMARY KEY,
             records INTEGER NOT NULL,
             bytes INTEGER NOT NULL
         );
         CREATE TRIGGER IF NOT EXISTS queue_in AFTER INSERT ON queue BEGIN
             INSERT INTO depth (destination, records, bytes) VALUES (NEW.destination, 1, length(NEW.body))
             ON CONFLICT (destination) DO UPDATE SET records = records + 1, bytes = bytes + length(NEW.body);
         END;
         CREATE TRIGGER IF NOT EXISTS queue_out AFTER DELETE ON queue BEGIN
             UPDATE depth SET records = records - 1, bytes = bytes - length(OLD.body)
             WHERE destination = OLD.destination;
         END;",
    )?;
    Ok(connection)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Worker {
    connection: Connection,
    usage: Arc<Usage>,
    depths: Arc<Mutex<HashMap<String, (u64, u64)>>>,
    synchronous_full: Option<bool>,
    /// Per destination: the records in flight, which a fetch skips.
    leased: HashMap<String, HashSet<i64>>,
    wal: PathBuf,
    wal_checked: std::time::Instant,
    /// Settlements whose group failed: tried again before the next one.
    unwritten: Vec<Settlement>,
    /// Requests on their way to a store ([`Spool::arriving`]).
    arriving: Arc<AtomicUsize>,
}

/// What one command's work in a transaction leaves to do after the commit.
enum Done {
    Unit(Reply<()>),
    /// Written, unless settlements of a failed group are still waiting.
    Flushed(Reply<()>),
    Fetched(Reply<Fetched>, Fetched),
    Overview(Reply<Overview>, Overview),
    Disabled(Reply<Vec<String>>, Vec<String>),
}

impl Worker {
    fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Command>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut group = vec![first];
            let take_waiting =
                |group: &mut Vec<Command>, receiver: &mut mpsc::UnboundedReceiver<Command>| {
                    while group.len() < GROUP_COMMIT_MAX {
                        match receiver.try_recv() {
                            Ok(command) => group.push(command),
                            Err(_) => break,
                        }
                    }
                };
            take_waiting(&mut group, &mut receiver);
            // A sync costs as much for one store as for many. While requests
            // are on their way to a store (read, transformed: microseconds),
            // a group that syncs waits for them a little, in short sleeps
            // (nothing wakes this thread for each one that comes), up to
            // GATHER_MAX: under load one sync takes several times the records.
            let started = std::time::Instant::now();
            while group.iter().any(Command::syncs)
                && self.arriving.load(Ordering::Relaxed) > 0
                && group.len() < GROUP_COMMIT_MAX
                && started.elapsed() + GATHER_STEP <= GATHER_MAX
            {
                std::thread::sleep(GATHER_STEP);
                take_waiting(&mut group, &mut receiver);
            }
            if !self.unwritten.is_empty() {
                self.write_unwritten();
            }
            self.run_group(group);
            self.keep_log_small();
        }
    }

    /// The background checkpoints copy the log while it is written to, so under
    /// constant load they never catch up with its end and the log never starts
    /// over. Once a second, if it has grown past [`WAL_LIMIT`], the writer
    /// finishes the copy itself between two transactions (most of it is done
    /// already); the next transaction then starts the log from the beginning.
    fn keep_log_small(&mut self) {
        if self.wal_checked.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.wal_checked = std::time::Instant::now();
        let size = std::fs::metadata(&self.wal).map(|m| m.len()).unwrap_or(0);
        if size > WAL_LIMIT {
            if let Err(error) = self
                .connection
                .execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
            {
                tracing::warn!(%error, "spool checkpoint failed");
            }
        }
    }

    /// Settlements a failed group had: in a transaction of their own, so
    /// that one that cannot be written does not hold up the stores after it.
    fn write_unwritten(&mut self) {
        let unwritten = std::mem::take(&mut self.unwritten);
        let result = (|| -> rusqlite::Result<()> {
            let transaction = self.connection.transaction()?;
            for settlement in &unwritten {
                settle(&transaction, &settlement.settles, &settlement.dead)?;
            }
            transaction.commit()
        })();
        match result {
            Ok(()) => {
                for settlement in &unwritten {
                    self.let_go(settlement);
                }
                if let Err(error) = refresh(&self.connection, &self.usage, &self.depths) {
                    tracing::error!(%error, "cannot read the spool's queue sizes");
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot write settled records; trying again");
                self.unwritten = unwritten;
            }
        }
    }

    /// Lets go of the leases of a settlement once it is written.
    fn let_go(&mut self, settlement: &Settlement) {
        if let Some(leased) = self.leased.get_mut(&*settlement.destination) {
            for settle in &settlement.settles {
                leased.remove(&settle.seq());
            }
        }
    }

    fn run_group(&mut self, group: Vec<Command>) {
        let full = group.iter().any(Command::syncs);
        if self.synchronous_full != Some(full) {
            let level = if full { "FULL" } else { "NORMAL" };
            if self
                .connection
                .pragma_update(None, "synchronous", level)
                .is_ok()
            {
                self.synchronous_full = Some(full);
            }
        }
        // Queue sizes are read back once the transaction commits.
        let mut changed = false;
        // Leases taken and let go in this group: undone and kept if it fails.
        let mut new_leases: Vec<(String, i64)> = Vec::new();
        // Settlements first, and kept whatever happens to the group: nobody
        // waits for them, so a failed group must not lose them.
        let mut settled: Vec<Settlement> = Vec::new();
        let mut group: Vec<Command> = group
            .into_iter()
            .filter_map(|command| match command {
                Command::Settle(settlement) => {
                    settled.push(settlement);
                    None
                }
                other => Some(other),
            })
            .collect();
        changed |= !settled.is_empty();
        let mut done = Vec::with_capacity(group.len());
        let mut failed: Option<String> = None;
        let result = (|| -> rusqlite::Result<()> {
            let transaction = self.connection.transaction()?;
            for settlement in &settled {
                settle(&transaction, &settlement.settles, &settlement.dead)?;
            }
            for command in group.drain(..) {
                // A failing command fails the whole group: nobody hears "stored" for
                // what was rolled back.
                match command {
                    Command::Store {
                        records,
                        dead,
                        reply,
                    } => {
                        changed |= !records.is_empty();
                        store(&transaction, &records, &dead)?;
                        done.push(Done::Unit(reply));
                    }
                    Command::Fetch {
                        destination,
                        fetch: wanted,
                        reply,
                    } => {
                        let leased = self.leased.entry(destination.to_string()).or_default();
                        let fetched =
                            lease(&transaction, &destination, wanted, leased, &mut new_leases)?;
                        done.push(Done::Fetched(reply, fetched));
                    }
                    // Taken out above; were one left, it is written all the same.
                    Command::Settle(settlement) => {
                        settle(&transaction, &settlement.settles, &settlement.dead)?;
                        settled.push(settlement);
                    }
                    Command::Flush { reply } => done.push(Done::Flushed(reply)),
                    Command::SetDisabled {
                        destination,
                        disabled,
                        reply,
                    } => {
                        if disabled {
                            transaction.execute(
                                "INSERT OR REPLACE INTO disabled (destination, since_ms) VALUES (?1, ?2)",
                                params![destination, now_ms()],
                            )?;
                        } else {
                            transaction.execute(
                                "DELETE FROM disabled WHERE destination = ?1",
                                params![destination],
                            )?;
                        }
                        done.push(Done::Unit(reply));
                    }
                    Command::Refresh => changed = true,
                    Command::Disabled { reply } => {
                        let mut query = transaction.prepare_cached(
                            "SELECT destination FROM disabled ORDER BY destination",
                        )?;
                        let names = query
                            .query_map([], |row| row.get(0))?
                            .collect::<rusqlite::Result<Vec<String>>>()?;
                        done.push(Done::Disabled(reply, names));
                    }
                    Command::Overview { reply } => {
                        let overview = overview(&transaction)?;
                        done.push(Done::Overview(reply, overview));
                    }
                }
            }
            transaction.commit()
        })();
        if let Err(error) = result {
            failed = Some(error.to_string());
        }
        match failed {
            None => {
                for settlement in &settled {
                    self.let_go(settlement);
                }
                if changed {
                    if let Err(error) = refresh(&self.connection, &self.usage, &self.depths) {
                        tracing::error!(%error, "cannot read the spool's queue sizes");
                    }
                }
                for item in done {
                    match item {
                        Done::Unit(reply) => {
                            let _ = reply.send(Ok(()));
                        }
                        Done::Flushed(reply) => {
                            let _ = reply.send(if self.unwritten.is_empty() {
                                Ok(())
                            } else {
                                Err(SpoolError::Unavailable(
                                    "settled records could not be written".to_string(),
                                ))
                            });
                        }
                        Done::Fetched(reply, fetched) => {
                            let _ = reply.send(Ok(fetched));
                        }
                        Done::Overview(reply, overview) => {
                            let _ = reply.send(Ok(overview));
                        }
                        Done::Disabled(reply, names) => {
                            let _ = reply.send(Ok(names));
                        }
                    }
                }
            }
            Some(message) => {
                tracing::error!(error = %message, "a spool transaction failed");
                self.unwritten.extend(settled);
                for (destination, seq) in new_leases {
                    if let Some(leased) = self.leased.get_mut(&destination) {
                        leased.remove(&seq);
                    }
                }
                let error = || {
                    SpoolError::Storage(rusqlite::Error::ToSqlConversionFailure(
                        message.clone().into(),
                    ))
                };
                for item in done {
                    match item {
                        Done::Unit(reply) | Done::Flushed(reply) => {
                            let _ = reply.send(Err(error()));
                        }
                        Done::Fetched(reply, _) => {
                            let _ = reply.send(Err(error()));
                        }
                        Done::Overview(reply, _) => {
                            let _ = reply.send(Err(error()));
                        }
                        Done::Disabled(reply, _) => {
                            let _ = reply.send(Err(error()));
                        }
                    }
                }
                // Commands that never ran (after the failing one) were dropped with
                // their replies: their senders see the spool as failed, too.
            }
        }
    }
}

fn store(
    transaction: &rusqlite::Transaction<'_>,
    records: &[NewRecord],
    dead: &[DeadRecord],
) -> rusqlite::Result<()> {
    let now = now_ms();
    let mut insert = transaction.prepare_cached(
        "INSERT INTO queue (destination, record_id, source, received_ms, due_ms, body) VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
    )?;
    for record in records {
        insert.execute(params![
            &*record.destination,
            &*record.record_id,
            &*record.source,
            now,
            record.body
        ])?;
    }
    insert_dead(transaction, dead)
}

fn insert_dead(
    transaction: &rusqlite::Transaction<'_>,
    dead: &[DeadRecord],
) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare_cached(
        "INSERT INTO dead (destination, record_id, source, received_ms, dead_ms, reason, attempts, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let now = now_ms();
    for record in dead {
        insert.execute(params![
            record.destination.as_deref(),
            &*record.record_id,
            &*record.source,
            record.received_ms,
            now,
            record.reason,
            record.attempts,
            record.body
        ])?;
    }
    Ok(())
}

fn lease(
    transaction: &rusqlite::Transaction<'_>,
    destination: &str,
    fetch: Fetch,
    leased: &mut HashSet<i64>,
    new_leases: &mut Vec<(String, i64)>,
) -> rusqlite::Result<Fetched> {
    let now = now_ms();
    // First which records to lease, from the rows' sizes alone: the records
    // in flight are due too and are skipped, and a batch that lingers takes
    // none; neither is worth reading a body for (a batching destination is
    // asked after every store while it lingers).
    let mut select = transaction.prepare_cached(
        "SELECT seq, received_ms, length(body) FROM queue
         WHERE destination = ?1 AND due_ms <= ?2 ORDER BY due_ms, seq LIMIT ?3",
    )?;
    // Leased records are due too: ask for enough to skip them.
    let limit = fetch
        .max_records
        .saturating_add(leased.len())
        .saturating_add(1)
        .min(i64::MAX as usize) as i64;
    let mut chosen: Vec<i64> = Vec::new();
    let mut oldest: Option<i64> = None;
    let mut bytes = 0usize;
    let mut more_due = false;
    let mut rows = select.query(params![destination, now, limit])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        if leased.contains(&seq) {
            continue;
        }
        let size = row.get::<_, i64>(2)?.max(0) as usize;
        // The first record is always taken, however large, so that it can go out alone.
        if chosen.len() == fetch.max_records
            || (!chosen.is_empty() && bytes + size > fetch.max_bytes)
        {
            more_due = true;
            break;
        }
        bytes += size;
        let received_ms: i64 = row.get(1)?;
        oldest = Some(oldest.map_or(received_ms, |o| o.min(received_ms)));
        chosen.push(seq);
    }
    drop(rows);
    let lingering = !fetch.linger.is_zero()
        && !chosen.is_empty()
        && !more_due
        && chosen.len() < fetch.batch_records
        && oldest.is_some_and(|oldest| now - oldest < fetch.linger.as_millis() as i64);
    if lingering {
        let oldest = oldest.unwrap_or(now);
        return Ok(Fetched {
            records: Vec::new(),
            next_due_ms: Some(oldest.saturating_add(fetch.linger.as_millis() as i64)),
        });
    }
    let mut read = transaction.prepare_cached(
        "SELECT record_id, received_ms, attempts, attempt_log, body FROM queue WHERE seq = ?1",
    )?;
    let mut records = Vec::with_capacity(chosen.len());
    for seq in chosen {
        let record = read
            .query_row(params![seq], |row| {
                Ok(Leased {
                    seq,
                    record_id: row.get(0)?,
                    received_ms: row.get(1)?,
                    attempts: row.get::<_, i64>(2)? as u32,
                    attempt_log: row.get(3)?,
                    body: row.get(4)?,
                })
            })
            .optional()?;
        // Read in the same transaction as the row above: always there.
        records.extend(record);
    }
    for record in &records {
        leased.insert(record.seq);
        new_leases.push((destination.to_string(), record.seq));
    }
    let next_due_ms = if more_due {
        Some(now)
    } else {
        transaction
            .prepare_cached("SELECT min(due_ms) FROM queue WHERE destination = ?1 AND due_ms > ?2")?
            .query_row(params![destination, now], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .optional()?
            .flatten()
    };
    Ok(Fetched {
        records,
        next_due_ms,
    })
}

fn settle(
    transaction: &rusqlite::Transaction<'_>,
    settles: &[Settle],
    dead: &[DeadRecord],
) -> rusqlite::Result<()> {
    for settle in settles {
        match settle {
            Settle::Delivered(seq) => {
                remove(transaction, *seq)?;
            }
            Settle::Retry {
                seq,
                due_ms,
                attempt_log,
            } => {
                transaction
                    .prepare_cached(
                        "UPDATE queue SET due_ms = ?2, attempts = attempts + 1, attempt_log = ?3 WHERE seq = ?1",
                    )?
                    .execute(params![seq, due_ms, attempt_log])?;
            }
            Settle::Dead {
                seq,
                reason,
                attempt_log,
            } => {
                let moved = transaction
                    .prepare_cached(
                        "INSERT INTO dead (destination, record_id, source, received_ms, dead_ms, reason, attempts, body)
                         SELECT destination, record_id, source, received_ms, ?2, ?3, ?4, body FROM queue WHERE seq = ?1",
                    )?
                    .execute(params![seq, now_ms(), reason, attempt_log])?;
                if moved > 0 {
                    remove(transaction, *seq)?;
                }
            }
            // Nothing to write: the lease (in memory) is let go after the commit.
            Settle::Release(_) => {}
        }
    }
    insert_dead(transaction, dead)
}

/// Deletes a queued record.
fn remove(transaction: &rusqlite::Transaction<'_>, seq: i64) -> rusqlite::Result<()> {
    transaction
        .prepare_cached("DELETE FROM queue WHERE seq = ?1")?
        .execute(params![seq])?;
    Ok(())
}

/// Reads the queue sizes (kept by triggers in table `depth`) into memory.
fn refresh(
    connection: &Connection,
    usage: &Usage,
    depths: &Mutex<HashMap<String, (u64, u64)>>,
) -> rusqlite::Result<()> {
    let mut query = connection.prepare_cached("SELECT destination, records, bytes FROM depth")?;
    let rows = query.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?.max(0) as u64,
            row.get::<_, i64>(2)?.max(0) as u64,
        ))
    })?;
    let mut fresh = HashMap::new();
    let (mut records, mut bytes) = (0, 0);
    for row in rows {
        let (destination, count, size) = row?;
        records += count;
        bytes += size;
        fresh.insert(destination, (count, size));
    }
    usage.records.store(records, Ordering::SeqCst);
    usage.bytes.store(bytes, Ordering::SeqCst);
    if let Ok(mut depths) = depths.lock() {
        *depths = fresh;
    }
    Ok(())
}

/// Counts for stats and metrics.
pub fn overview(connection: &Connection) -> rusqlite::Result<Overview> {
    let mut queued = Vec::new();
    let mut query = connection.prepare_cached(
        // From the sizes the triggers keep and one index lookup per destination:
        // a scan of a large backlog here would hold up the writer (and every
        // request waiting for a sync) on each metrics scrape.
        "SELECT destination, records, bytes, \
         (SELECT min(received_ms) FROM queue WHERE queue.destination = depth.destination) \
         FROM depth WHERE records > 0 ORDER BY destination",
    )?;
    let rows = query.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            Depth {
                records: row.get::<_, i64>(1)? as u64,
                bytes: row.get::<_, i64>(2)? as u64,
                oldest_ms: row.get(3)?,
            },
        ))
    })?;
    for row in rows {
        queued.push(row?);
    }
    let mut dead = Vec::new();
    let mut query = connection.prepare_cached(
        "SELECT destination, count(*) FROM dead GROUP BY destination ORDER BY destination",
    )?;
    let rows = query.query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?;
    for row in rows {
        dead.push(row?);
    }
    let mut disabled = Vec::new();
    let mut query =
        connection.prepare_cached("SELECT destination FROM disabled ORDER BY destination")?;
    let rows = query.query_map([], |row| row.get(0))?;
    for row in rows {
        disabled.push(row?);
    }
    Ok(Overview {
        queued,
        dead,
        disabled,
    })
}

/// A dead letter of the transform (one without destination), as
/// `xf spool replay --transform` reads it.
#[derive(Debug, Clone)]
pub struct TransformFailure {
    pub seq: i64,
    pub record_id: String,
    /// The source's URL path.
    pub source: String,
    pub reason: String,
    /// The record's bytes as received.
    pub body: Vec<u8>,
}

/// The dead letters of the transform after `after` (by seq), at most `limit`:
/// a page at a time, so that a large backlog is never held in memory whole.
pub fn transform_failures(
    connection: &Connection,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<TransformFailure>> {
    let mut query = connection.prepare_cached(
        "SELECT seq, record_id, source, reason, body FROM dead
         WHERE destination IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = query.query_map(params![after, limit as i64], |row| {
        Ok(TransformFailure {
            seq: row.get(0)?,
            record_id: row.get(1)?,
            source: row.get(2)?,
            reason: row.get(3)?,
            body: row.get(4)?,
        })
    })?;
    rows.collect()
}

/// What takes a dead letter of the transform's place once it is routed again.
#[derive(Debug, Clone)]
pub enum Replacement {
    /// It goes: its results are queued (none when the transform drops it now),
    /// and dead letters of destinations whose `when` failed on it are kept.
    Routed {
        records: Vec<NewRecord>,
        dead: Vec<DeadRecord>,
    },
    /// It stays, with this reason.
    StillFailing(String),
}

/// Puts each replacement in its dead letter's place, all in one transaction
/// (synced, as a store is). A dead letter that is gone by now (purged, or
/// replayed by another `xf spool replay`) is left alone, so its records are
/// never queued twice; a destination's dead letter of a record id that is
/// there already is not added again. Returns how many dead letters were
/// replaced (those that still fail included).
pub fn replace_transform_failures(
    connection: &mut Connection,
    replacements: &[(i64, Replacement)],
) -> rusqlite::Result<usize> {
    let transaction = connection.transaction()?;
    let mut replaced = 0;
    for (seq, replacement) in replacements {
        match replacement {
            Replacement::StillFailing(reason) => {
                let there: bool = transaction
                    .prepare_cached(
                        "SELECT count(*) FROM dead WHERE seq = ?1 AND destination IS NULL",
                    )?
                    .query_row(params![seq], |row| row.get::<_, i64>(0))?
                    > 0;
                // Only a new reason is written: a second replay of a record that fails the same way changes nothing.
                transaction
                    .prepare_cached("UPDATE dead SET reason = ?2, dead_ms = ?3 WHERE seq = ?1 AND destination IS NULL AND reason != ?2")?
                    .execute(params![seq, reason, now_ms()])?;
                replaced += usize::from(there);
            }
            Replacement::Routed { records, dead } => {
                let removed = transaction
                    .prepare_cached("DELETE FROM dead WHERE seq = ?1 AND destination IS NULL")?
                    .execute(params![seq])?;
                if removed == 0 {
                    continue;
                }
                let mut new = Vec::new();
                for letter in dead {
                    if !dead_letter_exists(&transaction, letter)? {
                        new.push(letter.clone());
                    }
                }
                store(&transaction, records, &new)?;
                replaced += 1;
            }
        }
    }
    transaction.commit()?;
    Ok(replaced)
}

/// Whether a dead letter of this destination and record id is kept already.
fn dead_letter_exists(
    transaction: &rusqlite::Transaction<'_>,
    letter: &DeadRecord,
) -> rusqlite::Result<bool> {
    transaction
        .prepare_cached("SELECT count(*) FROM dead WHERE destination IS ?1 AND record_id = ?2")?
        .query_row(
            params![letter.destination.as_deref(), &*letter.record_id],
            |row| row.get::<_, i64>(0),
        )
        .map(|count| count > 0)
}

/// The spool's database file for a spool folder.
pub fn database_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}
