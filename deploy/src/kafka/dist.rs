//! Where a Kafka node's code comes from: jars that Maven resolves from
//! Maven Central into a per-version cache, or an unpacked release tarball.
//!
//! Jars: for version `V`, gregor writes a POM naming
//! `org.apache.kafka:kafka_2.13:V` and `org.apache.kafka:kafka-tools:V`
//! (plus log4j2's slf4j 1.7 binding for 4.x, whose jars bring no binding;
//! 3.9.x brings slf4j-reload4j itself) and runs `mvn
//! dependency:copy-dependencies` once, into `<cache>/kafka/V/libs`. Maven
//! is the resolver: no jar list is kept here. A marker file says the copy
//! finished; later starts read the cache and need neither Maven nor the
//! network. Nodes run as `java -cp 'libs/*' kafka.Kafka server.properties`;
//! storage is formatted with that version's own `kafka.tools.StorageTool`.
//!
//! Tarball: `KAFKA_HOME/bin/kafka-server-start.sh` and `kafka-storage.sh`,
//! as before.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::DeployError;

/// The Apache Kafka version gregor starts when none is named. 4.1.1:
/// measured here (3-node quorum in 11–36 s), and Eligible Leader Replicas
/// (KIP-966) are on by default for new clusters from 4.1.
pub const DEFAULT_KAFKA_VERSION: &str = "4.1.1";

/// log4j2 version added to 4.x classpaths (slf4j 1.7 binding and core).
const LOG4J2_VERSION: &str = "2.24.3";

/// File written into a version's cache directory once its jars are complete.
const COMPLETE_MARKER: &str = "resolved.ok";

/// How a Kafka node's process is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "kebab-case")]
pub enum KafkaDist {
    /// An unpacked release (`bin/kafka-server-start.sh`, `bin/kafka-storage.sh`).
    Home { home: PathBuf },
    /// Jars of one version, resolved by Maven into the cache.
    Jars {
        version: String,
        libs: PathBuf,
        java: PathBuf,
    },
}

/// A Kafka version number, as far as gregor needs to understand it;
/// ordered by major, minor, patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KafkaVersion {
    pub major: u32,
    pub minor: u32,
    /// 0 when not given (`4.0-rc1`).
    pub patch: u32,
}

impl KafkaVersion {
    /// `"4.1.1"` → 4.1.1. Anything not starting with `MAJOR.MINOR` is refused.
    pub fn parse(v: &str) -> Result<KafkaVersion, DeployError> {
        let bad = || {
            DeployError::InvalidSpec(format!(
                "Kafka version {v:?} is not a version number like {DEFAULT_KAFKA_VERSION}"
            ))
        };
        if v.is_empty()
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        {
            return Err(bad());
        }
        let mut parts = v.split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts
            .next()
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(bad)?;
        let patch = parts
            .next()
            .and_then(|p| p.split('-').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        Ok(KafkaVersion {
            major,
            minor,
            patch,
        })
    }

    /// The release (`MAJOR.MINOR`) whose `metadata.version` this version
    /// formats new clusters with and finalizes to.
    pub fn release(self) -> (u32, u32) {
        (self.major, self.minor)
    }

    /// The oldest Java major version whose JVM runs this Kafka's broker.
    pub fn min_java(self) -> u32 {
        if self.major >= 4 {
            17
        } else {
            11
        }
    }

    /// 3.x brings slf4j-reload4j (log4j 1); 4.x logs through slf4j with no binding.
    pub fn uses_log4j2(self) -> bool {
        self.major >= 4
    }
}

/// gregor's cache directory: `$GREGOR_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/gregor`, else `~/.cache/gregor`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GREGOR_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("gregor");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".cache").join("gregor")
}

/// Where version `version`'s jars live in `cache`.
pub fn version_dir(cache: &Path, version: &str) -> PathBuf {
    cache.join("kafka").join(version)
}

/// The POM that makes Maven resolve a runnable broker of `version`.
pub fn pom(version: &str, v: KafkaVersion) -> String {
    let dep = |g: &str, a: &str, ver: &str| {
        format!(
            "    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>\
             <version>{ver}</version></dependency>\n"
        )
    };
    let mut deps = dep("org.apache.kafka", "kafka_2.13", version);
    deps += &dep("org.apache.kafka", "kafka-tools", version);
    if v.uses_log4j2() {
        deps += &dep(
            "org.apache.logging.log4j",
            "log4j-slf4j-impl",
            LOG4J2_VERSION,
        );
        deps += &dep("org.apache.logging.log4j", "log4j-core", LOG4J2_VERSION);
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!-- Written by gregor: the runtime classpath of an Apache Kafka {version} node. -->\n\
         <project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n\
         \x20 <modelVersion>4.0.0</modelVersion>\n\
         \x20 <groupId>dev.gregor</groupId>\n\
         \x20 <artifactId>kafka-node</artifactId>\n\
         \x20 <version>{version}</version>\n\
         \x20 <packaging>pom</packaging>\n\
         \x20 <dependencies>\n{deps}  </dependencies>\n\
         </project>\n"
    )
}

/// The Java runtime to use: `$JAVA_HOME/bin/java`, else `java` on `PATH`.
pub fn find_java() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|h| !h.is_empty()) {
        let java = PathBuf::from(home).join("bin/java");
        if java.is_file() {
            return Some(java);
        }
    }
    find_on_path("java")
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    })
}

/// The major version in `java -version` output (`openjdk version "17.0.15"`
/// → 17; the old `"1.8.0_392"` → 8).
pub fn parse_java_major(output: &str) -> Option<u32> {
    let quoted = output.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '-', '+', '_']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// Checks that `java` exists and is new enough for Kafka `version`.
pub fn check_java(java: &Path, version: &str) -> Result<u32, DeployError> {
    let v = KafkaVersion::parse(version)?;
    let out = Command::new(java)
        .arg("-version")
        .output()
        .map_err(|e| DeployError::Tool {
            tool: "java".into(),
            message: format!(
                "cannot run {}: {e}; install a Java runtime (apt-get install \
                 default-jre-headless) or set JAVA_HOME",
                java.display()
            ),
        })?;
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let major = parse_java_major(&text).ok_or_else(|| DeployError::Tool {
        tool: "java".into(),
        message: format!(
            "cannot tell the version of {} from `java -version`: {}",
            java.display(),
            text.trim()
        ),
    })?;
    if major < v.min_java() {
        return Err(DeployError::Tool {
            tool: "java".into(),
            message: format!(
                "Apache Kafka {version} needs Java {} or newer, but {} is Java {major}; \
                 set JAVA_HOME to a newer JDK",
                v.min_java(),
                java.display()
            ),
        });
    }
    Ok(major)
}

/// Resolves version `version` into `cache` (once), returning its `libs`
/// directory. Concurrent callers wait for each other on a lock file.
pub fn resolve_jars(
    cache: &Path,
    version: &str,
    mvn: Option<&Path>,
) -> Result<PathBuf, DeployError> {
    let v = KafkaVersion::parse(version)?;
    let dir = version_dir(cache, version);
    let libs = dir.join("libs");
    if dir.join(COMPLETE_MARKER).is_file() {
        return Ok(libs);
    }
    std::fs::create_dir_all(&dir).map_err(|e| DeployError::io("create directory", &dir, e))?;
    let _lock = crate::cluster::DirLock::acquire_file(&dir.join("resolve.lock"))?;
    if dir.join(COMPLETE_MARKER).is_file() {
        return Ok(libs);
    }
    let mvn = match mvn {
        Some(m) => m.to_path_buf(),
        None => find_on_path("mvn").ok_or_else(|| DeployError::Tool {
            tool: "mvn".into(),
            message: format!(
                "Apache Kafka {version} is not in the cache ({}) and Maven (mvn) is not \
                 installed to resolve it from Maven Central: apt-get install maven, or \
                 pass --kafka-home DIR with an unpacked Kafka release",
                dir.display()
            ),
        })?,
    };
    let pom_path = dir.join("pom.xml");
    std::fs::write(&pom_path, pom(version, v))
        .map_err(|e| DeployError::io("write", &pom_path, e))?;
    let staging = dir.join("libs.partial");
    let _ = std::fs::remove_dir_all(&staging);
    let out = Command::new(&mvn)
        .args([
            "-B",
            "-q",
            "-f",
            &pom_path.display().to_string(),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            &format!("-DoutputDirectory={}", staging.display()),
        ])
        .current_dir(&dir)
        .output()
        .map_err(|e| DeployError::Tool {
            tool: "mvn".into(),
            message: format!("cannot run {}: {e}", mvn.display()),
        })?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let _ = std::fs::remove_dir_all(&staging);
        return Err(DeployError::Tool {
            tool: "mvn".into(),
            message: format!(
                "Maven could not resolve Apache Kafka {version} \
                 (org.apache.kafka:kafka_2.13:{version}) from Maven Central ({}): {}",
                out.status,
                maven_error(&text)
            ),
        });
    }
    let kafka_jar = format!("kafka_2.13-{version}.jar");
    if !staging.join(&kafka_jar).is_file() {
        return Err(DeployError::Tool {
            tool: "mvn".into(),
            message: format!(
                "Maven finished but {} holds no {kafka_jar}",
                staging.display()
            ),
        });
    }
    let _ = std::fs::remove_dir_all(&libs);
    std::fs::rename(&staging, &libs).map_err(|e| DeployError::io("rename into", &libs, e))?;
    let marker = dir.join(COMPLETE_MARKER);
    std::fs::write(&marker, format!("{version}\n"))
        .map_err(|e| DeployError::io("write", &marker, e))?;
    Ok(libs)
}

/// The most telling lines of a failed Maven run (its `[ERROR]` lines).
fn maven_error(output: &str) -> String {
    let errors: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.ends_with("[ERROR]") && !l.contains("-> [Help"))
        .take(3)
        .collect();
    if errors.is_empty() {
        output.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    } else {
        errors.join("\n")
    }
}

impl KafkaDist {
    /// Jars of `version` (resolved now if not cached) run by the local Java,
    /// after checking that Java is new enough.
    pub fn jars(version: &str) -> Result<KafkaDist, DeployError> {
        KafkaVersion::parse(version)?;
        let java = find_java().ok_or_else(|| DeployError::Tool {
            tool: "java".into(),
            message: "no Java runtime: install one (apt-get install default-jre-headless) \
                      or set JAVA_HOME"
                .into(),
        })?;
        check_java(&java, version)?;
        let libs = resolve_jars(&cache_dir(), version, None)?;
        Ok(KafkaDist::Jars {
            version: version.to_string(),
            libs,
            java,
        })
    }

    /// The Kafka version, if known (for a tarball: from its `libs/kafka_2.13-V.jar`).
    pub fn version(&self) -> Option<String> {
        match self {
            KafkaDist::Jars { version, .. } => Some(version.clone()),
            KafkaDist::Home { home } => std::fs::read_dir(home.join("libs"))
                .ok()?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .find_map(|name| {
                    let v = name.strip_prefix("kafka_2.13-")?.strip_suffix(".jar")?;
                    (!v.contains("-test") && !v.contains("-sources") && !v.contains("-javadoc"))
                        .then(|| v.to_string())
                }),
        }
    }

    /// A short description for logs: `Apache Kafka 4.1.1 (jars in ...)`.
    pub fn describe(&self) -> String {
        match self {
            KafkaDist::Jars { version, libs, .. } => {
                format!("Apache Kafka {version} (jars in {})", libs.display())
            }
            KafkaDist::Home { home } => format!(
                "Apache Kafka {} (installation {})",
                self.version()
                    .unwrap_or_else(|| "of unknown version".into()),
                home.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_major_minor_and_patch() {
        let v = |s: &str| KafkaVersion::parse(s).unwrap();
        assert_eq!(
            v("4.1.1"),
            KafkaVersion {
                major: 4,
                minor: 1,
                patch: 1
            }
        );
        assert_eq!(v("3.9.1").release(), (3, 9));
        assert_eq!(v("4.0-rc1").minor, 0);
        assert!(v("4.1.0") < v("4.1.1") && v("4.1.1") < v("4.2.0") && v("3.9.1") < v("4.0.2"));
        for bad in ["", "four", "4", "4.x", "4.1.1; rm -rf /", "../4.1"] {
            let err = KafkaVersion::parse(bad).unwrap_err().to_string();
            assert!(err.contains("not a version number"), "{bad}: {err}");
        }
    }

    #[test]
    fn kafka_4_needs_java_17_and_log4j2_while_3_9_brings_its_own_binding() {
        let v4 = KafkaVersion::parse("4.1.1").unwrap();
        let v3 = KafkaVersion::parse("3.9.1").unwrap();
        assert_eq!(v4.min_java(), 17);
        assert_eq!(v3.min_java(), 11);
        assert!(pom("4.1.1", v4).contains("log4j-slf4j-impl"));
        assert!(!pom("3.9.1", v3).contains("log4j"));
        for p in [pom("4.1.1", v4), pom("3.9.1", v3)] {
            assert!(p.contains("<artifactId>kafka_2.13</artifactId>"));
            assert!(p.contains("<artifactId>kafka-tools</artifactId>"));
        }
        assert!(pom("3.9.1", v3).contains("<version>3.9.1</version>"));
    }

    #[test]
    fn java_versions_are_parsed_from_both_version_schemes() {
        let modern = "openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment";
        assert_eq!(parse_java_major(modern), Some(17));
        assert_eq!(
            parse_java_major("openjdk version \"25\" 2025-09-16"),
            Some(25)
        );
        assert_eq!(parse_java_major("java version \"1.8.0_392\""), Some(8));
        assert_eq!(parse_java_major("no quotes here"), None);
    }

    #[test]
    fn a_java_too_old_for_the_version_is_refused_by_name() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let java = dir.path().join("java");
        std::fs::write(
            &java,
            "#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n",
        )
        .unwrap();
        std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_java(&java, "4.1.1").unwrap_err().to_string();
        assert!(
            err.contains("needs Java 17") && err.contains("Java 11"),
            "{err}"
        );
        assert_eq!(check_java(&java, "3.9.1").unwrap(), 11);
    }

    #[test]
    fn a_cached_version_is_used_without_maven() {
        let cache = tempfile::tempdir().unwrap();
        let dir = version_dir(cache.path(), "4.1.1");
        std::fs::create_dir_all(dir.join("libs")).unwrap();
        std::fs::write(dir.join(COMPLETE_MARKER), "4.1.1\n").unwrap();
        let libs =
            resolve_jars(cache.path(), "4.1.1", Some(Path::new("/nonexistent/mvn"))).unwrap();
        assert_eq!(libs, dir.join("libs"));
    }

    #[test]
    fn a_version_maven_cannot_resolve_is_an_error_naming_it_and_caches_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let cache = tempfile::tempdir().unwrap();
        let mvn = cache.path().join("mvn");
        std::fs::write(
            &mvn,
            "#!/bin/sh\necho '[ERROR] Failed to execute goal on project kafka-node: Could not \
             resolve dependencies: Could not find artifact org.apache.kafka:kafka_2.13:jar:9.9.9'\n\
             echo '[ERROR] -> [Help 1]'\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&mvn, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = resolve_jars(cache.path(), "9.9.9", Some(&mvn))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("could not resolve Apache Kafka 9.9.9")
                && err.contains("Could not find artifact"),
            "{err}"
        );
        let dir = version_dir(cache.path(), "9.9.9");
        assert!(!dir.join(COMPLETE_MARKER).exists());
        assert!(!dir.join("libs").exists());
    }

    #[test]
    fn a_tarball_tells_its_version_from_its_kafka_jar() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("libs")).unwrap();
        for jar in [
            "kafka_2.13-3.9.1-test.jar",
            "kafka_2.13-3.9.1.jar",
            "kafka-clients-3.9.1.jar",
        ] {
            std::fs::write(home.path().join("libs").join(jar), "").unwrap();
        }
        let dist = KafkaDist::Home {
            home: home.path().to_path_buf(),
        };
        assert_eq!(dist.version().as_deref(), Some("3.9.1"));
    }
}
