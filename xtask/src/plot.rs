//! SVG line charts written next to the benchmark tables (plotters, SVG backend, no font
//! rendering: the text is SVG `<text>` for the viewer to draw).

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

/// One named line of points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// A moment marked on a chart: a dashed vertical line at `x`, labelled at its top.
pub struct Mark {
    pub x: f64,
    pub label: String,
}

/// A line chart of `series` with linear axes from 0 to the largest value.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    line_chart_marked(
        path,
        title,
        x_label,
        y_label,
        series,
        &[],
        true,
        SeriesLabelPosition::UpperLeft,
    )
}

/// [`line_chart`] with moments marked (their labels along the top), with or without a dot at
/// each point (a series sampled every 0.1 s over minutes reads better as a bare line), and the
/// legend where the lines leave room.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per chart kind; a builder would be longer"
)]
pub fn line_chart_marked(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    marks: &[Mark],
    dots: bool,
    legend_at: SeriesLabelPosition,
) -> Result<()> {
    let max = |axis: fn(&(f64, f64)) -> f64| {
        series
            .iter()
            .flat_map(|line| line.points.iter().map(axis))
            .filter(|value| value.is_finite())
            .fold(0.0_f64, f64::max)
            * 1.05
    };
    let marks_max = marks
        .iter()
        .map(|mark| mark.x)
        .filter(|x| x.is_finite())
        .fold(0.0_f64, f64::max)
        * 1.05;
    let (x_max, y_max) = (
        max(|point| point.0).max(marks_max).max(1e-3),
        max(|point| point.1).max(1e-3),
    );
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| anyhow!("{error:?}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|error| anyhow!("{error:?}"))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|error| anyhow!("{error:?}"))?;
    for (index, line) in series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<(f64, f64)> = line
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(|error| anyhow!("{error:?}"))?
            .label(line.name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        if !dots {
            continue;
        }
        chart
            .draw_series(PointSeries::of_element(
                points,
                3,
                colour,
                &|point, size, style| {
                    EmptyElement::at(point) + Circle::new((0, 0), size, style.filled())
                },
            ))
            .map_err(|error| anyhow!("{error:?}"))?;
    }
    for mark in marks.iter().filter(|mark| mark.x.is_finite()) {
        // Dashes: short segments along the full height.
        let steps = 40;
        let dashes = (0..steps).step_by(2).map(|step| {
            let from = y_max * f64::from(step) / f64::from(steps);
            let to = y_max * f64::from(step + 1) / f64::from(steps);
            PathElement::new(vec![(mark.x, from), (mark.x, to)], BLACK.mix(0.6))
        });
        chart
            .draw_series(dashes)
            .map_err(|error| anyhow!("{error:?}"))?;
        chart
            .draw_series(std::iter::once(Text::new(
                mark.label.clone(),
                (mark.x, y_max * 0.97),
                ("sans-serif", 13),
            )))
            .map_err(|error| anyhow!("{error:?}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(legend_at)
        .draw()
        .map_err(|error| anyhow!("{error:?}"))?;
    root.present().map_err(|error| anyhow!("{error:?}"))?;
    Ok(())
}
