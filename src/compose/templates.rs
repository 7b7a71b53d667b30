//! Handlebars templates for system mails: a subject, a text and an HTML
//! variant per mail and language, from `templates_dir/<lang>/NAME.*.hbs`,
//! with a list's own copy in `templates_dir/<lang>/<list-id>/` taking
//! precedence, and the shipped Swedish and English ones built in as the
//! fallback so the binary works from any directory.
//!
//! Templates are compiled once at start, so a syntax error stops the daemon
//! with the file name instead of surfacing when a mail is due.

use std::collections::HashMap;
use std::path::Path;

use handlebars::Handlebars;
use serde_json::Value;

use crate::daemon::lists::{Language, Lists};

/// The system mails, by template name.
pub const SYSTEM_MAILS: &[&str] = &[
    "confirm-subscribe",
    "welcome",
    "already-subscribed",
    "confirm-unsubscribe",
    "goodbye",
    "help",
    "awaiting-approval",
    "approve-request",
    "post-preview",
    "invite",
    "probe",
    "admin-login",
    "moderate-post",
    "post-held",
    "member-setting",
];

const VARIANTS: [&str; 3] = ["subject", "txt", "html"];

macro_rules! builtin {
    ($($lang:literal / $name:literal),* $(,)?) => {
        &[$(
            ($lang, $name, [
                include_str!(concat!("../../templates/", $lang, "/", $name, ".subject.hbs")),
                include_str!(concat!("../../templates/", $lang, "/", $name, ".txt.hbs")),
                include_str!(concat!("../../templates/", $lang, "/", $name, ".html.hbs")),
            ]),
        )*]
    };
}

/// The shipped templates, compiled into the binary.
const BUILTIN: &[(&str, &str, [&str; 3])] = builtin![
    "sv" / "confirm-subscribe",
    "sv" / "welcome",
    "sv" / "already-subscribed",
    "sv" / "confirm-unsubscribe",
    "sv" / "goodbye",
    "sv" / "help",
    "sv" / "awaiting-approval",
    "sv" / "approve-request",
    "sv" / "post-preview",
    "sv" / "invite",
    "sv" / "probe",
    "sv" / "admin-login",
    "sv" / "moderate-post",
    "sv" / "post-held",
    "sv" / "member-setting",
    "en" / "confirm-subscribe",
    "en" / "welcome",
    "en" / "already-subscribed",
    "en" / "confirm-unsubscribe",
    "en" / "goodbye",
    "en" / "help",
    "en" / "awaiting-approval",
    "en" / "approve-request",
    "en" / "post-preview",
    "en" / "invite",
    "en" / "probe",
    "en" / "admin-login",
    "en" / "moderate-post",
    "en" / "post-held",
    "en" / "member-setting",
];

/// A rendered mail, before it becomes a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    /// HTML variants: values escaped.
    html: Handlebars<'static>,
    /// Subject and text variants: no escaping (they are not HTML).
    plain: Handlebars<'static>,
    /// Which key holds (lang, list or "", name).
    keys: HashMap<(String, String, String), String>,
}

impl Templates {
    /// Compiles the templates of every language and every list override.
    pub fn load(dir: &Path, lists: &Lists) -> anyhow::Result<Templates> {
        let mut t = Templates {
            html: Handlebars::new(),
            plain: Handlebars::new(),
            keys: HashMap::new(),
        };
        t.html.set_strict_mode(true);
        t.plain.set_strict_mode(true);
        t.plain.register_escape_fn(handlebars::no_escape);
        for (lang, name, sources) in BUILTIN {
            for (variant, builtin) in VARIANTS.iter().zip(sources) {
                let path = dir.join(lang).join(format!("{name}.{variant}.hbs"));
                let source = read_or(&path, builtin)?;
                t.register(lang, "", name, variant, &source, &path)?;
            }
        }
        for list in lists.iter() {
            let lang = list.language.code();
            for name in SYSTEM_MAILS {
                for variant in VARIANTS {
                    let path = dir
                        .join(lang)
                        .join(&list.id)
                        .join(format!("{name}.{variant}.hbs"));
                    if path.exists() {
                        let source = std::fs::read_to_string(&path)
                            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
                        t.register(lang, &list.id, name, variant, &source, &path)?;
                    }
                }
            }
        }
        Ok(t)
    }

    fn register(
        &mut self,
        lang: &str,
        list: &str,
        name: &str,
        variant: &str,
        source: &str,
        path: &Path,
    ) -> anyhow::Result<()> {
        let key = format!("{lang}/{list}/{name}.{variant}");
        let registry = if variant == "html" {
            &mut self.html
        } else {
            &mut self.plain
        };
        registry
            .register_template_string(&key, source)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))?;
        self.keys
            .insert((lang.into(), list.into(), format!("{name}.{variant}")), key);
        Ok(())
    }

    fn key(&self, lang: Language, list: &str, name: &str, variant: &str) -> anyhow::Result<&str> {
        let lang = lang.code().to_string();
        let file = format!("{name}.{variant}");
        self.keys
            .get(&(lang.clone(), list.to_string(), file.clone()))
            .or_else(|| self.keys.get(&(lang, String::new(), file)))
            .map(String::as_str)
            .ok_or_else(|| anyhow::anyhow!("no template {name}.{variant}"))
    }

    /// Renders system mail `name` for `list` in `lang` with `data`.
    pub fn render(
        &self,
        lang: Language,
        list: &str,
        name: &str,
        data: &Value,
    ) -> anyhow::Result<Rendered> {
        let subject = self
            .plain
            .render(self.key(lang, list, name, "subject")?, data)
            .map_err(|e| {
                anyhow::anyhow!("template {name}.subject: {}", one_line(&e.to_string()))
            })?;
        let text = self
            .plain
            .render(self.key(lang, list, name, "txt")?, data)
            .map_err(|e| anyhow::anyhow!("template {name}.txt: {}", one_line(&e.to_string())))?;
        let html = self
            .html
            .render(self.key(lang, list, name, "html")?, data)
            .map_err(|e| anyhow::anyhow!("template {name}.html: {}", one_line(&e.to_string())))?;
        Ok(Rendered {
            subject: crate::address::header_safe(&subject),
            text,
            html,
        })
    }
}

fn read_or(path: &Path, builtin: &str) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(builtin.to_string()),
        Err(e) => anyhow::bail!("{}: cannot read: {e}", path.display()),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
