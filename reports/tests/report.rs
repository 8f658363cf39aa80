//! End-to-end: synthetic histories and hand-built check results rendered
//! into a run directory, checked the way a user (or CI) would read them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{result, Sim};
use gregor_checkers::Validity;
use gregor_history::{ClientMeta, EventType, History, Process, RunMeta, SubVia, TopicPartition};
use gregor_reports::{summary_text, write_all, ReportInput};

fn meta() -> RunMeta {
    let mut m = RunMeta {
        scenario: "queue-kill".into(),
        seed: 4242,
        cluster: "tansu".into(),
        bootstrap: "127.0.0.1:9092".into(),
        client: ClientMeta {
            acks: gregor_history::Acks::All,
            idempotence: true,
            sub_via: SubVia::Assign,
            ..Default::default()
        },
        ..Default::default()
    };
    for k in 0..4 {
        m.keys.insert(
            k,
            TopicPartition {
                topic: "gregor".into(),
                partition: k as i32,
            },
        );
    }
    m
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Decodes a PNG and checks it is 960x420 and not blank: it has white
/// background, dark ink (axes, text) and colored marks.
fn check_png(p: &Path) {
    let file = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: not a PNG: {e}", p.display()));
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let info = dec.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (960, 420), "{}", p.display());
    assert_eq!(info.color_type, png::ColorType::Rgb, "{}", p.display());
    let px = &buf[..info.buffer_size()];
    let pixels: Vec<&[u8]> = px.chunks(3).collect();
    let white = pixels
        .iter()
        .filter(|c| c.iter().all(|&v| v == 255))
        .count();
    let dark = pixels.iter().filter(|c| c.iter().all(|&v| v < 90)).count();
    let colored = pixels
        .iter()
        .filter(|c| c.iter().max().unwrap() - c.iter().min().unwrap() > 60)
        .count();
    assert!(
        white > pixels.len() / 3,
        "{}: mostly white background",
        p.display()
    );
    assert!(
        dark > 500,
        "{}: axes and text drawn ({dark} dark pixels)",
        p.display()
    );
    assert!(
        colored > 50,
        "{}: data drawn ({colored} colored pixels)",
        p.display()
    );
}

/// Parses an SVG chart; returns its text content (what a reader can select).
fn check_svg(p: &Path) -> String {
    let svg = read(p);
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg", "{}", p.display());
    assert_eq!(root.attribute("class"), Some("gregor-chart"));
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("\n")
}

/// (name, failed, skipped) for each test case.
fn junit_cases(xml: &str) -> Vec<(String, bool, bool)> {
    let doc = roxmltree::Document::parse(xml).expect("junit.xml is well-formed XML");
    let suites: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0].attribute("name"), Some("gregor"));
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("name").unwrap_or_default().to_string(),
                n.children().any(|c| c.has_tag_name("failure")),
                n.children().any(|c| c.has_tag_name("skipped")),
            )
        })
        .collect()
}

/// Ops per f and outcome, counted straight from the events.
fn expected_counts(h: &History) -> BTreeMap<(String, &'static str), u64> {
    let mut m = BTreeMap::new();
    let mut open = std::collections::HashSet::new();
    for e in &h.events {
        let Process::Client(p) = e.process else {
            continue;
        };
        if e.kind == EventType::Invoke {
            open.insert(p);
        } else {
            open.remove(&p);
            *m.entry((e.f.to_string(), e.kind.as_str())).or_default() += 1;
        }
    }
    assert!(open.is_empty(), "the synthetic history completes every op");
    m
}

#[test]
fn a_clean_run_writes_every_file_and_a_self_contained_valid_report() {
    let dir = tempfile::tempdir().unwrap();
    let h = Sim::default().history();
    let m = meta();
    let r = result(&h, Validity::True, &[]);
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: Some(&m),
        result: &r,
    };
    let files = write_all(&input).unwrap();
    for name in [
        "report.html",
        "junit.xml",
        "summary.md",
        "plots/latency.svg",
        "plots/throughput.svg",
        "plots/realtime-lag.svg",
        "plots/unseen.svg",
    ] {
        let p = dir.path().join(name);
        assert!(p.is_file(), "{name} written");
        assert!(files.contains(&p), "{name} returned");
    }
    assert!(files
        .iter()
        .any(|p| p.to_string_lossy().contains("plots/offsets-key-")));
    for f in &files {
        assert!(f.is_file(), "{} exists", f.display());
    }

    let html = read(&dir.path().join("report.html"));
    assert!(html.contains(r#"<header class="verdict valid" id="verdict"><h1>VALID</h1>"#));
    assert!(
        html.contains("4242") && html.contains("127.0.0.1:9092") && html.contains("queue-kill")
    );
    assert_eq!(
        html.matches("<svg").count(),
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "svg"))
            .count()
    );
    assert!(
        html.contains(">kill broker-2<"),
        "window labelled with its fault"
    );
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("https://"));
    assert!(!html.contains("src=\"http"));
    assert!(html.contains("Nemesis timeline"));
    assert!(
        html.contains(
            "<tr><td>kill broker-2</td><td class=\"n\">4.000</td><td class=\"n\">6.100</td>"
        ),
        "the window runs from the kill's invoke to the start's completion"
    );

    // Every SVG parses, its text is selectable SVG text (title, axis labels,
    // legend), time charts label the fault window; every SVG has its PNG twin
    // at the expected size and not blank.
    let svgs: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    assert!(svgs.len() >= 6, "{svgs:?}");
    for f in svgs {
        let text = check_svg(f);
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        if name.starts_with("offsets-key") {
            assert!(
                text.contains("offset") && text.contains("value at offset"),
                "{name}: {text}"
            );
        } else {
            assert!(text.contains("time since start (s)"), "{name}: {text}");
            assert!(
                text.contains("kill broker-2"),
                "{name} labels the fault window"
            );
            assert!(text.contains("fault window (1)"), "{name} legend");
        }
        let png = f.with_extension("png");
        assert!(files.contains(&png), "{name}.png written");
        check_png(&png);
    }
    for name in ["latency-quantiles", "latency"] {
        let text = check_svg(&dir.path().join(format!("plots/{name}.svg")));
        assert!(
            text.contains("send ok") || text.contains("send p50"),
            "{text}"
        );
    }

    let xml = read(&dir.path().join("junit.xml"));
    let cases = junit_cases(&xml);
    assert_eq!(cases.len(), gregor_checkers::anomaly_types().len());
    assert!(cases.iter().all(|(_, failed, skipped)| !failed && !skipped));
}

#[test]
fn an_invalid_run_fails_exactly_the_bad_types_with_counts_and_escaped_examples() {
    let dir = tempfile::tempdir().unwrap();
    let h = Sim::default().history();
    let r = result(
        &h,
        Validity::False,
        &[
            (
                "lost-write",
                3,
                true,
                r#"key 2: value 41 <acked> at offset 17 & never "read""#,
                Some(2),
            ),
            (
                "poll-skip",
                5,
                false,
                "process 3 skipped offsets 4..6 of key 1",
                Some(1),
            ),
            (
                "weird-new-type",
                1,
                true,
                "a type the table does not know",
                None,
            ),
        ],
    );
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: None,
        result: &r,
    };
    write_all(&input).unwrap();

    let xml = read(&dir.path().join("junit.xml"));
    let cases = junit_cases(&xml);
    let failed: Vec<&str> = cases.iter().filter(|c| c.1).map(|c| c.0.as_str()).collect();
    assert_eq!(failed, vec!["lost-write", "weird-new-type"]);
    for t in gregor_checkers::anomaly_types() {
        assert!(cases.iter().any(|c| c.0 == t), "{t} listed");
    }
    assert!(
        cases.iter().any(|c| c.0 == "G1c-realtime"),
        "cycle classes listed"
    );
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(failure
        .attribute("message")
        .unwrap()
        .starts_with("3 lost-write: key 2: value 41 <acked>"));
    assert!(failure
        .text()
        .unwrap()
        .contains(r#"& never "read" (ops 1, 3)"#));
    assert!(xml.contains(r#"failures="2""#));
    assert!(xml.contains("5 poll-skip found, allowed"));

    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("<h1>INVALID</h1>") && html.contains(r#"class="verdict invalid""#));
    for t in ["lost-write", "poll-skip", "weird-new-type"] {
        assert!(
            html.contains(&format!(r#"id="anomaly-{t}""#)),
            "{t} in the anomalies table"
        );
    }
    assert!(html.contains("value 41 &lt;acked&gt; at offset 17 &amp; never &quot;read&quot;"));
    assert!(html.contains("No run metadata"));
    // The key named by the bad anomaly gets its offset plot first.
    assert!(html.contains("Key 2: values by offset — has anomalies"));
}

#[test]
fn an_unknown_verdict_skips_every_class_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::default();
    let r = result(&h, Validity::Unknown, &[]);
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: None,
        result: &r,
    };
    write_all(&input).unwrap();
    let xml = read(&dir.path().join("junit.xml"));
    let cases = junit_cases(&xml);
    assert!(cases.iter().all(|c| c.2 && !c.1));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let reason = doc
        .descendants()
        .find(|n| n.has_tag_name("skipped"))
        .unwrap()
        .attribute("message")
        .unwrap();
    assert!(
        reason.contains("cannot support a verdict") && reason.contains("no client operations"),
        "{reason}"
    );
    let html = read(&dir.path().join("report.html"));
    assert!(html.contains("<h1>UNKNOWN</h1>"));
    assert!(html.contains("no data"), "empty plots say so");
}

#[test]
fn the_summary_shows_counts_anomalies_stats_verdict_and_the_report_path() {
    let dir = tempfile::tempdir().unwrap();
    let h = Sim::default().history();
    let m = meta();
    let r = result(
        &h,
        Validity::False,
        &[(
            "lost-write",
            3,
            true,
            "key 2: value 41 was never read",
            Some(2),
        )],
    );
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: Some(&m),
        result: &r,
    };
    let text = summary_text(&input);

    let counts = expected_counts(&h);
    let send_ok = counts[&("send".to_string(), "ok")];
    let send_fail = counts[&("send".to_string(), "fail")];
    let send_info = counts[&("send".to_string(), "info")];
    let poll_ok = counts[&("poll".to_string(), "ok")];
    assert!(
        send_info > 0 && send_fail > 0,
        "the fault window produced fail and info sends"
    );
    let send_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("send "))
        .expect("a send row");
    let nums: Vec<u64> = send_line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(
        nums,
        vec![
            send_ok,
            send_fail,
            send_info,
            send_ok + send_fail + send_info
        ]
    );
    let poll_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("poll "))
        .expect("a poll row");
    assert!(poll_line.split_whitespace().nth(1) == Some(&poll_ok.to_string()));

    assert!(text.contains("lost-write  3  BAD"), "{text}");
    assert!(text.contains("e.g. key 2: value 41 was never read (ops 1, 3)"));
    assert!(text.contains("acknowledged        500"));
    assert!(text.contains("lost                3 (0.600%)"));
    assert!(
        text.contains("worst realtime lag  1234 ms (key 3, op 77)"),
        "{text}"
    );
    assert!(text.contains("send latency        p50 "));
    assert!(text.contains("Verdict: INVALID: lost-write"));
    assert!(text.contains(&dir.path().join("report.html").display().to_string()));
    assert!(text.contains("scenario queue-kill, seed 4242, cluster tansu"));

    write_all(&input).unwrap();
    let md = read(&dir.path().join("summary.md"));
    assert!(md.contains("**Verdict: INVALID: lost-write**"));
    assert!(md.contains(&format!("| send | {send_ok} | {send_fail} | {send_info} |")));
    assert!(md.contains("| lost-write | 3 | **bad** | key 2: value 41 was never read | 1, 3 |"));
    assert!(md.contains("| lost | 3 (0.600%) |"));
    assert!(
        md.contains("![Latency over time](plots/latency.png)"),
        "{md}"
    );
    assert!(md.contains("(plots/offsets-key-2.png)"), "{md}");
}

#[test]
fn offset_plots_mark_an_inconsistent_offset() {
    let dir = tempfile::tempdir().unwrap();
    let h = Sim {
        inject_inconsistent: true,
        ..Default::default()
    }
    .history();
    let r = result(
        &h,
        Validity::False,
        &[(
            "inconsistent-offsets",
            1,
            true,
            "key 2 offset 3 holds two values",
            Some(2),
        )],
    );
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: None,
        result: &r,
    };
    write_all(&input).unwrap();
    let text = check_svg(&dir.path().join("plots/offsets-key-2.svg"));
    assert!(
        text.contains("inconsistent offset (2)"),
        "both values at offset 3 are marked: {text}"
    );
    check_png(&dir.path().join("plots/offsets-key-2.png"));
    // A long log also gets a close-up around the marked offset.
    let zoom = check_svg(&dir.path().join("plots/offsets-key-2-zoom.svg"));
    assert!(
        zoom.contains("offsets 0–33"),
        "close-up of offsets 0..33: {zoom}"
    );
    assert!(zoom.contains("inconsistent offset (2)"));
    check_png(&dir.path().join("plots/offsets-key-2-zoom.png"));
}

#[test]
fn every_key_an_anomaly_names_gets_an_offset_chart_cycles_included() {
    let dir = tempfile::tempdir().unwrap();
    let h = Sim {
        keys: 8,
        ..Default::default()
    }
    .history();
    let mut r = result(
        &h,
        Validity::False,
        &[
            ("lost-write", 1, true, "key 1: value lost", Some(1)),
            ("duplicate", 1, true, "key 6: value twice", Some(6)),
        ],
    );
    // A cycle names its keys in its steps only.
    r.anomalies.insert(
        "G1c".into(),
        gregor_checkers::AnomalyGroup {
            count: 1,
            examples: vec![gregor_history::Example::from_json(serde_json::json!({
                "explanation": "a G1c cycle of 2 ops",
                "ops": [5, 9],
                "steps": [
                    {"type": "wr", "from": 5, "to": 9, "key": 3, "value": 1, "offset": 0},
                    {"type": "wr", "from": 9, "to": 5, "key": 7, "value": 2, "offset": 0}
                ]
            }))],
        },
    );
    r.anomaly_types.push("G1c".into());
    r.bad_types.push("G1c".into());
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: None,
        result: &r,
    };
    write_all(&input).unwrap();
    let html = read(&dir.path().join("report.html"));
    for k in [1, 3, 6, 7] {
        let svg = dir.path().join(format!("plots/offsets-key-{k}.svg"));
        let text = check_svg(&svg);
        assert!(
            text.contains(&format!("Key {k}")) && text.contains("has anomalies"),
            "{text}"
        );
        check_png(&svg.with_extension("png"));
        assert!(
            html.contains(&format!(r#"id="plot-offsets-key-{k}""#)),
            "key {k} in the page"
        );
    }
}

#[test]
fn a_big_history_is_thinned_to_a_small_fast_report() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim {
        senders: 8,
        pollers: 2,
        keys: 16,
        ops_per_sender: 6_000,
        duration_s: 60.0,
        kill_s: 20.0,
        start_s: 30.0,
        ..Default::default()
    };
    let h = sim.history();
    assert!(h.len() > 100_000, "{} events", h.len());
    let r = result(&h, Validity::True, &[]);
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: None,
        result: &r,
    };
    let files = write_all(&input).unwrap();
    let mut thinned = false;
    for f in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
    {
        let svg = read(f);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let root = doc.root_element();
        let drawn: usize = root
            .attribute("data-points-drawn")
            .unwrap()
            .parse()
            .unwrap();
        let total: usize = root
            .attribute("data-points-total")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            drawn <= gregor_reports::chart::MAX_POINTS,
            "{}: {drawn} points",
            f.display()
        );
        thinned |= drawn < total;
    }
    assert!(thinned, "the latency plot of 48,000 ops had to be thinned");
    let size = std::fs::metadata(dir.path().join("report.html"))
        .unwrap()
        .len();
    assert!(size < 10 << 20, "report.html is {size} bytes");
}

#[test]
fn an_unwritable_run_directory_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let h = History::default();
    let r = result(&h, Validity::True, &[]);
    let input = ReportInput {
        run_dir: &blocker,
        history: &h,
        meta: None,
        result: &r,
    };
    let err = write_all(&input).unwrap_err().to_string();
    assert!(err.contains("not-a-dir"), "{err}");
}

#[test]
fn the_report_shows_availability_per_fault_window_as_the_checkers_computed_it() {
    let dir = tempfile::tempdir().unwrap();
    let h = Sim::default().history();
    let m = meta();
    let mut r = result(&h, Validity::True, &[]);
    let a = gregor_checkers::availability::analyze(&h, &[]);
    assert!(!a.windows.is_empty(), "the simulated run has a kill window");
    let kill = &a.windows[0];
    assert_eq!(kill.fault, "kill");
    r.stats.availability = Some(a.clone());
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: Some(&m),
        result: &r,
    };
    write_all(&input).unwrap();
    let html = read(&dir.path().join("report.html"));
    assert!(
        html.contains("<h2 id=\"availability\">"),
        "availability section"
    );
    // Each (window, f) row shows the checkers' numbers, not a second analysis.
    for (f, x) in &kill.by_f {
        let cells = format!(
            "<td>{f}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
            x.ok, x.failed
        );
        assert!(html.contains(&cells), "row for {f}: {cells}");
    }
    let inside = a.latency_in_faults.values().map(|l| l.count).sum::<u64>();
    let outside = a
        .latency_outside_faults
        .values()
        .map(|l| l.count)
        .sum::<u64>();
    assert!(
        inside > 0 && outside > 0,
        "ops both inside and outside the window"
    );
    // And as a chart: one mark per (window, function) gap, each as the
    // checkers measured it.
    let gaps = a
        .windows
        .iter()
        .flat_map(|w| w.by_f.values())
        .filter(|x| x.unavailable_from_s.is_some())
        .count();
    assert!(gaps > 0, "the kill made some function fail");
    let svg = read(&dir.path().join("plots/availability.svg"));
    roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert!(svg.contains("Unavailability per fault window"));
    assert!(
        html.contains("plots/availability") || html.contains("Unavailability per fault window")
    );
    assert!(dir.path().join("plots/availability.png").exists());
}
