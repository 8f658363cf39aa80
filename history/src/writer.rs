//! Streaming a history to disk while a run goes on.
//!
//! [`Recorder`] assigns `index` and `time` under one lock, so file order is
//! time order. Lines are buffered whole and written with a single `write`
//! call, so a killed writer never leaves half a line behind a complete one.
//! The buffer is flushed when it grows, at least every 100 ms by a
//! background thread, and at once for nemesis events.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::event::{Event, EventType, Process, Value, F};

const FLUSH_EVERY: Duration = Duration::from_millis(100);
const FLUSH_BYTES: usize = 256 * 1024;

struct Inner {
    file: Box<dyn Write + Send>,
    /// Time of the last event, so times never go backwards in the file.
    last_time: u64,
    buf: Vec<u8>,
    next_index: u64,
    last_flush: Instant,
    error: Option<io::Error>,
    /// Receivers of every event as written ([`Recorder::tap`]).
    taps: Vec<std::sync::mpsc::Sender<Event>>,
}

impl Inner {
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            if let Err(e) = self.file.write_all(&self.buf) {
                self.error.get_or_insert(e);
            }
            self.buf.clear();
        }
        self.last_flush = Instant::now();
    }
}

/// Appends events to a history file; shareable across threads and tasks.
pub struct Recorder {
    inner: Mutex<Inner>,
    start: Instant,
}

impl Recorder {
    /// Creates (truncates) `path` and starts the periodic flusher.
    pub fn create(path: &Path) -> io::Result<Arc<Recorder>> {
        Self::create_at(path, Instant::now())
    }

    /// Like [`Recorder::create`], with `start` as time zero.
    pub fn create_at(path: &Path, start: Instant) -> io::Result<Arc<Recorder>> {
        let file: File = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Self::to_writer(Box::new(file), start)
    }

    /// A recorder writing JSONL to any sink (a pipe to a parent process,
    /// say), with `start` as time zero. Same flushing rules as a file.
    pub fn to_writer(sink: Box<dyn Write + Send>, start: Instant) -> io::Result<Arc<Recorder>> {
        let rec = Arc::new(Recorder {
            inner: Mutex::new(Inner {
                file: sink,
                last_time: 0,
                buf: Vec::with_capacity(FLUSH_BYTES + 4096),
                next_index: 0,
                last_flush: Instant::now(),
                error: None,
                taps: Vec::new(),
            }),
            start,
        });
        let weak: Weak<Recorder> = Arc::downgrade(&rec);
        std::thread::Builder::new()
            .name("history-flush".into())
            .spawn(move || loop {
                std::thread::sleep(FLUSH_EVERY / 2);
                match weak.upgrade() {
                    Some(r) => r.flush_if_due(),
                    None => break,
                }
            })?;
        Ok(rec)
    }

    /// Nanoseconds since time zero.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Time zero of this history.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Appends an event, setting its `index` and `time`; returns it as written.
    pub fn log(&self, e: Event) -> Event {
        self.log_with(e, None)
    }

    /// Appends an event that happened at `time` (nanoseconds since time
    /// zero, e.g. relayed from another process); the index is assigned
    /// here. Times are kept non-decreasing in file order.
    pub fn log_at(&self, e: Event, time: u64) -> Event {
        self.log_with(e, Some(time))
    }

    fn log_with(&self, mut e: Event, time: Option<u64>) -> Event {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        e.index = g.next_index;
        e.time = time.unwrap_or_else(|| self.now()).max(g.last_time);
        g.last_time = e.time;
        g.next_index += 1;
        serde_json::to_writer(&mut g.buf, &e).expect("events always serialize");
        g.buf.push(b'\n');
        if !g.taps.is_empty() {
            // Under the lock, so every tap sees file order; a receiver
            // that went away is dropped.
            g.taps.retain(|t| t.send(e.clone()).is_ok());
        }
        if e.process == Process::Nemesis
            || g.buf.len() >= FLUSH_BYTES
            || g.last_flush.elapsed() >= FLUSH_EVERY
        {
            g.flush();
        }
        e
    }

    /// Every event logged from now on, as written (index and time set), in
    /// file order: what an online checker consumes during a run. Dropping
    /// the receiver stops the copies.
    pub fn tap(&self) -> std::sync::mpsc::Receiver<Event> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .taps
            .push(tx);
        rx
    }

    /// Ends every tap: their receivers see the end of the stream (events
    /// logged later are not copied).
    pub fn close_taps(&self) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .taps
            .clear();
    }

    /// Shorthand for [`Recorder::log`] of a fresh event.
    pub fn record(
        &self,
        process: Process,
        kind: EventType,
        f: F,
        value: Value,
        error: Option<String>,
    ) -> Event {
        self.log(Event {
            index: 0,
            time: 0,
            process,
            kind,
            f,
            value,
            error,
            extra: Vec::new(),
        })
    }

    fn flush_if_due(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !g.buf.is_empty() && g.last_flush.elapsed() >= FLUSH_EVERY / 2 {
            g.flush();
        }
    }

    /// Writes everything buffered and syncs the file; reports the first
    /// write error seen since creation.
    pub fn flush(&self) -> io::Result<()> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.flush();
        let _ = g.file.flush();
        match g.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Number of events logged so far.
    pub fn len(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_index
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let g = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        g.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Mop;
    use crate::reader::History;

    #[test]
    fn a_tap_sees_every_later_event_as_written_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path).unwrap();
        rec.record(
            Process::Nemesis,
            EventType::Info,
            F::Other("kill".into()),
            Value::None,
            None,
        );
        let tap = rec.tap();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        for t in [EventType::Invoke, EventType::Ok] {
                            rec.record(Process::Client(p), t, F::Poll, Value::None, None);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        rec.flush().unwrap();
        rec.close_taps();
        let seen: Vec<Event> = tap.iter().collect();
        let file = History::read(&path).unwrap();
        assert_eq!(seen, file.events[1..].to_vec());
    }

    #[test]
    fn recorded_events_read_back_in_order_with_indices_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path).unwrap();
        let send = Value::Mops(vec![Mop::Send {
            key: 1,
            value: 5,
            offset: None,
        }]);
        rec.record(Process::Client(0), EventType::Invoke, F::Send, send, None);
        let acked = Value::Mops(vec![Mop::Send {
            key: 1,
            value: 5,
            offset: Some(0),
        }]);
        rec.record(
            Process::Client(0),
            EventType::Ok,
            F::Send,
            acked.clone(),
            None,
        );
        rec.record(
            Process::Nemesis,
            EventType::Info,
            F::Other("kill".into()),
            Value::Json(serde_json::json!(["b1"])),
            None,
        );
        // A nemesis event is flushed at once, without waiting for the timer.
        let h = History::read(&path).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h.events[1].value, acked);
        assert!(h
            .events
            .windows(2)
            .all(|w| w[0].index + 1 == w[1].index && w[0].time <= w[1].time));
    }

    #[test]
    fn buffered_events_reach_disk_within_the_flush_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::create(&path).unwrap();
        rec.record(
            Process::Client(0),
            EventType::Invoke,
            F::Poll,
            Value::Mops(vec![Mop::Poll { reads: None }]),
            None,
        );
        let deadline = Instant::now() + Duration::from_secs(2);
        while History::read(&path).unwrap().is_empty() {
            assert!(Instant::now() < deadline, "event not flushed within 2 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(rec);
    }
}
