//! Reading a history file: JSONL, one event per line.
//!
//! A history written by a process that was killed may end in a partial line;
//! the reader accepts everything up to the last complete line and says so in
//! [`History::truncated_tail`]. Any other bad line is an error naming the
//! file, the line number and the problem.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::event::Event;

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
        Self::read_sized(BufReader::with_capacity(1 << 20, file), path, size)
    }

    /// Reads JSONL from any buffered reader; `path` is only used in messages.
    pub fn from_reader<R: BufRead>(r: R, path: &Path) -> Result<History, HistoryError> {
        Self::read_sized(r, path, 0)
    }

    /// Reads JSONL; `size` (bytes, 0 if unknown) lets the event vector be
    /// sized once from the average length of the first lines instead of
    /// doubling (a 1M-event history would otherwise hold up to twice the
    /// memory it needs).
    fn read_sized<R: BufRead>(mut r: R, path: &Path, size: u64) -> Result<History, HistoryError> {
        const SAMPLE: usize = 4096;
        let mut events = Vec::new();
        let mut bytes = 0u64;
        let mut line = String::new();
        let mut lineno = 0usize;
        let mut truncated_tail = None;
        loop {
            line.clear();
            let n = r.read_line(&mut line).map_err(|source| HistoryError::Io {
                path: path.into(),
                source,
            })?;
            if n == 0 {
                break;
            }
            lineno += 1;
            bytes += n as u64;
            if lineno == SAMPLE && size > bytes {
                let estimate = size as f64 / (bytes as f64 / SAMPLE as f64) * 1.02;
                events.reserve((estimate as usize).saturating_sub(events.len()));
            }
            let complete = line.ends_with('\n');
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            match Event::from_json(text) {
                Ok(e) => events.push(e),
                Err(e) if !complete => {
                    truncated_tail = Some(format!(
                        "{}:{lineno}: last line is incomplete and was ignored ({e})",
                        path.display()
                    ));
                }
                Err(e) => {
                    return Err(HistoryError::Parse {
                        path: path.into(),
                        line: lineno,
                        message: e.to_string(),
                    })
                }
            }
        }
        events.shrink_to_fit();
        Ok(History {
            events,
            truncated_tail,
        })
    }

    /// Parses a history held in a string (tests, small tools).
    pub fn parse_str(s: &str) -> Result<History, HistoryError> {
        Self::from_reader(s.as_bytes(), Path::new("<string>"))
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
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
    fn a_missing_file_is_an_io_error_naming_the_path() {
        let err = History::read(Path::new("/nonexistent/h.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/h.jsonl"), "{err}");
    }
}
