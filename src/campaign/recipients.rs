//! Fixing a campaign's recipients when sending starts: each confirmed,
//! matching subscriber of its list gets a pending delivery that holds what
//! a copy needs of them (`store::Frozen`: address, name, attributes), in
//! the store's binary delivery form, so the worker reads no subscriber
//! record per copy.
//!
//! The list is read in address order, [`READ`] records at a time, with
//! only what a delivery needs decoded (`store::Candidate`), into a run of
//! frozen recipients of at most [`RUN_BYTES`]; the run is sorted by
//! subscriber id and written in that order, [`LAND`] deliveries per write
//! (a delivery's key is campaign and subscriber id, and ids are random:
//! written in address order, each insert would land on a random leaf of
//! the deliveries tree, and read it back from the log once the campaign
//! outgrows the cache). A list bigger than one run takes several.
//!
//! The reading takes no lock, so someone may leave, or change, between
//! their reading and their write: a `store::SubscriberWatch`, begun before
//! a run's first read and ended after its last write, records every
//! subscriber record changed meanwhile (up to `store::WATCH_KEYS`, past
//! which it says that everyone changed), and the write of a batch (under
//! the writer lock) reads each of those again by id and decides afresh.
//! A run read after another's writes needs no watch of what changed
//! before: its reading sees it. After their delivery is written, a person who
//! leaves has it dropped by the store, in the write that records their
//! leaving. The campaign stays scheduled until the last batch is in, so
//! a crash in between only means the fixing runs again from the start; it
//! first removes what the last one wrote.

use crate::campaign::matches_by;
use crate::daemon::context::Context;
use crate::store::{
    Campaign, CampaignStatus, Delivery, DeliveryState, Frozen, FrozenRun, Status, Subscriber,
    RECORD_VERSION, WATCH_KEYS,
};

/// Subscriber records read at a time (outside the writer lock).
pub(crate) const READ: usize = 1024;
/// Deliveries written per write (under the writer lock).
pub(crate) const LAND: usize = 1024;
/// The frozen recipients held at once before they are sorted and
/// written: about 140 bytes each, so some 30,000 recipients. 100,000
/// take four runs; each run after the first inserts among the leaves of
/// those before, but reads each of them back once, not once per insert.
/// (With 8 MiB the daemon's peak RSS at 100,000 rose to 61 MB, with
/// 4 MiB to 58; the limit is 64.)
pub(crate) const RUN_BYTES: usize = 4 * 1024 * 1024;

/// Freezes the recipients of `c` and moves it to `sending` (or `done`,
/// when nobody matches). Returns it as stored.
pub(crate) fn start(ctx: &Context, c: Campaign) -> anyhow::Result<Campaign> {
    fix(ctx, c, RUN_BYTES, WATCH_KEYS, |_| {})
}

/// Is a subscriber with these properties a recipient of `c`?
fn wanted<'a>(
    c: &Campaign,
    id: u64,
    status: Status,
    digest: bool,
    attribute: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    status == Status::Confirmed
        && matches_by(attribute, &c.filters)
        // A post: not to its author if they asked for no copy, and to the
        // members who take single posts; a digest to the others.
        && c.post
            .as_ref()
            .is_none_or(|p| p.skip != Some(id) && p.digest == digest)
}

fn still_scheduled(tx: &crate::store::Tx<'_>, id: u64) -> anyhow::Result<bool> {
    // Cancelled (or paused) meanwhile: freeze no more; `steer` dropped
    // what was frozen of a cancelled one.
    Ok(tx
        .campaign(id)?
        .is_some_and(|now| now.status == CampaignStatus::Scheduled))
}

/// `start`, with runs of `run_bytes` and a watch that holds up to
/// `watch_keys` changed records, calling `between` after each run is read
/// and before it is written (tests change the list there).
fn fix(
    ctx: &Context,
    c: Campaign,
    run_bytes: usize,
    watch_keys: usize,
    mut between: impl FnMut(&Context),
) -> anyhow::Result<Campaign> {
    let store = &ctx.store;
    // What an earlier fixing of this campaign wrote (a crash, a pause):
    // its people are read again below, as they are now. A campaign no
    // longer scheduled (paused or cancelled since the caller read it) is
    // not fixed now: were it resumed while the list is read, what the
    // earlier fixing left would be sent as it was.
    loop {
        let removed = store.write_frozen(|tx| {
            if !still_scheduled(tx, c.id)? {
                return Ok(None);
            }
            Ok(Some(tx.remove_deliveries(c.id, LAND)?))
        })?;
        match removed {
            None => return Ok(store.campaign(c.id)?.unwrap_or(c)),
            Some(0) => break,
            Some(_) => {}
        }
    }
    // Did any subscriber record change while the list was read and
    // frozen? If none did, each recipient was read once and nobody left,
    // so the deliveries written are the campaign's total; otherwise they
    // are counted from the store (someone moved and was read twice, or
    // left and had theirs dropped). Begun before the first read.
    let quiet = store.watch_subscribers(0);
    let mut written: u64 = 0;
    let mut run = FrozenRun::default();
    let mut cursor: Option<String> = None;
    let mut read_all = false;
    // A write that found the campaign paused or cancelled: the list was
    // not all frozen, so it must not start even if resumed since (the
    // next round fixes it again, from the start).
    let mut stopped = false;
    'runs: while !read_all {
        // One watch a run: a watch past its limit slows this run alone.
        let watch = store.watch_subscribers(watch_keys);
        while run.size() < run_bytes {
            cursor = store.candidates_after(&c.list, cursor.as_deref(), READ, |s| {
                if wanted(&c, s.id, s.status, s.digest, |k| s.attribute(k)) {
                    run.push(&s);
                }
            })?;
            if cursor.is_none() {
                read_all = true;
                break;
            }
        }
        between(ctx);
        run.sort();
        let mut at = 0;
        while at < run.len() {
            let end = (at + LAND).min(run.len());
            let mut batch: u64 = 0;
            let scheduled = store.write_frozen(|tx| {
                if !still_scheduled(tx, c.id)? {
                    return Ok(false);
                }
                for i in at..end {
                    let e = run.entry(i);
                    if tx.put_frozen(c.id, &e, &watch) {
                        batch += 1;
                        continue;
                    }
                    // Changed since it was read: as it is now.
                    let Some(s) = tx.subscriber_by_id(e.id)? else {
                        continue;
                    };
                    if s.list == c.list
                        && wanted(&c, s.id, s.status, s.digest, |k| {
                            s.attributes.get(k).map(String::as_str)
                        })
                    {
                        tx.put_delivery(&pending(c.id, s));
                        batch += 1;
                    }
                }
                Ok(true)
            })?;
            if !scheduled {
                stopped = true;
                break 'runs;
            }
            written += batch;
            at = end;
        }
        run.clear();
        drop(watch);
    }
    drop(run);
    let now = ctx.now();
    let started = store.write(|tx| {
        let mut fresh = tx.campaign(c.id)?.unwrap_or(c);
        if stopped || fresh.status != CampaignStatus::Scheduled {
            // Paused or cancelled while recipients were being fixed.
            return Ok(fresh);
        }
        // The deliveries stored, which are the sum of the batches only if
        // no subscriber record changed meanwhile (under this write's lock,
        // `quiet` has seen every write before it): someone frozen in an
        // early batch who left before the last had theirs dropped, and
        // must not be waited for; someone who moved was read twice.
        let total = if quiet.saw_any() {
            tx.delivery_count(fresh.id)?
        } else {
            written
        };
        fresh.status = if total == 0 {
            CampaignStatus::Done
        } else {
            CampaignStatus::Sending
        };
        fresh.total = total;
        fresh.started_at = Some(now);
        if total == 0 {
            fresh.finished_at = Some(now);
        }
        tx.put_campaign(&fresh);
        Ok(fresh)
    })?;
    if started.started_at.is_some() {
        tracing::info!(campaign = started.id, list = %started.list, recipients = started.total, "campaign started");
    }
    Ok(started)
}

/// A pending delivery of campaign `campaign` to `s`.
fn pending(campaign: u64, s: Subscriber) -> Delivery {
    Delivery {
        v: RECORD_VERSION,
        campaign,
        subscriber: s.id,
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt: 0,
        last_error: None,
        done_at: None,
        bounced: false,
        warned: false,
        to: Some(Frozen {
            email: s.email,
            name: s.name,
            attributes: s.attributes,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{self, NewCampaign};
    use crate::daemon::config::Config;
    use crate::daemon::context::system_clock;
    use crate::store::{Content, Kind};
    use std::collections::BTreeMap;

    const LIST: &str = "lokal-finansiering";

    fn context(dir: &std::path::Path) -> Context {
        let root = env!("CARGO_MANIFEST_DIR");
        let text = format!(
            "domain = \"lista.example.se\"\nbase_url = \"https://lista.example.se\"\ndata_dir = \"{}\"\nlists_dir = \"{root}/lists\"\ntemplates_dir = \"{root}/templates\"\n",
            dir.join("data").display()
        );
        let config = Config::parse(&text, "t.toml").unwrap();
        crate::daemon::build_context(config, system_clock()).unwrap()
    }

    /// `n` people, ids 1..=n in reverse address order (so the list is
    /// read in another order than it is written), a third of them in
    /// Jämtland.
    fn people(ctx: &Context, n: u64) {
        ctx.store
            .write(|tx| {
                for id in 1..=n {
                    let email = format!("p{:05}@example.org", n - id);
                    let mut s =
                        Subscriber::new(id, LIST, &email, "Namn", Status::Confirmed, ctx.now());
                    let region = if id % 3 == 0 { "Jämtland" } else { "Skåne" };
                    s.attributes.insert("region".into(), region.into());
                    tx.put_subscriber(&s);
                }
                Ok(())
            })
            .unwrap();
    }

    fn queue(ctx: &Context, filters: Vec<(String, String)>) -> Campaign {
        let content = Content {
            kind: Kind::Newsletter,
            source: "a.md".into(),
            subject: "Nytt".into(),
            preheader: String::new(),
            markdown: "Hej {{first_name}}!\n".into(),
            title: String::new(),
            link: None,
            attachments: vec![],
        };
        let new = NewCampaign {
            list: LIST.into(),
            content,
            filters,
            at: None,
            draft: false,
        };
        campaign::create(ctx, new).unwrap()
    }

    /// What an earlier, cut-short fixing of `campaign` left: a delivery
    /// to subscriber 1, who matches no Jämtland filter.
    fn left_by_an_earlier_fixing(ctx: &Context, campaign: u64) {
        ctx.store
            .write(|tx| {
                let s = tx.subscriber_by_id(1)?.unwrap();
                tx.put_delivery(&pending(campaign, s));
                Ok(())
            })
            .unwrap();
    }

    fn ids(ctx: &Context, c: u64) -> Vec<u64> {
        let all = ctx.store.deliveries_after(c, None, usize::MAX).unwrap();
        assert!(all.iter().all(|d| d.state == DeliveryState::Pending));
        all.into_iter().map(|d| d.subscriber).collect()
    }

    /// Runs smaller than the list (each read of `READ` is one), a filter,
    /// and people who leave, change or join between a run's reading and
    /// its writing: each gets a delivery as they are when it is written.
    #[test]
    fn a_change_between_reading_and_writing_is_seen() {
        change_between_reading_and_writing(WATCH_KEYS);
    }

    /// As above, with a watch that holds one changed record and is past
    /// its limit at the second: everyone is read again, with the same
    /// result.
    #[test]
    fn a_watch_past_its_limit_reads_everyone_again() {
        change_between_reading_and_writing(1);
    }

    fn change_between_reading_and_writing(watch_keys: usize) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let n = READ as u64 + 300;
        people(&ctx, n);
        let region = [("region".to_string(), "Jämtland".to_string())];
        let c = queue(&ctx, region.to_vec());
        left_by_an_earlier_fixing(&ctx, c.id);
        let list = ctx.lists.get(LIST).unwrap().clone();
        let mut runs = 0;
        let started = fix(&ctx, c, 1, watch_keys, |ctx| {
            runs += 1;
            // The second run holds the smallest ids: after it is read,
            // 3 leaves; 6 moves away from the filter; 7 moves into it.
            if runs != 2 {
                return;
            }
            let email = |id: u64| format!("p{:05}@example.org", n - id);
            crate::subscription::by_admin::admin_remove(ctx, &list, &email(3)).unwrap();
            ctx.store
                .write(|tx| {
                    for (id, region) in [(6, "Skåne"), (7, "Jämtland")] {
                        let mut s = tx.subscriber_by_id(id)?.unwrap();
                        s.attributes.insert("region".into(), region.into());
                        tx.put_subscriber(&s);
                    }
                    Ok(())
                })
                .unwrap();
        })
        .unwrap();
        assert_eq!(runs, 2, "one run per read");
        let want: Vec<u64> = (1..=n)
            .filter(|id| id % 3 == 0 && *id != 3 && *id != 6)
            .collect();
        let got = ids(&ctx, started.id);
        assert_eq!(got, want, "7 was read before it moved: not a recipient");
        assert_eq!(started.status, CampaignStatus::Sending);
        assert_eq!(started.total, want.len() as u64);
        let d = ctx.store.delivery(started.id, 9).unwrap().unwrap();
        let to = d.to.unwrap();
        assert_eq!(to.email, format!("p{:05}@example.org", n - 9));
        assert_eq!(
            to.attributes,
            BTreeMap::from([("region".to_string(), "Jämtland".to_string())])
        );
    }

    /// With no subscriber record written while the list is read (runs of
    /// one read each, a filter, what a cut-short fixing left), `total` is
    /// the sum of the batches, and it is the deliveries stored; a record
    /// written meanwhile, even one of another list, makes the fixing count
    /// them from the store instead, with the same answer.
    #[test]
    fn total_is_the_deliveries_stored_with_or_without_changes() {
        for change in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let ctx = context(dir.path());
            let n = 3 * READ as u64 + 7;
            people(&ctx, n);
            let c = queue(&ctx, vec![("region".into(), "Jämtland".into())]);
            left_by_an_earlier_fixing(&ctx, c.id);
            let id = c.id;
            let started = fix(&ctx, c, 1, WATCH_KEYS, |ctx| {
                if change {
                    ctx.store
                        .write(|tx| {
                            let s = Subscriber::new(
                                n + 1,
                                "partnerskap",
                                "ny@example.org",
                                "Ny",
                                Status::Confirmed,
                                ctx.now(),
                            );
                            tx.put_subscriber(&s);
                            Ok(())
                        })
                        .unwrap();
                }
            })
            .unwrap();
            let want: Vec<u64> = (1..=n).filter(|id| id % 3 == 0).collect();
            assert_eq!(ids(&ctx, id), want, "change {change}");
            assert_eq!(started.total, want.len() as u64, "change {change}");
            let stored = ctx.store.write(|tx| Ok(tx.delivery_count(id)?)).unwrap();
            assert_eq!(started.total, stored, "change {change}");
        }
    }

    /// Paused while its recipients are fixed: it stops there, and fixed
    /// again when resumed, it has the list as it is then.
    #[test]
    fn a_pause_stops_the_fixing_and_a_resume_starts_it_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        people(&ctx, 40);
        let c = queue(&ctx, vec![]);
        let id = c.id;
        let paused = fix(&ctx, c, RUN_BYTES, WATCH_KEYS, |ctx| {
            campaign::steer(ctx, id, campaign::Steer::Pause).unwrap();
        })
        .unwrap();
        assert_eq!(paused.status, CampaignStatus::Paused);
        assert!(ids(&ctx, id).is_empty());
        campaign::steer(&ctx, id, campaign::Steer::Resume).unwrap();
        let list = ctx.lists.get(LIST).unwrap().clone();
        crate::subscription::by_admin::admin_remove(&ctx, &list, "p00000@example.org").unwrap();
        let c = ctx.store.campaign(id).unwrap().unwrap();
        assert_eq!(c.status, CampaignStatus::Scheduled);
        let started = fix(&ctx, c, RUN_BYTES, WATCH_KEYS, |_| {}).unwrap();
        assert_eq!(started.total, 39);
        assert_eq!(ids(&ctx, id), (1..40).collect::<Vec<u64>>());
    }

    /// Fixed again with what an earlier fixing left (a crash, a pause),
    /// the campaign paused after the worker read it and resumed while the
    /// first run is read: nothing the earlier fixing left may stay, so
    /// nobody who no longer matches gets a copy and `total` is what
    /// matches now.
    #[test]
    fn a_resume_while_the_list_is_read_keeps_nothing_of_the_last_fixing() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        people(&ctx, 30);
        let region = [("region".to_string(), "Jämtland".to_string())];
        let c = queue(&ctx, region.to_vec());
        let id = c.id;
        // What an earlier, cut-short fixing left: 1 and 2, who do not
        // match (any more).
        ctx.store
            .write(|tx| {
                for p in [1, 2] {
                    let s = tx.subscriber_by_id(p)?.unwrap();
                    tx.put_delivery(&pending(id, s));
                }
                Ok(())
            })
            .unwrap();
        // The worker holds `c` as it read it (scheduled); an admin pauses
        // it before its fixing begins, and resumes it while the list is
        // read.
        campaign::steer(&ctx, id, campaign::Steer::Pause).unwrap();
        let started = fix(&ctx, c, RUN_BYTES, WATCH_KEYS, |ctx| {
            campaign::steer(ctx, id, campaign::Steer::Resume).unwrap();
        })
        .unwrap();
        // Not started (paused, or scheduled again) is fine: resumed, the
        // next round fixes it afresh.
        let started = if started.status == CampaignStatus::Sending {
            started
        } else {
            if started.status == CampaignStatus::Paused {
                campaign::steer(&ctx, id, campaign::Steer::Resume).unwrap();
            }
            let c = ctx.store.campaign(id).unwrap().unwrap();
            fix(&ctx, c, RUN_BYTES, WATCH_KEYS, |_| {}).unwrap()
        };
        let want: Vec<u64> = (1..=30).filter(|p| p % 3 == 0).collect();
        assert_eq!(started.status, CampaignStatus::Sending);
        assert_eq!(ids(&ctx, id), want, "1 and 2 match no filter");
        assert_eq!(started.total, want.len() as u64);
    }

    /// Forgotten (erased) between the reading and the writing, before or
    /// after their run is written: no delivery, and no frozen copy of
    /// their address, stays.
    #[test]
    fn a_person_forgotten_while_recipients_are_fixed_gets_nothing() {
        forgotten_while_fixed(WATCH_KEYS);
    }

    fn forgotten_while_fixed(watch_keys: usize) {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let n = READ as u64 + 300;
        people(&ctx, n);
        let c = queue(&ctx, vec![]);
        let email = |id: u64| format!("p{:05}@example.org", n - id);
        let mut runs = 0;
        let started = fix(&ctx, c, 1, watch_keys, |ctx| {
            runs += 1;
            if runs != 2 {
                return;
            }
            // The first run (the highest ids) is written; the second (the
            // lowest) is read, not written.
            for gone in [1, n] {
                crate::people::forget(ctx, &email(gone)).unwrap();
            }
        })
        .unwrap();
        let got = ids(&ctx, started.id);
        assert!(!got.contains(&1) && !got.contains(&n), "forgotten");
        assert_eq!(got.len() as u64, n - 2);
        assert_eq!(started.total, n - 2);
        let all = ctx
            .store
            .deliveries_after(started.id, None, usize::MAX)
            .unwrap();
        assert!(all.iter().all(|d| d
            .to
            .as_ref()
            .is_some_and(|t| t.email != email(1) && t.email != email(n))));
    }

    /// Every entry refused (limit 0, tripped by a change in another
    /// list) gives the same deliveries, byte for byte, as the fast path,
    /// for plain, filtered, post (skip) and digest campaigns.
    #[test]
    fn every_entry_refused_gives_the_same_deliveries() {
        use crate::store::PostMeta;
        for shape in 0..4 {
            let mut got = vec![];
            for limit in [WATCH_KEYS, 0] {
                let dir = tempfile::tempdir().unwrap();
                let ctx = context(dir.path());
                ctx.store
                    .write(|tx| {
                        for id in 1..=60u64 {
                            let status = match id % 7 {
                                0 => Status::Unsubscribed,
                                1 => Status::Pending,
                                _ => Status::Confirmed,
                            };
                            let name = format!("N\"a\\m\u{e5} {id}\n");
                            let mut s = Subscriber::new(
                                id,
                                LIST,
                                &format!("x{id:03}@example.org"),
                                &name,
                                status,
                                ctx.now(),
                            );
                            s.digest = id % 2 == 0;
                            s.attributes.insert(
                                "region".into(),
                                if id % 3 == 0 {
                                    "Jämtland".into()
                                } else {
                                    "Sk\"åne".into()
                                },
                            );
                            if id % 5 == 0 {
                                s.attributes.insert("org".into(), "A\tB".into());
                            }
                            tx.put_subscriber(&s);
                        }
                        let other = Subscriber::new(
                            999,
                            "partnerskap",
                            "z@example.org",
                            "Z",
                            Status::Confirmed,
                            ctx.now(),
                        );
                        tx.put_subscriber(&other);
                        Ok(())
                    })
                    .unwrap();
                let filters = if shape == 1 {
                    vec![("region".to_string(), "Jämtland".to_string())]
                } else {
                    vec![]
                };
                let mut c = queue(&ctx, filters);
                if shape >= 2 {
                    c.post = Some(PostMeta {
                        author: "x010@example.org".into(),
                        skip: Some(10),
                        digest: shape == 3,
                        digested: false,
                    });
                    ctx.store
                        .write(|tx| {
                            tx.put_campaign(&c);
                            Ok(())
                        })
                        .unwrap();
                }
                let started = fix(&ctx, c, RUN_BYTES, limit, |ctx| {
                    ctx.store
                        .write(|tx| {
                            let mut o = tx.subscriber_by_id(999)?.unwrap();
                            o.name = "Y".into();
                            tx.put_subscriber(&o);
                            Ok(())
                        })
                        .unwrap();
                })
                .unwrap();
                let ds: Vec<_> = ctx
                    .store
                    .deliveries_after(started.id, None, usize::MAX)
                    .unwrap()
                    .into_iter()
                    .map(|d| (d.subscriber, format!("{:?}", d.to)))
                    .collect();
                got.push((started.total, ds));
            }
            assert!(!got[0].1.is_empty(), "shape {shape}");
            assert_eq!(got[0], got[1], "shape {shape}");
        }
    }

    /// Forgotten while recipients are fixed, with every entry refused: nothing of them stays.
    #[test]
    fn a_person_forgotten_with_every_entry_refused_gets_nothing() {
        forgotten_while_fixed(0);
    }
}
