//! Compiling a campaign: rendering every variant with markers, splitting
//! the output into pieces, and checking each variant against a sample
//! recipient rendered the ordinary way.

use std::collections::BTreeMap;

use handlebars::template::{HelperTemplate, Template, TemplateElement};
use handlebars::Handlebars;
use serde_json::Value;

use super::syntax::{scan, show, Syntax};
use super::*;
use crate::address;
use crate::compose::mime::{
    BODY_HTML, BODY_TXT, FOOTNOTES, LAYOUT_HTML, LAYOUT_TXT, PREHEADER, SUBJECT,
};
use crate::compose::plaintext::{tidy_text, RULE_MARK};
use crate::daemon::lists::List;

/// Splits a text rendered with markers into pieces; `None` if a marker is
/// not whole (the campaign's own text holds a marker character).
pub(super) fn pieces(text: &str) -> Option<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(OPEN) {
        if at > 0 {
            out.push(Piece::Text(rest[..at].to_string()));
        }
        let mut after = &rest[at + OPEN.len_utf8()..];
        let space = after.starts_with('s');
        if space {
            after = &after[1..];
        }
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let slot: usize = after[..digits].parse().ok()?;
        let mut tail = after[digits..].strip_prefix('&')?;
        let mut escapes = 0u8;
        while let Some(t) = tail.strip_prefix("amp;") {
            escapes += 1;
            tail = t;
        }
        rest = tail.strip_prefix(CLOSE)?;
        out.push(if space {
            Piece::Space(slot)
        } else {
            Piece::Slot { slot, escapes }
        });
    }
    if rest.contains(CLOSE) {
        return None;
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Some(out)
}

pub(super) fn has_slot(pieces: &[Piece]) -> bool {
    pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
}

/// Text outside the slots, whitespace aside: then the whole is never
/// empty, whatever fills the slots.
pub(super) fn surely_not_empty(pieces: &[Piece]) -> bool {
    pieces
        .iter()
        .any(|p| matches!(p, Piece::Text(t) if !t.trim().is_empty()))
}

/// The templates in the order `Prepared::render` uses them.
const TEMPLATES: [(&str, bool); 7] = [
    (SUBJECT, false),
    (PREHEADER, false),
    (BODY_HTML, true),
    (BODY_TXT, false),
    (FOOTNOTES, false),
    (LAYOUT_HTML, true),
    (LAYOUT_TXT, false),
];

/// The registries the markers are rendered with: `Prepared`'s, with each
/// `{{#if x}} {{/if}}{{x}}` that `drop_space_before_empty` wrote (x a
/// recipient's field, outside `#each` and `#with`, which change what `x`
/// names) as `{{utskick_space.sN}}{{x}}`: the space is a slot of its own.
struct Registries {
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
}

fn spaced(p: &Prepared, list: &List) -> Registries {
    let mut r = Registries {
        html: p.html.clone(),
        plain: p.plain.clone(),
    };
    for (name, html) in TEMPLATES {
        let registry = if html { &mut r.html } else { &mut r.plain };
        if let Some(t) = registry.get_template(name) {
            let rewritten = rewrite(t, list);
            registry.register_template(name, rewritten);
        }
    }
    r
}

fn rewrite(t: &Template, list: &List) -> Template {
    let mut out = t.clone();
    for i in 0..out.elements.len() {
        let space = match (&out.elements[i], out.elements.get(i + 1)) {
            (
                TemplateElement::HelperBlock(h),
                Some(TemplateElement::Expression(x) | TemplateElement::HtmlExpression(x)),
            ) => space_before(h, x, list),
            _ => None,
        };
        if let Some(slot) = space {
            let mut marker = Template::compile(&format!("{{{{utskick_space.s{slot}}}}}"))
                .expect("a plain expression");
            out.elements[i] = marker.elements.remove(0);
        } else if let TemplateElement::HelperBlock(h) = &mut out.elements[i] {
            if !matches!(show(&h.name).as_str(), "each" | "with") {
                for inner in [&mut h.template, &mut h.inverse].into_iter().flatten() {
                    *inner = rewrite(inner, list);
                }
            }
        }
    }
    out
}

/// The slot of `x` when `h` is `{{#if x}} {{/if}}` and `x` a recipient's
/// field as a plain path.
fn space_before(h: &HelperTemplate, x: &HelperTemplate, list: &List) -> Option<usize> {
    let plain = h.block
        && show(&h.name) == "if"
        && h.params.len() == 1
        && h.hash.is_empty()
        && h.inverse.is_none()
        && x.params.is_empty()
        && x.hash.is_empty()
        && h.template.as_ref()?.elements == [TemplateElement::RawString(" ".into())];
    let field = show(&h.params[0]);
    if !plain || field != show(&x.name) {
        return None;
    }
    match field.as_str() {
        "name" => Some(NAME),
        "first_name" => Some(FIRST_NAME),
        "email" => Some(EMAIL),
        "unsubscribe_url" => Some(UNSUBSCRIBE_URL),
        "unsubscribe_mailto" => Some(UNSUBSCRIBE_MAILTO),
        "reply_to" => Some(REPLY_TO),
        "archive_url" => Some(ARCHIVE_URL),
        _ => {
            let key = field.strip_prefix("attributes.")?;
            let i = list.attributes.iter().position(|a| a == key)?;
            Some(ATTRIBUTE + i)
        }
    }
}

pub(super) fn compile(p: &Prepared, list: &List) -> Result<(Vec<Variant>, Vec<usize>), Fallback> {
    let registries = spaced(p, list);
    let mut syntax = Syntax::default();
    for (name, html) in TEMPLATES {
        let registry = if html {
            &registries.html
        } else {
            &registries.plain
        };
        let origin = p.origins.get(name).cloned().unwrap_or_default();
        let Some(t) = registry.get_template(name) else {
            continue;
        };
        scan(t, name, &origin, list, &mut syntax)?;
    }
    let mut variants = Vec::with_capacity(1 << syntax.varied.len());
    for index in 0..1 << syntax.varied.len() {
        let v = variant(p, &registries, list, index, &syntax)?;
        check(p, list, index, &v, &syntax.varied)?;
        variants.push(v);
    }
    Ok((variants, syntax.varied))
}

/// Renders every template with markers for the variant `index`.
fn variant(
    p: &Prepared,
    registries: &Registries,
    list: &List,
    index: usize,
    syntax: &Syntax,
) -> Result<Variant, Fallback> {
    let empty = |slot: usize| is_empty(&syntax.varied, index, slot);
    let value = |slot: usize| {
        if empty(slot) {
            String::new()
        } else {
            marker(slot)
        }
    };
    let attributes: BTreeMap<String, String> = list
        .attributes
        .iter()
        .enumerate()
        .map(|(i, a)| (a.clone(), value(ATTRIBUTE + i)))
        .collect();
    let (name, email, url, mailto, reply, archive) = (
        value(NAME),
        value(EMAIL),
        marker(UNSUBSCRIBE_URL),
        marker(UNSUBSCRIBE_MAILTO),
        marker(REPLY_TO),
        value(ARCHIVE_URL),
    );
    let r = Recipient {
        email: &email,
        name: &name,
        attributes: &attributes,
        unsubscribe_url: &url,
        unsubscribe_mailto: &mailto,
        reply_to: &reply,
        archive_url: &archive,
    };
    let mut data = p.fields(list, &r);
    data["first_name"] = Value::String(value(FIRST_NAME));
    let spaces: serde_json::Map<String, Value> = (0..ATTRIBUTE + list.attributes.len())
        .map(|slot| {
            (
                format!("s{slot}"),
                Value::String(format!("{OPEN}s{slot}&{CLOSE}")),
            )
        })
        .collect();
    data["utskick_space"] = Value::Object(spaces);
    let failed = |name: &str, e: &dyn std::fmt::Display| Fallback {
        file: p.origins.get(name).cloned().unwrap_or_default().0,
        line: None,
        why: Why::Unexpected(format!("rendering with slots failed: {e}")),
    };
    let render = |html: bool, name: &'static str, data: &Value| {
        let registry = if html {
            &registries.html
        } else {
            &registries.plain
        };
        registry.render(name, data).map_err(|e| failed(name, &e))
    };
    let parse = |name: &str, text: &str| {
        pieces(text).ok_or_else(|| Fallback {
            why: Why::MarkerCharacter,
            ..failed(name, &"")
        })
    };
    let subject = parse(SUBJECT, &render(false, SUBJECT, &data)?)?;
    let preheader = parse(PREHEADER, &render(false, PREHEADER, &data)?)?;
    let body_html = render(true, BODY_HTML, &data)?;
    let raw_txt = render(false, BODY_TXT, &data)?;
    tidy_is_exact(&raw_txt).map_err(|why| Fallback {
        file: p.origins.get(BODY_TXT).cloned().unwrap_or_default().0,
        line: None,
        why,
    })?;
    let body_txt = tidy_text(&raw_txt);
    let footnotes = render(false, FOOTNOTES, &data)?;
    // What the layouts see: a field derived from slots is a slot itself
    // (the subject and preheader, made per copy), or text with markers.
    let as_seen = |pieces: &[Piece], slot: usize, text: String| {
        if has_slot(pieces) {
            marker(slot)
        } else {
            text
        }
    };
    let subject_text = address::header_safe(&render(false, SUBJECT, &data)?);
    let preheader_text = address::header_safe(&render(false, PREHEADER, &data)?);
    let derived = [
        ("subject", subject.clone()),
        ("preheader", preheader.clone()),
        ("footnotes", parse(FOOTNOTES, &footnotes)?),
        ("body", parse(BODY_TXT, &body_txt)?),
        ("body", parse(BODY_HTML, &body_html)?),
    ];
    for (field, what) in &syntax.derived {
        let decides = field.is_empty()
            || derived
                .iter()
                .any(|(f, pieces)| f == field && has_slot(pieces) && !surely_not_empty(pieces));
        if decides {
            return Err(what.clone());
        }
    }
    let map = data.as_object_mut().expect("an object");
    map.insert(
        "subject".into(),
        Value::String(as_seen(&subject, SUBJECT_SLOT, subject_text)),
    );
    map.insert(
        "preheader".into(),
        Value::String(as_seen(&preheader, PREHEADER_SLOT, preheader_text)),
    );
    map.insert("footnotes".into(), Value::String(footnotes));
    map.insert("body".into(), Value::String(body_html));
    let html = parse(LAYOUT_HTML, &render(true, LAYOUT_HTML, &data)?)?;
    data["body"] = Value::String(body_txt);
    let text = parse(LAYOUT_TXT, &render(false, LAYOUT_TXT, &data)?)?;
    Ok(Variant {
        subject,
        preheader,
        text,
        html,
    })
}

/// `tidy_text` reads the text body's lines: a heading's rule is as wide as
/// the line above it, and empty lines fold. Both are the same for every
/// copy only if no rule sits under (or on) a line with a slot, and no line
/// is made of slots alone (it may fill empty).
fn tidy_is_exact(text: &str) -> Result<(), Why> {
    let mut last_has_slot = false;
    let mut last_empty = false;
    for line in text.split('\n') {
        let slot = line.contains(OPEN);
        if line.contains(RULE_MARK) {
            if slot || last_has_slot {
                return Err(Why::HeadingWithField);
            }
            last_has_slot = false;
            last_empty = false;
            continue;
        }
        let outside: String = pieces(line)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t),
                _ => None,
            })
            .collect();
        if slot && outside.is_empty() {
            return Err(Why::LineOfFields);
        }
        if line.is_empty() && last_empty {
            continue;
        }
        last_has_slot = slot;
        last_empty = line.is_empty();
    }
    Ok(())
}

/// Whether variant `index` is the one where `slot` is empty.
fn is_empty(varied: &[usize], index: usize, slot: usize) -> bool {
    varied
        .iter()
        .position(|s| *s == slot)
        .is_some_and(|bit| index & (1 << bit) != 0)
}

/// Renders a sample recipient of variant `index` both ways; a difference
/// (which would be a flaw here) keeps the campaign per recipient.
fn check(
    p: &Prepared,
    list: &List,
    index: usize,
    v: &Variant,
    varied: &[usize],
) -> Result<(), Fallback> {
    let empty = |slot: usize| is_empty(varied, index, slot);
    let name = match (empty(NAME), empty(FIRST_NAME)) {
        (true, _) => "",
        (false, true) => " ",
        (false, false) => "Ann-Sofi \"Sofi\" Åberg & <Co>",
    };
    // An empty attribute is missing, or "" every other one: the same to
    // `Prepared::fields` and to `values`.
    let attributes: BTreeMap<String, String> = list
        .attributes
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match empty(ATTRIBUTE + i) {
            true => (i % 2 == 1).then(|| (a.clone(), String::new())),
            false => Some((a.clone(), format!("{a} <'&'> å"))),
        })
        .collect();
    let r = Recipient {
        email: if empty(EMAIL) {
            ""
        } else {
            "a.o'b=c@example.se"
        },
        name,
        attributes: &attributes,
        unsubscribe_url: "https://example.se/unsubscribe/t?a=1&b=2",
        unsubscribe_mailto: "lista-unsubscribe+t@example.se",
        reply_to: "lista-reply+t@example.se",
        archive_url: if empty(ARCHIVE_URL) {
            ""
        } else {
            "https://example.se/archive/lista/1?x=<1>"
        },
    };
    let mut values = values(list.public, &list.attributes, &r);
    if variant_index(varied, &values) != index {
        // No recipient has this combination (a first name without a
        // name, an archive link on a list that is not public).
        return Ok(());
    }
    let filled = texts(v, &mut values);
    let wrong = |what: &str| Fallback {
        file: p.origins.get(LAYOUT_HTML).cloned().unwrap_or_default().0,
        line: None,
        why: Why::Unexpected(format!("{what} that slots do not reproduce")),
    };
    match p.render(list, &r) {
        Ok(want)
            if [&want.subject, &want.text, &want.html]
                .iter()
                .any(|t| t.contains([OPEN, CLOSE])) =>
        {
            Err(Fallback {
                file: p.origins.get(SUBJECT).cloned().unwrap_or_default().0,
                line: None,
                why: Why::MarkerCharacter,
            })
        }
        Ok(want) if want.subject != filled.subject => Err(wrong("a subject")),
        Ok(want) if want.text != filled.text => Err(wrong("a text part")),
        Ok(want) if want.html != filled.html => Err(wrong("an HTML part")),
        Ok(_) => Ok(()),
        Err((name, e)) => Err(Fallback {
            file: p.origins.get(name).cloned().unwrap_or_default().0,
            line: None,
            why: Why::Unexpected(format!("a sample recipient does not render: {e}")),
        }),
    }
}
