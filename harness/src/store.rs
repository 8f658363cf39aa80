//! The run store: `store/<scenario>/<UTC timestamp>/`, `store/latest`, and
//! `store/index.html` (regenerated when a run starts, and by the report
//! writer after every run and every `gregor report`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a time since the epoch.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Creates a fresh run directory and points `store/latest` at it.
pub fn create_run_dir(store: &Path, scenario: &str) -> std::io::Result<PathBuf> {
    let stamp = rfc3339(SystemTime::now()).replace(':', "");
    let mut dir = store.join(scenario).join(&stamp);
    let mut n = 1;
    while dir.exists() {
        dir = store.join(scenario).join(format!("{stamp}-{n}"));
        n += 1;
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    let latest = store.join("latest");
    let _ = std::fs::remove_file(&latest);
    let rel = dir.strip_prefix(store).unwrap_or(&dir).to_path_buf();
    std::os::unix::fs::symlink(rel, &latest)?;
    update_index(store);
    Ok(dir)
}

/// Regenerates `store/index.html`; a failure is a warning, never a run error.
pub fn update_index(store: &Path) {
    if let Err(e) = gregor_reports::index::write_index(store) {
        eprintln!("warning: {e}");
    }
}

/// Where the history of a run directory or a history path is.
pub fn history_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("history.jsonl")
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use std::time::UNIX_EPOCH;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_219_200_123); // 2026-11-21
        assert_eq!(rfc3339(t), "2026-11-21T00:00:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn latest_points_at_the_newest_run() {
        let d = tempfile::tempdir().unwrap();
        let a = create_run_dir(d.path(), "q").unwrap();
        let b = create_run_dir(d.path(), "q").unwrap();
        assert_ne!(a, b);
        assert_eq!(
            std::fs::canonicalize(d.path().join("latest")).unwrap(),
            std::fs::canonicalize(&b).unwrap()
        );
        assert!(b.join("logs").is_dir());
        assert!(
            d.path().join("index.html").is_file(),
            "the store has a run index"
        );
    }
}
