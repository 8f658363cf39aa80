//! tansu brokers: finding the binary and building each broker's command line.
//!
//! A `tansu` cluster is N stateless brokers sharing one SQLite store
//! (`<dir>/data/tansu.db`). tansu resolves `sqlite://FILE` against the
//! broker's working directory, so every broker runs with its cwd in
//! `<dir>/data` and the relative URL `sqlite://tansu.db`.
//!
//! Observed behaviour of tansu 0.6.0 (libsql build) worth knowing when
//! reading results:
//! - every broker registers as node id 111; its Metadata lists only itself,
//!   as leader, every replica and every in-sync replica of every partition,
//!   whatever the replication factor (CreateTopics accepts any factor);
//! - a write through one broker is immediately readable through another,
//!   offsets are shared, and acknowledged records survive kill -9 of all;
//! - SQLite is opened without a busy timeout: concurrent produces through
//!   *different* brokers often fail at once with UNKNOWN_SERVER_ERROR
//!   ("database is locked"), and a broker paused inside a write transaction
//!   makes the others' writes fail until it is resumed;
//! - the binary is built without the `dynostore` feature unless asked, so
//!   `memory://` is unavailable; `tansu-memory` then uses a scratch SQLite
//!   file that is deleted before every start, which keeps its semantics.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::Launch;
use crate::spec::{ClusterKind, ClusterSpec};

/// The fixed cluster id all brokers of a local tansu cluster share.
pub const TANSU_CLUSTER_ID: &str = "gregor";

/// Name of the shared SQLite file inside `<dir>/data`.
pub const SQLITE_FILE: &str = "tansu.db";

/// SQLite file that stands in for the in-memory engine when the tansu
/// binary was built without it; deleted before every start.
pub const SCRATCH_FILE: &str = "tansu-memory-scratch.db";

/// Environment variables tansu reads as defaults for its flags; removed so
/// that the caller's environment cannot change a broker behind our back.
const TANSU_ENV: &[&str] = &[
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// The tansu binary: `$GREGOR_TANSU`, then `tansu` on `PATH`, then `~/.cargo/bin/tansu`.
///
/// When `GREGOR_TANSU` is set it is the only candidate: a wrong path gives
/// `None` rather than silently running some other tansu.
pub fn find_tansu() -> Option<PathBuf> {
    find_tansu_in(
        std::env::var_os("GREGOR_TANSU"),
        std::env::var_os("PATH"),
        std::env::var_os("HOME"),
    )
}

/// [`find_tansu`] with the environment passed in.
pub fn find_tansu_in(
    gregor_tansu: Option<OsString>,
    path: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    if let Some(p) = gregor_tansu.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return is_executable(&p).then_some(p);
    }
    if let Some(path) = path {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("tansu");
            if is_executable(&candidate) {
                return Some(candidate);
            }
        }
    }
    let candidate = PathBuf::from(home?).join(".cargo/bin/tansu");
    is_executable(&candidate).then_some(candidate)
}

/// Why [`find_tansu`] found nothing, as a message for the user.
pub fn not_found_message() -> String {
    match std::env::var_os("GREGOR_TANSU").filter(|p| !p.is_empty()) {
        Some(p) => format!(
            "GREGOR_TANSU={} is not an executable file",
            PathBuf::from(p).display()
        ),
        None => "no tansu binary: set GREGOR_TANSU, put tansu on PATH, or run \
                 `cargo install --locked tansu@0.6.0 --features libsql`"
            .into(),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Storage engines the binary was built with, from the `Storage engines:`
/// line of `tansu --help` (e.g. `["libsql"]`); empty if it cannot be run.
pub fn storage_engines(bin: &Path) -> Vec<String> {
    let Ok(out) = Command::new(bin).arg("--help").output() else {
        return Vec::new();
    };
    parse_storage_engines(&String::from_utf8_lossy(&out.stdout))
}

/// Parse the `Storage engines: a, b` line of `tansu --help`.
pub fn parse_storage_engines(help: &str) -> Vec<String> {
    help.lines()
        .find_map(|l| l.trim().strip_prefix("Storage engines:"))
        .map(|rest| {
            rest.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The storage URL for a cluster of `kind`, given the engines the binary has.
pub fn storage_url(kind: ClusterKind, engines: &[String]) -> String {
    match kind {
        ClusterKind::TansuMemory if engines.iter().any(|e| e == "dynostore") => {
            "memory://tansu/".into()
        }
        ClusterKind::TansuMemory => format!("sqlite://{SCRATCH_FILE}"),
        _ => format!("sqlite://{SQLITE_FILE}"),
    }
}

/// The directory brokers run in (their SQLite URL is relative to it).
pub fn data_dir(spec: &ClusterSpec) -> PathBuf {
    spec.dir.join("data")
}

/// Files that make up the store behind `storage` (SQLite keeps `-wal`/`-shm` beside it).
pub fn store_files(spec: &ClusterSpec, storage: &str) -> Vec<PathBuf> {
    match storage.strip_prefix("sqlite://") {
        Some(file) => ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|suffix| data_dir(spec).join(format!("{file}{suffix}")))
            .collect(),
        None => Vec::new(),
    }
}

/// True when `storage` must start empty every time (the in-memory stand-in).
pub fn is_scratch(storage: &str) -> bool {
    storage == format!("sqlite://{SCRATCH_FILE}")
}

/// Command line of broker `i`.
pub fn broker_command(bin: &Path, spec: &ClusterSpec, storage: &str, i: usize) -> Launch {
    let url = format!("tcp://{}:{}", crate::kafka::HOST, spec.client_port(i));
    Launch {
        program: bin.to_path_buf(),
        args: vec![
            "broker".into(),
            "--cluster-id".into(),
            TANSU_CLUSTER_ID.into(),
            "--listener-url".into(),
            url.clone(),
            "--advertised-listener-url".into(),
            url,
            "--storage-engine".into(),
            storage.into(),
        ],
        env: vec![],
        env_remove: TANSU_ENV.iter().map(|s| s.to_string()).collect(),
        cwd: data_dir(spec),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn executable(dir: &Path, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn tansu_is_looked_up_in_gregor_tansu_then_path_then_cargo_bin() {
        let root = tempfile::tempdir().unwrap();
        let explicit = executable(root.path(), "custom/tansu-0.6");
        let on_path = executable(root.path(), "bin/tansu");
        let cargo = executable(root.path(), "home/.cargo/bin/tansu");
        let path = Some(root.path().join("bin").into_os_string());
        let home = Some(root.path().join("home").into_os_string());
        assert_eq!(
            find_tansu_in(Some(explicit.clone().into()), path.clone(), home.clone()),
            Some(explicit)
        );
        assert_eq!(
            find_tansu_in(None, path.clone(), home.clone()),
            Some(on_path)
        );
        assert_eq!(
            find_tansu_in(None, Some("/nonexistent".into()), home.clone()),
            Some(cargo)
        );
        assert_eq!(
            find_tansu_in(Some(root.path().join("missing").into()), path, home),
            None,
            "a wrong GREGOR_TANSU is not replaced by another tansu"
        );
        assert_eq!(find_tansu_in(None, None, None), None);
    }

    #[test]
    fn every_broker_shares_the_cluster_id_and_the_relative_sqlite_store() {
        let spec = ClusterSpec::new(ClusterKind::Tansu, "/tmp/c").with_base_port(19150);
        let cmds: Vec<Launch> = (0..3)
            .map(|i| broker_command(Path::new("/bin/tansu"), &spec, "sqlite://tansu.db", i))
            .collect();
        for (i, cmd) in cmds.iter().enumerate() {
            assert_eq!(cmd.cwd, PathBuf::from("/tmp/c/data"));
            let args = cmd.args.join(" ");
            assert!(args.starts_with("broker "));
            assert!(args.contains("--cluster-id gregor"));
            assert!(args.contains("--storage-engine sqlite://tansu.db"));
            let url = format!("tcp://127.0.0.1:{}", 19150 + i);
            assert!(args.contains(&format!("--listener-url {url}")), "{args}");
            assert!(
                args.contains(&format!("--advertised-listener-url {url}")),
                "{args}"
            );
            assert!(cmd.env_remove.contains(&"STORAGE_ENGINE".to_string()));
        }
    }

    #[test]
    fn the_memory_cluster_uses_the_memory_engine_when_the_binary_has_it() {
        let help = "Usage: tansu\n\nStorage engines: dynostore, libsql\nData lakes: \n";
        let engines = parse_storage_engines(help);
        assert_eq!(engines, vec!["dynostore", "libsql"]);
        assert_eq!(
            storage_url(ClusterKind::TansuMemory, &engines),
            "memory://tansu/"
        );
        assert_eq!(
            storage_url(ClusterKind::Tansu, &engines),
            "sqlite://tansu.db"
        );
    }

    #[test]
    fn without_the_memory_engine_a_scratch_sqlite_file_stands_in() {
        let engines = parse_storage_engines("Storage engines: libsql\n");
        let url = storage_url(ClusterKind::TansuMemory, &engines);
        assert!(is_scratch(&url));
        assert!(!is_scratch(&storage_url(ClusterKind::Tansu, &engines)));
        let spec = ClusterSpec::new(ClusterKind::TansuMemory, "/tmp/m");
        assert!(store_files(&spec, &url)
            .contains(&PathBuf::from("/tmp/m/data/tansu-memory-scratch.db-wal")));
        assert!(store_files(&spec, "memory://tansu/").is_empty());
    }
}
