//! A small SVG charting module: scatter and line series over linear or
//! logarithmic axes, with ticks, grid, axis labels, a legend and shaded
//! x-ranges ("bands", used for nemesis fault windows).
//!
//! Charts are written by hand rather than through a plotting crate so that
//! the output stays compact (one `<path>` per series, a point is a few bytes)
//! and needs no font libraries: text is plain SVG `<text>` that the viewer
//! lays out.
//!
//! Big inputs are thinned before drawing, without changing what the eye
//! sees: scatter points are reduced to one per series per pixel cell (the
//! cell grows until the chart holds at most [`Chart::max_points`] marks, so
//! isolated outliers always survive), and line series keep the first, lowest,
//! highest and last point of each pixel column.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::xml::escape;

/// Shape of a scatter mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Cross,
    Triangle,
    Diamond,
}

/// How a series is drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Style {
    Points(Marker),
    /// A polyline; `dash` is an SVG `stroke-dasharray`; `step` draws a step
    /// function (the value holds until the next point).
    Line {
        dash: Option<&'static str>,
        step: bool,
    },
}

/// One named, colored data series.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
    /// Optional, one per point: the series is then drawn in full, each mark
    /// with its own tooltip (for a few marked points, e.g. anomalies).
    pub tooltips: Vec<String>,
}

impl Series {
    pub fn new(name: &str, color: &str, style: Style, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_string(),
            color: color.to_string(),
            style,
            points,
            tooltips: Vec::new(),
        }
    }

    fn labelled(&self) -> bool {
        !self.tooltips.is_empty() && self.tooltips.len() == self.points.len()
    }
}

/// A shaded x-range with a label (a fault window).
#[derive(Clone, Debug)]
pub struct Band {
    pub x0: f64,
    pub x1: f64,
    pub label: String,
    /// Tooltip text.
    pub title: String,
}

/// A chart to render.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Unique among charts inlined in one page (used for clip-path ids).
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y_log: bool,
    /// Fixed ranges; computed from the data when `None`.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    /// Upper bound on scatter marks plus line vertices drawn.
    pub max_points: usize,
    pub width: f64,
    pub height: f64,
}

/// The SVG text of a chart and how much of its data it draws.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub svg: String,
    pub points_total: usize,
    pub points_drawn: usize,
}

/// Default cap on marks per chart.
pub const MAX_POINTS: usize = 20_000;

const LEFT: f64 = 72.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 52.0;

impl Chart {
    pub fn new(id: &str, title: &str, x_label: &str, y_label: &str) -> Chart {
        Chart {
            id: id.to_string(),
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            y_log: false,
            x_range: None,
            y_range: None,
            series: Vec::new(),
            bands: Vec::new(),
            max_points: MAX_POINTS,
            width: 960.0,
            height: 420.0,
        }
    }

    /// Renders the chart to a standalone SVG document.
    pub fn render(&self) -> Rendered {
        let pw = (self.width - LEFT - RIGHT).max(50.0);
        let ph = (self.height - TOP - BOTTOM).max(50.0);
        let (x0, x1) = self.x_range.unwrap_or_else(|| self.data_x_range());
        let x = Axis::linear(x0, x1, LEFT, LEFT + pw);
        let y = if self.y_log {
            let (lo, hi) = self.y_range.unwrap_or_else(|| self.data_y_range(true));
            Axis::log(lo, hi, TOP + ph, TOP)
        } else {
            let (lo, hi) = self.y_range.unwrap_or_else(|| self.data_y_range(false));
            Axis::linear(lo, hi, TOP + ph, TOP)
        };
        let points_total: usize = self.series.iter().map(|s| s.points.len()).sum();
        let drawn = self.thin(&x, &y, pw);
        let points_drawn: usize = drawn.iter().map(|d| d.len()).sum();

        let mut s = String::with_capacity(4096 + points_drawn * 14);
        let (w, h) = (self.width, self.height);
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="gregor-chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" data-points-total="{points_total}" data-points-drawn="{points_drawn}">"#
        );
        let _ = write!(s, "<title>{}</title>", escape(&self.title));
        let _ = write!(
            s,
            r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>"##
        );
        let clip = format!("{}-clip", sanitize_id(&self.id));
        let _ = write!(
            s,
            r#"<defs><clipPath id="{clip}"><rect x="{}" y="{}" width="{}" height="{}"/></clipPath></defs>"#,
            n(LEFT),
            n(TOP),
            n(pw),
            n(ph)
        );
        // Title.
        let _ = write!(
            s,
            r##"<text x="{}" y="22" font-size="15" font-weight="bold" fill="#222">{}</text>"##,
            n(LEFT),
            escape(&self.title)
        );
        self.grid_and_axes(&mut s, &x, &y, pw, ph);
        self.draw_bands(&mut s, &x, &clip, ph);
        let _ = write!(s, r#"<g clip-path="url(#{clip})">"#);
        for (series, pts) in self.series.iter().zip(&drawn) {
            draw_series(&mut s, series, pts);
        }
        s.push_str("</g>");
        // Plot frame on top of the data.
        let _ = write!(
            s,
            r##"<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#444" stroke-width="1"/>"##,
            n(LEFT),
            n(TOP),
            n(pw),
            n(ph)
        );
        if points_total == 0 {
            let _ = write!(
                s,
                r##"<text x="{}" y="{}" font-size="14" fill="#888" text-anchor="middle">no data</text>"##,
                n(LEFT + pw / 2.0),
                n(TOP + ph / 2.0)
            );
        }
        self.legend(&mut s, pw);
        if points_drawn < points_total {
            let _ = write!(
                s,
                r##"<text x="{}" y="{}" font-size="10" fill="#666" text-anchor="end">showing {} of {} points</text>"##,
                n(self.width - 6.0),
                n(self.height - 6.0),
                points_drawn,
                points_total
            );
        }
        s.push_str("</svg>");
        Rendered {
            svg: s,
            points_total,
            points_drawn,
        }
    }

    fn data_x_range(&self) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for p in self.series.iter().flat_map(|s| &s.points) {
            if p.0.is_finite() {
                lo = lo.min(p.0);
                hi = hi.max(p.0);
            }
        }
        for b in &self.bands {
            lo = lo.min(b.x0);
            hi = hi.max(b.x1);
        }
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        if hi <= lo {
            return (lo - 1.0, hi + 1.0);
        }
        (lo, hi)
    }

    fn data_y_range(&self, log: bool) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for p in self.series.iter().flat_map(|s| &s.points) {
            if p.1.is_finite() && (!log || p.1 > 0.0) {
                lo = lo.min(p.1);
                hi = hi.max(p.1);
            }
        }
        if log {
            if !lo.is_finite() {
                return (1.0, 10.0);
            }
            let lo = 10f64.powf(lo.log10().floor());
            let mut hi = 10f64.powf(hi.log10().ceil());
            if hi <= lo {
                hi = lo * 10.0;
            }
            return (lo, hi);
        }
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let lo = if lo >= 0.0 { 0.0 } else { lo };
        let hi = if hi <= lo {
            lo + 1.0
        } else {
            hi + (hi - lo) * 0.05
        };
        (lo, hi)
    }

    /// Chooses which points of each series to draw (pixel coordinates).
    fn thin(&self, x: &Axis, y: &Axis, pw: f64) -> Vec<Vec<(f64, f64)>> {
        let to_px = |pts: &[(f64, f64)]| -> Vec<(f64, f64)> {
            pts.iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(a, b)| (x.px(a), y.px(b)))
                .collect()
        };
        // Lines first: full resolution while they fit in three quarters of the
        // budget, else first/lowest/highest/last per column of `col` pixels,
        // widening the columns until they fit.
        let line_px: Vec<Option<Vec<(f64, f64)>>> = self
            .series
            .iter()
            .map(|s| match s.style {
                Style::Line { step, .. } => {
                    let px = to_px(&s.points);
                    Some(if step { to_steps(&px) } else { px })
                }
                _ => None,
            })
            .collect();
        let line_budget = self.max_points * 3 / 4;
        let mut col = 0.0f64;
        let mut lines: Vec<Option<Vec<(f64, f64)>>>;
        loop {
            lines = line_px
                .iter()
                .map(|l| {
                    l.as_ref().map(|px| {
                        if col == 0.0 {
                            thin_line(px, pw, 1.0)
                        } else {
                            thin_line(px, 0.0, col)
                        }
                    })
                })
                .collect();
            let total: usize = lines.iter().flatten().map(|l| l.len()).sum();
            if total <= line_budget || col >= 64.0 {
                break;
            }
            col = if col == 0.0 { 1.0 } else { col * 2.0 };
        }
        let mut lines_total = 0usize;
        let mut out: Vec<Vec<(f64, f64)>> = Vec::with_capacity(self.series.len());
        for (s, line) in self.series.iter().zip(lines) {
            match (line, &s.style) {
                (Some(px), _) => {
                    lines_total += px.len();
                    out.push(px);
                }
                (None, Style::Points(_)) if s.labelled() => {
                    let px: Vec<(f64, f64)> =
                        s.points.iter().map(|&(a, b)| (x.px(a), y.px(b))).collect();
                    lines_total += px.len();
                    out.push(px);
                }
                (None, _) => out.push(Vec::new()),
            }
        }
        let budget = self.max_points.saturating_sub(lines_total).max(1);
        let scatter: Vec<usize> = (0..self.series.len())
            .filter(|&i| {
                matches!(self.series[i].style, Style::Points(_)) && !self.series[i].labelled()
            })
            .collect();
        if scatter.is_empty() {
            return out;
        }
        let px: Vec<Vec<(f64, f64)>> = scatter
            .iter()
            .map(|&i| to_px(&self.series[i].points))
            .collect();
        let mut cell = 1.0f64;
        let mut thinned: Vec<Vec<(f64, f64)>>;
        loop {
            thinned = px.iter().map(|p| dedupe_cells(p, cell)).collect();
            let total: usize = thinned.iter().map(|t| t.len()).sum();
            if total <= budget || cell >= 16.0 {
                break;
            }
            cell += 1.0;
        }
        let total: usize = thinned.iter().map(|t| t.len()).sum();
        if total > budget {
            // Still too many distinct cells: keep an evenly spaced share of each series.
            for t in &mut thinned {
                let keep = (t.len() * budget / total).max(1);
                *t = stride(t, keep);
            }
        }
        for (i, t) in scatter.into_iter().zip(thinned) {
            out[i] = t;
        }
        out
    }

    fn grid_and_axes(&self, s: &mut String, x: &Axis, y: &Axis, pw: f64, ph: f64) {
        s.push_str(r##"<g class="grid" stroke="#e4e4e4" stroke-width="1">"##);
        for t in x.ticks() {
            if t.major {
                let px = x.px(t.value);
                let _ = write!(
                    s,
                    r#"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}"/>"#,
                    n(px),
                    n(TOP),
                    n(TOP + ph)
                );
            }
        }
        for t in y.ticks() {
            let py = y.px(t.value);
            let extra = if t.major {
                ""
            } else {
                r#" stroke-opacity="0.5""#
            };
            let _ = write!(
                s,
                r#"<line x1="{}" y1="{2}" x2="{}" y2="{2}"{extra}/>"#,
                n(LEFT),
                n(LEFT + pw),
                n(py)
            );
        }
        s.push_str("</g>");
        s.push_str(r##"<g class="axes" font-size="11" fill="#333">"##);
        let base = TOP + ph;
        for t in x.ticks().into_iter().filter(|t| t.major) {
            let px = x.px(t.value);
            let _ = write!(
                s,
                r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#444"/><text x="{0}" y="{3}" text-anchor="middle">{4}</text>"##,
                n(px),
                n(base),
                n(base + 5.0),
                n(base + 18.0),
                escape(&t.label)
            );
        }
        for t in y.ticks() {
            let py = y.px(t.value);
            let len = if t.major { 5.0 } else { 3.0 };
            let _ = write!(
                s,
                r##"<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#444"/>"##,
                n(LEFT - len),
                n(py),
                n(LEFT)
            );
            if !t.label.is_empty() {
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                    n(LEFT - 8.0),
                    n(py + 4.0),
                    escape(&t.label)
                );
            }
        }
        let _ = write!(
            s,
            r#"<text class="x-label" x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
            n(LEFT + pw / 2.0),
            n(base + 38.0),
            escape(&self.x_label)
        );
        let cy = TOP + ph / 2.0;
        let _ = write!(
            s,
            r#"<text class="y-label" x="16" y="{0}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {0})">{1}</text>"#,
            n(cy),
            escape(&self.y_label)
        );
        s.push_str("</g>");
    }

    fn draw_bands(&self, s: &mut String, x: &Axis, clip: &str, ph: f64) {
        if self.bands.is_empty() {
            return;
        }
        let _ = write!(s, r#"<g class="fault-windows" clip-path="url(#{clip})">"#);
        let mut rows_end = [f64::NEG_INFINITY; 3];
        for b in &self.bands {
            let a = x.px(b.x0).max(LEFT - 1.0);
            let z = x.px(b.x1).min(LEFT + x.len() + 1.0);
            if z < LEFT || a > LEFT + x.len() {
                continue;
            }
            let w = (z - a).max(2.0);
            let _ = write!(
                s,
                r##"<rect class="fault-window" x="{}" y="{}" width="{}" height="{}" fill="#f4a261" fill-opacity="0.22" stroke="#e76f51" stroke-opacity="0.5" stroke-width="0.8"><title>{}</title></rect>"##,
                n(a),
                n(TOP),
                n(w),
                n(ph),
                escape(&b.title)
            );
            // Labels go in the first of three rows where they do not overlap the
            // previous label; a window with no room keeps only its tooltip.
            let label = truncate(&b.label, 28);
            let width = label.chars().count() as f64 * 6.0 + 6.0;
            let x = a + 2.0;
            if let Some(row) = (0..rows_end.len()).find(|&r| rows_end[r] <= x) {
                rows_end[row] = x + width;
                let _ = write!(
                    s,
                    r##"<text class="fault-label" x="{}" y="{}" font-size="10" fill="#9a3412">{}</text>"##,
                    n(x),
                    n(TOP + 12.0 + row as f64 * 12.0),
                    escape(&label)
                );
            }
        }
        s.push_str("</g>");
    }

    fn legend(&self, s: &mut String, pw: f64) {
        let lx = LEFT + pw + 14.0;
        let mut ly = TOP + 8.0;
        let max_rows = ((self.height - TOP - BOTTOM) / 17.0).floor().max(1.0) as usize;
        s.push_str(r##"<g class="legend" font-size="11" fill="#222">"##);
        let mut rows = 0usize;
        let total_rows = self.series.len() + usize::from(!self.bands.is_empty());
        for series in &self.series {
            if rows + 1 == max_rows && total_rows > max_rows {
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}">… {} more</text>"#,
                    n(lx),
                    n(ly + 4.0),
                    total_rows - rows
                );
                break;
            }
            let one = [(lx + 9.0, ly)];
            match series.style {
                Style::Points(_) => draw_series(s, series, &one),
                Style::Line { dash, .. } => {
                    let d = dash
                        .map(|d| format!(r#" stroke-dasharray="{d}""#))
                        .unwrap_or_default();
                    let _ = write!(
                        s,
                        r#"<line x1="{}" y1="{2}" x2="{}" y2="{2}" stroke="{3}" stroke-width="2"{d}/>"#,
                        n(lx),
                        n(lx + 18.0),
                        n(ly),
                        escape(&series.color)
                    );
                }
            }
            let _ = write!(
                s,
                r#"<text x="{}" y="{}">{}{}</text>"#,
                n(lx + 24.0),
                n(ly + 4.0),
                escape(&truncate(&series.name, 24)),
                // Points count things; a line's vertices do not.
                match series.style {
                    Style::Points(_) => format!(" ({})", series.points.len()),
                    Style::Line { .. } => String::new(),
                }
            );
            ly += 17.0;
            rows += 1;
        }
        if !self.bands.is_empty() && rows < max_rows {
            let _ = write!(
                s,
                r##"<rect x="{}" y="{}" width="18" height="10" fill="#f4a261" fill-opacity="0.35" stroke="#e76f51" stroke-width="0.8"/><text x="{}" y="{}">fault window ({})</text>"##,
                n(lx),
                n(ly - 5.0),
                n(lx + 24.0),
                n(ly + 4.0),
                self.bands.len()
            );
        }
        s.push_str("</g>");
    }
}

fn draw_series(s: &mut String, series: &Series, pts: &[(f64, f64)]) {
    let color = escape(&series.color);
    let name = escape(&series.name);
    let count = pts.len();
    match series.style {
        Style::Line { dash, .. } => {
            if pts.is_empty() {
                return;
            }
            let d = dash
                .map(|d| format!(r#" stroke-dasharray="{d}""#))
                .unwrap_or_default();
            let _ = write!(
                s,
                r#"<path class="series" data-series="{name}" data-points="{count}" fill="none" stroke="{color}" stroke-width="1.6" stroke-linejoin="round"{d} d=""#
            );
            for (i, &(a, b)) in pts.iter().enumerate() {
                s.push(if i == 0 { 'M' } else { 'L' });
                let _ = write!(s, "{} {}", n(a), n(b));
            }
            s.push_str(r#""/>"#);
        }
        Style::Points(m) => {
            let attrs = match m {
                Marker::Circle => format!(
                    r#"fill="none" stroke="{color}" stroke-opacity="0.75" stroke-width="4" stroke-linecap="round""#
                ),
                Marker::Square => format!(
                    r#"fill="none" stroke="{color}" stroke-opacity="0.75" stroke-width="4" stroke-linecap="square""#
                ),
                Marker::Cross => format!(r#"fill="none" stroke="{color}" stroke-width="1.5""#),
                Marker::Triangle | Marker::Diamond => {
                    format!(r#"fill="{color}" fill-opacity="0.85" stroke="none""#)
                }
            };
            if series.labelled() && pts.len() == series.tooltips.len() {
                let _ = write!(
                    s,
                    r#"<g class="series" data-series="{name}" data-points="{count}" {attrs}>"#
                );
                for (&(a, b), tip) in pts.iter().zip(&series.tooltips) {
                    let _ = write!(
                        s,
                        r#"<path d="{}"><title>{}</title></path>"#,
                        mark(m, a, b),
                        escape(tip)
                    );
                }
                s.push_str("</g>");
                return;
            }
            let _ = write!(
                s,
                r#"<path class="series" data-series="{name}" data-points="{count}" {attrs} d=""#
            );
            for &(a, b) in pts {
                s.push_str(&mark(m, a, b));
            }
            s.push_str(r#""/>"#);
        }
    }
}

/// The path of one mark centred on `(a, b)`.
fn mark(m: Marker, a: f64, b: f64) -> String {
    match m {
        Marker::Circle | Marker::Square => format!("M{} {}h0", n(a), n(b)),
        Marker::Cross => format!("M{} {}l5 5m0-5l-5 5", n(a - 2.5), n(b - 2.5)),
        Marker::Triangle => format!("M{} {}l3 5h-6z", n(a), n(b - 3.0)),
        Marker::Diamond => format!("M{} {}l3 3-3 3-3-3z", n(a), n(b - 3.0)),
    }
}

/// Keeps the first point falling into each `cell`×`cell` pixel square.
fn dedupe_cells(pts: &[(f64, f64)], cell: f64) -> Vec<(f64, f64)> {
    let mut seen: HashSet<(i64, i64)> = HashSet::with_capacity(pts.len().min(1 << 16));
    pts.iter()
        .copied()
        .filter(|&(a, b)| seen.insert(((a / cell).floor() as i64, (b / cell).floor() as i64)))
        .collect()
}

/// `keep` evenly spaced elements of `v`.
fn stride<T: Copy>(v: &[T], keep: usize) -> Vec<T> {
    if keep >= v.len() {
        return v.to_vec();
    }
    (0..keep).map(|i| v[i * v.len() / keep]).collect()
}

/// Converts a polyline into a step function: each value holds until the next x.
fn to_steps(pts: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(pts.len() * 2);
    for (i, &p) in pts.iter().enumerate() {
        if i > 0 {
            out.push((p.0, pts[i - 1].1));
        }
        out.push(p);
    }
    out
}

/// Keeps the first, lowest, highest and last point of each pixel column, in x order,
/// when a line has more vertices than ~4 per column.
/// Columns are `col` pixels wide; a line of at most `4 * pw` points is kept whole.
fn thin_line(pts: &[(f64, f64)], pw: f64, col: f64) -> Vec<(f64, f64)> {
    if pts.len() <= (pw as usize) * 4 {
        return pts.to_vec();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < pts.len() {
        let c = (pts[i].0 / col).floor();
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < pts.len() && (pts[j].0 / col).floor() == c {
            if pts[j].1 < pts[lo].1 {
                lo = j;
            }
            if pts[j].1 > pts[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let mut idx = [i, lo, hi, j - 1];
        idx.sort_unstable();
        let mut last = usize::MAX;
        for k in idx {
            if k != last {
                out.push(pts[k]);
                last = k;
            }
        }
        i = j;
    }
    out
}

struct Tick {
    value: f64,
    label: String,
    major: bool,
}

/// A mapping from data to pixels along one direction.
struct Axis {
    lo: f64,
    hi: f64,
    p0: f64,
    p1: f64,
    log: bool,
}

impl Axis {
    fn linear(lo: f64, hi: f64, p0: f64, p1: f64) -> Axis {
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else {
            (lo - 1.0, lo + 1.0)
        };
        Axis {
            lo,
            hi,
            p0,
            p1,
            log: false,
        }
    }

    fn log(lo: f64, hi: f64, p0: f64, p1: f64) -> Axis {
        let lo = if lo > 0.0 { lo } else { 1e-3 };
        let hi = if hi > lo { hi } else { lo * 10.0 };
        Axis {
            lo: lo.log10(),
            hi: hi.log10(),
            p0,
            p1,
            log: true,
        }
    }

    fn len(&self) -> f64 {
        (self.p1 - self.p0).abs()
    }

    fn px(&self, v: f64) -> f64 {
        let v = if self.log {
            if v > 0.0 {
                v.log10()
            } else {
                self.lo
            }
        } else {
            v
        };
        let v = v.clamp(self.lo - (self.hi - self.lo), self.hi + (self.hi - self.lo));
        self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)
    }

    fn ticks(&self) -> Vec<Tick> {
        if self.log {
            log_ticks(self.lo, self.hi)
        } else {
            linear_ticks(
                self.lo,
                self.hi,
                (self.len() / 80.0).clamp(2.0, 10.0) as usize,
            )
        }
    }
}

/// "Nice" ticks (1, 2, 5 × 10^k) covering `[lo, hi]`, about `target` of them.
fn linear_ticks(lo: f64, hi: f64, target: usize) -> Vec<Tick> {
    let raw = (hi - lo) / target.max(1) as f64;
    if raw <= 0.0 || !raw.is_finite() {
        return vec![Tick {
            value: lo,
            label: fmt_num(lo, 0),
            major: true,
        }];
    }
    let mag = 10f64.powf(raw.log10().floor());
    // The 1-2-5 step whose tick count is closest to the target.
    let count = |s: f64| ((hi - lo) / s - target as f64).abs();
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .min_by(|a, b| count(*a).total_cmp(&count(*b)))
        .unwrap_or(mag);
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            Tick {
                value: v,
                label: fmt_num(v, decimals),
                major: true,
            }
        })
        .collect()
}

fn log_ticks(lo: f64, hi: f64) -> Vec<Tick> {
    let mut out = Vec::new();
    let decades = hi - lo;
    let (a, b) = (lo.floor() as i32, hi.ceil() as i32);
    for e in a..=b {
        for m in 1..10 {
            let v = f64::from(m) * 10f64.powi(e);
            let lv = v.log10();
            if lv < lo - 1e-9 || lv > hi + 1e-9 {
                continue;
            }
            let labelled = m == 1 || (decades <= 2.0 && (m == 2 || m == 5));
            let label = if labelled {
                fmt_log(v, e)
            } else {
                String::new()
            };
            out.push(Tick {
                value: v,
                label,
                major: m == 1,
            });
        }
    }
    out
}

fn fmt_log(v: f64, e: i32) -> String {
    if (-3..=6).contains(&e) {
        fmt_num(v, if e < 0 { (-e) as usize } else { 0 })
    } else {
        format!("{}e{}", (v / 10f64.powi(e)).round(), e)
    }
}

fn fmt_num(v: f64, decimals: usize) -> String {
    let v = if v.abs() < 1e-12 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// A pixel coordinate with one decimal, without trailing zeros.
fn n(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r == r.trunc() {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn sanitize_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scatter(n: usize) -> Chart {
        let mut c = Chart::new("t", "Latency", "time (s)", "latency (ms)");
        c.y_log = true;
        // A deterministic cloud plus one far outlier.
        let mut pts: Vec<(f64, f64)> = (0..n)
            .map(|i| {
                let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                (
                    i as f64 / n as f64 * 100.0,
                    1.0 + (h >> 40) as f64 / (1u64 << 24) as f64 * 50.0,
                )
            })
            .collect();
        pts.push((50.0, 30_000.0));
        c.series.push(Series {
            name: "send ok".into(),
            color: "#1f77b4".into(),
            style: Style::Points(Marker::Circle),
            points: pts,
            tooltips: Vec::new(),
        });
        c
    }

    #[test]
    fn a_dense_scatter_is_capped_but_keeps_its_outlier() {
        let r = scatter(200_000).render();
        assert_eq!(r.points_total, 200_001);
        assert!(r.points_drawn <= MAX_POINTS, "drew {}", r.points_drawn);
        assert!(r.points_drawn > 1000, "drew {}", r.points_drawn);
        assert!(r.svg.contains("showing"));
        // The outlier at 30 s latency sits alone near the top of a log axis up to 1e5.
        assert!(r.svg.contains(">10000<"), "log ticks label powers of ten");
        let doc = roxmltree::Document::parse(&r.svg).unwrap();
        assert_eq!(doc.root_element().tag_name().name(), "svg");
    }

    #[test]
    fn a_small_scatter_is_drawn_in_full() {
        let r = scatter(100).render();
        assert_eq!(r.points_drawn, r.points_total);
        assert!(!r.svg.contains("showing"));
    }

    #[test]
    fn linear_ticks_are_round_numbers_inside_the_range() {
        let t = linear_ticks(0.0, 37.0, 6);
        let v: Vec<f64> = t.iter().map(|t| t.value).collect();
        assert_eq!(v, vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]);
        let t = linear_ticks(0.0, 0.9, 4);
        assert_eq!(t[1].label, "0.2");
    }

    #[test]
    fn a_long_line_keeps_its_extremes_per_pixel_column() {
        let pts: Vec<(f64, f64)> = (0..100_000)
            .map(|i| (i as f64 / 1000.0, if i == 54_321 { -5.0 } else { 1.0 }))
            .collect();
        let t = thin_line(&pts, 100.0, 1.0);
        assert!(t.len() <= 400);
        assert!(t.iter().any(|p| p.1 == -5.0));
    }

    #[test]
    fn many_long_lines_together_stay_under_the_cap() {
        let mut c = Chart::new("l", "T", "x", "y");
        for k in 0..20 {
            let pts = (0..5000)
                .map(|i| (i as f64, ((i * (k + 1)) % 97) as f64))
                .collect();
            c.series.push(Series::new(
                &format!("s{k}"),
                "#000",
                Style::Line {
                    dash: None,
                    step: false,
                },
                pts,
            ));
        }
        let r = c.render();
        assert_eq!(r.points_total, 100_000);
        assert!(r.points_drawn <= MAX_POINTS, "{}", r.points_drawn);
        assert!(r.points_drawn > MAX_POINTS / 4, "{}", r.points_drawn);
    }

    #[test]
    fn crowded_fault_labels_do_not_overlap_but_every_window_is_shaded() {
        let mut c = Chart::new("m", "T", "x", "y");
        c.x_range = Some((0.0, 100.0));
        for i in 0..40 {
            let x0 = i as f64 * 2.5;
            c.bands.push(Band {
                x0,
                x1: x0 + 1.0,
                label: format!("pause b{i}"),
                title: String::new(),
            });
        }
        let svg = c.render().svg;
        assert_eq!(svg.matches(r#"class="fault-window""#).count(), 40);
        let labels = svg.matches(r#"class="fault-label""#).count();
        assert!((3..40).contains(&labels), "{labels} labels");
    }

    #[test]
    fn bands_are_shaded_and_labelled_with_escaped_text() {
        let mut c = Chart::new("b", "T", "x", "y");
        c.bands.push(Band {
            x0: 1.0,
            x1: 2.0,
            label: "kill <b2>".into(),
            title: "kill & heal".into(),
        });
        c.series.push(Series {
            name: "s".into(),
            color: "#000".into(),
            style: Style::Line {
                dash: None,
                step: true,
            },
            points: vec![(0.0, 1.0), (3.0, 2.0)],
            tooltips: Vec::new(),
        });
        let r = c.render();
        assert!(r.svg.contains(r#"class="fault-window""#));
        assert!(r.svg.contains("kill &lt;b2&gt;"));
        roxmltree::Document::parse(&r.svg).unwrap();
    }
}
