//! Reading the templates' syntax: which constructs read a recipient's
//! value, which fields a condition tests; what decides that a campaign is
//! rendered per recipient.

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::Path;

use super::{Fallback, Why, ATTRIBUTE, DERIVED_FIELDS, MAX_TESTED, RECIPIENT_FIELDS, VARIED};
use crate::daemon::lists::List;

/// The fields of a path as a template wrote it (`name`, `this.name`,
/// `../attributes.x`, `@root.email`, `[name]`), the first segment; "" for
/// the whole context (`this`, `.`, `@root`).
pub(super) fn first_segment(raw: &str) -> String {
    let path = without_context(raw);
    match path.as_str() {
        "@root" | "this" | "." | "" => String::new(),
        _ => path
            .split(['.', '/'])
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// A path without its brackets and its leading `this.`, `../`, `@root.`.
pub(super) fn without_context(raw: &str) -> String {
    let cleaned = raw.replace(['[', ']'], "");
    let mut p = cleaned.as_str();
    loop {
        let before = p;
        for prefix in ["@root.", "@root/", "this.", "this/", "../", "./"] {
            p = p.strip_prefix(prefix).unwrap_or(p);
        }
        if p == before {
            break;
        }
    }
    p.to_string()
}

/// Does this parameter read a recipient's value? Returns the field.
pub(super) fn reads(param: &Parameter, fields: &[&str]) -> Option<String> {
    match param {
        Parameter::Path(Path::Relative((_, raw))) => {
            let field = first_segment(raw);
            (field.is_empty() || fields.contains(&field.as_str())).then_some(field)
        }
        Parameter::Subexpression(sub) => match sub.as_element() {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                std::iter::once(&h.name)
                    .chain(&h.params)
                    .chain(h.hash.values())
                    .find_map(|p| reads(p, fields))
            }
            _ => Some(String::new()),
        },
        Parameter::Path(Path::Local(_)) | Parameter::Name(_) | Parameter::Literal(_) => None,
        _ => Some(String::new()),
    }
}

pub(super) fn show(param: &Parameter) -> String {
    match param {
        Parameter::Name(n) => n.clone(),
        Parameter::Path(Path::Relative((_, raw))) | Parameter::Path(Path::Local((_, _, raw))) => {
            raw.clone()
        }
        Parameter::Literal(v) => v.to_string(),
        Parameter::Subexpression(sub) => {
            let params: Vec<String> = sub.params().into_iter().flatten().map(show).collect();
            format!("({} {})", sub.name(), params.join(" "))
        }
        _ => "…".into(),
    }
}

/// The construct as the author wrote it, near enough: `{{#if x.y}}`.
pub(super) fn construct(block: bool, name: &Parameter, params: &[Parameter]) -> String {
    let mut words = vec![show(name)];
    words.extend(params.iter().map(show));
    let hash = if block { "#" } else { "" };
    format!("`{{{{{hash}{}}}}}`", words.join(" "))
}

/// What the syntax of the templates allows: the slots of the fields they
/// test, in the order found, and the derived fields (`subject`, `body`,
/// …) that a layout tests, with where.
#[derive(Default)]
pub(super) struct Syntax {
    pub(super) varied: Vec<usize>,
    pub(super) derived: Vec<(String, Fallback)>,
}

/// Walks one template; `Err` names the first construct that decides by a
/// recipient's value.
pub(super) fn scan(
    t: &Template,
    name: &str,
    origin: &(String, bool),
    list: &List,
    syntax: &mut Syntax,
) -> Result<(), Fallback> {
    for (i, element) in t.elements.iter().enumerate() {
        let line = t.mapping.get(i).map(|m| m.0).filter(|_| origin.1);
        let found = |why: Why| Fallback {
            file: origin.0.clone(),
            line,
            why,
        };
        match element {
            TemplateElement::RawString(_) | TemplateElement::Comment(_) => {}
            TemplateElement::Expression(h)
            | TemplateElement::HtmlExpression(h)
            | TemplateElement::HelperBlock(h) => {
                let params: Vec<&Parameter> = h.params.iter().chain(h.hash.values()).collect();
                let helper = show(&h.name);
                let condition = h.block
                    && matches!(helper.as_str(), "if" | "unless")
                    && h.params.len() == 1
                    && h.hash.is_empty();
                let name_reads = matches!(h.name, Parameter::Subexpression(_))
                    .then(|| reads(&h.name, RECIPIENT_FIELDS))
                    .flatten();
                if let Some(field) = params
                    .iter()
                    .find_map(|p| reads(p, RECIPIENT_FIELDS))
                    .or(name_reads)
                {
                    let tested = match condition {
                        true => tested(&h.params[0], field == "attributes" && h.chain, list),
                        false => None,
                    };
                    let Some(slot) = tested else {
                        return Err(found(Why::Decides(construct(h.block, &h.name, &h.params))));
                    };
                    if !syntax.varied.contains(&slot) {
                        syntax.varied.push(slot);
                        if syntax.varied.len() > MAX_TESTED {
                            let fields = syntax.varied.iter().map(|s| slot_name(*s, list));
                            return Err(found(Why::TooManyTested(fields.collect())));
                        }
                    }
                }
                if name.starts_with("layout") {
                    if let Some(field) = params.iter().find_map(|p| reads(p, DERIVED_FIELDS)) {
                        let what = found(Why::Decides(construct(h.block, &h.name, &h.params)));
                        if !condition || field.is_empty() {
                            // `{{#each this}}`, `{{len body}}`: the whole
                            // or a derived field's text decides.
                            syntax.derived.push((String::new(), what));
                        } else {
                            syntax.derived.push((field, what));
                        }
                    }
                }
                for inner in [&h.template, &h.inverse].into_iter().flatten() {
                    scan(inner, name, origin, list, syntax)?;
                }
            }
            _ => return Err(found(Why::Partial)),
        }
    }
    Ok(())
}

/// The slot of the field a condition's one parameter tests, when it is a
/// plain path to a `VARIED` field or a declared attribute
/// (`attributes.region`); `None` otherwise (`attributes.x` not declared,
/// `attributes` itself, a subexpression, an attribute in an `else if`).
pub(super) fn tested(param: &Parameter, chained: bool, list: &List) -> Option<usize> {
    let Parameter::Path(Path::Relative((_, raw))) = param else {
        return None;
    };
    let field = first_segment(raw);
    if let Some((_, slot)) = VARIED.iter().find(|(f, _)| *f == field) {
        return Some(*slot);
    }
    if chained {
        return None;
    }
    let path = without_context(raw);
    let key = path
        .strip_prefix("attributes.")
        .or_else(|| path.strip_prefix("attributes/"))?;
    if key.contains(['.', '/']) {
        return None;
    }
    let i = list.attributes.iter().position(|a| a == key)?;
    Some(ATTRIBUTE + i)
}

/// A tested field as a template names it.
pub(super) fn slot_name(slot: usize, list: &List) -> String {
    match VARIED.iter().find(|(_, s)| *s == slot) {
        Some((field, _)) => field.to_string(),
        None => format!("attributes.{}", list.attributes[slot - ATTRIBUTE]),
    }
}
