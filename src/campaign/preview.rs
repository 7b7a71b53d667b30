//! Seeing a campaign before it goes: a preview rendered here for the list's
//! sample person, and one test copy queued to an address.

use crate::address;
use crate::campaign::addressee::{Addressee, Copy};
use crate::campaign::CampaignError;
use crate::compose::compiled::{CompiledOr, Fallback};
use crate::compose::error::AuthoringError;
use crate::compose::mime::Prepared;
use crate::daemon::config::Config;
use crate::daemon::context::Context;
use crate::daemon::lists::{list_address, List};
use crate::store::Content;
use crate::store::RECORD_VERSION;

/// A campaign's content ready to show, as the list's sample person gets it.
pub struct Preview<'l> {
    list: &'l List,
    /// Compiled as the sender compiles it, so the preview is the copy the
    /// sender makes and can say how it is made.
    prepared: CompiledOr,
    to: Addressee<'static>,
    domain: String,
}

impl<'l> Preview<'l> {
    /// Compiles the content and the list's templates.
    pub fn new(
        config: &Config,
        list: &'l List,
        content: &Content,
    ) -> Result<Preview<'l>, AuthoringError> {
        Ok(Preview {
            list,
            prepared: Prepared::new(content, list, &config.templates_dir)?.compile(list),
            to: Addressee::new(config, list, Copy::Preview),
            domain: config.domain.clone(),
        })
    }

    /// The whole message, dated now (unsigned).
    pub fn message(&self) -> anyhow::Result<Vec<u8>> {
        let date = chrono::Local::now().fixed_offset();
        self.prepared.message(
            self.list,
            &self.to.recipient(),
            &self.to.envelope(date, &self.domain),
            None,
        )
    }

    /// The HTML part alone.
    pub fn html(&self) -> anyhow::Result<String> {
        self.prepared
            .prepared()
            .html(self.list, &self.to.recipient())
    }

    /// Why the copies would be rendered per recipient (the template and
    /// its construct); `None` when the campaign is sent compiled.
    pub fn fallback(&self) -> Option<&Fallback> {
        self.prepared.fallback()
    }
}

/// Queues one copy of `content` to `to` as a test (`preview --to`). Its
/// links carry no valid token: a test copy cannot unsubscribe anyone.
pub fn send_test(
    ctx: &Context,
    list: &List,
    content: &Content,
    to: &str,
) -> Result<String, CampaignError> {
    if !address::is_valid(to) {
        return Err(CampaignError::NotAnAddress(to.to_string()));
    }
    let prepared = Prepared::new(content, list, &ctx.config.templates_dir)?;
    let d = &ctx.config.domain;
    let now = ctx.now();
    let said = ctx.store.write(|tx| {
        let id = tx.next_id()?;
        let copy = Addressee::new(&ctx.config, list, Copy::Test { to, id });
        let raw = prepared.message(
            list,
            &copy.recipient(),
            &copy.envelope(now.fixed_offset(), d),
            ctx.dkim.as_ref(),
        )?;
        tx.enqueue_mail(&crate::store::OutMail {
            v: RECORD_VERSION,
            id,
            reverse_path: list_address(list, "bounces", None, d),
            forward_path: vec![to.to_string()],
            raw,
            attempts: 0,
            next_attempt: 0,
            created_at: now,
            last_error: None,
        });
        Ok(format!("test copy queued to {to}"))
    })?;
    Ok(said)
}
