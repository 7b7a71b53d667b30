//! Printing answers: tables aligned in columns, RFC 4180 CSV, JSON, and
//! the sentences of the answers that are one line for people.

use serde::Serialize;
use serde_json::Value;
use utskick::address::printable;
use utskick::admin::protocol::{AuditRow, IgnoredRow, ListRow};
use utskick::admin::{Response, SubscriberRow};
use utskick::store::Status;
use utskick::time::{leader_time_of, Zone};

use crate::cli::args::Format;
use crate::cli::say;

/// An answer as the commands that give it print it; a table shows times
/// in the leader's `zone`.
pub fn answer(response: &Response, format: Option<Format>, zone: Zone) {
    match (response, format) {
        (Response::Said(s), _) => println!("{}", say::said(s)),
        (Response::Forgot(f), _) => println!("{}", say::forgot(f)),
        (Response::Lists(rows), _) => lists(rows),
        (r, Some(Format::Json)) => json_pretty(r),
        (Response::Ignored(rows), Some(Format::Table)) => ignored(rows, zone),
        (Response::Ignored(rows), Some(Format::Csv)) => {
            let header = IGNORED_COLUMNS.map(str::to_string);
            println!("{}", csv_line(&header));
            for r in rows {
                println!("{}", csv_line(&ignored_cells(r)));
            }
        }
        (Response::Audit(rows), Some(Format::Table)) => table(&AUDIT_COLUMNS, rows, |r| {
            let mut cells = audit_cells(r);
            cells[0] = leader_time_of(&r.at, zone);
            cells
        }),
        (Response::Audit(rows), Some(Format::Csv)) => {
            println!("{}", csv_line(&AUDIT_COLUMNS.map(str::to_string)));
            for r in rows {
                println!("{}", csv_line(&audit_cells(r)));
            }
        }
        (r, _) => println!("{}", r.to_json()),
    }
}

/// The columns of `audit`, as a table and as CSV.
const AUDIT_COLUMNS: [&str; 4] = ["at", "who", "what", "detail"];

fn audit_cells(r: &AuditRow) -> Vec<String> {
    [&r.at, &r.who, &r.what, &r.detail]
        .map(String::clone)
        .to_vec()
}

/// Pretty JSON, keys in order.
pub fn json_pretty(value: &impl Serialize) {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    println!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

/// One line of JSON, keys in order.
pub fn json_line(value: &impl Serialize) -> String {
    serde_json::to_value(value)
        .unwrap_or(Value::Null)
        .to_string()
}

/// A value's name on the wire (`"open"`, `"newsletter"`).
fn word(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

fn or_empty(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// A table of `rows` under `header`, aligned.
fn table<T>(header: &[&str], rows: &[T], cells: impl Fn(&T) -> Vec<String>) {
    let mut table = vec![header.iter().map(|h| h.to_string()).collect()];
    table.extend(
        rows.iter()
            .map(|r| cells(r).iter().map(|c| printable(c)).collect()),
    );
    aligned(&table);
}

/// The columns of `ignored`, as a table and as CSV.
const IGNORED_COLUMNS: [&str; 6] = ["at", "list", "address", "sender", "reason", "subject"];

fn ignored_cells(r: &IgnoredRow) -> Vec<String> {
    let cells = [&r.at, &r.list, &r.address, &r.sender, &r.reason, &r.subject];
    cells.map(String::clone).to_vec()
}

fn ignored(rows: &[IgnoredRow], zone: Zone) {
    table(&say::ignored_header(), rows, |r| {
        let mut cells = ignored_cells(r);
        cells[0] = leader_time_of(&r.at, zone);
        cells
    });
}

fn lists(rows: &[ListRow]) {
    table(&say::lists_header(), rows, |r| {
        let count = |s: Status| r.counts.get(&s).map(|n| n.to_string()).unwrap_or_default();
        vec![
            r.id.clone(),
            r.address.clone(),
            word(&r.subscription),
            count(Status::Confirmed),
            count(Status::Pending),
            count(Status::AwaitingApproval),
            count(Status::Unsubscribed),
            count(Status::Bounced),
            count(Status::Disabled),
        ]
    });
}

/// The fixed columns of a subscriber listing; the attributes follow.
const SUBSCRIBER_COLUMNS: [&str; 5] = ["email", "name", "status", "bounces", "subscribed_at"];

/// Attribute names across all rows, sorted, for the columns.
pub fn attribute_names(rows: &[SubscriberRow]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .flat_map(|r| r.attributes.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The columns of a subscriber listing: the fixed ones, then `attributes`.
pub fn subscriber_header(attributes: &[String]) -> Vec<String> {
    SUBSCRIBER_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .chain(attributes.iter().cloned())
        .collect()
}

/// One subscriber in those columns.
pub fn subscriber_cells(r: &SubscriberRow, attributes: &[String]) -> Vec<String> {
    let mut row = vec![
        r.email.clone(),
        r.name.clone(),
        r.status.as_str().to_string(),
        r.bounces.to_string(),
        or_empty(&r.subscribed_at),
    ];
    row.extend(
        attributes
            .iter()
            .map(|a| r.attributes.get(a).cloned().unwrap_or_default()),
    );
    row
}

/// Columns padded to their widest cell, two spaces apart.
pub fn aligned(table: &[Vec<String>]) {
    let cols = table.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

/// One RFC 4180 CSV line: fields with a comma, quote or line break are quoted.
pub fn csv_line(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
