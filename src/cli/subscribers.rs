//! `subscribers`: streamed from the daemon (or read here a page at a time)
//! and printed as it comes, so a list of any size fits in memory. The
//! table needs every row for its column widths; csv and json do not.

use std::io::Write as _;

use utskick::admin::{self, Failure, Request, Response, Streamed, SubscriberRow};
use utskick::daemon::config::Config;
use utskick::daemon::context::system_clock;
use utskick::time::{leader_time_of, Zone};

use crate::cli::args::Format;
use crate::cli::print::{
    aligned, attribute_names, csv_line, json_line, subscriber_cells, subscriber_header,
};

pub async fn list(
    config: &Config,
    list: String,
    status: Option<String>,
    format: Format,
) -> Result<(), Failure> {
    let mut printer = RowPrinter::new(format, config.timezone);
    let request = Request::Subscribers {
        list: list.clone(),
        status: status.clone(),
    };
    let answer =
        admin::call_streaming(&config.socket_path(), &request, |item| printer.take(item)).await?;
    match answer {
        // A daemon from before streaming answers with the whole array.
        Some(Ok(Response::Subscribers(rows))) if !printer.headed => printer
            .page(attribute_names(&rows), rows)
            .map_err(anyhow::Error::from)?,
        Some(Ok(_)) => {}
        Some(Err(f)) => return Err(f),
        None => {
            // No daemon: read the store here, a page at a time.
            let ctx = utskick::daemon::build_context(config.clone(), system_clock())?;
            let mut pages = admin::SubscriberPages::new(&ctx, &list, status.as_deref())?;
            printer
                .page(pages.attributes.clone(), Vec::new())
                .map_err(anyhow::Error::from)?;
            while let Some(rows) = pages.next_page()? {
                printer
                    .page(Vec::new(), rows)
                    .map_err(anyhow::Error::from)?;
            }
        }
    }
    printer.finish().map_err(anyhow::Error::from)?;
    std::io::stdout().flush().ok();
    Ok(())
}

/// Prints a streamed subscriber listing in one of the formats.
struct RowPrinter {
    format: Format,
    out: std::io::BufWriter<std::io::Stdout>,
    attributes: Vec<String>,
    /// A head line came (the columns are known).
    headed: bool,
    rows: u64,
    /// The table's rows, kept for the column widths.
    table: Vec<Vec<String>>,
    /// The table shows times in the leader's zone (csv and json keep RFC 3339).
    zone: Zone,
}

impl RowPrinter {
    fn new(format: Format, zone: Zone) -> RowPrinter {
        RowPrinter {
            zone,
            format,
            out: std::io::BufWriter::new(std::io::stdout()),
            attributes: Vec::new(),
            headed: false,
            rows: 0,
            table: Vec::new(),
        }
    }

    fn header(&self) -> Vec<String> {
        subscriber_header(&self.attributes)
    }

    fn cells(&self, r: &SubscriberRow) -> Vec<String> {
        subscriber_cells(r, &self.attributes)
    }

    /// Rows that came together; the head first if none came yet.
    fn page(&mut self, attributes: Vec<String>, rows: Vec<SubscriberRow>) -> std::io::Result<()> {
        if !self.headed {
            self.take(Streamed::Head { attributes })?;
        }
        rows.into_iter()
            .try_for_each(|r| self.take(Streamed::Row(r)))
    }

    fn take(&mut self, item: Streamed) -> std::io::Result<()> {
        match item {
            Streamed::Head { attributes } => {
                self.attributes = attributes;
                self.headed = true;
                match self.format {
                    Format::Csv => writeln!(self.out, "{}", csv_line(&self.header()))?,
                    Format::Json => write!(self.out, "[")?,
                    Format::Table => self.table.push(self.header()),
                }
            }
            Streamed::Row(r) => {
                match self.format {
                    Format::Csv => writeln!(self.out, "{}", csv_line(&self.cells(&r)))?,
                    Format::Json => {
                        let sep = if self.rows == 0 { "\n" } else { ",\n" };
                        write!(self.out, "{sep}  {}", json_line(&r))?;
                    }
                    Format::Table => {
                        let shown = SubscriberRow {
                            subscribed_at: r
                                .subscribed_at
                                .as_deref()
                                .map(|t| leader_time_of(t, self.zone)),
                            ..r
                        };
                        self.table.push(self.cells(&shown))
                    }
                }
                self.rows += 1;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        match self.format {
            Format::Csv => {}
            Format::Json if self.rows == 0 => writeln!(self.out, "]")?,
            Format::Json => writeln!(self.out, "\n]")?,
            Format::Table => {
                self.out.flush()?;
                aligned(&self.table);
            }
        }
        self.out.flush()
    }
}
