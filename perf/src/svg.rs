//! Hand-written SVG bar charts: grouped bars (one group per category, one bar per series)
//! with min-max whiskers over repetitions. Text is left to the viewer's sans-serif font, so
//! nothing here needs fonts installed.

use std::fmt::Write as _;

/// One bar: the median and the range over repetitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

/// A grouped bar chart.
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub categories: Vec<String>,
    /// (series name, one bar per category or none).
    pub series: Vec<(String, Vec<Option<Bar>>)>,
}

const PALETTE: [&str; 6] = [
    "#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#af7aa1",
];
const W: f64 = 760.0;
const H: f64 = 380.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 78.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The colour of a series: fixed for the known providers, so that a provider keeps its colour
/// from chart to chart.
fn color(name: &str, index: usize) -> &'static str {
    match name {
        "standalone" => "#9c9c9c",
        "galera" => PALETTE[0],
        "trireme" => PALETTE[1],
        _ => PALETTE[2 + index % (PALETTE.len() - 2)],
    }
}

/// A compact label for a value.
pub fn compact(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A "nice" axis top and tick step (1, 2 or 5 times a power of ten) for values up to `max`.
pub fn nice_axis(max: f64) -> (f64, f64) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 0.2);
    }
    let raw = max / 5.0;
    let pow = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * pow);
    ((max / step).ceil() * step, step)
}

impl BarChart {
    /// The chart as a standalone SVG document.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r##"<rect width="{W}" height="{H}" fill="#ffffff"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            W / 2.0,
            esc(&self.title)
        );
        let data_max = self
            .series
            .iter()
            .flat_map(|(_, bars)| bars.iter().flatten())
            .map(|b| b.max.max(b.value))
            .fold(0.0, f64::max);
        let (top, step) = nice_axis(data_max * 1.08);
        let plot_w = W - LEFT - RIGHT;
        let plot_h = H - TOP - BOTTOM;
        let y = |v: f64| TOP + plot_h * (1.0 - (v / top).clamp(0.0, 1.0));
        // Grid and y ticks.
        let mut t = 0.0;
        while t <= top + step / 2.0 {
            let yy = y(t);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                compact(t)
            );
            t += step;
        }
        let _ = writeln!(
            s,
            r#"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            esc(&self.y_label)
        );
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#333333"/>"##,
            TOP + plot_h,
            W - RIGHT,
            TOP + plot_h
        );
        let ncat = self.categories.len().max(1) as f64;
        let nser = self.series.len().max(1) as f64;
        let group_w = plot_w / ncat;
        let bar_w = (group_w * 0.8 / nser).min(60.0);
        for (ci, cat) in self.categories.iter().enumerate() {
            let gx = LEFT + group_w * ci as f64;
            let first = gx + (group_w - bar_w * nser) / 2.0;
            for (si, (name, bars)) in self.series.iter().enumerate() {
                let Some(b) = bars.get(ci).copied().flatten() else {
                    continue;
                };
                let x = first + bar_w * si as f64;
                let color = color(name, si);
                let _ = writeln!(
                    s,
                    r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"/>"#,
                    y(b.value),
                    bar_w - 2.0,
                    (TOP + plot_h - y(b.value)).max(0.0)
                );
                if b.max > b.min {
                    let cx = x + (bar_w - 2.0) / 2.0;
                    let _ = writeln!(
                        s,
                        r##"<path d="M{cx:.1},{:.1}V{:.1}M{:.1},{:.1}H{:.1}M{:.1},{:.1}H{:.1}" stroke="#222222" fill="none"/>"##,
                        y(b.min),
                        y(b.max),
                        cx - 4.0,
                        y(b.min),
                        cx + 4.0,
                        cx - 4.0,
                        y(b.max),
                        cx + 4.0
                    );
                }
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                    x + (bar_w - 2.0) / 2.0,
                    y(b.max.max(b.value)) - 4.0,
                    compact(b.value)
                );
            }
            // Category label, wrapped on spaces into at most three lines.
            let words: Vec<&str> = cat.split(' ').collect();
            let lines: Vec<String> = if words.len() <= 3 {
                words.iter().map(|w| w.to_string()).collect()
            } else {
                vec![
                    words[0].to_string(),
                    words[1].to_string(),
                    words[2..].join(" "),
                ]
            };
            for (li, line) in lines.iter().enumerate() {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    gx + group_w / 2.0,
                    TOP + plot_h + 16.0 + 14.0 * li as f64,
                    esc(line)
                );
            }
        }
        // Legend.
        for (si, (name, _)) in self.series.iter().enumerate() {
            let lx = W - RIGHT - 130.0;
            let ly = TOP - 14.0 + 16.0 * si as f64;
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                ly - 10.0,
                color(name, si),
                lx + 17.0,
                ly,
                esc(name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_numbers_above_the_data() {
        assert_eq!(nice_axis(9.3), (10.0, 2.0));
        assert_eq!(nice_axis(1234.0), (1500.0, 500.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.2));
        let (top, step) = nice_axis(57_000.0);
        assert!(top >= 57_000.0 && step == 20_000.0);
    }

    #[test]
    fn compact_labels() {
        assert_eq!(compact(1_234_567.0), "1.2M");
        assert_eq!(compact(12_345.0), "12k");
        assert_eq!(compact(812.4), "812");
        assert_eq!(compact(12.34), "12.3");
        assert_eq!(compact(0.5), "0.50");
    }

    #[test]
    fn chart_has_a_bar_per_value_whiskers_for_ranges_and_escaped_text() {
        let c = BarChart {
            title: "TPS <a&b>".into(),
            y_label: "transactions/s".into(),
            categories: vec!["single-writer 8t".into(), "multi-primary 8t".into()],
            series: vec![
                (
                    "galera".into(),
                    vec![
                        Some(Bar {
                            value: 100.0,
                            min: 90.0,
                            max: 110.0,
                        }),
                        Some(Bar {
                            value: 80.0,
                            min: 80.0,
                            max: 80.0,
                        }),
                    ],
                ),
                (
                    "trireme".into(),
                    vec![
                        Some(Bar {
                            value: 150.0,
                            min: 150.0,
                            max: 150.0,
                        }),
                        None,
                    ],
                ),
            ],
        };
        let svg = c.render();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // 3 bars + background + 2 legend swatches.
        assert_eq!(svg.matches("<rect").count(), 6);
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(svg.contains("TPS &lt;a&amp;b&gt;"));
        assert!(!svg.contains("NaN"));
    }
}
