//! The plot of recall against clip length, a line per distortion, as SVG.
//! plotters' SVG backend writes text as `<text>` elements, so no font is
//! loaded (the crate is built without its font features).

use std::path::Path;

use plotters::prelude::*;

use super::score::Score;

const WIDTH: u32 = 800;
const HEIGHT: u32 = 500;

/// Writes `score` as an SVG plot to `path`.
pub fn write_svg(score: &Score, title: &str, path: &Path) -> Result<(), String> {
    let svg = render_svg(score, title)?;
    std::fs::write(path, svg).map_err(|e| format!("{}: {e}", path.display()))
}

/// The SVG document.
pub fn render_svg(score: &Score, title: &str) -> Result<String, String> {
    let lengths: Vec<f64> = score
        .lengths
        .iter()
        .map(|l| l.parse().unwrap_or(0.0))
        .collect();
    let lo = lengths.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = lengths.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 1.0, lo + 1.0)
    } else {
        (0.0, 1.0)
    };
    // The y axis starts at the ten below the lowest recall (less 5), so that
    // differences between high recalls stay visible; room above 100 % keeps
    // a line at the top visible.
    let lowest = score
        .distortions
        .iter()
        .flat_map(|d| score.series(d))
        .map(|(_, r)| r)
        .fold(100.0, f64::min);
    let bottom = (((lowest - 5.0) / 10.0).floor() * 10.0).max(0.0);
    let (x_range, y_range) = (
        lo - 0.02 * (hi - lo)..hi + 0.02 * (hi - lo),
        bottom - 0.02 * (100.0 - bottom)..100.0 + 0.02 * (100.0 - bottom),
    );
    let err = |e: &dyn std::fmt::Display| format!("plot: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .x_desc("clip length (s)")
            .y_desc("top-1 recall (%)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, d) in score.distortions.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points = score.series(d);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(d.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
