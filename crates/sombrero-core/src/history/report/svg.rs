//! Tiny inline-SVG chart primitives for the HTML report.
//!
//! Why hand-written SVG instead of a charting library: the report must be one file that
//! opens offline (no script or font fetched from anywhere) and renders the same in any
//! browser; four simple chart types do not justify a JavaScript dependency. Everything
//! here returns markup strings; values are escaped.

use std::fmt::Write as _;

/// The chart colours, one per phase in order of first appearance (Okabe-Ito-like, readable
/// for colour-blind people); the Chromium test looks for them in the screenshot.
pub const PALETTE: &[&str] = &[
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#7f7f7f", "#f0e442",
];

/// The success-line colour and the failure colour.
pub const SUCCESS_COLOUR: &str = "#009e73";
pub const FAILURE_COLOUR: &str = "#d55e00";

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(character),
        }
    }
    escaped
}

/// A chart being drawn: a fixed coordinate system scaled to the page width.
#[derive(Debug)]
pub struct Chart {
    pub width: f64,
    pub height: f64,
    body: String,
}

/// The plotting area inside the axes.
pub const LEFT: f64 = 70.0;
pub const RIGHT: f64 = 20.0;
pub const TOP: f64 = 20.0;
pub const BOTTOM: f64 = 50.0;

impl Chart {
    pub fn new(width: f64, height: f64) -> Self {
        Self {
            width,
            height,
            body: String::new(),
        }
    }

    /// Width and height of the plotting area.
    pub fn plot_size(&self) -> (f64, f64) {
        (self.width - LEFT - RIGHT, self.height - TOP - BOTTOM)
    }

    pub fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str, title: &str) {
        let _ = write!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}"><title>{}</title></rect>"#,
            width.max(0.0),
            height.max(0.0),
            escape(title)
        );
    }

    pub fn line(&mut self, from: (f64, f64), to: (f64, f64), stroke: &str, width: f64) {
        let _ = write!(
            self.body,
            r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{stroke}" stroke-width="{width}"/>"#,
            from.0, from.1, to.0, to.1
        );
    }

    pub fn polyline(&mut self, points: &[(f64, f64)], stroke: &str) {
        let points: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="3"/>"#,
            points.join(" ")
        );
    }

    pub fn circle(&mut self, center: (f64, f64), fill: &str, title: &str) {
        let _ = write!(
            self.body,
            r#"<circle cx="{:.1}" cy="{:.1}" r="5" fill="{fill}"><title>{}</title></circle>"#,
            center.0,
            center.1,
            escape(title)
        );
    }

    /// Text; `anchor` is `start`, `middle` or `end`.
    pub fn text(&mut self, position: (f64, f64), anchor: &str, text: &str) {
        let _ = write!(
            self.body,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" font-size="12" fill="#333">{}</text>"##,
            position.0,
            position.1,
            escape(text)
        );
    }

    /// The axes and `ticks` horizontal grid lines labelled by `label(value)` up to `maximum`.
    pub fn axes(&mut self, maximum: f64, ticks: u32, label: impl Fn(f64) -> String) {
        let (plot_width, plot_height) = self.plot_size();
        for tick in 0..=ticks {
            let value = maximum * f64::from(tick) / f64::from(ticks);
            let y = TOP + plot_height - plot_height * f64::from(tick) / f64::from(ticks);
            self.line((LEFT, y), (LEFT + plot_width, y), "#e4e4e4", 1.0);
            self.text((LEFT - 8.0, y + 4.0), "end", &label(value));
        }
        self.line(
            (LEFT, TOP + plot_height),
            (LEFT + plot_width, TOP + plot_height),
            "#555",
            1.5,
        );
        self.line((LEFT, TOP), (LEFT, TOP + plot_height), "#555", 1.5);
    }

    /// The finished `<svg>` element with an accessible title.
    pub fn finish(self, title: &str) -> String {
        format!(
            r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{t}"><title>{t}</title>{body}</svg>"#,
            w = self.width,
            h = self.height,
            t = escape(title),
            body = self.body
        )
    }
}

/// A legend: coloured squares with names, as HTML.
pub fn legend(entries: &[(String, &str)]) -> String {
    let mut html = String::from(r#"<div class="legend">"#);
    for (name, colour) in entries {
        let _ = write!(
            html,
            r#"<span><i style="background:{colour}"></i>{}</span>"#,
            escape(name)
        );
    }
    html.push_str("</div>");
    html
}

/// A round upper bound for an axis: 1, 2 or 5 times a power of ten, at least `value`.
pub fn nice_maximum(value: f64) -> f64 {
    if value <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

/// An axis for durations in seconds: a tick step people read at a glance (1 s, 5 s, 15 s,
/// 1 min, 5 min, ...) and at most six ticks; returns (maximum, tick count).
pub fn duration_axis(seconds: f64) -> (f64, u32) {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        21600.0, 86400.0,
    ];
    for step in STEPS {
        let ticks = (seconds / step).ceil().max(1.0);
        if ticks <= 6.0 {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "ticks is between 1 and 6"
            )]
            return (ticks * step, ticks as u32);
        }
    }
    let maximum = nice_maximum(seconds);
    (maximum, 5)
}

#[cfg(test)]
mod tests {
    use super::{duration_axis, escape, nice_maximum};

    #[test]
    fn duration_axes_use_round_steps() {
        assert_eq!(duration_axis(306.0), (360.0, 6));
        assert_eq!(duration_axis(42.0), (50.0, 5));
        assert_eq!(duration_axis(0.0), (1.0, 1));
    }

    #[test]
    fn markup_is_escaped_and_axes_are_round() {
        assert_eq!(escape(r#"<b a="1">&"#), "&lt;b a=&quot;1&quot;&gt;&amp;");
        assert!((nice_maximum(263.0) - 500.0).abs() < f64::EPSILON);
        assert!((nice_maximum(0.8) - 1.0).abs() < f64::EPSILON);
        assert!((nice_maximum(0.0) - 1.0).abs() < f64::EPSILON);
    }
}
