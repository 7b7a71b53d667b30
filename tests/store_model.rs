//! The store against an in-memory model: random sequences of writes,
//! failed writes, syncs and close-and-reopen, with seeded randomness so a
//! failing seed can be replayed (`STORE_MODEL_SEED=n`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use utskick::store::{Status, Store, Subscriber};

const LISTS: [&str; 2] = ["lf", "ps"];
const OPS: usize = 300;

fn email(i: u32) -> String {
    format!("p{i}@Example.se")
}

/// sled's flusher thread lets go of the file lock a moment after the last
/// handle is dropped; a new process never sees this, a reopen in the same
/// process can.
fn reopen(path: &std::path::Path) -> Store {
    for _ in 0..200 {
        if let Ok(s) = Store::open(path) {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Store::open(path).unwrap()
}

fn run(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    // (list, lower-case email) -> (id, status, name)
    let mut model: BTreeMap<(String, String), (u64, Status, String)> = BTreeMap::new();
    let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for step in 0..OPS {
        match rng.gen_range(0..11) {
            // Upsert one subscriber.
            0..=4 => {
                let list = LISTS[rng.gen_range(0..2)];
                let e = email(rng.gen_range(0..30));
                let key = (list.to_string(), e.to_lowercase());
                let status = [
                    Status::Pending,
                    Status::Confirmed,
                    Status::Unsubscribed,
                    Status::Bounced,
                ][rng.gen_range(0..4)];
                let name = format!("n{step}");
                let id = model.get(&key).map(|v| v.0).unwrap_or(step as u64 + 1_000);
                store
                    .write(|tx| {
                        let mut s = Subscriber::new(id, list, &e, &name, status, now);
                        if let Some(old) = tx.subscriber(list, &e)? {
                            s.created_at = old.created_at;
                        }
                        // Twice in one write, the first time with another
                        // status: only the last counts.
                        let mut first = s.clone();
                        first.status = Status::AwaitingApproval;
                        tx.put_subscriber(&first);
                        tx.put_subscriber(&s);
                        Ok(())
                    })
                    .unwrap();
                model.insert(key, (id, status, name));
            }
            // A write that fails half-way changes nothing.
            5 => {
                let list = LISTS[rng.gen_range(0..2)];
                let e = email(rng.gen_range(0..30));
                let r: anyhow::Result<()> = store.write(|tx| {
                    tx.put_subscriber(&Subscriber::new(
                        9_999_999,
                        list,
                        &e,
                        "ghost",
                        Status::Confirmed,
                        now,
                    ));
                    anyhow::bail!("refused")
                });
                assert!(r.is_err());
            }
            // Sync.
            6..=7 => rt.block_on(store.sync()).unwrap(),
            // Close after a sync and reopen: everything synced is there.
            8 => {
                rt.block_on(store.sync()).unwrap();
                drop(store);
                store = reopen(dir.path());
            }
            // Forget an address in every list.
            10 => {
                let e = email(rng.gen_range(0..30));
                store
                    .write(|tx| Ok(tx.forget(&e, b"hash", now).map(drop)?))
                    .unwrap();
                model.retain(|(_, m), _| *m != e.to_lowercase());
            }
            // Read back by id.
            _ => {
                if let Some(((list, e), (id, status, name))) =
                    model.iter().nth(rng.gen_range(0..model.len().max(1)))
                {
                    let s = store
                        .subscriber_by_id(*id)
                        .unwrap()
                        .unwrap_or_else(|| panic!("seed {seed} step {step}: id {id} lost"));
                    assert_eq!(
                        (&s.list, s.email.to_lowercase(), s.status, &s.name),
                        (list, e.clone(), *status, name),
                        "seed {seed} step {step}"
                    );
                }
            }
        }
        // The whole store equals the model after every step.
        for list in LISTS {
            let got: Vec<(String, Status, String)> = store
                .subscribers(list)
                .unwrap()
                .into_iter()
                .map(|s| (s.email.to_lowercase(), s.status, s.name))
                .collect();
            let want: Vec<(String, Status, String)> = model
                .iter()
                .filter(|((l, _), _)| l == list)
                .map(|((_, e), (_, st, n))| (e.clone(), *st, n.clone()))
                .collect();
            assert_eq!(got, want, "seed {seed} step {step} list {list}");
            // The stored tallies agree with the records.
            let mut counted: std::collections::HashMap<Status, usize> = Default::default();
            for (_, st, _) in &want {
                *counted.entry(*st).or_default() += 1;
            }
            assert_eq!(
                store.counts(list).unwrap(),
                counted,
                "seed {seed} step {step} list {list}: tallies"
            );
        }
    }
}

#[test]
fn the_store_matches_its_model_over_many_seeds() {
    if let Ok(seed) = std::env::var("STORE_MODEL_SEED") {
        run(seed.parse().unwrap());
        return;
    }
    for seed in 0..20 {
        run(seed);
    }
}
