//! `gregor serve`: the run store over HTTP (Jepsen's `lein run serve`).
//!
//! A static file server (`tiny_http`) rooted at the store directory, on the
//! loopback interface unless told otherwise. `/` is the store's
//! `index.html` (regenerated at start-up so it lists every run); a directory
//! is served as its `index.html` or `report.html` if it has one, else as a
//! plain listing. Paths are resolved (links such as `latest` included) and
//! must stay inside the store: anything else is 404. Only GET and HEAD.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use tiny_http::{Header, Method, Request, Response, Server, StatusCode};

/// Default address: loopback only, Jepsen's port.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}: the run store does not exist or is not a directory")]
    NoStore(PathBuf),
    #[error("cannot listen on {addr}: {message}")]
    Listen { addr: String, message: String },
}

/// A started server: where it listens, and the store it serves.
pub struct Served {
    server: Server,
    root: PathBuf,
}

impl Served {
    /// Binds `listen` and regenerates the store index; serve with [`Served::run`].
    pub fn bind(store: &Path, listen: &str) -> Result<Served, ServeError> {
        let root =
            std::fs::canonicalize(store).map_err(|_| ServeError::NoStore(store.to_path_buf()))?;
        if !root.is_dir() {
            return Err(ServeError::NoStore(store.to_path_buf()));
        }
        if let Err(e) = gregor_reports::index::write_index(&root) {
            eprintln!("warning: {e}");
        }
        let server = Server::http(listen).map_err(|e| ServeError::Listen {
            addr: listen.to_string(),
            message: e.to_string(),
        })?;
        Ok(Served { server, root })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.server_addr().to_ip()
    }

    /// Answers requests until the process ends.
    pub fn run(&self) {
        for req in self.server.incoming_requests() {
            let _ = self.answer(req);
        }
    }

    fn answer(&self, req: Request) -> std::io::Result<()> {
        if !matches!(req.method(), Method::Get | Method::Head) {
            return req.respond(text(405, "only GET and HEAD\n"));
        }
        let Some(path) = self.resolve(req.url()) else {
            return req.respond(text(404, "not found\n"));
        };
        if path.is_dir() {
            if !req.url().split('?').next().unwrap_or("/").ends_with('/') {
                // So that relative links inside the page resolve.
                let to = format!("{}/", req.url().split('?').next().unwrap_or(""));
                let mut r = text(301, "");
                if let Ok(h) = Header::from_bytes("Location", to.as_bytes()) {
                    r.add_header(h);
                }
                return req.respond(r);
            }
            for page in ["index.html", "report.html"] {
                if path.join(page).is_file() {
                    return self.file(req, &path.join(page));
                }
            }
            let listing = listing(&path, req.url());
            return req.respond(with_type(
                Response::from_string(listing),
                "text/html; charset=utf-8",
            ));
        }
        self.file(req, &path)
    }

    fn file(&self, req: Request, path: &Path) -> std::io::Result<()> {
        match std::fs::File::open(path) {
            Ok(f) => req.respond(with_type(Response::from_file(f), content_type(path))),
            Err(_) => req.respond(text(404, "not found\n")),
        }
    }

    /// The file a URL names, if it exists inside the store.
    fn resolve(&self, url: &str) -> Option<PathBuf> {
        let path = url.split(['?', '#']).next().unwrap_or("/");
        let decoded = percent_decode(path)?;
        let mut p = self.root.clone();
        for c in Path::new(&decoded).components() {
            match c {
                Component::Normal(s) => p.push(s),
                Component::RootDir | Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        let real = std::fs::canonicalize(&p).ok()?;
        real.starts_with(&self.root).then_some(real)
    }
}

/// Serves `store` on `listen` until killed, printing where.
pub fn serve(store: &Path, listen: &str) -> Result<(), ServeError> {
    let s = Served::bind(store, listen)?;
    match s.addr() {
        Some(a) => println!("serving {} on http://{a}/", s.root.display()),
        None => println!("serving {}", s.root.display()),
    }
    s.run();
    Ok(())
}

fn text(code: u16, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    with_type(
        Response::from_string(body).with_status_code(StatusCode(code)),
        "text/plain; charset=utf-8",
    )
}

fn with_type<R: std::io::Read>(r: Response<R>, ct: &str) -> Response<R> {
    match Header::from_bytes("Content-Type", ct.as_bytes()) {
        Ok(h) => r.with_header(h),
        Err(_) => r,
    }
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "xml" => "application/xml",
        "css" => "text/css",
        "js" => "text/javascript",
        "md" | "jsonl" | "log" | "txt" | "yaml" | "yml" | "edn" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn listing(dir: &Path, url: &str) -> String {
    let esc = gregor_reports::xml::escape;
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let is_dir = e.path().is_dir();
                    (e.file_name().to_string_lossy().into_owned(), is_dir)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title></head><body><h1>{0}</h1><ul><li><a href=\"../\">../</a></li>",
        esc(url)
    );
    for (n, d) in names {
        let n = if d { format!("{n}/") } else { n };
        let _ = write!(s, "<li><a href=\"{0}\">{0}</a></li>", esc(&n));
    }
    s.push_str("</ul></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        let code = out
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, out)
    }

    #[test]
    fn the_store_is_served_on_loopback_with_its_index_and_nothing_outside_it() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("store");
        let run = store.join("quick-kill/2026-01-01T000000.000Z");
        std::fs::create_dir_all(run.join("plots")).unwrap();
        std::fs::write(run.join("meta.json"), r#"{"scenario":"quick-kill"}"#).unwrap();
        std::fs::write(
            run.join("results.json"),
            r#"{"valid":false,"bad-types":["lost-write"]}"#,
        )
        .unwrap();
        std::fs::write(run.join("report.html"), "<h1>INVALID</h1>").unwrap();
        std::fs::write(run.join("plots/latency.svg"), "<svg/>").unwrap();
        std::os::unix::fs::symlink("quick-kill/2026-01-01T000000.000Z", store.join("latest"))
            .unwrap();
        std::fs::write(t.path().join("secret.txt"), "outside").unwrap();

        let s = Served::bind(&store, "127.0.0.1:0").unwrap();
        let addr = s.addr().unwrap();
        assert!(addr.ip().is_loopback());
        let s = std::sync::Arc::new(s);
        let bg = s.clone();
        std::thread::spawn(move || bg.run());

        let (code, body) = get(addr, "/");
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains("gregor runs") && body.contains("lost-write"),
            "{body}"
        );
        let (code, body) = get(addr, "/latest/");
        assert_eq!(code, 200);
        assert!(
            body.contains("<h1>INVALID</h1>"),
            "a run directory serves its report"
        );
        let (code, body) = get(addr, "/latest/plots/latency.svg");
        assert_eq!(code, 200);
        assert!(body.contains("Content-Type: image/svg+xml"), "{body}");
        assert_eq!(get(addr, "/latest").0, 301);
        assert_eq!(get(addr, "/../secret.txt").0, 404);
        assert_eq!(get(addr, "/%2e%2e/secret.txt").0, 404);
        assert_eq!(get(addr, "/nope.html").0, 404);
    }

    #[test]
    fn a_missing_store_is_an_error_naming_it() {
        let err = Served::bind(Path::new("/nonexistent/gregor-store"), "127.0.0.1:0")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent/gregor-store"), "{err}");
    }
}
