//! The compiled page templates: one Handlebars registry per language (so
//! each has its own `form` partial) and the stylesheet. An organisation
//! restyles the pages by putting its own copies under
//! `templates_dir/<lang>/web/`; the shipped copies fill in the rest.

use std::collections::HashMap;
use std::path::Path as FsPath;

use handlebars::Handlebars;
use serde_json::{json, Value};

use crate::daemon::lists::Language;
use crate::mail::html_text::html_to_text;

const PAGES: &[&str] = &[
    "layout",
    "form",
    "index",
    "list",
    "check-inbox",
    "confirm",
    "done",
    "problem",
    "archive",
    "archive-item",
    "archive-threads",
    "privacy",
    "admin-layout",
    "admin-login",
    "admin-sent",
    "admin-link",
    "admin-overview",
    "admin-subscribers",
    "admin-person",
    "admin-campaigns",
    "admin-new",
    "admin-approvals",
    "admin-report",
    "admin-log",
    "admin-threads",
    "admin-problem",
];

macro_rules! builtin_pages {
    ($($lang:literal / $name:literal),* $(,)?) => {
        &[$(($lang, $name, include_str!(concat!("../../templates/", $lang, "/web/", $name, ".html.hbs")))),*]
    };
}

const BUILTIN_PAGES: &[(&str, &str, &str)] = builtin_pages![
    "sv" / "layout",
    "sv" / "form",
    "sv" / "index",
    "sv" / "list",
    "sv" / "check-inbox",
    "sv" / "confirm",
    "sv" / "done",
    "sv" / "problem",
    "sv" / "archive",
    "sv" / "archive-item",
    "sv" / "archive-threads",
    "sv" / "privacy",
    "sv" / "admin-layout",
    "sv" / "admin-login",
    "sv" / "admin-sent",
    "sv" / "admin-link",
    "sv" / "admin-overview",
    "sv" / "admin-subscribers",
    "sv" / "admin-person",
    "sv" / "admin-campaigns",
    "sv" / "admin-new",
    "sv" / "admin-approvals",
    "sv" / "admin-report",
    "sv" / "admin-log",
    "sv" / "admin-threads",
    "sv" / "admin-problem",
    "en" / "layout",
    "en" / "form",
    "en" / "index",
    "en" / "list",
    "en" / "check-inbox",
    "en" / "confirm",
    "en" / "done",
    "en" / "problem",
    "en" / "archive",
    "en" / "archive-item",
    "en" / "archive-threads",
    "en" / "privacy",
    "en" / "admin-layout",
    "en" / "admin-login",
    "en" / "admin-sent",
    "en" / "admin-link",
    "en" / "admin-overview",
    "en" / "admin-subscribers",
    "en" / "admin-person",
    "en" / "admin-campaigns",
    "en" / "admin-new",
    "en" / "admin-approvals",
    "en" / "admin-report",
    "en" / "admin-log",
    "en" / "admin-threads",
    "en" / "admin-problem",
];
const BUILTIN_CSS: &str = include_str!("../../templates/style.css");

/// The compiled page templates and the stylesheet.
pub struct Pages {
    registries: HashMap<&'static str, Handlebars<'static>>,
    pub(super) css: String,
}

impl Pages {
    /// Compiles `templates_dir/<lang>/web/*.html.hbs`, falling back to the
    /// shipped copies; a syntax error stops the daemon with the file name.
    pub fn load(dir: &FsPath) -> anyhow::Result<Pages> {
        debug_assert_eq!(BUILTIN_PAGES.len(), PAGES.len() * 2);
        let mut registries: HashMap<&'static str, Handlebars<'static>> = HashMap::new();
        for (lang, name, builtin) in BUILTIN_PAGES {
            let registry = registries.entry(lang).or_default();
            let path = dir.join(lang).join("web").join(format!("{name}.html.hbs"));
            let source = match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => builtin.to_string(),
                Err(e) => anyhow::bail!("{}: cannot read: {e}", path.display()),
            };
            if *name == "form" {
                registry
                    .register_partial("form", source.as_str())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
            registry
                .register_template_string(name, source)
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e))?;
        }
        let css = std::fs::read_to_string(dir.join("style.css"))
            .unwrap_or_else(|_| BUILTIN_CSS.to_string());
        Ok(Pages { registries, css })
    }

    pub(super) fn registry(&self, lang: Language) -> &Handlebars<'static> {
        &self.registries[lang.code()]
    }

    /// Renders page `name` into the layout; the text of the page's first
    /// `<h1>` is the document title (entities decoded once: the layout
    /// escapes it again, and prefixes "Fel: " / "Error: " when the data
    /// has `error`).
    pub(super) fn render(
        &self,
        lang: Language,
        name: &str,
        data: &Value,
    ) -> anyhow::Result<String> {
        self.render_in("layout", lang, name, data)
    }

    /// [`Pages::render`] into layout `frame` (the workspace has its own).
    pub(super) fn render_in(
        &self,
        frame: &str,
        lang: Language,
        name: &str,
        data: &Value,
    ) -> anyhow::Result<String> {
        let registry = self.registry(lang);
        let content = registry.render(name, data)?;
        let title = content
            .split_once("<h1>")
            .and_then(|(_, rest)| rest.split_once("</h1>"))
            .map(|(t, _)| html_to_text(t))
            .unwrap_or_default();
        let mut layout = data.clone();
        layout["content"] = json!(content);
        layout["title"] = json!(title.trim());
        Ok(registry.render(layout_name(frame), &layout)?)
    }
}

/// `frame` as a registered name (only the two layouts are).
fn layout_name(frame: &str) -> &'static str {
    match frame {
        "admin-layout" => "admin-layout",
        _ => "layout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_heading_as_text_escaped_once() {
        let pages = Pages::load(FsPath::new("templates")).unwrap();
        let data = json!({
            "list": {"id": "l", "name": "L", "description": ""},
            "subject": "Handboken & foldern <nu> \"klara\"",
            "body": "",
        });
        let page = pages.render(Language::Sv, "archive-item", &data).unwrap();
        assert!(
            page.contains("<title>Handboken &amp; foldern &lt;nu&gt; &quot;klara&quot;</title>"),
            "{page}"
        );
        let page = pages
            .render(Language::En, "done", &json!({"subscribed": true}))
            .unwrap();
        assert!(page.contains("<title>Welcome!</title>"), "{page}");
        let data =
            json!({"list": {"id": "l", "name": "Listan"}, "error": true, "error_email": true});
        let page = pages.render(Language::Sv, "list", &data).unwrap();
        assert!(page.contains("<title>Fel: Listan</title>"), "{page}");
        let page = pages.render(Language::En, "list", &data).unwrap();
        assert!(page.contains("<title>Error: Listan</title>"), "{page}");
    }

    #[test]
    fn every_page_has_exactly_one_h1() {
        let pages = Pages::load(FsPath::new("templates")).unwrap();
        let data = json!({
            "list": {"id": "l", "name": "L", "description": "", "sender": {"organisation": "O", "contact": "c@example.org", "privacy_url": "/privacy"}},
            "lists": [{"list": {"id": "l", "name": "L"}}],
            "subject": "S", "body": "<p>x</p>", "subscribed": true, "not_found": true,
            "is_subscribe": true, "items": [],
        });
        for lang in [Language::Sv, Language::En] {
            for name in PAGES
                .iter()
                .filter(|p| !matches!(**p, "layout" | "form" | "admin-layout"))
            {
                let page = pages.render(lang, name, &data).unwrap();
                assert_eq!(page.matches("<h1").count(), 1, "{name} ({lang:?}):\n{page}");
            }
        }
    }

    /// WCAG 2.x relative luminance of `#rrggbb` or `#rgb`.
    fn luminance(hex: &str) -> f64 {
        let hex = hex.trim_start_matches('#');
        let hex = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect()
        } else {
            hex.to_string()
        };
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    /// The value of custom property `--name` in the shipped stylesheet.
    fn var(name: &str) -> &'static str {
        let at = BUILTIN_CSS
            .find(&format!("--{name}:"))
            .unwrap_or_else(|| panic!("no --{name} in style.css"));
        BUILTIN_CSS[at + name.len() + 3..]
            .trim_start()
            .split([';', ' ', '}'])
            .next()
            .unwrap()
    }

    #[test]
    fn the_focus_ring_stands_out_on_every_background_it_meets() {
        assert!(
            (contrast("#f2b705", "#ffffff") - 1.82).abs() < 0.01,
            "the formula"
        );
        // The ring on the page, the card, and the fields (all light).
        for background in ["bg", "card"] {
            let c = contrast(var("focus"), var(background));
            assert!(c >= 3.0, "--focus on --{background}: {c:.2}:1");
        }
        // The header's link sits on green: its ring is --focus-on-green.
        let c = contrast(var("focus-on-green"), var("green"));
        assert!(c >= 3.0, "--focus-on-green on --green: {c:.2}:1");
        assert!(BUILTIN_CSS.contains("outline: 3px solid var(--focus)"));
        assert!(
            BUILTIN_CSS.contains("header.site a:focus { outline-color: var(--focus-on-green); }")
        );
    }
}
