//! The growth report for the funder: per month, confirmed subscribers,
//! joins, leaves, bounces and campaigns, as a terminal table and as an SVG
//! chart to paste into a report.
//!
//! Pure: the caller reads the store and maps its records to
//! [`PersonHistory`] and [`CampaignHistory`]. The store keeps each person's
//! latest state, not a log, so the history is rebuilt from timestamps and is
//! approximate in two known ways: someone who left and came back shows only
//! the latest join (re-subscribing clears `unsubscribed_at`), and bounces
//! are all counted in the month of the last one, since only that time is
//! kept.
//!
//! The SVG is written by hand rather than with `plotters`. plotters 0.3.7
//! (default-features off, `svg_backend`) builds and pulls in only
//! num-traits, but two panels sharing their months, with keys in their
//! headings, are about as much code with it as without, and it would still
//! guess text widths. Written out here, every element is ours: inline attributes only
//! (no CSS, so Word and LibreOffice render it as a browser does), system
//! fonts, escaped text, and no new dependency.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

/// What the report needs to know of one subscriber (the caller maps store
/// records to this: `subscribed_at`, `unsubscribed_at`, `bounces`,
/// `last_bounce_at`).
#[derive(Debug, Clone, Default)]
pub struct PersonHistory {
    pub joined: Option<DateTime<Utc>>,
    pub left: Option<DateTime<Utc>>,
    pub bounces: u32,
    pub last_bounce: Option<DateTime<Utc>>,
}

/// One campaign.
#[derive(Debug, Clone, Default)]
pub struct CampaignHistory {
    pub subject: String,
    /// None: never started (a draft, or still scheduled); not counted.
    pub started: Option<DateTime<Utc>>,
    pub delivered: u64,
    pub failed: u64,
}

/// One calendar month (UTC) of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Month {
    pub year: i32,
    /// 1–12.
    pub month: u32,
    pub confirmed_at_end: u64,
    pub joins: u64,
    pub leaves: u64,
    pub bounces: u64,
    pub campaigns: u64,
    pub delivered: u64,
    pub failed: u64,
}

impl Month {
    fn zero(index: i64) -> Month {
        Month {
            year: index.div_euclid(12) as i32,
            month: index.rem_euclid(12) as u32 + 1,
            confirmed_at_end: 0,
            joins: 0,
            leaves: 0,
            bounces: 0,
            campaigns: 0,
            delivered: 0,
            failed: 0,
        }
    }

    /// "jan 2026" / "Jan 2026".
    pub fn label(&self, lang: Lang) -> String {
        format!("{} {}", self.name(lang), self.year)
    }

    fn name(&self, lang: Lang) -> &'static str {
        lang.texts().months[self.month as usize - 1]
    }

    fn index(&self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }
}

/// Months counted from year 0, so that consecutive months are consecutive
/// integers.
fn month_index(t: DateTime<Utc>) -> i64 {
    i64::from(t.year()) * 12 + i64::from(t.month0())
}

/// Months from the first event to `now` inclusive, none missing (a month
/// with no events has zeros and carries the confirmed count over). With no
/// events at all, the month of `now` alone.
///
/// A person joins in the month of `joined` and leaves in the month of
/// `left`, the latter only if they had joined by then: an earlier `left`
/// belongs to a membership the store no longer shows. Events after `now`
/// (a skewed clock) are left out rather than stretching the report.
pub fn monthly(
    people: &[PersonHistory],
    campaigns: &[CampaignHistory],
    now: DateTime<Utc>,
) -> Vec<Month> {
    enum Event {
        Join,
        Leave,
        Bounces(u64),
        Campaign { delivered: u64, failed: u64 },
    }
    let past = |t: Option<DateTime<Utc>>| t.filter(|t| *t <= now);
    let mut events = Vec::new();
    for p in people {
        let Some(joined) = past(p.joined) else {
            continue;
        };
        events.push((month_index(joined), Event::Join));
        if let Some(left) = past(p.left).filter(|l| *l >= joined) {
            events.push((month_index(left), Event::Leave));
        }
        if let Some(at) = past(p.last_bounce).filter(|_| p.bounces > 0) {
            events.push((month_index(at), Event::Bounces(u64::from(p.bounces))));
        }
    }
    for c in campaigns {
        if let Some(at) = past(c.started) {
            let e = Event::Campaign {
                delivered: c.delivered,
                failed: c.failed,
            };
            events.push((month_index(at), e));
        }
    }

    let last = month_index(now);
    let first = events.iter().map(|(i, _)| *i).min().unwrap_or(last);
    let mut months: Vec<Month> = (first..=last).map(Month::zero).collect();
    for (i, e) in events {
        let m = &mut months[(i - first) as usize];
        match e {
            Event::Join => m.joins += 1,
            Event::Leave => m.leaves += 1,
            Event::Bounces(n) => m.bounces += n,
            Event::Campaign { delivered, failed } => {
                m.campaigns += 1;
                m.delivered += delivered;
                m.failed += failed;
            }
        }
    }
    // Every counted leave follows its join, so the running sum never dips
    // below zero; saturating only guards against a mistake here.
    let mut confirmed = 0u64;
    for m in &mut months {
        confirmed = (confirmed + m.joins).saturating_sub(m.leaves);
        m.confirmed_at_end = confirmed;
    }
    months
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// The funder reads Swedish.
    #[default]
    Sv,
    En,
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Lang, String> {
        match s.to_ascii_lowercase().as_str() {
            "sv" | "swedish" | "svenska" => Ok(Lang::Sv),
            "en" | "english" | "engelska" => Ok(Lang::En),
            _ => Err(format!("unknown language {s:?} (sv or en)")),
        }
    }
}

struct Texts {
    months: [&'static str; 12],
    month: &'static str,
    confirmed: &'static str,
    joins: &'static str,
    leaves: &'static str,
    bounces: &'static str,
    campaigns: &'static str,
    delivered: &'static str,
    failed: &'static str,
    total: &'static str,
    /// The chart's title, and the headings of its two panels.
    title: &'static str,
    panel_a: &'static str,
    panel_b: &'static str,
    /// The caption's first word, and the months written out.
    source: &'static str,
    long_months: [&'static str; 12],
    no_data: &'static str,
    /// Digit grouping: a no-break space in Swedish, a comma in English.
    thousands: char,
}

impl Lang {
    fn texts(self) -> &'static Texts {
        match self {
            Lang::Sv => &SV,
            Lang::En => &EN,
        }
    }
}

static SV: Texts = Texts {
    months: [
        "jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
    ],
    month: "Månad",
    confirmed: "Bekräftade",
    joins: "Nya",
    leaves: "Avslutade",
    bounces: "Studsar",
    campaigns: "Utskick",
    delivered: "Levererade",
    failed: "Misslyckade",
    total: "Totalt",
    title: "Antal prenumeranter per månad",
    panel_a: "Prenumeranter vid månadens slut",
    panel_b: "Nya och avslutade under månaden",
    source: "Källa",
    long_months: [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ],
    no_data: "Inga uppgifter",
    thousands: '\u{a0}',
};

static EN: Texts = Texts {
    months: [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
    month: "Month",
    confirmed: "Confirmed",
    joins: "Joined",
    leaves: "Left",
    bounces: "Bounces",
    campaigns: "Campaigns",
    delivered: "Delivered",
    failed: "Failed",
    total: "Total",
    title: "Subscribers per month",
    panel_a: "Subscribers at the end of each month",
    panel_b: "Joined and left during the month",
    source: "Source",
    long_months: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
    no_data: "No data",
    thousands: ',',
};

/// Plain-text table for the terminal: aligned columns, a header row, a
/// totals row. Numbers are bare digits so they paste into a spreadsheet.
/// The totals row sums every column but confirmed, where it repeats the
/// last month: a sum of month-end counts means nothing.
pub fn table(months: &[Month], lang: Lang) -> String {
    let t = lang.texts();
    let header = [
        t.month,
        t.confirmed,
        t.joins,
        t.leaves,
        t.bounces,
        t.campaigns,
        t.delivered,
        t.failed,
    ];
    let numbers = |m: &Month| {
        [
            m.confirmed_at_end,
            m.joins,
            m.leaves,
            m.bounces,
            m.campaigns,
            m.delivered,
            m.failed,
        ]
    };
    let row = |first: String, n: [u64; 7]| {
        std::iter::once(first)
            .chain(n.iter().map(u64::to_string))
            .collect::<Vec<_>>()
    };
    let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    rows.extend(months.iter().map(|m| row(m.label(lang), numbers(m))));
    let mut total = [0u64; 7];
    for m in months {
        for (sum, n) in total.iter_mut().zip(numbers(m)) {
            *sum += n;
        }
    }
    total[0] = months.last().map_or(0, |m| m.confirmed_at_end);
    rows.push(row(t.total.to_string(), total));

    // Rust pads by chars, so "Månad" and "Bekräftade" line up too.
    let mut widths = vec![0; header.len()];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1));
    let mut out = String::new();
    let last = rows.len() - 1;
    for (i, r) in rows.iter().enumerate() {
        if i == last {
            out.push_str(&rule);
            out.push('\n');
        }
        for (j, (cell, w)) in r.iter().zip(&widths).enumerate() {
            if j == 0 {
                let _ = write!(out, "{cell:<w$}");
            } else {
                let _ = write!(out, "  {cell:>w$}");
            }
        }
        out.push('\n');
        if i == 0 {
            out.push_str(&rule);
            out.push('\n');
        }
    }
    out
}

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 560.0;
/// Where the title, headings and caption start.
const MARGIN: f64 = 24.0;
/// The plot areas, one above the other; the left margin holds the tick
/// labels of each panel's one y axis.
const LEFT: f64 = 64.0;
const RIGHT: f64 = WIDTH - MARGIN;
/// The upper panel: confirmed subscribers at each month's end.
const TOP_A: f64 = 96.0;
const BOTTOM_A: f64 = 262.0;
/// The lower panel: joins and leaves in each month.
const TOP_B: f64 = 326.0;
const BOTTOM_B: f64 = 462.0;
/// At most this many intervals on a y axis.
const TICKS: u64 = 5;
/// Room one month label needs; more months than fit get thinned out.
const LABEL_SPACE: f64 = 40.0;
const FONT: &str = "'Segoe UI', 'Helvetica Neue', Helvetica, Arial, 'Liberation Sans', sans-serif";
const INK: &str = "#222222";
const MUTED: &str = "#595959";
const GRID: &str = "#e4e4e4";
const AXIS: &str = "#9a9a9a";
const LINE: &str = "#1f4e79";
const JOIN: &str = "#4a8a32";
const LEAVE: &str = "#c0462f";

/// The chart's title: what it counts, said once.
pub fn title(lang: Lang) -> &'static str {
    lang.texts().title
}

/// The caption under the chart: "Källa: utskick, LIST, 1 december 2026".
pub fn caption(list: &str, made: chrono::NaiveDate, lang: Lang) -> String {
    format!(
        "{}: utskick, {list}, {}",
        lang.texts().source,
        long_date(made, lang)
    )
}

/// A day as readers write it: "1 december 2026", "1 December 2026" (the
/// web pages' dates too).
pub fn long_date(day: chrono::NaiveDate, lang: Lang) -> String {
    let month = lang.texts().long_months[day.month0() as usize];
    format!("{} {month} {}", day.day(), day.year())
}

/// A self-contained SVG document (no scripts, no external fonts or images),
/// 800×560: `title` over two panels that share the months, and `caption`
/// (the source and date) under them.
///
/// Each panel has one y axis, starting at zero: the upper shows confirmed
/// subscribers at each month's end as a line with points, the lower the
/// month's joins (green) and leaves (red) as paired bars. Two scales on
/// one plot would make the small monthly counts look as big as the list,
/// so they get a panel of their own, each headed with what it counts.
/// Points and bars carry `<title>`s, which browsers show on hover and
/// screen readers read.
pub fn svg(months: &[Month], title: &str, caption: &str, lang: Lang) -> String {
    let t = lang.texts();
    let mut s = String::new();
    let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" font-family="{FONT}">"#
    );
    let _ = writeln!(s, "<title>{}</title>", escape(title));
    let _ = writeln!(s, "<desc>{}</desc>", escape(caption));
    let _ = writeln!(
        s,
        r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="{MARGIN}" y="38" font-size="20" font-weight="600" fill="{INK}">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        s,
        r#"<text class="caption" x="{MARGIN}" y="{}" font-size="12" fill="{MUTED}">{}</text>"#,
        HEIGHT - 16.0,
        escape(caption)
    );
    heading_a(&mut s, t);
    heading_b(&mut s, t);

    let baseline = |bottom: f64| {
        format!(
            r#"<line x1="{LEFT}" y1="{y}" x2="{RIGHT}" y2="{y}" stroke="{AXIS}" stroke-width="1"/>"#,
            y = bottom + 0.5
        )
    };
    if months.is_empty() {
        for (top, bottom) in [(TOP_A, BOTTOM_A), (TOP_B, BOTTOM_B)] {
            let _ = writeln!(s, "{}", baseline(bottom));
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" font-size="14" text-anchor="middle" fill="{MUTED}">{}</text>"#,
                (LEFT + RIGHT) / 2.0,
                (top + bottom) / 2.0,
                t.no_data
            );
        }
        s.push_str("</svg>\n");
        return s;
    }

    // Each panel's own scale, from zero, in round steps.
    let (step_a, n_a) = nice(months.iter().map(|m| m.confirmed_at_end).max().unwrap_or(0));
    let (step_b, n_b) = nice(
        months
            .iter()
            .map(|m| m.joins.max(m.leaves))
            .max()
            .unwrap_or(0),
    );
    let top_a = (step_a * n_a) as f64;
    let top_b = (step_b * n_b) as f64;
    let y_a = |v: u64| BOTTOM_A - v as f64 / top_a * (BOTTOM_A - TOP_A);
    let y_b = |v: u64| BOTTOM_B - v as f64 / top_b * (BOTTOM_B - TOP_B);
    y_axis(&mut s, step_a, n_a, &y_a, t);
    y_axis(&mut s, step_b, n_b, &y_b, t);

    // Bars, one pair per month, centred in the month's band.
    let band = (RIGHT - LEFT) / months.len() as f64;
    let centre = |i: usize| LEFT + band * (i as f64 + 0.5);
    let bar = (band * 0.3).min(16.0);
    let gap = (band * 0.04).min(2.0);
    s.push_str("<g>\n");
    for (i, m) in months.iter().enumerate() {
        let label = m.label(lang);
        for (value, x, colour, class, name) in [
            (m.joins, centre(i) - gap / 2.0 - bar, JOIN, "join", t.joins),
            (m.leaves, centre(i) + gap / 2.0, LEAVE, "leave", t.leaves),
        ] {
            if value == 0 {
                continue;
            }
            let y = y_b(value);
            let _ = writeln!(
                s,
                r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{:.1}" fill="{colour}"><title>{label}: {value} {}</title></rect>"#,
                BOTTOM_B - y,
                name.to_lowercase()
            );
        }
    }
    s.push_str("</g>\n");
    let _ = writeln!(s, "{}", baseline(BOTTOM_A));
    let _ = writeln!(s, "{}", baseline(BOTTOM_B));

    // Month labels under the lower panel, thinned to every k-th month on a
    // fixed grid (quarters, half years, years) so they fall on the same
    // months in every report; ticks under both panels.
    let fit = (((RIGHT - LEFT) / LABEL_SPACE).floor() as usize).max(1);
    let every = [1, 2, 3, 4, 6, 12]
        .into_iter()
        .chain((2..).map(|y| 12 * y))
        .find(|k| months.len().div_ceil(*k) <= fit)
        .unwrap_or(1) as i64;
    s.push_str(&format!(
        "<g font-size=\"12\" fill=\"{MUTED}\" text-anchor=\"middle\">\n"
    ));
    let mut first_label = true;
    for (i, m) in months.iter().enumerate() {
        let x = centre(i);
        let labelled = m.index().rem_euclid(every) == 0;
        for bottom in [BOTTOM_A, BOTTOM_B] {
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="{AXIS}" stroke-width="1"/>"#,
                bottom + 1.0,
                bottom + if labelled { 6.0 } else { 3.0 }
            );
        }
        if !labelled {
            continue;
        }
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}">{}</text>"#,
            BOTTOM_B + 20.0,
            m.name(lang)
        );
        if first_label || m.month == 1 {
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{}">{}</text>"#,
                BOTTOM_B + 36.0,
                m.year
            );
        }
        first_label = false;
    }
    s.push_str("</g>\n");

    // The line, with a point per month and the latest value named.
    let points: Vec<String> = months
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{:.1},{:.1}", centre(i), y_a(m.confirmed_at_end)))
        .collect();
    let _ = writeln!(
        s,
        r#"<polyline class="confirmed" points="{}" fill="none" stroke="{LINE}" stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>"#,
        points.join(" ")
    );
    s.push_str("<g>\n");
    for (i, m) in months.iter().enumerate() {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#ffffff" stroke="{LINE}" stroke-width="2"><title>{}: {} {}</title></circle>"##,
            centre(i),
            y_a(m.confirmed_at_end),
            m.label(lang),
            m.confirmed_at_end,
            t.confirmed.to_lowercase()
        );
    }
    s.push_str("</g>\n");
    if let Some(m) = months.last() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="13" font-weight="600" text-anchor="middle" fill="{LINE}">{}</text>"#,
            centre(months.len() - 1),
            y_a(m.confirmed_at_end) - 10.0,
            group(m.confirmed_at_end, t.thousands)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One panel's y axis: grid lines and tick labels from zero, `n` steps.
fn y_axis(s: &mut String, step: u64, n: u64, y: &dyn Fn(u64) -> f64, t: &Texts) {
    s.push_str(&format!(
        "<g class=\"y-axis\" font-size=\"12\" fill=\"{MUTED}\">\n"
    ));
    for k in 0..=n {
        // Half-pixel offsets keep 1 px lines crisp instead of two grey rows.
        let at = y(k * step).round() + 0.5;
        if k > 0 {
            let _ = writeln!(
                s,
                r#"<line x1="{LEFT}" y1="{at}" x2="{RIGHT}" y2="{at}" stroke="{GRID}" stroke-width="1"/>"#
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            LEFT - 10.0,
            at + 4.0,
            group(k * step, t.thousands)
        );
    }
    s.push_str("</g>\n");
}

/// The upper panel's heading, with the line's key.
fn heading_a(s: &mut String, t: &Texts) {
    let y = TOP_A - 24.0;
    let x = MARGIN;
    let _ = writeln!(s, r#"<g font-size="13" fill="{INK}">"#);
    let _ = writeln!(
        s,
        r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{LINE}" stroke-width="2.5" stroke-linecap="round"/>"#,
        x + 22.0
    );
    let _ = writeln!(
        s,
        r##"<circle cx="{}" cy="{y}" r="3.5" fill="#ffffff" stroke="{LINE}" stroke-width="2"/>"##,
        x + 11.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-weight="600">{}</text>"#,
        x + 30.0,
        y + 4.5,
        t.panel_a
    );
    s.push_str("</g>\n");
}

/// The lower panel's heading, then the key of its two bars. Text widths
/// are estimated (no font metrics without font files); the gaps are
/// generous enough for that.
fn heading_b(s: &mut String, t: &Texts) {
    let y = TOP_B - 24.0;
    let mut x = MARGIN;
    let _ = writeln!(s, r#"<g font-size="13" fill="{INK}">"#);
    let _ = writeln!(
        s,
        r#"<text x="{x}" y="{}" font-weight="600">{}</text>"#,
        y + 4.5,
        t.panel_b
    );
    x += text_width(t.panel_b, 13.0) + 28.0;
    for (colour, name) in [(JOIN, t.joins), (LEAVE, t.leaves)] {
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{colour}"/>"#,
            y - 6.0
        );
        x += 18.0;
        let _ = writeln!(s, r#"<text x="{x}" y="{}">{}</text>"#, y + 4.5, name);
        x += text_width(name, 13.0) + 28.0;
    }
    s.push_str("</g>\n");
}

/// An estimate of rendered width: 0.5 em a character is about right for
/// the sans-serif system fonts named in [`FONT`].
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.5
}

/// A tick step of 1, 2 or 5 times a power of ten, and how many steps reach
/// `max`: at most [`TICKS`], at least one so an all-zero axis still has a top.
fn nice(max: u64) -> (u64, u64) {
    let mut magnitude = 1u64;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            if step.saturating_mul(TICKS) >= max {
                return (step, max.div_ceil(step).max(1));
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// Digits in groups of three, as readers of either language expect.
fn group(n: u64, separator: char) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(separator);
        }
        out.push(c);
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn person(joined: Option<DateTime<Utc>>, left: Option<DateTime<Utc>>) -> PersonHistory {
        PersonHistory {
            joined,
            left,
            ..Default::default()
        }
    }

    fn campaign(started: Option<DateTime<Utc>>, delivered: u64, failed: u64) -> CampaignHistory {
        CampaignHistory {
            subject: "Nyhetsbrev".into(),
            started,
            delivered,
            failed,
        }
    }

    /// January to April 2026 with a quiet February.
    fn history() -> Vec<Month> {
        let people = vec![
            person(Some(at(2026, 1, 5)), None),
            person(Some(at(2026, 1, 20)), Some(at(2026, 3, 10))),
            // The last second of January is still January.
            PersonHistory {
                joined: Some(Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap()),
                left: None,
                bounces: 2,
                last_bounce: Some(at(2026, 3, 2)),
            },
            person(Some(at(2026, 3, 1)), Some(at(2026, 4, 2))),
            person(Some(at(2026, 4, 3)), None),
            // Never confirmed: a leave without a join is not counted.
            person(None, Some(at(2026, 2, 1))),
            // Left in an earlier membership, joined again in April.
            person(Some(at(2026, 4, 10)), Some(at(2026, 1, 1))),
            // After `now`: not yet.
            person(Some(at(2026, 5, 1)), None),
            // Bounces without a date cannot be placed.
            PersonHistory {
                joined: Some(at(2026, 4, 11)),
                left: None,
                bounces: 3,
                last_bounce: None,
            },
        ];
        let campaigns = vec![
            campaign(Some(at(2026, 1, 25)), 3, 0),
            campaign(Some(at(2026, 3, 20)), 3, 1),
            campaign(None, 0, 0),
        ];
        monthly(&people, &campaigns, at(2026, 4, 15))
    }

    /// A month of 2026: confirmed, joins, leaves, bounces, campaigns,
    /// delivered, failed.
    fn month(month: u32, n: [u64; 7]) -> Month {
        let [confirmed_at_end, joins, leaves, bounces, campaigns, delivered, failed] = n;
        Month {
            year: 2026,
            month,
            confirmed_at_end,
            joins,
            leaves,
            bounces,
            campaigns,
            delivered,
            failed,
        }
    }

    #[test]
    fn monthly_counts_a_known_history() {
        assert_eq!(
            history(),
            vec![
                month(1, [3, 3, 0, 0, 1, 3, 0]),
                month(2, [3, 0, 0, 0, 0, 0, 0]),
                month(3, [3, 1, 1, 2, 1, 3, 1]),
                month(4, [5, 3, 1, 0, 0, 0, 0]),
            ]
        );
    }

    #[test]
    fn monthly_spans_years_and_starts_at_the_first_event_of_any_kind() {
        let people = vec![person(Some(at(2026, 2, 1)), None)];
        let campaigns = vec![campaign(Some(at(2025, 11, 30)), 10, 0)];
        let months = monthly(&people, &campaigns, at(2026, 2, 1));
        let labels: Vec<String> = months.iter().map(|m| m.label(Lang::Sv)).collect();
        assert_eq!(labels, ["nov 2025", "dec 2025", "jan 2026", "feb 2026"]);
        assert_eq!(months[0].delivered, 10);
        assert_eq!(months[3].confirmed_at_end, 1);
    }

    #[test]
    fn monthly_without_events_is_the_current_month() {
        assert_eq!(
            monthly(&[], &[], at(2026, 7, 4)),
            vec![Month::zero(2026 * 12 + 6)]
        );
    }

    #[test]
    fn table_has_header_rows_and_totals() {
        let text = table(&history(), Lang::Sv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 1 + 4 + 1 + 1, "{text}");
        assert!(lines[0].starts_with("Månad"));
        assert!(lines[0].contains("Bekräftade") && lines[0].contains("Misslyckade"));
        assert!(lines[2].starts_with("jan 2026"));
        assert!(lines[3].starts_with("feb 2026"));
        assert!(lines[5].starts_with("apr 2026"));
        let totals: Vec<&str> = lines[7].split_whitespace().collect();
        // Confirmed is the last month's, the rest are sums.
        assert_eq!(totals, ["Totalt", "5", "7", "2", "2", "2", "6", "1"]);
        // Aligned: every non-rule line is as wide as the rules, in chars.
        let width = lines[1].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");
        assert!(lines[1].chars().all(|c| c == '-'));

        let english = table(&history(), Lang::En);
        assert!(english.starts_with("Month"));
        assert!(english.contains("Jan 2026") && english.contains("\nTotal "));
    }

    #[test]
    fn svg_is_well_formed_and_shows_every_series() {
        let months = history();
        let doc = svg(
            &months,
            "Nätverket <växer> & \"frodas\"",
            "Källa: x",
            Lang::Sv,
        );
        well_formed(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
        assert!(doc.contains("Nätverket &lt;växer&gt; &amp; &quot;frodas&quot;"));
        assert!(!doc.contains("<script") && !doc.contains("href") && !doc.contains("@font-face"));

        let line = doc
            .lines()
            .find(|l| l.starts_with("<polyline"))
            .expect("the line");
        let points = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), months.len());
        let nonzero = |f: fn(&Month) -> u64| months.iter().filter(|m| f(m) > 0).count();
        assert_eq!(
            doc.matches("<rect class=\"join\"").count(),
            nonzero(|m| m.joins)
        );
        assert_eq!(
            doc.matches("<rect class=\"leave\"").count(),
            nonzero(|m| m.leaves)
        );
        assert_eq!(doc.matches("<circle").count(), months.len() + 1);
        for label in [">jan<", ">feb<", ">mar<", ">apr<", ">2026<"] {
            assert!(doc.contains(label), "{label}");
        }
        for legend in [
            ">Prenumeranter vid månadens slut<",
            ">Nya och avslutade under månaden<",
            ">Nya<",
            ">Avslutade<",
        ] {
            assert!(doc.contains(legend), "{legend}");
        }

        let english = svg(&months, "Growth", "Source: x", Lang::En);
        well_formed(&english).unwrap();
        assert!(
            english.contains(">Subscribers at the end of each month<") && english.contains(">Jan<")
        );
    }

    #[test]
    fn svg_thins_month_labels_and_survives_edge_cases() {
        let people: Vec<PersonHistory> = (0..40)
            .map(|i| person(Some(at(2023 + i / 12, (i % 12) as u32 + 1, 3)), None))
            .collect();
        let months = monthly(&people, &[], at(2026, 4, 30));
        assert_eq!(months.len(), 40);
        let doc = svg(&months, "Tre år", "", Lang::Sv);
        well_formed(&doc).unwrap();
        // Quarters: jan, apr, jul, okt only.
        assert!(doc.contains(">apr<") && doc.contains(">okt<"));
        assert!(!doc.contains(">feb<") && !doc.contains(">maj<"));

        for months in [vec![], vec![Month::zero(2026 * 12)]] {
            let doc = svg(&months, "Tomt", "", Lang::Sv);
            well_formed(&doc).unwrap();
            assert!(!doc.contains("NaN") && !doc.contains("inf"));
        }
    }

    /// Issue 18: one y axis per panel (no second scale at the right edge),
    /// the title said once, and a caption with the source and the date.
    #[test]
    fn the_chart_has_one_axis_per_panel_a_plain_title_and_its_source() {
        let made = chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let caption = caption("Lokal finansiering", made, Lang::Sv);
        assert_eq!(
            caption,
            "Källa: utskick, Lokal finansiering, 1 december 2026"
        );
        assert_eq!(
            super::caption("L & M", made, Lang::En),
            "Source: utskick, L & M, 1 December 2026"
        );
        assert_eq!(title(Lang::Sv), "Antal prenumeranter per månad");
        let doc = svg(&history(), title(Lang::Sv), &caption, Lang::Sv);
        well_formed(&doc).unwrap();
        // Said once on the chart (and once more as its accessible name).
        let shown = doc
            .lines()
            .filter(|l| l.starts_with("<text") && l.contains("Antal prenumeranter"));
        assert_eq!(shown.count(), 1);
        assert!(doc.contains("<title>Antal prenumeranter per månad</title>"));
        assert!(doc.contains(&format!(">{caption}<")), "{doc}");
        // Two panels, each with one axis; every tick label sits left of the
        // plot, none at the right edge.
        assert_eq!(doc.matches("<g class=\"y-axis\"").count(), 2);
        for line in doc.lines().filter(|l| l.starts_with("<text x=")) {
            let x: f64 = line["<text x=\"".len()..]
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(x < RIGHT, "a label right of the plot: {line}");
        }
        // The lower panel starts at zero on its own scale: the tallest bar
        // reaches its top, and the line's top point stays in the upper one.
        let bars: Vec<f64> = doc
            .lines()
            .filter(|l| l.starts_with("<rect class="))
            .map(|l| {
                l.split(" y=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert!(
            bars.iter().all(|y| (TOP_B..BOTTOM_B).contains(y)),
            "{bars:?}"
        );
        let line = doc.lines().find(|l| l.starts_with("<polyline")).unwrap();
        let ys: Vec<f64> = line
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .map(|p| p.split(',').nth(1).unwrap().parse().unwrap())
            .collect();
        assert!(ys.iter().all(|y| (TOP_A..=BOTTOM_A).contains(y)), "{ys:?}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice(0), (1, 1));
        assert_eq!(nice(3), (1, 3));
        assert_eq!(nice(7), (2, 4));
        assert_eq!(nice(312), (100, 4));
        assert_eq!(nice(1000), (200, 5));
        assert_eq!(nice(1001), (500, 3));
        assert_eq!(group(1234567, ','), "1,234,567");
        assert_eq!(group(999, ','), "999");
    }

    /// Enough of XML to catch what a hand-written document gets wrong:
    /// unbalanced or crossed tags, raw `<` or `&` in text and attributes,
    /// unquoted attributes, more than one root.
    fn well_formed(doc: &str) -> Result<(), String> {
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = doc;
        while let Some(open) = rest.find('<') {
            entities(&rest[..open])?;
            rest = &rest[open..];
            if let Some(r) = rest.strip_prefix("<?") {
                rest = &r[r.find("?>").ok_or("unclosed <?")? + 2..];
                continue;
            }
            if let Some(r) = rest.strip_prefix("<!--") {
                rest = &r[r.find("-->").ok_or("unclosed comment")? + 3..];
                continue;
            }
            let end = rest.find('>').ok_or("unclosed tag")?;
            let tag = &rest[1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name.trim() => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
                continue;
            }
            let empty = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name_end = tag.find(char::is_whitespace).unwrap_or(tag.len());
            let (name, mut attrs) = tag.split_at(name_end);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == ':' || c == '-')
            {
                return Err(format!("bad tag name in <{tag}>"));
            }
            if stack.is_empty() {
                roots += 1;
            }
            loop {
                attrs = attrs.trim_start();
                if attrs.is_empty() {
                    break;
                }
                let eq = attrs
                    .find('=')
                    .ok_or(format!("attribute without value in <{tag}>"))?;
                let quote = attrs[eq + 1..]
                    .chars()
                    .next()
                    .filter(|c| *c == '"' || *c == '\'');
                let quote = quote.ok_or(format!("unquoted attribute in <{tag}>"))?;
                let value_start = eq + 2;
                let len = attrs[value_start..]
                    .find(quote)
                    .ok_or(format!("unclosed attribute in <{tag}>"))?;
                let value = &attrs[value_start..value_start + len];
                if value.contains('<') {
                    return Err(format!("< in attribute of <{tag}>"));
                }
                entities(value)?;
                attrs = &attrs[value_start + len + 1..];
            }
            if !empty {
                stack.push(name);
            }
        }
        entities(rest)?;
        if !stack.is_empty() {
            return Err(format!("unclosed {stack:?}"));
        }
        if roots != 1 {
            return Err(format!("{roots} root elements"));
        }
        Ok(())
    }

    fn entities(text: &str) -> Result<(), String> {
        for (i, _) in text.match_indices('&') {
            let name = text[i + 1..].split(';').next().unwrap_or("");
            let ok = ["amp", "lt", "gt", "quot", "apos"].contains(&name)
                || (name.starts_with('#') && name.len() > 1 && text[i + 1..].contains(';'));
            if !ok {
                return Err(format!("bare & in {text:?}"));
            }
        }
        Ok(())
    }
}
