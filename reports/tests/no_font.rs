//! Without a font file, charts are still drawn (shapes, shading, data) and
//! the page says what to install. (Its own test binary: the font is chosen
//! once per process.)

mod common;

use common::{result, Sim};
use gregor_checkers::Validity;
use gregor_reports::{write_all, ReportInput};

#[test]
fn without_a_font_charts_have_no_text_but_still_show_the_data_and_the_page_says_why() {
    std::env::set_var("GREGOR_FONT", "/nonexistent/gregor-test-font.ttf");
    let dir = tempfile::tempdir().unwrap();
    let h = Sim::default().history();
    let r = result(&h, Validity::True, &[]);
    let input = ReportInput {
        run_dir: dir.path(),
        history: &h,
        meta: None,
        result: &r,
    };
    write_all(&input).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(
        html.contains("GREGOR_FONT=/nonexistent/gregor-test-font.ttf cannot be read as a font")
            && html.contains("install fonts-dejavu-core"),
        "the page names the problem and the fix"
    );
    let svg = std::fs::read_to_string(dir.path().join("plots/latency.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(!doc.descendants().any(|n| n.has_tag_name("text")));
    assert!(
        doc.descendants()
            .filter(|n| n.has_tag_name("circle"))
            .count()
            > 100
    );

    let file = std::fs::File::open(dir.path().join("plots/latency.png")).unwrap();
    let mut dec = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; dec.output_buffer_size().unwrap()];
    let info = dec.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (960, 420));
    let colored = buf[..info.buffer_size()]
        .chunks(3)
        .filter(|c| c.iter().max().unwrap() - c.iter().min().unwrap() > 60)
        .count();
    assert!(colored > 1000, "marks and the fault window are drawn");
}
