//! The throughput chart: one group of horizontal bars per workload row, one bar per client,
//! messages/s on a log scale. Text needs a TrueType font: DejaVu Sans (fonts-dejavu-core) or
//! Liberation Sans; without one the chart is skipped (the tables are still written).

use std::path::Path;

use plotters::prelude::*;

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

const COLORS: &[RGBColor] = &[
    RGBColor(120, 120, 120), // raw
    RGBColor(214, 39, 40),   // mqttsync
    RGBColor(255, 127, 14),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{}M", r / 1e6)
    } else if r >= 1e3 {
        format!("{}k", r / 1e3)
    } else {
        format!("{r}")
    }
}

/// Draws `values[row][client]` (messages/s; None = not in that API) to `path`.
pub fn draw(
    path: &Path,
    rows: &[String],
    clients: &[&str],
    values: &[Vec<Option<f64>>],
    reps: usize,
) -> Result<(), String> {
    let font = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no TrueType font found (apt-get install fonts-dejavu-core)")?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| "bad font file")?;

    let all: Vec<f64> = values.iter().flatten().flatten().copied().collect();
    let (min, max) = all
        .iter()
        .fold((f64::MAX, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    if all.is_empty() || min <= 0.0 {
        return Err("no values".into());
    }
    let lo = 10f64.powf(min.log10().floor());
    let hi = 10f64.powf(max.log10().ceil());
    let (nr, nc) = (rows.len(), clients.len());
    let bar = 9u32;
    let height = 130 + nr as u32 * (nc as u32 * bar + 12);
    let root = BitMapBackend::new(path, (1400, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("MQTT client throughput, messages/s (log scale), median of {reps}"),
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(300)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..nr as f64)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .y_labels(0)
        .x_label_formatter(&|v| fmt_rate(*v))
        .x_label_style(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    for (ci, name) in clients.iter().enumerate() {
        let color = COLORS[ci % COLORS.len()];
        let bars = values.iter().enumerate().filter_map(move |(ri, row)| {
            let v = row.get(ci).copied().flatten()?;
            // Row 0 on top; bars of a group stacked top to bottom in client order.
            let top = (nr - ri) as f64 - 0.06 - ci as f64 * 0.88 / nc as f64;
            let bottom = top - 0.88 / nc as f64 * 0.9;
            Some(Rectangle::new([(lo, bottom), (v, top)], color.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    for (ri, label) in rows.iter().enumerate() {
        let (_, y) = chart.backend_coord(&(lo, (nr - ri) as f64 - 0.5));
        root.draw(&Text::new(
            label.clone(),
            (10, y - 7),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
