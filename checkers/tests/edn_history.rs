//! Reading Jepsen Kafka `history.edn` files.

use std::io::Write;

use gregor_checkers::edn::{parse_jepsen_edn, read_jepsen_edn, EdnError};
use gregor_history::{EventType, Mop, Process, Value, F};

/// Lines in the shape Jepsen's Kafka test writes them.
const JEPSEN: &str = r#"{:type :invoke, :f :assign, :value [0 1 2], :time 1000, :process 0, :index 0}
{:type :ok, :f :assign, :value [0 1 2], :time 2000, :process 0, :index 1}
{:type :invoke, :f :send, :value [[:send 11 641]], :time 280153467070, :process 379, :index 2}
{:type :ok, :f :send, :value [[:send 11 [537 641]]], :time 280169754615, :process 379, :index 3}
{:type :invoke, :f :poll, :value [[:poll]], :time 280200000000, :process 0, :index 4}
{:type :ok, :f :poll, :value [[:poll {11 [[536 640] [537 641]], 2 []}]], :time 280300000000, :process 0, :index 5}
{:type :info, :f :start-partition, :value {"n1" #{"n2" "n3"}, "n2" #{"n1"}}, :time 280400000000, :process :nemesis, :index 6}
{:type :invoke, :f :txn, :value [[:send 3 7] [:poll]], :time 280500000000, :process 4, :index 7}
{:type :fail, :f :txn, :value [[:send 3 7] [:poll]], :time 280600000000, :process 4, :index 8, :error [:abort "txn aborted" {:code 48}]}
{:type :invoke, :f :send, :value [[:send 3 8]], :time 280700000000, :process 5, :index 9}
{:type :info, :f :send, :value [[:send 3 8]], :time 280800000000, :process 5, :index 10, :error :timeout}
{:type :info, :f :crash, :value nil, :time 280900000000, :process 6, :index 11}
"#;

#[test]
fn a_jepsen_kafka_history_reads_into_typed_events() {
    let h = parse_jepsen_edn(JEPSEN).expect("parses");
    assert_eq!(h.len(), 12);
    assert!(h.truncated_tail.is_none());
    assert_eq!(h.events[0].value, Value::Keys(vec![0, 1, 2]));
    assert_eq!(h.events[0].f, F::Assign);
    let send = &h.events[3];
    assert_eq!(
        (send.index, send.time, send.process, send.kind),
        (3, 280169754615, Process::Client(379), EventType::Ok)
    );
    assert_eq!(
        send.mops(),
        &[Mop::Send {
            key: 11,
            value: 641,
            offset: Some(537)
        }]
    );
    assert_eq!(
        h.events[2].mops(),
        &[Mop::Send {
            key: 11,
            value: 641,
            offset: None
        }]
    );
    assert_eq!(h.events[4].mops(), &[Mop::Poll { reads: None }]);
    assert_eq!(
        h.events[5].mops(),
        &[Mop::Poll {
            reads: Some(vec![(11, vec![(536, 640), (537, 641)]), (2, vec![])])
        }]
    );
    let nemesis = &h.events[6];
    assert_eq!(nemesis.process, Process::Nemesis);
    assert_eq!(nemesis.f, F::Other("start-partition".into()));
    assert_eq!(
        nemesis.value,
        Value::Json(serde_json::json!({"n1": ["n2", "n3"], "n2": ["n1"]}))
    );
    let txn = &h.events[8];
    assert_eq!(txn.f, F::Txn);
    assert_eq!(
        txn.mops(),
        &[
            Mop::Send {
                key: 3,
                value: 7,
                offset: None
            },
            Mop::Poll { reads: None }
        ]
    );
    assert_eq!(
        txn.error.as_deref(),
        Some(r#"[:abort "txn aborted" {:code 48}]"#)
    );
    assert_eq!(h.events[10].error.as_deref(), Some("timeout"));
    assert_eq!(
        (h.events[11].f.clone(), h.events[11].value.clone()),
        (F::Crash, Value::None)
    );
}

#[test]
fn the_converted_history_writes_as_the_gregor_jsonl_format() {
    let h = parse_jepsen_edn(JEPSEN).unwrap();
    assert_eq!(
        h.events[5].to_json(),
        r#"{"index":5,"time":280300000000,"process":0,"type":"ok","f":"poll","value":[["poll",{"11":[[536,640],[537,641]],"2":[]}]]}"#
    );
    let jsonl: String = h.events.iter().map(|e| e.to_json() + "\n").collect();
    let back = gregor_history::History::parse_str(&jsonl).expect("round trip through JSONL");
    assert_eq!(back.events, h.events);
}

#[test]
fn records_without_index_multiline_maps_and_a_wrapping_vector_are_accepted() {
    let text = r#"[#jepsen.history.Op{:type :invoke, :f :send,
                    :value [[:send 1 2]], :time 5, :process 0}
 {:type :ok, :f :send, :value [[:send 1 [nil 2]]], :time 6, :process 0, :debug {:partition "t-1"}}]"#;
    let h = parse_jepsen_edn(text).unwrap();
    assert_eq!(
        h.events.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(
        h.events[1].mops(),
        &[Mop::Send {
            key: 1,
            value: 2,
            offset: None
        }]
    );
    assert_eq!(
        h.events[1].extra("debug"),
        Some(&serde_json::json!({"partition": "t-1"}))
    );
}

#[test]
fn commits_and_committed_fetches_read_as_their_micro_ops() {
    let text = "{:type :ok, :f :commit, :value [[:commit {1 18, 2 4}]], :time 1, :process 0}\n\
                {:type :ok, :f :committed, :value [[:committed {1 18, 2 nil}]], :time 2, :process 0}\n";
    let h = parse_jepsen_edn(text).unwrap();
    assert_eq!(
        h.events[0].mops(),
        &[Mop::Commit {
            offsets: [(1, 18), (2, 4)].into()
        }]
    );
    assert_eq!(
        h.events[1].mops(),
        &[Mop::Committed {
            offsets: [(1, Some(18)), (2, None)].into()
        }]
    );
}

fn err(text: &str) -> (usize, usize, String) {
    match parse_jepsen_edn(text).unwrap_err() {
        EdnError::Parse {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("not a parse error: {other}"),
    }
}

#[test]
fn bad_lines_are_named_by_line_column_and_field() {
    let good = "{:type :invoke, :f :poll, :value [[:poll]], :time 1, :process 0}\n";
    let (l, c, m) = err(&format!(
        "{good}{{:type :ok, :f :send, :value [[:send :x [0 1]]], :time 2, :process 0}}\n"
    ));
    assert_eq!((l, c), (2, 38), "the column of :x");
    assert!(m.contains("send's key") && m.contains(":x"), "{m}");
    let (l, _, m) = err(&format!(
        "{good}{{:type :done, :f :send, :time 2, :process 0}}\n"
    ));
    assert_eq!(l, 2);
    assert!(m.contains(":type") && m.contains(":done"), "{m}");
    let (l, c, m) = err(&format!(
        "{good}{good}  {{:type :ok, :f :send, :process 0}}\n"
    ));
    assert_eq!((l, c), (3, 3));
    assert!(m.contains(":time"), "{m}");
    let (_, _, m) =
        err("{:type :ok, :f :poll, :value [[:poll {1 [[0 1 2]]}]], :time 1, :process 0}\n");
    assert!(m.contains("[offset value]"), "{m}");
    let (_, _, m) = err("{:type :ok, :f :send, :value [[:append 1 2]], :time 1, :process 0}\n");
    assert!(m.contains("unknown micro-op :append"), "{m}");
    let (_, _, m) = err("{:type :ok, :f :poll, :time 1, :process -2}\n");
    assert!(m.contains(":process"), "{m}");
    let (l, c, m) = err("{:type :ok, :f :poll,\n :time 1 :process 0\n\n{:type :ok}\n");
    assert_eq!((l, c), (1, 1));
    assert!(
        m.contains("never closed") || m.contains("even number"),
        "{m}"
    );
}

#[test]
fn a_last_line_cut_off_by_a_killed_writer_is_skipped_with_a_warning() {
    let text = "{:type :invoke, :f :poll, :value [[:poll]], :time 1, :process 0}\n{:type :ok, :f :poll, :val";
    let h = parse_jepsen_edn(text).unwrap();
    assert_eq!(h.len(), 1);
    let w = h.truncated_tail.expect("a warning");
    assert!(w.starts_with("<string>:2:1:"), "{w}");
}

#[test]
fn files_are_read_and_missing_files_name_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("history.edn");
    std::fs::File::create(&p)
        .unwrap()
        .write_all(JEPSEN.as_bytes())
        .unwrap();
    assert_eq!(read_jepsen_edn(&p).unwrap().len(), 12);
    let missing = dir.path().join("nope.edn");
    let e = read_jepsen_edn(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.edn"), "{e}");
    std::fs::write(&p, "{:type :ok :f :poll :time x :process 0}\n").unwrap();
    let e = read_jepsen_edn(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:1:", p.display())), "{e}");
}

/// Jepsen's own G1c test case (two transactions that each poll the other's
/// send), with integer keys and values, read from EDN and checked.
#[test]
fn a_jepsen_g1c_history_in_edn_is_found_by_the_cycle_checker() {
    let text = "\
{:index 0, :time 0, :type :invoke, :process 0, :f :txn, :value [[:send 1 10] [:poll]]}
{:index 1, :time 1, :type :invoke, :process 1, :f :txn, :value [[:send 2 20] [:poll]]}
{:index 2, :time 2, :type :ok, :process 0, :f :txn, :value [[:send 1 [0 10]] [:poll {2 [[0 20]]}]]}
{:index 3, :time 3, :type :ok, :process 1, :f :txn, :value [[:send 2 [0 20]] [:poll {1 [[0 10]]}]]}
";
    let h = parse_jepsen_edn(text).unwrap();
    let found = gregor_checkers::txn::check(&h, &gregor_checkers::CheckOpts::default());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, "G1c");
    assert_eq!(found[0].1["steps"].as_array().map(Vec::len), Some(2));
}
