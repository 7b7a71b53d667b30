//! Backup and restore: every tree as JSON lines, with the token secret,
//! so a restored store keeps every link in mail already sent working.

use super::{keys::*, Store, RECORD_VERSION};
use chrono::{DateTime, Utc};

/// Version of the backup file format.
pub const BACKUP_VERSION: u64 = 1;

impl Store {
    /// Writes every tree, under the writer lock so the snapshot is
    /// consistent, as JSON lines: a header, then one line per record.
    /// The token secret goes in too: without it, every unsubscribe link in
    /// mail already sent would stop working after a restore.
    pub fn backup(
        &self,
        out: &mut dyn std::io::Write,
        secret: &[u8],
        created: DateTime<Utc>,
    ) -> anyhow::Result<u64> {
        use data_encoding::BASE64;
        let _guard = self.writer();
        let header = serde_json::json!({
            "format": "utskick-backup",
            "version": BACKUP_VERSION,
            "record_version": RECORD_VERSION,
            "created": created.to_rfc3339(),
            "secret": BASE64.encode(secret),
        });
        writeln!(out, "{header}")?;
        let mut n = 0;
        for (name, tree) in TREE_NAMES.iter().zip(&self.inner.trees) {
            // Login links and sessions are a running daemon's, not data:
            // a restored store starts with nobody signed in.
            if *name == TREE_NAMES[T::Workspace as usize] {
                continue;
            }
            for kv in tree.iter() {
                let (k, v) = kv?;
                let line = serde_json::json!({"tree": name, "key": BASE64.encode(&k), "value": BASE64.encode(&v)});
                writeln!(out, "{line}")?;
                n += 1;
            }
        }
        out.flush()?;
        Ok(n)
    }

    /// True when no tree holds a record.
    pub fn is_empty(&self) -> bool {
        self.inner.trees.iter().enumerate().all(|(i, t)| {
            if i == T::Counters as usize {
                // Tallies (all zero in a new store) are bookkeeping, not data.
                t.iter()
                    .keys()
                    .all(|k| k.is_ok_and(|k| k.starts_with(b"\0")))
            } else {
                t.is_empty()
            }
        })
    }

    /// Loads a backup into this (empty) store; returns the secret and the
    /// record count. Checks the whole file before writing anything.
    pub fn restore(&self, input: impl std::io::BufRead) -> anyhow::Result<(Vec<u8>, u64)> {
        use data_encoding::BASE64;
        if !self.is_empty() {
            anyhow::bail!("the store is not empty: restore only into a new data_dir");
        }
        let mut lines = input.lines();
        let header: serde_json::Value = serde_json::from_str(
            &lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("empty backup file"))??,
        )
        .map_err(|e| anyhow::anyhow!("not an utskick backup: {e}"))?;
        if header["format"] != "utskick-backup" {
            anyhow::bail!("not an utskick backup");
        }
        if header["version"].as_u64() != Some(BACKUP_VERSION) {
            anyhow::bail!(
                "backup format version {} is not {BACKUP_VERSION}",
                header["version"]
            );
        }
        let secret = BASE64
            .decode(header["secret"].as_str().unwrap_or_default().as_bytes())
            .map_err(|e| anyhow::anyhow!("bad secret in backup: {e}"))?;
        let mut records = Vec::new();
        for (i, line) in lines.enumerate() {
            let line = line?;
            let v: serde_json::Value =
                serde_json::from_str(&line).map_err(|e| anyhow::anyhow!("line {}: {e}", i + 2))?;
            let t = TREE_NAMES
                .iter()
                .position(|n| v["tree"] == *n)
                .ok_or_else(|| anyhow::anyhow!("line {}: unknown tree {}", i + 2, v["tree"]))?;
            let key = BASE64.decode(v["key"].as_str().unwrap_or_default().as_bytes())?;
            let value = BASE64.decode(v["value"].as_str().unwrap_or_default().as_bytes())?;
            records.push((t, key, value));
        }
        let n = records.len() as u64;
        for chunk in records.chunks(1000) {
            let _guard = self.writer();
            for (t, k, v) in chunk {
                self.inner.trees[*t].insert(k.as_slice(), v.as_slice())?;
            }
        }
        self.flush_durable()?;
        // A backup from before tallies, or one edited by hand: count afresh.
        self.rebuild_tallies()?;
        Ok((secret, n))
    }
}
