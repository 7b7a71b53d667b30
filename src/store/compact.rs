//! The binary form of a delivery record: a campaign's recipients are
//! frozen into these when it starts, one per recipient, and the worker
//! reads them back in key order for every copy it sends. JSON would be a
//! parse per copy; this is a few length-prefixed fields.
//!
//! Layout (integers little-endian): `TAG`, format version (1), state,
//! attempts (u32), next_attempt (i64), done_at (i64 milliseconds,
//! `i64::MIN` for none), flags (u8: 1 bounced, 2 warned), last_error (flag u8, then a
//! string), the frozen recipient (flag u8, then email, name, the number
//! of attributes as u32, and each name and value). A string is its length
//! (u32) and its UTF-8 bytes. A record that starts with `{` is the JSON
//! of the versions before this format, and is still read.

use chrono::{DateTime, Utc};

use crate::store::error::{Result, StoreError};
use crate::store::keys::decode;
use crate::store::records::{Delivery, DeliveryState, Frozen, RECORD_VERSION};

/// The first byte of a binary delivery (never `{`).
const TAG: u8 = 0xD1;
/// The layout this build writes; a newer one is refused, not misread.
const FORMAT: u8 = 1;

fn state_byte(s: DeliveryState) -> u8 {
    match s {
        DeliveryState::Pending => 0,
        DeliveryState::Deferred => 1,
        DeliveryState::Sent => 2,
        DeliveryState::Failed => 3,
        DeliveryState::Skipped => 4,
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The delivery as stored (its campaign and subscriber are its key).
pub(crate) fn encode_delivery(d: &Delivery) -> Vec<u8> {
    let to_len = d.to.as_ref().map_or(0, |t| {
        t.email.len()
            + t.name.len()
            + t.attributes
                .iter()
                .map(|(k, v)| k.len() + v.len() + 8)
                .sum::<usize>()
            + 12
    });
    let mut out = Vec::with_capacity(32 + to_len + d.last_error.as_ref().map_or(0, String::len));
    out.push(TAG);
    out.push(FORMAT);
    out.push(state_byte(d.state));
    out.extend_from_slice(&d.attempts.to_le_bytes());
    out.extend_from_slice(&d.next_attempt.to_le_bytes());
    let done = d.done_at.map_or(i64::MIN, |t| t.timestamp_millis());
    out.extend_from_slice(&done.to_le_bytes());
    out.push(u8::from(d.bounced) | u8::from(d.warned) << 1);
    match &d.last_error {
        Some(e) => {
            out.push(1);
            put_str(&mut out, e);
        }
        None => out.push(0),
    }
    match &d.to {
        Some(t) => put_to(
            &mut out,
            &t.email,
            &t.name,
            t.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ),
        None => out.push(0),
    }
    out
}

/// The frozen recipient's part of a delivery: present, then email, name
/// and the attributes.
fn put_to<'a>(
    out: &mut Vec<u8>,
    email: &str,
    name: &str,
    attributes: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) {
    out.push(1);
    put_str(out, email);
    put_str(out, name);
    out.extend_from_slice(&(attributes.len() as u32).to_le_bytes());
    for (k, v) in attributes {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Appends to `out` what [`encode_delivery`] makes of a fresh pending
/// delivery to this recipient (no attempt, no error), from borrowed
/// parts: the fixing of recipients encodes each one straight from the
/// subscriber record's bytes. `attributes` in name order.
pub(crate) fn encode_pending_into<'a>(
    out: &mut Vec<u8>,
    email: &str,
    name: &str,
    attributes: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
) {
    out.push(TAG);
    out.push(FORMAT);
    out.push(state_byte(DeliveryState::Pending));
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0i64.to_le_bytes());
    out.extend_from_slice(&i64::MIN.to_le_bytes());
    out.push(0);
    out.push(0);
    put_to(out, email, name, attributes);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(StoreError::Corrupt("a delivery record is cut short".into()));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(a))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| StoreError::Corrupt("a delivery record holds bad UTF-8".into()))
    }
}

/// The campaign and subscriber of a delivery key.
fn ids_of(key: &[u8]) -> Result<(u64, u64)> {
    if key.len() != 16 {
        return Err(StoreError::Corrupt("a delivery key is not 16 bytes".into()));
    }
    let mut c = [0u8; 8];
    let mut s = [0u8; 8];
    c.copy_from_slice(&key[..8]);
    s.copy_from_slice(&key[8..]);
    Ok((u64::from_be_bytes(c), u64::from_be_bytes(s)))
}

/// Reads a delivery stored under `key`, binary or (from before frozen
/// recipients) JSON.
pub(crate) fn decode_delivery(key: &[u8], bytes: &[u8]) -> Result<Delivery> {
    if bytes.first() != Some(&TAG) {
        return decode(bytes);
    }
    let (campaign, subscriber) = ids_of(key)?;
    let mut r = Reader { bytes: &bytes[1..] };
    let format = r.u8()?;
    if format > FORMAT {
        return Err(StoreError::TooNew {
            found: u32::from(format),
            supported: u32::from(FORMAT),
        });
    }
    let state = match r.u8()? {
        0 => DeliveryState::Pending,
        1 => DeliveryState::Deferred,
        2 => DeliveryState::Sent,
        3 => DeliveryState::Failed,
        4 => DeliveryState::Skipped,
        n => return Err(StoreError::Corrupt(format!("delivery state {n}"))),
    };
    let attempts = r.u32()?;
    let next_attempt = r.i64()?;
    let done_at = match r.i64()? {
        i64::MIN => None,
        ms => DateTime::<Utc>::from_timestamp_millis(ms),
    };
    let flags = r.u8()?;
    let (bounced, warned) = (flags & 1 != 0, flags & 2 != 0);
    let last_error = match r.u8()? {
        0 => None,
        _ => Some(r.string()?),
    };
    let to = match r.u8()? {
        0 => None,
        _ => {
            let email = r.string()?;
            let name = r.string()?;
            let n = r.u32()?;
            let mut attributes = std::collections::BTreeMap::new();
            for _ in 0..n {
                let k = r.string()?;
                attributes.insert(k, r.string()?);
            }
            Some(Frozen {
                email,
                name,
                attributes,
            })
        }
    };
    Ok(Delivery {
        v: RECORD_VERSION,
        campaign,
        subscriber,
        state,
        attempts,
        next_attempt,
        last_error,
        done_at,
        bounced,
        warned,
        to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::delivery_key;

    #[test]
    fn a_delivery_reads_back_as_written_and_old_json_still_reads() {
        let mut d = Delivery {
            v: RECORD_VERSION,
            campaign: 7,
            subscriber: u64::MAX - 3,
            state: DeliveryState::Deferred,
            attempts: 2,
            next_attempt: 1_800_000_000,
            last_error: Some("451 4.7.1 försök igen".into()),
            done_at: DateTime::from_timestamp_millis(1_700_000_000_123),
            bounced: true,
            warned: true,
            to: Some(Frozen {
                email: "åsa@exempel.se".into(),
                name: "Åsa Ö".into(),
                attributes: [("region".to_string(), "Jämtland".to_string())].into(),
            }),
        };
        let key = delivery_key(d.campaign, d.subscriber);
        assert_eq!(decode_delivery(&key, &encode_delivery(&d)).unwrap(), d);
        d.to = None;
        d.last_error = None;
        d.done_at = None;
        assert_eq!(decode_delivery(&key, &encode_delivery(&d)).unwrap(), d);
        let json = br#"{"v":1,"campaign":7,"subscriber":9,"state":"pending","attempts":0,"next_attempt":0,"last_error":null,"done_at":null}"#;
        let old = decode_delivery(&delivery_key(7, 9), json).unwrap();
        assert_eq!(old.state, DeliveryState::Pending);
        assert_eq!(old.to, None);
        let mut newer = encode_delivery(&d);
        newer[1] = FORMAT + 1;
        assert!(matches!(
            decode_delivery(&key, &newer),
            Err(StoreError::TooNew { .. })
        ));
        assert!(decode_delivery(&key, &encode_delivery(&d)[..12]).is_err());
    }

    #[test]
    fn a_pending_delivery_encodes_alike_from_parts() {
        let d = Delivery {
            v: RECORD_VERSION,
            campaign: 7,
            subscriber: 9,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt: 0,
            last_error: None,
            done_at: None,
            bounced: false,
            warned: false,
            to: Some(Frozen {
                email: "åsa@exempel.se".into(),
                name: "Åsa Ö".into(),
                attributes: [
                    ("organisation".to_string(), "Förening 3".to_string()),
                    ("region".to_string(), "Jämtland".to_string()),
                ]
                .into(),
            }),
        };
        let to = d.to.as_ref().unwrap();
        let mut out = b"before".to_vec();
        encode_pending_into(
            &mut out,
            &to.email,
            &to.name,
            to.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        assert_eq!(&out[6..], encode_delivery(&d).as_slice());
    }
}
