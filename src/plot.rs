//! PNG figures: line charts (with error bars and log axes), heatmaps with a colour bar, and
//! bar charts, drawn with `plotters` on a bitmap.
//!
//! Text is set in DejaVu Sans, shipped in `assets/fonts/` and compiled into the binary, so the
//! figures render the same on a machine without system fonts. Every function writes one PNG
//! and fails with an error that names the output path.
//!
//! ```no_run
//! use accord::plot::{Series, bar_chart, heatmap, line_chart};
//! use std::path::Path;
//!
//! let acc = Series::new("test accuracy", vec![(1.0, 0.80), (2.0, 0.90), (3.0, 0.93)])
//!     .with_err(vec![0.02, 0.01, 0.01]);
//! line_chart(Path::new("out/acc.png"), "Accuracy", "epoch", "accuracy", &[acc], false)?;
//! heatmap(Path::new("out/w.png"), "W", &[0.0, 1.0, -1.0, 0.5], 2, 2, "w_ij")?;
//! bar_chart(Path::new("out/e.png"), "Energy", "µJ per sample", &[("fire".into(), 1.5)])?;
//! # Ok::<(), anyhow::Error>(())
//! ```

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

use crate::output::format_value;

/// The font family name the figures use.
const FONT: &str = "sans-serif";

/// Register the bundled font once; later calls return the first result.
fn font_ready() -> Result<()> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            plotters::style::register_font(
                FONT,
                FontStyle::Normal,
                include_bytes!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/assets/fonts/DejaVuSans.ttf"
                )),
            )
            .map_err(|_| "the bundled font assets/fonts/DejaVuSans.ttf is not a valid font".into())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// One line of a [`line_chart`]: named points, optional symmetric error bars.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Half-heights of error bars, one per point (e.g. the standard deviation over seeds).
    pub err: Option<Vec<f64>>,
    /// Draw the line dashed (e.g. for a reference or chance level).
    pub dashed: bool,
    /// Draw the points alone, unjoined (a scatter).
    pub scatter: bool,
}

impl Series {
    /// A solid line without error bars.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            err: None,
            dashed: false,
            scatter: false,
        }
    }

    /// Points alone, unjoined.
    pub fn scatter(mut self) -> Self {
        self.scatter = true;
        self
    }

    /// With error bars.
    pub fn with_err(mut self, err: Vec<f64>) -> Self {
        self.err = Some(err);
        self
    }

    /// Dashed.
    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }
}

/// Where the legend of a line chart goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Legend {
    /// Upper right corner of the plot.
    #[default]
    UpperRight,
    /// Upper left.
    UpperLeft,
    /// Lower right.
    LowerRight,
    /// Lower left.
    LowerLeft,
}

/// Options of [`draw_lines`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// Logarithmic horizontal axis (non-positive x values are left out).
    pub log_x: bool,
    /// Logarithmic vertical axis (non-positive y values are left out).
    pub log_y: bool,
    /// Fixed vertical range (default: fitted to the data and error bars).
    pub y_range: Option<(f64, f64)>,
    /// Legend position.
    pub legend: Legend,
}

/// A line chart of `series` against a linear or logarithmic `x` axis.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log_x: bool,
) -> Result<()> {
    draw_lines(
        path,
        &LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x,
            ..LineChart::default()
        },
        series,
    )
}

/// Tableau-10 colours: distinguishable, colour-blind friendlier than the primaries.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// An axis tick label: `log` axes show `10^v`; values within round-off of 0 show as 0.
fn tick(v: f64, span: f64, log: bool) -> String {
    if log {
        // Two significant digits: 10^0.2 shows as 1.6, not 1.5849.
        let x = 10f64.powf(v);
        let mag = 10f64.powf(x.abs().log10().floor() - 1.0);
        format_value((x / mag).round() * mag)
    } else if v.abs() < 1e-9 * span.abs() {
        "0".into()
    } else {
        format_value(v)
    }
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing {}: {e}", path.display())
}

fn ensure_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow!(
                "creating directory {} for {}: {e}",
                dir.display(),
                path.display()
            )
        })?;
    }
    Ok(())
}

/// Draw into a temporary sibling of `path` and rename it into place: a figure is complete or
/// absent, never truncated ([`crate::output`]).
fn atomically(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    ensure_parent(path)?;
    let tmp = crate::output::temp_sibling(path);
    // Errors name the figure the user asked for, not its temporary name.
    let named = |e: anyhow::Error| {
        anyhow!(
            "{}",
            format!("{e:#}").replace(&tmp.display().to_string(), &path.display().to_string())
        )
    };
    let result = draw(&tmp).map_err(named).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| anyhow!("writing {}: {e}", path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn pad_range(lo: f64, hi: f64, frac: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * (lo.abs() + hi.abs()).max(1e-300) {
        let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
        return (lo - d, hi + d);
    }
    let d = (hi - lo) * frac;
    (lo - d, hi + d)
}

/// A line chart with the options in `opt`. Log axes are drawn by plotting `log10` of the
/// values on a linear axis labelled with the original values.
pub fn draw_lines(path: &Path, opt: &LineChart, series: &[Series]) -> Result<()> {
    atomically(path, |tmp| draw_lines_to(tmp, opt, series))
}

/// Error-bar ends `(x, low, high)` of one series, on the plotted axes.
type Bars = Vec<(f64, f64, f64)>;
/// One series' drawable points and its error-bar ends, on the plotted axes.
type Plotted = (Vec<(f64, f64)>, Bars);

/// Per series, its points (and error-bar ends) that can be drawn, on the plotted axes (`log10`
/// of a log axis); points a log axis cannot show are left out.
fn plotted(path: &Path, opt: &LineChart, series: &[Series]) -> Result<Vec<Plotted>> {
    let tx = |x: f64| if opt.log_x { x.log10() } else { x };
    let ty = |y: f64| if opt.log_y { y.log10() } else { y };
    let ok_x = |x: f64| x.is_finite() && (!opt.log_x || x > 0.0);
    let ok_y = |y: f64| y.is_finite() && (!opt.log_y || y > 0.0);
    let mut lines: Vec<Plotted> = Vec::with_capacity(series.len());
    for s in series {
        if let Some(err) = &s.err
            && err.len() != s.points.len()
        {
            return Err(anyhow!(
                "{}: series '{}' has {} points but {} error bars",
                path.display(),
                s.name,
                s.points.len(),
                err.len()
            ));
        }
        let mut pts = Vec::new();
        let mut bars = Vec::new();
        for (k, &(x, y)) in s.points.iter().enumerate() {
            if !(ok_x(x) && ok_y(y)) {
                continue;
            }
            pts.push((tx(x), ty(y)));
            if let Some(e) = s.err.as_ref().map(|e| e[k].abs())
                && e.is_finite()
                && e > 0.0
            {
                let lo = if opt.log_y && y - e <= 0.0 { y } else { y - e };
                bars.push((tx(x), ty(lo), ty(y + e)));
            }
        }
        lines.push((pts, bars));
    }
    Ok(lines)
}

/// Each axis as `[from, to, data span]`: the range padded over every drawable point and bar
/// end (the y range as given, if it is) and the span of the data alone.
#[allow(clippy::type_complexity)]
fn ranges(path: &Path, opt: &LineChart, lines: &[Plotted]) -> Result<([f64; 3], [f64; 3])> {
    let ty = |y: f64| if opt.log_y { y.log10() } else { y };
    let all_x = lines.iter().flat_map(|(p, _)| p.iter().map(|q| q.0));
    let (xmin, xmax) = all_x.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !xmin.is_finite() {
        return Err(anyhow!(
            "{}: nothing to plot (no finite points)",
            path.display()
        ));
    }
    let all_y = lines.iter().flat_map(|(p, b)| {
        p.iter()
            .map(|q| q.1)
            .chain(b.iter().flat_map(|q| [q.1, q.2]))
    });
    let (ymin, ymax) = all_y.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
        (a.min(y), b.max(y))
    });
    let (x0, x1) = pad_range(xmin, xmax, 0.04);
    let (y0, y1) = match opt.y_range {
        Some((a, b)) => (ty(a), ty(b)),
        None => pad_range(ymin, ymax, 0.06),
    };
    Ok(([x0, x1, xmax - xmin], [y0, y1, ymax - ymin]))
}

fn draw_lines_to(path: &Path, opt: &LineChart, series: &[Series]) -> Result<()> {
    font_ready()?;
    let lines = plotted(path, opt, series)?;
    let ([x0, x1, x_span], [y0, y1, y_span]) = ranges(path, opt, &lines)?;
    let root = BitMapBackend::new(path, (960, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&opt.title, (FONT, 26))
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(84)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| draw_err(path, e))?;
    let fx = |v: &f64| tick(*v, x1 - x0, opt.log_x);
    let fy = |v: &f64| tick(*v, y1 - y0, opt.log_y);
    // On a log axis spanning a few decades, one label per decade.
    let labels = |log: bool, span: f64| {
        if log && (2.0..=12.0).contains(&span) {
            span.floor() as usize + 1
        } else {
            10
        }
    };
    chart
        .configure_mesh()
        .x_labels(labels(opt.log_x, x_span))
        .y_labels(labels(opt.log_y, y_span))
        .x_desc(opt.x_label.as_str())
        .y_desc(opt.y_label.as_str())
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 19))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| draw_err(path, e))?;
    let cap = (x1 - x0) * 0.006;
    for (k, (s, (pts, bars))) in series.iter().zip(&lines).enumerate() {
        let colour = PALETTE[k % PALETTE.len()];
        let style = colour.stroke_width(3);
        if s.scatter {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 5, colour.filled())))
                .map_err(|e| draw_err(path, e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| Circle::new((x + 12, y), 5, colour.filled()));
            continue;
        }
        let anno = if s.dashed {
            chart.draw_series(DashedLineSeries::new(pts.iter().copied(), 10, 6, style))
        } else {
            chart.draw_series(LineSeries::new(pts.iter().copied(), style))
        }
        .map_err(|e| draw_err(path, e))?;
        anno.label(s.name.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3))
        });
        if !s.dashed {
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 4, colour.filled())))
                .map_err(|e| draw_err(path, e))?;
        }
        for &(x, lo, hi) in bars {
            let st = colour.stroke_width(2);
            chart
                .draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], st),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], st),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], st),
                ])
                .map_err(|e| draw_err(path, e))?;
        }
    }
    if series.len() > 1 || series.iter().any(|s| !s.name.is_empty()) {
        let pos = match opt.legend {
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
            Legend::LowerRight => SeriesLabelPosition::LowerRight,
            Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
        };
        chart
            .configure_series_labels()
            .position(pos)
            .label_font((FONT, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_err(path, e))?;
    }
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// Options of [`heatmap_with`].
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Heatmap {
    /// Title above the plot.
    pub title: String,
    /// Label of the colour bar (what a colour means, with units).
    pub scale_label: String,
    /// Label of the horizontal axis (columns).
    pub x_label: String,
    /// Label of the vertical axis (rows, row 0 at the top).
    pub y_label: String,
    /// Colour range `(low, high)`; values outside are drawn at the ends. Default: the data's
    /// range, made symmetric around 0 when the data has both signs.
    pub range: Option<(f64, f64)>,
    /// Positions (between rows/columns `p − 1` and `p`) where thin lines mark block
    /// boundaries, on both axes of a square matrix.
    pub boundaries: Vec<usize>,
}

/// Viridis (sequential), sampled at 9 points.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// Red–blue diverging (negative blue, zero white, positive red).
const DIVERGING: [(u8, u8, u8); 5] = [
    (5, 48, 97),
    (67, 147, 195),
    (247, 247, 247),
    (214, 96, 77),
    (103, 0, 31),
];

fn colour_at(map: &[(u8, u8, u8)], t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (map.len() - 1) as f64;
    let k = (pos.floor() as usize).min(map.len() - 2);
    let f = pos - k as f64;
    let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    let (a, b) = (map[k], map[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A heatmap of a row-major `rows × cols` matrix with a colour bar. Sequential colours
/// (viridis) for data of one sign, red–blue centred on 0 for data with both signs.
pub fn heatmap(
    path: &Path,
    title: &str,
    matrix: &[f64],
    rows: usize,
    cols: usize,
    scale_label: &str,
) -> Result<()> {
    heatmap_with(
        path,
        &Heatmap {
            title: title.into(),
            scale_label: scale_label.into(),
            x_label: "column".into(),
            y_label: "row".into(),
            ..Heatmap::default()
        },
        matrix,
        rows,
        cols,
    )
}

/// A heatmap with the options in `opt`.
pub fn heatmap_with(
    path: &Path,
    opt: &Heatmap,
    matrix: &[f64],
    rows: usize,
    cols: usize,
) -> Result<()> {
    atomically(path, |tmp| heatmap_to(tmp, opt, matrix, rows, cols))
}

fn heatmap_to(path: &Path, opt: &Heatmap, matrix: &[f64], rows: usize, cols: usize) -> Result<()> {
    font_ready()?;
    if rows == 0 || cols == 0 || rows.checked_mul(cols) != Some(matrix.len()) {
        return Err(anyhow!(
            "{}: a {rows}×{cols} heatmap needs {} values, got {}",
            path.display(),
            rows.saturating_mul(cols),
            matrix.len()
        ));
    }
    let finite = matrix.iter().copied().filter(|v| v.is_finite());
    let (dmin, dmax) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (dmin, dmax) = if dmin.is_finite() {
        (dmin, dmax)
    } else {
        (0.0, 1.0)
    };
    let (lo, hi) = match opt.range {
        Some(r) => r,
        None if dmin < 0.0 && dmax > 0.0 => {
            let m = dmin.abs().max(dmax);
            (-m, m)
        }
        None => (dmin, dmax),
    };
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        pad_range(lo, hi, 0.0)
    };
    let map: &[(u8, u8, u8)] = if lo < 0.0 && hi > 0.0 {
        &DIVERGING
    } else {
        &VIRIDIS
    };
    let colour = |v: f64| colour_at(map, (v - lo) / (hi - lo));

    let root = BitMapBackend::new(path, (900, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let titled = root
        .titled(&opt.title, (FONT, 24))
        .map_err(|e| draw_err(path, e))?;
    let (main, bar) = titled.split_horizontally(750);
    draw_matrix(path, &main, opt, matrix, rows, cols, &colour)?;
    draw_colour_bar(path, &bar, opt, lo, hi, &colour)?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

fn draw_matrix(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    opt: &Heatmap,
    matrix: &[f64],
    rows: usize,
    cols: usize,
    colour: &dyn Fn(f64) -> RGBColor,
) -> Result<()> {
    let (r, c) = (rows as f64, cols as f64);
    // y runs from `rows` at the bottom to 0 at the top: row 0 is drawn first, at the top.
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..c, r..0.0)
        .map_err(|e| draw_err(path, e))?;
    // Label whole row/column numbers only.
    let int_fmt = |v: &f64| {
        if (v - v.round()).abs() < 1e-9 {
            format!("{}", v.round() as i64)
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(cols.min(10) + 1)
        .y_labels(rows.min(10) + 1)
        .x_desc(opt.x_label.as_str())
        .y_desc(opt.y_label.as_str())
        .x_label_formatter(&int_fmt)
        .y_label_formatter(&int_fmt)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 18))
        .draw()
        .map_err(|e| draw_err(path, e))?;
    chart
        .draw_series((0..rows).flat_map(|i| {
            (0..cols).map(move |j| {
                let v = matrix[i * cols + j];
                let fill = if v.is_finite() {
                    colour(v)
                } else {
                    RGBColor(255, 0, 255)
                };
                Rectangle::new(
                    [(j as f64, i as f64), (j as f64 + 1.0, i as f64 + 1.0)],
                    fill.filled(),
                )
            })
        }))
        .map_err(|e| draw_err(path, e))?;
    let line = BLACK.mix(0.7).stroke_width(1);
    for &p in &opt.boundaries {
        let p = p as f64;
        chart
            .draw_series([
                PathElement::new(vec![(p, 0.0), (p, r)], line),
                PathElement::new(vec![(0.0, p), (c, p)], line),
            ])
            .map_err(|e| draw_err(path, e))?;
    }
    Ok(())
}

fn draw_colour_bar(
    path: &Path,
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    opt: &Heatmap,
    lo: f64,
    hi: f64,
    colour: &dyn Fn(f64) -> RGBColor,
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .margin_top(12)
        .margin_bottom(62)
        .margin_right(8)
        .y_label_area_size(0)
        .right_y_label_area_size(96)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|e| draw_err(path, e))?;
    let steps = 256;
    chart
        .draw_series((0..steps).map(|k| {
            let a = lo + (hi - lo) * k as f64 / steps as f64;
            let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
            Rectangle::new([(0.0, a), (1.0, b)], colour(0.5 * (a + b)).filled())
        }))
        .map_err(|e| draw_err(path, e))?;
    let fy = |v: &f64| tick(*v, hi - lo, false);
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(opt.scale_label.as_str())
        .y_label_formatter(&fy)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// The frame of a bar chart on `root`: the title, `n` bar slots on a hidden horizontal axis,
/// the vertical axis over `y` with its label.
fn bar_frame<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    path: &Path,
    title: &str,
    y_label: &str,
    label_area: u32,
    n: usize,
    (y0, y1): (f64, f64),
) -> Result<
    ChartContext<
        'a,
        BitMapBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 26))
        .margin(16)
        .x_label_area_size(label_area)
        .y_label_area_size(84)
        .build_cartesian_2d(0.0..n as f64, y0..y1)
        .map_err(|e| draw_err(path, e))?;
    let fy = |v: &f64| tick(*v, y1 - y0, false);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_x_axis()
        .y_desc(y_label)
        .y_label_formatter(&fy)
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 19))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| draw_err(path, e))?;
    Ok(chart)
}

/// The bars' names under a plot whose pixel range is `(x, y)`, one per slot, upright when
/// `sideways`.
fn bar_names(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    path: &Path,
    (plot_x, plot_y): (std::ops::Range<i32>, std::ops::Range<i32>),
    names: &[&str],
    sideways: bool,
) -> Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    let step = (plot_x.end - plot_x.start) as f64 / names.len().max(1) as f64;
    let style = if sideways {
        TextStyle::from((FONT, 16).into_font().transform(FontTransform::Rotate90))
            .pos(Pos::new(HPos::Left, VPos::Center))
    } else {
        TextStyle::from((FONT, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Top))
    };
    for (k, name) in names.iter().enumerate() {
        let cx = plot_x.start + (step * (k as f64 + 0.5)) as i32;
        root.draw(&Text::new(*name, (cx, plot_y.end + 8), style.clone()))
            .map_err(|e| draw_err(path, e))?;
    }
    Ok(())
}

/// A vertical bar chart, one bar per `(name, value)`, with the value printed on each bar.
/// Names are written under the bars, turned sideways when there are many.
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[(String, f64)]) -> Result<()> {
    atomically(path, |tmp| bar_chart_to(tmp, title, y_label, bars))
}

fn bar_chart_to(path: &Path, title: &str, y_label: &str, bars: &[(String, f64)]) -> Result<()> {
    font_ready()?;
    if bars.is_empty() {
        return Err(anyhow!(
            "{}: a bar chart needs at least one bar",
            path.display()
        ));
    }
    if let Some((name, v)) = bars.iter().find(|(_, v)| !v.is_finite()) {
        return Err(anyhow!(
            "{}: bar '{name}' has the non-finite value {v}",
            path.display()
        ));
    }
    let vmin = bars.iter().map(|b| b.1).fold(0.0, f64::min);
    let vmax = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let (y0, y1) = if vmax > vmin {
        let d = 0.1 * (vmax - vmin);
        (
            if vmin < 0.0 { vmin - d } else { 0.0 },
            if vmax > 0.0 { vmax + d } else { 0.0 },
        )
    } else {
        (0.0, 1.0)
    };
    let n = bars.len();
    let sideways = n > 6 || bars.iter().any(|b| b.0.chars().count() > 14);
    let longest = bars.iter().map(|b| b.0.chars().count()).max().unwrap_or(1);
    let label_area = if sideways {
        (longest as u32 * 9 + 24).clamp(60, 260)
    } else {
        56
    };
    let width = (220 + 70 * n as u32).clamp(640, 1600);
    let root = BitMapBackend::new(path, (width, 600 + label_area)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let mut chart = bar_frame(&root, path, title, y_label, label_area, n, (y0, y1))?;
    chart
        .draw_series(bars.iter().enumerate().map(|(k, (_, v))| {
            let c = PALETTE[k % PALETTE.len()];
            Rectangle::new([(k as f64 + 0.15, 0.0), (k as f64 + 0.85, *v)], c.filled())
        }))
        .map_err(|e| draw_err(path, e))?;
    let value_style =
        TextStyle::from((FONT, 15).into_font()).pos(plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Center,
            plotters::style::text_anchor::VPos::Bottom,
        ));
    chart
        .draw_series(bars.iter().enumerate().map(|(k, (_, v))| {
            let y = if *v >= 0.0 { *v } else { 0.0 };
            Text::new(format_value(*v), (k as f64 + 0.5, y), value_style.clone())
        }))
        .map_err(|e| draw_err(path, e))?;
    let names: Vec<&str> = bars.iter().map(|b| b.0.as_str()).collect();
    bar_names(
        &root,
        path,
        chart.plotting_area().get_pixel_range(),
        &names,
        sideways,
    )?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// Stacked bars: one bar per label, one stack `(name, value per bar)` per layer, bottom first.
pub fn stacked_bars(
    path: &Path,
    title: &str,
    y_label: &str,
    labels: &[String],
    stacks: &[(String, Vec<f64>)],
) -> Result<()> {
    atomically(path, |tmp| {
        stacked_bars_to(tmp, title, y_label, labels, stacks)
    })
}

fn stacked_bars_to(
    path: &Path,
    title: &str,
    y_label: &str,
    labels: &[String],
    stacks: &[(String, Vec<f64>)],
) -> Result<()> {
    font_ready()?;
    let n = labels.len();
    if n == 0 || stacks.iter().any(|(_, v)| v.len() != n) {
        return Err(anyhow!(
            "{}: stacked bars need at least one bar and one value per bar in every stack",
            path.display()
        ));
    }
    if stacks
        .iter()
        .flat_map(|(_, v)| v)
        .any(|v| !v.is_finite() || *v < 0.0)
    {
        return Err(anyhow!(
            "{}: stacked bars take finite values >= 0",
            path.display()
        ));
    }
    let top = (0..n)
        .map(|k| stacks.iter().map(|(_, v)| v[k]).sum::<f64>())
        .fold(0.0, f64::max);
    let y1 = if top > 0.0 { top * 1.1 } else { 1.0 };
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(1);
    let label_area = (longest as u32 * 9 + 24).clamp(60, 260);
    let width = (220 + 40 * n as u32).clamp(640, 2400);
    let root = BitMapBackend::new(path, (width, 600 + label_area)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let mut chart = bar_frame(&root, path, title, y_label, label_area, n, (0.0, y1))?;
    let names: Vec<&str> = labels.iter().map(String::as_str).collect();
    bar_names(
        &root,
        path,
        chart.plotting_area().get_pixel_range(),
        &names,
        true,
    )?;
    let mut base = vec![0.0; n];
    for (s, (name, values)) in stacks.iter().enumerate() {
        let c = PALETTE[s % PALETTE.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = values
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let r = Rectangle::new(
                    [(k as f64 + 0.15, base[k]), (k as f64 + 0.85, base[k] + v)],
                    c.filled(),
                );
                base[k] += v;
                r
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| draw_err(path, e))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], c.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_err(path, e))?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir()
            .join(format!("accord-plot-{}", std::process::id()))
            .join(name)
    }

    fn is_png(p: &Path) -> bool {
        std::fs::read(p).is_ok_and(|b| b.len() > 1000 && b.starts_with(b"\x89PNG"))
    }

    #[test]
    fn draws_all_three_kinds() {
        let p = tmp("lines.png");
        let s = vec![
            Series::new("a", vec![(1e-3, 0.1), (1e-2, 0.3), (1e-1, 0.2)]).with_err(vec![0.01; 3]),
            Series::new("chance", vec![(1e-3, 0.15), (1e-1, 0.15)]).dashed(),
        ];
        line_chart(&p, "t", "x", "y", &s, true).unwrap();
        assert!(is_png(&p));
        let p = tmp("heat.png");
        heatmap(&p, "h", &[1.0, -2.0, 0.5, 0.0], 2, 2, "w").unwrap();
        assert!(is_png(&p));
        let p = tmp("bars.png");
        bar_chart(&p, "b", "v", &[("x".into(), 1.0), ("y".into(), -0.5)]).unwrap();
        assert!(is_png(&p));
    }

    #[test]
    fn bad_input_names_the_path() {
        let p = tmp("bad.png");
        let e = heatmap(&p, "h", &[1.0; 3], 2, 2, "w")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.png") && e.contains("2×2"), "{e}");
        let e = bar_chart(&p, "b", "v", &[]).unwrap_err().to_string();
        assert!(e.contains("bad.png"), "{e}");
        let s = [Series::new("a", vec![(1.0, 1.0)]).with_err(vec![])];
        let e = line_chart(&p, "t", "x", "y", &s, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.png") && e.contains("error bars"), "{e}");
        let s = [Series::new("a", vec![(0.0, 1.0)])];
        let e = line_chart(&p, "t", "x", "y", &s, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nothing to plot"), "{e}");
    }

    #[test]
    fn stacked_bars_draw_and_refuse_ragged_or_negative_stacks() {
        let p = tmp("stacked.png");
        let labels = vec!["a".to_string(), "b".to_string()];
        stacked_bars(
            &p,
            "t",
            "nJ",
            &labels,
            &[("x".into(), vec![1.0, 2.0]), ("y".into(), vec![0.5, 0.0])],
        )
        .unwrap();
        assert!(std::fs::read(&p).unwrap().starts_with(b"\x89PNG"));
        for stacks in [
            vec![("x".to_string(), vec![1.0])],
            vec![("x".to_string(), vec![1.0, -1.0])],
            vec![("x".to_string(), vec![1.0, f64::NAN])],
        ] {
            assert!(stacked_bars(&p, "t", "nJ", &labels, &stacks).is_err());
        }
    }
}
