//! `/metrics`: the daemon's counters and gauges in Prometheus text format.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::campaign::progress::progress;
use crate::daemon::context::Context;
use crate::outbound::queue_depth;
use crate::subscription::view::{counts, statuses};

/// Finished campaigns stay on the progress gauge this long.
const FINISHED_CAMPAIGNS_SHOWN: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Prometheus text format, version 0.0.4.
pub(super) async fn metrics(State(ctx): State<Arc<Context>>) -> Response {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    let ctx: &Context = &ctx;
    let m = &ctx.metrics;
    let commits = ctx.commit_stats();
    let mut out = String::new();
    let _ = writeln!(out, "# HELP utskick_subscribers Subscribers by list and status.\n# TYPE utskick_subscribers gauge");
    for list in ctx.lists.iter() {
        let counts = counts(ctx, &list.id).unwrap_or_default();
        for status in statuses() {
            let n = counts.get(status).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "utskick_subscribers{{list=\"{}\",status=\"{status}\"}} {n}",
                list.id,
            );
        }
    }
    for (name, help, v) in [
        (
            "utskick_messages_received_total",
            "Inbound messages accepted for a list address.",
            m.messages_received.load(Relaxed),
        ),
        (
            "utskick_messages_rejected_total",
            "Inbound messages or recipients refused.",
            m.messages_rejected.load(Relaxed),
        ),
        (
            "utskick_messages_ignored_total",
            "Inbound automated messages ignored.",
            m.automated_ignored.load(Relaxed),
        ),
        (
            "utskick_mails_sent_total",
            "Outgoing mails the relay accepted.",
            m.mails_sent.load(Relaxed),
        ),
        (
            "utskick_mails_failed_total",
            "Outgoing mails that failed for good.",
            m.mails_failed.load(Relaxed),
        ),
        (
            "utskick_mails_deferred_total",
            "Outgoing mails deferred for a retry.",
            m.mails_deferred.load(Relaxed),
        ),
        (
            "utskick_store_commits_total",
            "Store group commits (a flush and its fdatasyncs).",
            commits.commits,
        ),
        (
            "utskick_store_commit_callers_total",
            "Syncs that waited for a group commit (requests it acknowledged).",
            commits.callers,
        ),
        (
            "utskick_store_commit_writes_total",
            "Store writes the group commits made durable.",
            commits.writes,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    for (name, help, v) in [
        (
            "utskick_store_flush_seconds_total",
            "Time in the store's flush (sled's write-out).",
            commits.flush_seconds,
        ),
        (
            "utskick_store_fsync_seconds_total",
            "Time in the store's fdatasyncs after each flush.",
            commits.fsync_seconds,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v:.6}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP utskick_queue_depth System mails waiting to be sent.\n# TYPE utskick_queue_depth gauge\nutskick_queue_depth {}",
        queue_depth(ctx)
    );
    let _ = writeln!(out, "# HELP utskick_campaign_recipients Campaign progress by state.\n# TYPE utskick_campaign_recipients gauge");
    for c in progress(ctx, FINISHED_CAMPAIGNS_SHOWN).unwrap_or_default() {
        for (state, n) in [
            ("sent", c.sent),
            ("failed", c.failed),
            ("skipped", c.skipped),
            ("remaining", c.remaining),
        ] {
            let _ = writeln!(
                out,
                "utskick_campaign_recipients{{campaign=\"{}\",list=\"{}\",status=\"{}\",state=\"{state}\"}} {n}",
                c.id, c.list, c.status
            );
        }
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}
