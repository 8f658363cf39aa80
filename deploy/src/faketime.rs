//! Clock skew for brokers: libfaketime preloaded into a node's process,
//! its wall clock shifted, its monotonic clock left alone.
//!
//! [`crate::Cluster::set_clock_offset`] sets (or clears) a node's offset for
//! its next starts.

use std::path::PathBuf;

/// The libfaketime library to preload for `clock-skew`: `$GREGOR_LIBFAKETIME`
/// or the multithreaded build the Debian `faketime` package installs.
pub fn library() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("GREGOR_LIBFAKETIME").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("GREGOR_LIBFAKETIME={} is not a file", p.display()))
        };
    }
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
        "/usr/local/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "libfaketime is not installed (`apt-get install faketime`, or set \
             GREGOR_LIBFAKETIME to libfaketimeMT.so.1)"
                .into()
        })
}

/// The environment that shifts a process's wall clock by `offset_secs`.
pub fn env(lib: &std::path::Path, offset_secs: i64) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME".into(), format!("{offset_secs:+}")),
        // Timers and timeouts keep working: only the wall clock moves.
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_skew_environment_shifts_the_wall_clock_only() {
        let e = env(std::path::Path::new("/lib/libfaketimeMT.so.1"), -300);
        assert_eq!(
            e[0],
            ("LD_PRELOAD".into(), "/lib/libfaketimeMT.so.1".into())
        );
        assert_eq!(e[1], ("FAKETIME".into(), "-300".into()));
        assert_eq!(e[2].0, "FAKETIME_DONT_FAKE_MONOTONIC");
        assert_eq!(env(std::path::Path::new("/x"), 60)[1].1, "+60");
    }
}
