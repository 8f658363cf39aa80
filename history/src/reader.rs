//! Reading a history file: JSONL, one event per line.
//!
//! A history written by a process that was killed may end in a partial line;
//! the reader accepts everything up to the last complete line and says so in
//! [`History::truncated_tail`]. Any other bad line is an error naming the
//! file, the line number and the problem — including a line that breaks the
//! history's rules ([`crate::validate`]: repeated or decreasing indices,
//! unpaired or mismatched operations).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::event::Event;
use crate::validate::Validator;

/// Errors reading a history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// A whole history in memory, in file order.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
    /// Set when the last line was incomplete (a killed writer) and was skipped.
    pub truncated_tail: Option<String>,
}

impl History {
    pub fn new(events: Vec<Event>) -> History {
        History {
            events,
            truncated_tail: None,
        }
    }

    /// Reads a JSONL history file.
    pub fn read(path: &Path) -> Result<History, HistoryError> {
        let file = File::open(path).map_err(|source| HistoryError::Io {
            path: path.into(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Self::read_sized(BufReader::with_capacity(1 << 20, file), path, size, true)
    }

    /// Reads JSONL from any buffered reader; `path` is only used in messages.
    pub fn from_reader<R: BufRead>(r: R, path: &Path) -> Result<History, HistoryError> {
        Self::read_sized(r, path, 0, true)
    }

    /// Reads JSONL; `size` (bytes, 0 if unknown) lets the event vector be
    /// sized once from the average length of the first lines instead of
    /// doubling (a 1M-event history would otherwise hold up to twice the
    /// memory it needs).
    fn read_sized<R: BufRead>(
        r: R,
        path: &Path,
        size: u64,
        validate: bool,
    ) -> Result<History, HistoryError> {
        let mut events = Vec::new();
        let truncated_tail = read_lines(r, path, size, validate, &mut events)?;
        events.shrink_to_fit();
        Ok(History {
            events,
            truncated_tail,
        })
    }

    /// Reads a JSONL history file one event at a time, never holding more
    /// than one: each event (validated as [`History::read`] does) goes to
    /// `each`. Returns the warning about an incomplete last line, if any.
    /// This is what a check in bounded memory reads soak-sized files with.
    /// `each` returns `false` to stop reading early.
    pub fn stream(
        path: &Path,
        each: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Option<String>, HistoryError> {
        let file = File::open(path).map_err(|source| HistoryError::Io {
            path: path.into(),
            source,
        })?;
        Self::stream_from(BufReader::with_capacity(1 << 20, file), path, each)
    }

    /// [`History::stream`] from any buffered reader; `path` is only used in
    /// messages.
    pub fn stream_from<R: BufRead>(
        r: R,
        path: &Path,
        each: &mut dyn FnMut(Event) -> bool,
    ) -> Result<Option<String>, HistoryError> {
        let mut sink = FnSink(each, false);
        read_lines(r, path, 0, true, &mut sink)
    }
}

/// Where parsed events go: a vector (a whole history) or a callback.
trait Sink {
    fn push(&mut self, e: Event);
    /// A hint: about `n` more events will follow.
    fn reserve(&mut self, _n: usize) {}
    /// Whether it wants no more events.
    fn stopped(&self) -> bool {
        false
    }
}

impl Sink for Vec<Event> {
    #[inline]
    fn push(&mut self, e: Event) {
        Vec::push(self, e)
    }
    fn reserve(&mut self, n: usize) {
        Vec::reserve(self, n)
    }
}

struct FnSink<'f>(&'f mut dyn FnMut(Event) -> bool, bool);

impl Sink for FnSink<'_> {
    #[inline]
    fn push(&mut self, e: Event) {
        if !self.1 && !(self.0)(e) {
            self.1 = true;
        }
    }
    fn stopped(&self) -> bool {
        self.1
    }
}

/// Reads every line of `r` into `sink`; returns the truncated-tail warning.
///
/// Lines are parsed where they lie in the reader's buffer (only a line
/// cut by the buffer's end is copied): the fast path finds the end of a
/// common line while parsing it, so such lines are neither copied nor
/// scanned twice. Other lines are checked for UTF-8 and go to serde.
fn read_lines<R: BufRead, S: Sink>(
    mut r: R,
    path: &Path,
    size: u64,
    validate: bool,
    sink: &mut S,
) -> Result<Option<String>, HistoryError> {
    {
        let mut st = Lines {
            path,
            size,
            events: sink,
            count: 0,
            bytes: 0,
            lineno: 0,
            truncated_tail: None,
            validator: validate.then(Validator::new),
        };
        let io = |source| HistoryError::Io {
            path: path.into(),
            source,
        };
        // A line cut by the end of the buffer, completed by the next fill.
        let mut carry: Vec<u8> = Vec::new();
        loop {
            if st.events.stopped() {
                return Ok(st.truncated_tail);
            }
            let buf = r.fill_buf().map_err(io)?;
            if buf.is_empty() {
                break;
            }
            let len = buf.len();
            let mut at = 0;
            if !carry.is_empty() {
                match find_newline(buf) {
                    Some(nl) => {
                        carry.extend_from_slice(&buf[..=nl]);
                        st.line(&carry)?;
                        carry.clear();
                        at = nl + 1;
                    }
                    None => {
                        carry.extend_from_slice(buf);
                        r.consume(len);
                        continue;
                    }
                }
            }
            while at < len {
                let rest = &buf[at..];
                if let Some((e, end)) = crate::fast::parse_line(rest) {
                    if end < rest.len() {
                        // Ends with its newline, inside the buffer.
                        st.fast(e, end + 1)?;
                        at += end + 1;
                        continue;
                    }
                }
                match find_newline(rest) {
                    Some(nl) => {
                        st.line(&rest[..=nl])?;
                        at += nl + 1;
                    }
                    None => {
                        carry.extend_from_slice(rest);
                        at = len;
                    }
                }
            }
            r.consume(len);
        }
        if !carry.is_empty() {
            st.line(&carry)?;
        }
        Ok(st.truncated_tail)
    }
}

impl History {
    /// Parses a history fragment held in a string (tests, small tools):
    /// unlike files ([`History::read`], [`History::from_reader`]), its
    /// operations need not pair up (see [`crate::validate`]).
    pub fn parse_str(s: &str) -> Result<History, HistoryError> {
        Self::read_sized(s.as_bytes(), Path::new("<string>"), 0, false)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Where the lines go, and what is known about them so far.
struct Lines<'p, 's, S: Sink> {
    path: &'p Path,
    size: u64,
    events: &'s mut S,
    /// Events kept so far.
    count: usize,
    bytes: u64,
    lineno: usize,
    truncated_tail: Option<String>,
    /// `None` for fragments ([`History::parse_str`]).
    validator: Option<Validator>,
}

impl<S: Sink> Lines<'_, '_, S> {
    /// Validates and keeps one parsed event of the current line.
    #[inline]
    fn keep(&mut self, e: Event) -> Result<(), HistoryError> {
        if let Some(Err(m)) = self.validator.as_mut().map(|v| v.push(&e)) {
            return Err(HistoryError::Parse {
                path: self.path.into(),
                line: self.lineno,
                message: m.to_string(),
            });
        }
        self.events.push(e);
        self.count += 1;
        Ok(())
    }

    /// Counts one line of `n` bytes (newline included).
    #[inline]
    fn count(&mut self, n: usize) {
        const SAMPLE: usize = 4096;
        self.lineno += 1;
        self.bytes += n as u64;
        if self.lineno == SAMPLE && self.size > self.bytes {
            let estimate = self.size as f64 / (self.bytes as f64 / SAMPLE as f64) * 1.02;
            self.events
                .reserve((estimate as usize).saturating_sub(self.count));
        }
    }

    /// A line the fast path parsed, `n` bytes with its newline.
    #[inline]
    fn fast(&mut self, e: Event, n: usize) -> Result<(), HistoryError> {
        self.count(n);
        self.keep(e)
    }

    /// Any line, raw, with its newline unless it is the last one.
    fn line(&mut self, raw: &[u8]) -> Result<(), HistoryError> {
        self.count(raw.len());
        let complete = raw.ends_with(b"\n");
        let line = std::str::from_utf8(raw).map_err(|_| HistoryError::Io {
            path: self.path.into(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "stream did not contain valid UTF-8",
            ),
        })?;
        let text = line.trim();
        if text.is_empty() {
            return Ok(());
        }
        match Event::from_json(text) {
            Ok(e) => self.keep(e)?,
            Err(e) if !complete => {
                self.truncated_tail = Some(format!(
                    "{}:{}: last line is incomplete and was ignored ({e})",
                    self.path.display(),
                    self.lineno
                ));
            }
            Err(e) => {
                return Err(HistoryError::Parse {
                    path: self.path.into(),
                    line: self.lineno,
                    message: e.to_string(),
                })
            }
        }
        Ok(())
    }
}

/// Position of the first newline, eight bytes at a time.
#[inline]
fn find_newline(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    let mut i = 0;
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(w) ^ NL;
        // The lowest zero byte of x is exactly the first newline.
        let z = x.wrapping_sub(ONES) & !x & HIGH;
        if z != 0 {
            return Some(i + (z.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'\n').map(|p| i + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_skipped_with_a_warning() {
        let s = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\",\"value\":[[\"poll\"]]}\n{\"index\":1,\"ti";
        let h = History::parse_str(s).unwrap();
        assert_eq!(h.len(), 1);
        assert!(h.truncated_tail.unwrap().contains(":2:"));
    }

    #[test]
    fn a_bad_line_in_the_middle_names_its_line_number() {
        let s = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"poll\"}\nnot json\n{}\n";
        let err = History::parse_str(s).unwrap_err().to_string();
        assert!(err.starts_with("<string>:2:"), "{err}");
    }

    #[test]
    fn lines_cut_by_any_buffer_size_read_the_same_as_whole() {
        let s = concat!(
            "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\"value\":[[\"send\",1,5]]}\n",
            "\n",
            "  {\"index\":1,\"time\":2,\"process\":0,\"type\":\"ok\",\"f\":\"send\",\"value\":[[\"send\",1,[0,5]]]}\r\n",
            "{\"time\":3,\"index\":2,\"process\":1,\"type\":\"invoke\",\"f\":\"poll\",\"value\":[[\"poll\"]]}\n",
            "{\"index\":3,\"time\":4,\"process\":1,\"type\":\"ok\",\"f\":\"poll\",\"value\":[[\"poll\",{\"1\":[[0,5]]}]]}",
        );
        let whole = History::parse_str(s).unwrap();
        assert_eq!(whole.len(), 4);
        assert!(whole.truncated_tail.is_none());
        for cap in 1..=s.len() + 1 {
            let r = std::io::BufReader::with_capacity(cap, s.as_bytes());
            let h = History::from_reader(r, Path::new("<string>")).unwrap();
            assert_eq!(h.events, whole.events, "buffer of {cap} bytes");
        }
    }

    #[test]
    fn a_malformed_history_is_an_error_naming_the_line() {
        let inv = |i: u64, p: u64, f: &str| {
            format!("{{\"index\":{i},\"time\":{i},\"process\":{p},\"type\":\"invoke\",\"f\":\"{f}\",\"value\":[[\"poll\"]]}}\n")
        };
        let ok = |i: u64, p: u64, f: &str| {
            format!("{{\"index\":{i},\"time\":{i},\"process\":{p},\"type\":\"ok\",\"f\":\"{f}\",\"value\":[[\"poll\",{{}}]]}}\n")
        };
        let cases = [
            (
                inv(0, 1, "poll") + &ok(1, 1, "poll") + &inv(1, 2, "poll"),
                3,
                "index 1",
            ),
            (inv(0, 1, "poll") + &inv(1, 1, "poll"), 2, "outstanding"),
            (
                inv(0, 1, "poll") + "\n" + &ok(1, 2, "poll"),
                3,
                "completes no invocation",
            ),
            (
                inv(0, 1, "poll") + &ok(1, 1, "txn"),
                2,
                "poll invoked at index 0",
            ),
        ];
        for (text, line, what) in cases {
            assert!(
                History::parse_str(&text).is_ok(),
                "a fragment is not validated"
            );
            let err = History::from_reader(text.as_bytes(), Path::new("<string>"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("<string>:{line}:")), "{err}");
            assert!(err.contains(what), "{err}");
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_is_an_error_naming_the_path() {
        let mut s = b"{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"".to_vec();
        s.extend_from_slice(&[0xff, 0xfe]);
        s.extend_from_slice(b"\"}\n");
        let err = History::from_reader(&s[..], Path::new("h.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("h.jsonl") && err.contains("UTF-8"), "{err}");
    }

    #[test]
    fn newlines_are_found_at_every_position_of_a_word() {
        for n in 0..20 {
            let mut b = vec![b'x'; 20];
            b[n] = b'\n';
            assert_eq!(find_newline(&b), Some(n));
            assert_eq!(find_newline(&b[..n]), None);
        }
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_the_path() {
        let err = History::read(Path::new("/nonexistent/h.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/h.jsonl"), "{err}");
    }
}
