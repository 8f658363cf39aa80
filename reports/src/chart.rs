//! Charts drawn with [`plotters`]: scatter and line series over a linear or
//! logarithmic y axis, with ticks, grid, axis labels, a legend and shaded,
//! labelled x-ranges ("bands", used for nemesis fault windows).
//!
//! Every chart is rendered twice from the same thinned data: SVG
//! (`SVGBackend`, text is SVG `<text>` so it stays selectable) for the HTML
//! report, and PNG (`BitMapBackend`, encoded with the `png` crate) for places
//! that cannot show SVG (CI job summaries, chat).
//!
//! Big inputs are thinned before drawing, without changing what the eye
//! sees: scatter points are reduced to one per series per pixel cell (the
//! cell grows until the chart holds at most [`Chart::max_points`] marks, so
//! isolated outliers always survive), and line series keep the first, lowest,
//! highest and last point of each pixel column. Series marked with
//! `keep_all` (anomalies) are never thinned.
//!
//! Text needs a font file (see [`crate::fonts`]); without one, charts are
//! drawn without text and [`Rendered::text`] is `false`.

use std::collections::HashSet;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::fonts;

/// Shape of a scatter mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Cross,
    Triangle,
    Diamond,
}

/// How a line is stroked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Short,
    Long,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Points(Marker),
    /// A polyline; `step` draws a step function (the value holds until the
    /// next point).
    Line {
        dash: Dash,
        step: bool,
    },
}

/// One named, colored data series.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
    /// Drawn in full, never thinned (a few marked points, e.g. anomalies).
    pub keep_all: bool,
}

impl Series {
    pub fn new(name: &str, color: RGBColor, style: Style, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.to_string(),
            color,
            style,
            points,
            keep_all: false,
        }
    }
}

/// A shaded x-range with a label (a fault window).
#[derive(Clone, Debug)]
pub struct Band {
    pub x0: f64,
    pub x1: f64,
    pub label: String,
}

/// A chart to render.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic y axis (values ≤ 0 are not drawn).
    pub y_log: bool,
    /// Fixed ranges; computed from the data when `None`.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
    pub bands: Vec<Band>,
    /// Upper bound on scatter marks plus line vertices drawn.
    pub max_points: usize,
    pub width: u32,
    pub height: u32,
}

/// A chart rendered as SVG and PNG, and how much of its data it draws.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub svg: String,
    pub png: Vec<u8>,
    pub points_total: usize,
    pub points_drawn: usize,
    /// Whether text (title, ticks, legend, labels) was drawn: `false` when
    /// no font file was found.
    pub text: bool,
}

/// Errors drawing a chart.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing chart {title:?}: {message}")]
    Draw { title: String, message: String },
    #[error("encoding PNG of chart {title:?}: {source}")]
    Png {
        title: String,
        #[source]
        source: png::EncodingError,
    },
}

/// Default cap on marks per chart.
pub const MAX_POINTS: usize = 12_000;
/// Width of the legend column on the right.
const LEGEND_W: u32 = 210;
const FAMILY: &str = "sans-serif";

const BAND_FILL: RGBColor = RGBColor(0xf4, 0xa2, 0x61);
const BAND_EDGE: RGBColor = RGBColor(0xe7, 0x6f, 0x51);
const BAND_TEXT: RGBColor = RGBColor(0x9a, 0x34, 0x12);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);

/// Parses `#rrggbb`; black when malformed.
pub fn hex(s: &str) -> RGBColor {
    let v = u32::from_str_radix(s.trim_start_matches('#'), 16).unwrap_or(0);
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// Data after the y transform (log10 on a log axis), and the ranges drawn.
struct Prepared {
    series: Vec<Vec<(f64, f64)>>,
    x: (f64, f64),
    y: (f64, f64),
}

impl Chart {
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Chart {
        Chart {
            title: title.to_string(),
            x_label: x_label.to_string(),
            y_label: y_label.to_string(),
            y_log: false,
            x_range: None,
            y_range: None,
            series: Vec::new(),
            bands: Vec::new(),
            max_points: MAX_POINTS,
            width: 960,
            height: 420,
        }
    }

    /// Renders the chart to an SVG document and a PNG image.
    pub fn render(&self) -> Result<Rendered, ChartError> {
        let text = fonts::available();
        let prep = self.prepare();
        let points_total: usize = self.series.iter().map(|s| s.points.len()).sum();
        let draw_err = |message: String| ChartError::Draw {
            title: self.title.clone(),
            message,
        };
        let (w, h) = (self.width, self.height);
        let mut thinned = None;
        let mut svg = String::with_capacity(64 * 1024);
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            self.draw(&root, &prep, &mut thinned, text, points_total)
                .map_err(draw_err)?;
            root.present().map_err(|e| draw_err(e.to_string()))?;
        }
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root, &prep, &mut thinned, text, points_total)
                .map_err(draw_err)?;
            root.present().map_err(|e| draw_err(e.to_string()))?;
        }
        let png = encode_png(&rgb, w, h).map_err(|source| ChartError::Png {
            title: self.title.clone(),
            source,
        })?;
        let points_drawn = thinned
            .as_ref()
            .map_or(0, |t: &Vec<Vec<(f64, f64)>>| t.iter().map(Vec::len).sum());
        // Say what the chart is, for tests, scripts and screen readers.
        if let Some(at) = svg.find("<svg ") {
            svg.insert_str(
                at + 5,
                &format!(
                    r#"class="gregor-chart" role="img" aria-label="{}" data-points-total="{points_total}" data-points-drawn="{points_drawn}" "#,
                    crate::xml::escape(&self.title)
                ),
            );
        }
        Ok(Rendered {
            svg,
            png,
            points_total,
            points_drawn,
            text,
        })
    }

    fn prepare(&self) -> Prepared {
        let ty = |y: f64| if self.y_log { y.log10() } else { y };
        let series: Vec<Vec<(f64, f64)>> = self
            .series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite() && (!self.y_log || p.1 > 0.0))
                    .map(|&(x, y)| (x, ty(y)))
                    .collect()
            })
            .collect();
        let x = self.x_range.unwrap_or_else(|| self.data_x_range(&series));
        let y = match self.y_range {
            Some((a, b)) => (ty(a), ty(b)),
            None => self.data_y_range(&series),
        };
        Prepared { series, x, y }
    }

    fn data_x_range(&self, series: &[Vec<(f64, f64)>]) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for p in series.iter().flatten() {
            lo = lo.min(p.0);
            hi = hi.max(p.0);
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

    /// The y range of the (transformed) data: whole decades on a log axis,
    /// from zero (or the minimum) to 5% above the maximum on a linear one.
    fn data_y_range(&self, series: &[Vec<(f64, f64)>]) -> (f64, f64) {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for p in series.iter().flatten() {
            lo = lo.min(p.1);
            hi = hi.max(p.1);
        }
        if self.y_log {
            if !lo.is_finite() {
                return (0.0, 1.0);
            }
            let (lo, hi) = (lo.floor(), hi.ceil());
            return (lo, if hi <= lo { lo + 1.0 } else { hi });
        }
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let lo = lo.min(0.0);
        let hi = if hi <= lo {
            lo + 1.0
        } else {
            hi + (hi - lo) * 0.05
        };
        (lo, hi)
    }

    /// Draws the chart on `root`. The first call thins the data for the
    /// plotting area's pixel size and stores it in `thinned`; later calls
    /// (another backend, same size) reuse it.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        prep: &Prepared,
        thinned: &mut Option<Vec<Vec<(f64, f64)>>>,
        text: bool,
        points_total: usize,
    ) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (left, right) = root.split_horizontally(self.width.saturating_sub(LEGEND_W));
        let (x0, x1) = prep.x;
        let (y0, y1) = prep.y;
        let mut builder = ChartBuilder::on(&left);
        builder
            .margin(10)
            .margin_top(if text { 8 } else { 14 })
            .x_label_area_size(if text { 42 } else { 8 })
            .y_label_area_size(if text { 70 } else { 8 });
        if text {
            builder.caption(
                truncate(&self.title, 120),
                (FAMILY, 17).into_font().style(FontStyle::Bold),
            );
        }
        let mut chart = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(e)?;
        if text {
            let log = self.y_log;
            let fmt_y = move |v: &f64| {
                if log {
                    fmt_num(10f64.powf(*v))
                } else {
                    fmt_num(*v)
                }
            };
            let mut mesh = chart.configure_mesh();
            if log {
                // One tick per decade (whole powers of ten), at most 12.
                mesh.y_labels(((y1 - y0).round() as usize + 1).clamp(2, 12));
            }
            mesh.x_desc(&self.x_label)
                .y_desc(&self.y_label)
                .x_label_formatter(&|v: &f64| fmt_num(*v))
                .y_label_formatter(&fmt_y)
                .label_style((FAMILY, 12))
                .axis_desc_style((FAMILY, 13))
                .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
                .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
                .draw()
                .map_err(e)?;
        }
        let (px, py) = chart.plotting_area().get_pixel_range();
        let pw = f64::from((px.end - px.start).max(1));
        let ph = f64::from((py.end - py.start).max(1));
        let thinned = thinned.get_or_insert_with(|| {
            let sx = pw / (x1 - x0).max(f64::MIN_POSITIVE);
            let sy = ph / (y1 - y0).max(f64::MIN_POSITIVE);
            self.thin(prep, sx, sy, pw)
        });

        // Fault windows: shaded, outlined, each at least 2 px wide.
        let min_w = 2.0 * (x1 - x0) / pw;
        let bands: Vec<(f64, f64, &Band)> = self
            .bands
            .iter()
            .filter(|b| b.x1 >= x0 && b.x0 <= x1)
            .map(|b| {
                let a = b.x0.max(x0);
                let z = b.x1.min(x1).max(a + min_w);
                (a, z, b)
            })
            .collect();
        chart
            .draw_series(
                bands.iter().map(|&(a, z, _)| {
                    Rectangle::new([(a, y0), (z, y1)], BAND_FILL.mix(0.25).filled())
                }),
            )
            .map_err(e)?;
        chart
            .draw_series(bands.iter().map(|&(a, z, _)| {
                Rectangle::new([(a, y0), (z, y1)], BAND_EDGE.mix(0.6).stroke_width(1))
            }))
            .map_err(e)?;

        for (s, pts) in self.series.iter().zip(thinned.iter()) {
            draw_series(&mut chart, s, pts).map_err(e)?;
        }
        // Frame on top of the data.
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x0, y0), (x1, y1)],
                RGBColor(0x44, 0x44, 0x44).stroke_width(1),
            )))
            .map_err(e)?;
        if !text {
            return Ok(());
        }

        // Fault labels, in the first of three rows where they do not overlap
        // the previous label; a window with no room keeps only its shading.
        let mut rows_end = [i32::MIN; 3];
        let label_style = TextStyle::from((FAMILY, 11).into_font()).color(&BAND_TEXT);
        for &(a, _, b) in &bands {
            let label = truncate(&b.label, 28);
            let (bx, _) = chart.backend_coord(&(a, y1));
            let x = bx + 2;
            let width = label.chars().count() as i32 * 6 + 8;
            if let Some(row) = (0..rows_end.len()).find(|&r| rows_end[r] <= x) {
                rows_end[row] = x + width;
                left.draw(&Text::new(
                    label,
                    (x, py.start + 3 + row as i32 * 12),
                    label_style.clone(),
                ))
                .map_err(e)?;
            }
        }
        if points_total == 0 {
            left.draw(&Text::new(
                "no data",
                ((px.start + px.end) / 2 - 24, (py.start + py.end) / 2),
                TextStyle::from((FAMILY, 15).into_font()).color(&MUTED),
            ))
            .map_err(e)?;
        }
        let drawn: usize = thinned.iter().map(Vec::len).sum();
        if drawn < points_total {
            let note = format!("showing {drawn} of {points_total} points");
            right
                .draw(&Text::new(
                    note,
                    (4, self.height as i32 - 16),
                    TextStyle::from((FAMILY, 10).into_font()).color(&MUTED),
                ))
                .map_err(e)?;
        }
        self.legend(&right, py.start).map_err(e)?;
        Ok(())
    }

    fn legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        top: i32,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let style = TextStyle::from((FAMILY, 12).into_font()).color(&INK);
        let max_rows = ((self.height as i32 - top - 60) / 18).max(1) as usize;
        let total_rows = self.series.len() + usize::from(!self.bands.is_empty());
        let mut y = top + 8;
        let mut rows = 0;
        for s in &self.series {
            if rows + 1 == max_rows && total_rows > max_rows {
                area.draw(&Text::new(
                    format!("… {} more", total_rows - rows),
                    (8, y - 6),
                    style.clone(),
                ))?;
                return Ok(());
            }
            match s.style {
                Style::Points(m) => draw_mark(area, m, s.color, (17, y))?,
                Style::Line { dash, .. } => {
                    let segs: &[(i32, i32)] = match dash {
                        Dash::Solid => &[(6, 26)],
                        Dash::Short => &[(6, 10), (13, 17), (20, 24)],
                        Dash::Long => &[(6, 14), (18, 26)],
                    };
                    for &(a, b) in segs {
                        area.draw(&PathElement::new(
                            vec![(a, y), (b, y)],
                            s.color.stroke_width(2),
                        ))?;
                    }
                }
            }
            let label = match s.style {
                // Points count things; a line's vertices do not.
                Style::Points(_) => format!("{} ({})", truncate(&s.name, 22), s.points.len()),
                Style::Line { .. } => truncate(&s.name, 26),
            };
            area.draw(&Text::new(label, (32, y - 7), style.clone()))?;
            y += 18;
            rows += 1;
        }
        if !self.bands.is_empty() && rows < max_rows {
            area.draw(&Rectangle::new(
                [(6, y - 5), (26, y + 5)],
                BAND_FILL.mix(0.4).filled(),
            ))?;
            area.draw(&Rectangle::new([(6, y - 5), (26, y + 5)], BAND_EDGE))?;
            area.draw(&Text::new(
                format!("fault window ({})", self.bands.len()),
                (32, y - 7),
                style,
            ))?;
        }
        Ok(())
    }

    /// Chooses which points of each series to draw (data coordinates, y
    /// transformed). `sx`, `sy`: pixels per data unit; `pw`: plot width, px.
    fn thin(&self, prep: &Prepared, sx: f64, sy: f64, pw: f64) -> Vec<Vec<(f64, f64)>> {
        let to_px = ToPx {
            x0: prep.x.0,
            y0: prep.y.0,
            sx,
            sy,
        };
        // Lines first: full resolution while they fit in three quarters of the
        // budget, else first/lowest/highest/last per column of `col` pixels,
        // widening the columns until they fit.
        let line_pts: Vec<Option<Vec<(f64, f64)>>> = self
            .series
            .iter()
            .zip(&prep.series)
            .map(|(s, pts)| match s.style {
                Style::Line { step, .. } => Some(if step { to_steps(pts) } else { pts.clone() }),
                _ => None,
            })
            .collect();
        let line_budget = self.max_points * 3 / 4;
        let mut col = 0.0f64;
        let mut lines: Vec<Option<Vec<(f64, f64)>>>;
        loop {
            lines = line_pts
                .iter()
                .map(|l| {
                    l.as_ref().map(|pts| {
                        if col == 0.0 {
                            thin_line(pts, &to_px, pw, 1.0)
                        } else {
                            thin_line(pts, &to_px, 0.0, col)
                        }
                    })
                })
                .collect();
            let total: usize = lines.iter().flatten().map(Vec::len).sum();
            if total <= line_budget || col >= 64.0 {
                break;
            }
            col = if col == 0.0 { 1.0 } else { col * 2.0 };
        }
        let mut fixed = 0usize;
        let mut out: Vec<Vec<(f64, f64)>> = Vec::with_capacity(self.series.len());
        for ((s, line), pts) in self.series.iter().zip(lines).zip(&prep.series) {
            match line {
                Some(l) => {
                    fixed += l.len();
                    out.push(l);
                }
                None if s.keep_all => {
                    fixed += pts.len();
                    out.push(pts.clone());
                }
                None => out.push(Vec::new()),
            }
        }
        let budget = self.max_points.saturating_sub(fixed).max(1);
        let scatter: Vec<usize> = (0..self.series.len())
            .filter(|&i| {
                matches!(self.series[i].style, Style::Points(_)) && !self.series[i].keep_all
            })
            .collect();
        if scatter.is_empty() {
            return out;
        }
        let mut cell = 1.0f64;
        let mut thinned: Vec<Vec<(f64, f64)>>;
        loop {
            thinned = scatter
                .iter()
                .map(|&i| dedupe_cells(&prep.series[i], &to_px, cell))
                .collect();
            let total: usize = thinned.iter().map(Vec::len).sum();
            if total <= budget || cell >= 16.0 {
                break;
            }
            cell += 1.0;
        }
        let total: usize = thinned.iter().map(Vec::len).sum();
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
}

type Ctx<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_series<DB: DrawingBackend>(
    chart: &mut Ctx<'_, DB>,
    s: &Series,
    pts: &[(f64, f64)],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if pts.is_empty() {
        return Ok(());
    }
    let c = s.color;
    match s.style {
        Style::Line { dash, .. } => {
            let st = c.stroke_width(2);
            match dash {
                Dash::Solid => {
                    chart.draw_series(LineSeries::new(pts.iter().copied(), st))?;
                }
                Dash::Short => {
                    chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 3, 3, st))?;
                }
                Dash::Long => {
                    chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 8, 4, st))?;
                }
            }
        }
        Style::Points(Marker::Circle) => {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 2, c.mix(0.75).filled())))?;
        }
        Style::Points(Marker::Cross) => {
            chart.draw_series(pts.iter().map(|&p| Cross::new(p, 3, c.stroke_width(2))))?;
        }
        Style::Points(Marker::Triangle) => {
            chart.draw_series(
                pts.iter()
                    .map(|&p| TriangleMarker::new(p, 4, c.mix(0.85).filled())),
            )?;
        }
        Style::Points(Marker::Square) => {
            chart.draw_series(pts.iter().map(|&p| {
                EmptyElement::at(p) + Rectangle::new([(-2, -2), (2, 2)], c.mix(0.85).filled())
            }))?;
        }
        Style::Points(Marker::Diamond) => {
            chart.draw_series(pts.iter().map(|&p| {
                EmptyElement::at(p) + Rectangle::new([(-3, -3), (3, 3)], c.stroke_width(2))
            }))?;
        }
    }
    Ok(())
}

/// One legend mark centred on a pixel.
fn draw_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    m: Marker,
    c: RGBColor,
    p: (i32, i32),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    match m {
        Marker::Circle => area.draw(&Circle::new(p, 3, c.filled())),
        Marker::Cross => area.draw(&Cross::new(p, 4, c.stroke_width(2))),
        Marker::Triangle => area.draw(&TriangleMarker::new(p, 5, c.filled())),
        Marker::Square => area.draw(&Rectangle::new(
            [(p.0 - 3, p.1 - 3), (p.0 + 3, p.1 + 3)],
            c.filled(),
        )),
        Marker::Diamond => area.draw(&Rectangle::new(
            [(p.0 - 3, p.1 - 3), (p.0 + 3, p.1 + 3)],
            c.stroke_width(2),
        )),
    }
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::with_capacity(64 * 1024);
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rgb)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Maps a (transformed) data point to pixels from the plot's corner.
#[derive(Clone, Copy)]
struct ToPx {
    x0: f64,
    y0: f64,
    sx: f64,
    sy: f64,
}

impl ToPx {
    fn at(&self, p: &(f64, f64)) -> (f64, f64) {
        ((p.0 - self.x0) * self.sx, (p.1 - self.y0) * self.sy)
    }
}

/// Keeps the first point falling into each `cell`×`cell` pixel square.
fn dedupe_cells(pts: &[(f64, f64)], to_px: &ToPx, cell: f64) -> Vec<(f64, f64)> {
    let mut seen: HashSet<(i64, i64)> = HashSet::with_capacity(pts.len().min(1 << 16));
    pts.iter()
        .copied()
        .filter(|p| {
            let (a, b) = to_px.at(p);
            seen.insert(((a / cell).floor() as i64, (b / cell).floor() as i64))
        })
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

/// Keeps the first, lowest, highest and last point of each pixel column, in
/// x order, when a line has more vertices than ~4 per column. Columns are
/// `col` pixels wide; a line of at most `4 * pw` points is kept whole.
fn thin_line(pts: &[(f64, f64)], to_px: &ToPx, pw: f64, col: f64) -> Vec<(f64, f64)> {
    if pts.len() <= (pw as usize) * 4 {
        return pts.to_vec();
    }
    let column = |p: &(f64, f64)| (to_px.at(p).0 / col).floor();
    let mut out = Vec::new();
    let mut i = 0;
    while i < pts.len() {
        let c = column(&pts[i]);
        let mut j = i;
        let (mut lo, mut hi) = (i, i);
        while j < pts.len() && column(&pts[j]) == c {
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

/// A tick label: integers as integers, otherwise up to three decimals
/// without trailing zeros.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    if (v - v.round()).abs() < 1e-9 {
        return format!("{}", v.round() as i64);
    }
    let digits = if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 0.1 {
        2
    } else {
        4
    };
    let s = format!("{v:.digits$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Text as drawn: without control characters (not allowed in SVG), at most
/// `max` characters.
fn truncate(s: &str, max: usize) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max - 1).collect::<String>() + "…"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scatter(n: usize) -> Chart {
        let mut c = Chart::new("dense", "x", "y");
        let mut pts: Vec<(f64, f64)> = (0..n)
            .map(|i| (i as f64 / n as f64 * 100.0, (i % 97) as f64))
            .collect();
        // One outlier far above the rest.
        pts.push((50.0, 10_000.0));
        c.series.push(Series::new(
            "s",
            hex("#1f77b4"),
            Style::Points(Marker::Circle),
            pts,
        ));
        c
    }

    #[test]
    fn a_dense_scatter_is_capped_but_keeps_its_outlier() {
        let c = scatter(200_000);
        let p = c.prepare();
        let t = c.thin(&p, 700.0 / 100.0, 330.0 / p.y.1, 700.0);
        let n: usize = t.iter().map(Vec::len).sum();
        assert!(n <= MAX_POINTS, "drew {n}");
        assert!(t[0].contains(&(50.0, 10_000.0)), "the outlier survives");
    }

    #[test]
    fn a_long_line_keeps_its_extremes_per_pixel_column() {
        let mut c = Chart::new("line", "x", "y");
        let mut pts: Vec<(f64, f64)> = (0..100_000).map(|i| (i as f64, 1.0)).collect();
        pts[54_321].1 = 99.0;
        pts[76_543].1 = -5.0;
        c.series.push(Series::new(
            "l",
            hex("#000000"),
            Style::Line {
                dash: Dash::Solid,
                step: false,
            },
            pts,
        ));
        let p = c.prepare();
        let t = c.thin(&p, 700.0 / 100_000.0, 1.0, 700.0);
        assert!(t[0].len() < 4 * 700 + 4, "{}", t[0].len());
        assert!(t[0].contains(&(54_321.0, 99.0)) && t[0].contains(&(76_543.0, -5.0)));
    }

    #[test]
    fn kept_series_are_never_thinned() {
        let mut c = scatter(100_000);
        let marked: Vec<(f64, f64)> = (0..3000).map(|i| (i as f64 / 30.0, 1.0)).collect();
        let mut s = Series::new(
            "marked",
            hex("#d62728"),
            Style::Points(Marker::Cross),
            marked,
        );
        s.keep_all = true;
        c.series.push(s);
        let p = c.prepare();
        let t = c.thin(&p, 7.0, 1.0, 700.0);
        assert_eq!(t[1].len(), 3000);
    }

    #[test]
    fn hostile_text_still_makes_a_well_formed_svg() {
        let mut c = scatter(10);
        c.title = "a <b> & \u{1}c".into();
        c.bands.push(Band {
            x0: 1.0,
            x1: 2.0,
            label: "kill <broker> & \u{7}".into(),
        });
        let r = c.render().unwrap();
        let doc = roxmltree::Document::parse(&r.svg).expect("well-formed");
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.iter().any(|t| t.contains("a <b> & c")), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.contains("kill <broker> &")),
            "{texts:?}"
        );
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(0.001), "0.001");
        assert_eq!(fmt_num(12.25), "12.2");
        assert_eq!(fmt_num(-0.0), "0");
    }
}
