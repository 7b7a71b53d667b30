//! The one HTML sanitiser: every HTML body that leaves the daemon — a
//! newsletter's or announcement's HTML part, its archive page, its Atom
//! entry, and a post by mail once it is a campaign — is made from a
//! campaign's Markdown by `markdown::convert`, which passes the converter's
//! output through [`html`] before anything else touches it. Pure.
//!
//! The allow-list keeps what our Markdown produces (paragraphs, headings,
//! lists, quotes, code, tables, images, links, emphasis) and the harmless
//! markup a leader may paste (ammonia's default tags: `span`, `div`, `b`,
//! `sup`, …), and drops everything that can run, load or submit: `script`
//! and `style` with their content, `iframe`, `object`, `embed`, `form`,
//! `input`, `button`, every `on*` attribute, `style` (except the
//! `text-align` that Markdown tables put on their cells), `class` (except a
//! code block's `language-…`), and comments. Links keep `http`, `https`
//! and `mailto` (and in-page `#anchors`); images keep `http` and `https`
//! sources. A link or image whose URL is refused keeps its text.
//!
//! The sanitiser must not change our own output, so the golden mails stay
//! byte for byte: ammonia re-serialises through html5ever, which spells a
//! few things differently from pulldown-cmark (`<br>` for `<br />`,
//! `&nbsp;` for U+00A0, a bare `'` in attributes); [`pulldown_spelling`]
//! writes them back the way pulldown-cmark does. That only changes how
//! markup is spelt, never what it is.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};

/// The configured sanitiser, built once.
static SANITISER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let mut b = Builder::default();
    b.url_schemes(HashSet::from(["http", "https", "mailto"]))
        // A relative URL means nothing in a mail; an in-page anchor does.
        .url_relative(UrlRelative::Custom(Box::new(anchor_only)))
        // Our links carry no rel; nothing opens a new window to need it.
        .link_rel(None)
        .add_tag_attributes("a", ["title"])
        .add_tag_attributes("img", ["title"])
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("th", ["style"])
        .add_tag_attributes("td", ["style"])
        .attribute_filter(keep_attribute);
    b
});

/// Sanitises an HTML fragment: what the allow-list above keeps, spelt as
/// pulldown-cmark spells it.
pub fn html(fragment: &str) -> String {
    pulldown_spelling(&SANITISER.clean(fragment).to_string())
}

/// Whether the sanitiser keeps `url` as a link target (http, https,
/// mailto, or an in-page anchor), as ammonia decides it. The text part
/// asks this too, so it shows as footnotes the links the HTML keeps.
pub(crate) fn link_allowed(url: &str) -> bool {
    match ammonia::Url::parse(url) {
        Ok(u) => matches!(u.scheme(), "http" | "https" | "mailto"),
        Err(ammonia::url::ParseError::RelativeUrlWithoutBase) => anchor_only(url).is_some(),
        Err(_) => false,
    }
}

/// A relative URL is kept only as an in-page anchor.
fn anchor_only(url: &str) -> Option<Cow<'_, str>> {
    url.starts_with('#').then_some(Cow::Borrowed(url))
}

/// The values of allowed attributes that are allowed (ammonia checks the
/// schemes of `href` and `cite` itself).
fn keep_attribute<'v>(element: &str, attribute: &str, value: &'v str) -> Option<Cow<'v, str>> {
    let keep = match (element, attribute) {
        (_, "src") => {
            let v = value.trim_start().to_ascii_lowercase();
            v.starts_with("https://") || v.starts_with("http://")
        }
        (_, "style") => matches!(
            value,
            "text-align: left" | "text-align: center" | "text-align: right"
        ),
        (_, "class") => value.strip_prefix("language-").is_some_and(|lang| {
            lang.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_+.#".contains(c))
        }),
        _ => true,
    };
    keep.then_some(Cow::Borrowed(value))
}

/// Elements without content, which pulldown-cmark closes with ` />`.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// html5ever's serialisation, spelt as pulldown-cmark spells it:
/// - U+00A0 as the character, not `&nbsp;`;
/// - in attribute values, `'` as `&#x27;` in URLs and `&#39;` elsewhere;
/// - void elements closed with ` />`.
///
/// html5ever escapes `<` and `>` in text and attributes, and quotes every
/// attribute value with `"` (escaped inside as `&quot;`), so a literal `<`
/// opens a tag and the first `>` outside quotes ends it.
pub(crate) fn pulldown_spelling(html: &str) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 16);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open].replace("&nbsp;", "\u{a0}"));
        rest = &rest[open..];
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                c == '>' && !quoted
            })
            .map_or(rest.len(), |(i, _)| i + 1);
        tag(&mut out, &rest[..end]);
        rest = &rest[end..];
    }
    out.push_str(&rest.replace("&nbsp;", "\u{a0}"));
    out
}

/// One start or end tag, `<…>`, respelt.
fn tag(out: &mut String, tag: &str) {
    let Some(inner) = tag.strip_prefix('<').and_then(|t| t.strip_suffix('>')) else {
        out.push_str(tag);
        return;
    };
    let name_len = inner
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    out.push('<');
    out.push_str(name);
    // Attributes: ` name="value"` each.
    let mut attrs = &inner[name_len..];
    while let Some(eq) = attrs.find("=\"") {
        let attr = attrs[..eq].trim_start();
        let Some(close) = attrs[eq + 2..].find('"') else {
            break;
        };
        let value = &attrs[eq + 2..eq + 2 + close];
        let apostrophe = if matches!(attr, "href" | "src" | "cite") {
            "&#x27;"
        } else {
            "&#39;"
        };
        out.push(' ');
        out.push_str(attr);
        out.push_str("=\"");
        out.push_str(&value.replace("&nbsp;", "\u{a0}").replace('\'', apostrophe));
        out.push('"');
        attrs = &attrs[eq + 2 + close + 1..];
    }
    out.push_str(attrs);
    if VOID.contains(&name) {
        out.push_str(" />");
    } else {
        out.push('>');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::markdown::options;
    use pulldown_cmark::{Event, Parser};

    /// pulldown-cmark's HTML for `markdown`, as `markdown::convert` makes
    /// it before styling.
    fn pulldown(markdown: &str) -> String {
        let mut html = String::new();
        let events = Parser::new_ext(markdown, options()).map(|e| match e {
            Event::TaskListMarker(done) => Event::Text(if done { "☑ " } else { "☐ " }.into()),
            e => e,
        });
        pulldown_cmark::html::push_html(&mut html, events);
        html
    }

    /// Markdown as leaders write it: every construct the converter emits.
    const OUR_MARKDOWN: &[&str] = &[
        "# Nyhetsbrev december\n\nHej UTSKICKF0X!\n\nNu är **handboken** klar. Läs den\ni [handboken](https://example.se/handbok) eller\nladda ned [foldern](https://example.se/folder.pdf \"Foldern\").\n",
        "## Det här händer\n\n- Träff i UTSKICKF1X den 12 december\n- Webbinarium om *bygdepeng*:\n  1. anmäl dig\n  2. titta på [presentationen](https://example.se/p)\n\n> Lokal finansiering är pengar från bygden.\n\n![Karta över bygderna](https://example.se/karta.png)\n\nFrågor? Skriv till <projektledare@example.se> eller <https://example.se/?a=1&b=2>.\n",
        "Citat: \"så här\" och 'så här', A & B, 1 < 2 > 0, Ö&nbsp;Ä, ~~struket~~.\n\n---\n\nRad ett  \nrad två\n\n3. tre\n4. fyra\n",
        "| Vad | När | Var |\n|:----|:---:|----:|\n| Träff | 12/12 | Östersund |\n| Webbinarium | `5/12` | *nätet* |\n",
        "```rust\nfn main() { println!(\"<hej> & 'då'\"); }\n```\n\n    indraget\n    kod\n\n`kod` med \"citat\".\n",
        "- [x] klart\n- [ ] inte klart\n\n[länk med 'apostrof'](https://example.se/o'brien?x=\"y\") och ![bild 'ett'](http://example.se/a b.png 'titel \"två\"')\n\n[ankare](#mitten) <mailto:info@example.se>\n",
        "UTSKICKF0X\n\nBlock UTSKICKF1X text\n\nUTSKICKF2X\n\n> citat\n> > i citat\n\n* a\n\n  stycke i punkt\n* b\n",
    ];

    #[test]
    fn our_own_markdown_comes_through_byte_for_byte() {
        for md in OUR_MARKDOWN {
            let ours = pulldown(md);
            assert_eq!(html(&ours), ours, "from {md:?}");
        }
    }

    fn hostile(html: &str) -> Vec<&'static str> {
        let lower = html.to_ascii_lowercase();
        [
            "<script",
            "alert",
            "onerror",
            "onclick",
            "onload",
            "javascript",
            "vbscript",
            "<iframe",
            "<form",
            "<input",
            "<button",
            "<object",
            "<embed",
            "<style",
            "data:",
            "<svg",
            "<math",
            "<meta",
            "<link",
            "<base",
            "expression(",
        ]
        .into_iter()
        .filter(|bad| lower.contains(bad))
        .collect()
    }

    #[test]
    fn what_can_run_load_or_submit_is_dropped() {
        let attacks = [
            "<script>alert('x')</script>",
            "<img src=\"https://example.se/b.png\" onerror=\"alert(1)\">",
            "<a href=\"javascript:alert(1)\">a</a>",
            "<a href=\"JaVaScRiPt:alert(2)\">b</a>",
            "<a href=\" java\tscript:alert(3)\">c</a>",
            "<a href=\"&#106;avascript:alert(4)\">d</a>",
            "<a href=\"vbscript:msgbox\">e</a>",
            "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">f</a>",
            "<img src=\"data:image/svg+xml,<svg onload=alert(5)>\">",
            "<img src=\"javascript:alert(6)\">",
            "<iframe src=\"https://evil.example/\"></iframe>",
            "<form action=\"https://evil.example/\"><input name=\"pw\"><button>Logga in</button></form>",
            "<p onclick=\"alert(7)\">stycke</p>",
            "<div style=\"background:url(javascript:alert(8))\">x</div>",
            "<p style=\"width: expression(alert(9))\">y</p>",
            "<style>p { color: red }</style>",
            "<svg><script>alert(10)</script></svg>",
            "<math><mi xlink:href=\"javascript:alert(11)\">m</mi></math>",
            "<object data=\"https://evil.example/x.swf\"></object><embed src=\"https://evil.example/\">",
            "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example/\">",
            "<link rel=\"stylesheet\" href=\"https://evil.example/x.css\"><base href=\"https://evil.example/\">",
            "<!-- <script>alert(12)</script> -->",
            "<noscript><p title=\"</noscript><img src=x onerror=alert(13)>\"></noscript>",
            "<table><tr><td style=\"text-align: left;background:url(https://evil.example/)\">t</td></tr></table>",
            "<code class=\"language-x\" onmouseover=\"alert(14)\">c</code>",
        ];
        for attack in attacks {
            let clean = html(attack);
            assert!(
                hostile(&clean).is_empty(),
                "{attack:?} became {clean:?}: {:?}",
                hostile(&clean)
            );
        }
    }

    #[test]
    fn link_targets_are_judged_as_ammonia_judges_them() {
        for (url, kept) in [
            ("https://example.se/handbok", true),
            ("HTTP://EXAMPLE.SE/", true),
            ("mailto:info@example.se", true),
            ("#mitten", true),
            ("javascript:alert(1)", false),
            (" JaVa\tScRiPt:alert(1)", false),
            ("data:text/html,x", false),
            ("ftp://example.se/", false),
            ("/relativ", false),
            ("UTSKICKF0X", false),
        ] {
            assert_eq!(link_allowed(url), kept, "{url}");
            let a = html(&format!("<a href=\"{url}\">x</a>"));
            assert_eq!(a.contains("href"), kept, "{url}: {a}");
        }
    }

    #[test]
    fn safe_links_and_text_stay() {
        let clean = html(
            "<p onclick=\"x()\">Klickbart <a href=\"https://example.se/handbok\">handboken</a>, \
             <a href=\"http://example.org/sida\">sidan</a>, <a href=\"mailto:info@example.se\">oss</a>, \
             <a href=\"ftp://example.se/\">ftp</a>, <a href=\"/relativ\">relativ</a></p>\
             <form><button>Logga in</button></form>",
        );
        assert_eq!(
            clean,
            "<p>Klickbart <a href=\"https://example.se/handbok\">handboken</a>, \
             <a href=\"http://example.org/sida\">sidan</a>, <a href=\"mailto:info@example.se\">oss</a>, \
             <a>ftp</a>, <a>relativ</a></p>Logga in"
        );
    }
}
