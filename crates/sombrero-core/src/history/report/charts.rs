//! The four charts of the report, drawn with the primitives in [`super::svg`].
//!
//! Why separate from the page: each chart maps one runbook question to pixels, and the
//! scaling rules (round axis maxima, one slot per run, one row per phase) are easier to
//! check in isolation than inside the page template.

use super::svg::{self, Chart, FAILURE_COLOUR, PALETTE, SUCCESS_COLOUR, nice_maximum};
use super::{Metrics, ReportData};
use crate::history::clock;

/// One bar of a bar row: value, colour, tooltip.
pub(super) type Bar<'colour> = (f64, &'colour str, String);
/// A labelled row of bars.
pub(super) type BarRow<'colour> = (String, Vec<Bar<'colour>>);

/// The colour of each phase: by order of first appearance in the metrics.
pub(super) fn phase_colour(metrics: &Metrics, name: &str) -> &'static str {
    let index = metrics
        .phases
        .iter()
        .position(|phase| phase.name == name)
        .unwrap_or(PALETTE.len() - 1);
    PALETTE[index % PALETTE.len()]
}

#[expect(
    clippy::cast_precision_loss,
    reason = "chart coordinates need no more than f64's 52 bits"
)]
pub(super) fn float(value: i64) -> f64 {
    value as f64
}

#[expect(clippy::cast_precision_loss, reason = "chart counts are small")]
pub(super) fn float_count(value: u64) -> f64 {
    value as f64
}

pub(super) fn seconds_label(value: f64) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "axis labels are rounded on purpose"
    )]
    let ms = (value * 1000.0).round() as i64;
    if ms == 0 {
        return "0".to_owned();
    }
    if ms >= 60_000 && ms % 60_000 == 0 && ms < 3_600_000 {
        // Axis ticks are whole minutes: `6m` reads better than `6m 0s`.
        return format!("{}m", ms / 60_000);
    }
    clock::duration(ms)
}

/// Duration per run over time, each bar stacked by phase.
pub(super) fn duration_chart(data: &ReportData) -> String {
    let mut chart = Chart::new(1000.0, 340.0);
    let (plot_width, plot_height) = chart.plot_size();
    let longest = data
        .runs
        .iter()
        .map(|bar| bar.phases.iter().map(|(_, ms)| *ms).sum::<i64>())
        .max()
        .unwrap_or(0);
    let (maximum, ticks) = svg::duration_axis(float(longest) / 1000.0);
    chart.axes(maximum, ticks, seconds_label);
    let slot = plot_width / float(i64::try_from(data.runs.len().max(1)).unwrap_or(1));
    for (index, bar) in data.runs.iter().enumerate() {
        let x = svg::LEFT + slot * float(i64::try_from(index).unwrap_or(0)) + slot * 0.15;
        let mut y = svg::TOP + plot_height;
        for (name, ms) in &bar.phases {
            let height = plot_height * float(*ms) / 1000.0 / maximum;
            y -= height;
            let title = format!("{} {}: {}", bar.id, name, clock::duration(*ms));
            chart.rect(
                x,
                y,
                slot * 0.7,
                height,
                phase_colour(&data.metrics, name),
                &title,
            );
        }
        if bar.status != "success" {
            let marker_y = y - 10.0;
            chart.circle(
                (x + slot * 0.35, marker_y),
                FAILURE_COLOUR,
                &format!("{}: {}", bar.id, bar.status),
            );
        }
    }
    if let (Some(first), Some(last)) = (data.runs.first(), data.runs.last()) {
        let base = svg::TOP + plot_height + 20.0;
        chart.text((svg::LEFT, base), "start", &clock::human(first.started_ms));
        chart.text(
            (svg::LEFT + plot_width, base),
            "end",
            &clock::human(last.started_ms),
        );
    }
    chart.finish("Duration per run, stacked by phase")
}

/// Success rate per day.
pub(super) fn success_chart(data: &ReportData) -> String {
    let mut chart = Chart::new(1000.0, 260.0);
    let (plot_width, plot_height) = chart.plot_size();
    chart.axes(100.0, 4, |value| format!("{value:.0}%"));
    let count = data.days.len();
    let step = if count > 1 {
        plot_width / float(i64::try_from(count - 1).unwrap_or(1))
    } else {
        0.0
    };
    let mut points = Vec::new();
    for (index, day) in data.days.iter().enumerate() {
        let rate = float_count(day.succeeded) / float_count(day.finished.max(1));
        let x = svg::LEFT
            + if count > 1 {
                step * float(i64::try_from(index).unwrap_or(0))
            } else {
                plot_width / 2.0
            };
        let y = svg::TOP + plot_height - plot_height * rate;
        points.push((x, y));
        let title = format!("{}: {}/{} succeeded", day.day, day.succeeded, day.finished);
        chart.circle((x, y), SUCCESS_COLOUR, &title);
    }
    if points.len() > 1 {
        chart.polyline(&points, SUCCESS_COLOUR);
    }
    if let (Some(first), Some(last)) = (data.days.first(), data.days.last()) {
        let base = svg::TOP + plot_height + 20.0;
        chart.text((svg::LEFT, base), "start", &first.day);
        chart.text((svg::LEFT + plot_width, base), "end", &last.day);
    }
    chart.finish("Success rate per day")
}

/// Horizontal bars: one row per label, one bar per series.
pub(super) fn bar_rows(title: &str, rows: &[BarRow<'_>], unit: impl Fn(f64) -> String) -> String {
    let row_height = 34.0;
    let height =
        svg::TOP + svg::BOTTOM + row_height * float(i64::try_from(rows.len().max(1)).unwrap_or(1));
    let mut chart = Chart::new(1000.0, height);
    let left = 160.0;
    let plot_width = chart.width - left - svg::RIGHT - 90.0;
    let largest = rows
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|(value, ..)| *value))
        .fold(0.0, f64::max);
    let maximum = nice_maximum(largest);
    for (index, (label, bars)) in rows.iter().enumerate() {
        let top = svg::TOP + row_height * float(i64::try_from(index).unwrap_or(0));
        chart.text((left - 8.0, top + row_height / 2.0 + 4.0), "end", label);
        let thickness = (row_height - 8.0) / float(i64::try_from(bars.len().max(1)).unwrap_or(1));
        for (series, (value, colour, tooltip)) in bars.iter().enumerate() {
            let y = top + 4.0 + thickness * float(i64::try_from(series).unwrap_or(0));
            let width = plot_width * value / maximum;
            chart.rect(left, y, width, thickness - 2.0, colour, tooltip);
            chart.text(
                (left + width + 6.0, y + thickness / 2.0 + 3.0),
                "start",
                &unit(*value),
            );
        }
    }
    chart.line((left, svg::TOP), (left, height - svg::BOTTOM), "#555", 1.5);
    chart.finish(title)
}
