//! `continue` tokens: an opaque, integrity-protected pointer into a
//! snapshot of a merged answer that the daemon keeps for a bounded time
//! and number. A token is bound to the call that made it (a digest of the
//! normalized request) by an HMAC-SHA256 keyed with a per-daemon random
//! key: forged, altered, other-call and expired tokens are refused with
//! what to do, and pages of one snapshot concatenate to the whole answer.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Sheet;
use crate::error::OpError;

/// How long a snapshot answers `continue`.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(600);
/// Most snapshots kept (the oldest goes first).
pub const MAX_SNAPSHOTS: usize = 64;
/// Most bytes all snapshots hold together.
pub const MAX_SNAPSHOT_BYTES: usize = 128 << 20;

const VERSION: u8 = 1;
const PAYLOAD: usize = 1 + 16 + 4 + 8;
const TAG: usize = 32;

/// A merged answer kept for its next pages.
#[derive(Debug)]
pub struct Snapshot {
    /// The rows or documents, in order.
    pub sheet: Sheet,
    /// The footer of clusters that failed or were skipped.
    pub failures: String,
    /// Every answering cluster answered from its watch cache.
    pub from_cache: bool,
}

#[derive(Debug)]
struct Kept {
    id: [u8; 16],
    snapshot: Arc<Snapshot>,
    expires: SystemTime,
    bytes: usize,
    /// The call it answers and a hash of its content: a repeated call
    /// whose answer has not changed shares this snapshot.
    digest: [u8; 32],
    content: u64,
}

impl Snapshot {
    fn content_hash(&self) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        self.sheet.hash(&mut h);
        self.failures.hash(&mut h);
        self.from_cache.hash(&mut h);
        h.finish()
    }
}

/// The snapshots behind the tokens of one daemon, and its token key.
pub struct Pages {
    key: [u8; 32],
    kept: Mutex<VecDeque<Kept>>,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a token points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    id: [u8; 16],
    /// First entry of the page.
    pub offset: usize,
    expires: SystemTime,
}

const RESTART: &str = "call again without `continue` to start from the first page";

fn bad(what: &str) -> OpError {
    OpError::InvalidArgument(format!("continue: {what}; {RESTART}"))
}

impl Pages {
    /// A store with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the OS random source works");
        Self {
            key,
            kept: Mutex::new(VecDeque::new()),
        }
    }

    fn mac(&self, payload: &[u8], digest: &[u8; 32]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(payload);
        mac.update(digest);
        mac
    }

    /// Keeps `snapshot`, the answer of the call of `digest` (dropping
    /// expired and the oldest ones beyond the bounds); `None` when it
    /// alone is larger than all may hold. The same call answered with the
    /// same content again shares the snapshot already kept.
    pub fn keep(&self, snapshot: Arc<Snapshot>, digest: &[u8; 32]) -> Option<Cursor> {
        let bytes = snapshot.sheet.bytes();
        if bytes > MAX_SNAPSHOT_BYTES {
            return None;
        }
        let content = snapshot.content_hash();
        let now = SystemTime::now();
        let expires = now + SNAPSHOT_TTL;
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|k| k.expires > now);
        if let Some(at) = kept.iter().position(|k| {
            k.digest == *digest
                && k.content == content
                && k.snapshot.sheet.len() == snapshot.sheet.len()
        }) && let Some(mut same) = kept.remove(at)
        {
            same.expires = expires;
            let id = same.id;
            kept.push_back(same);
            return Some(Cursor {
                id,
                offset: 0,
                expires,
            });
        }
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).ok()?;
        let mut total: usize = kept.iter().map(|k| k.bytes).sum();
        while !kept.is_empty()
            && (kept.len() >= MAX_SNAPSHOTS || total + bytes > MAX_SNAPSHOT_BYTES)
        {
            if let Some(old) = kept.pop_front() {
                total -= old.bytes;
            }
        }
        kept.push_back(Kept {
            id,
            snapshot,
            expires,
            bytes,
            digest: *digest,
            content,
        });
        Some(Cursor {
            id,
            offset: 0,
            expires,
        })
    }

    /// The token for `cursor` moved to `offset`, bound to `digest`.
    pub fn token(&self, cursor: Cursor, offset: usize, digest: &[u8; 32]) -> String {
        let mut payload = Vec::with_capacity(PAYLOAD + TAG);
        payload.push(VERSION);
        payload.extend_from_slice(&cursor.id);
        payload.extend_from_slice(&u32::try_from(offset).unwrap_or(u32::MAX).to_be_bytes());
        let secs = cursor
            .expires
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        payload.extend_from_slice(&secs.to_be_bytes());
        let tag = self.mac(&payload, digest).finalize().into_bytes();
        payload.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(payload)
    }

    /// The snapshot and position `token` points at, when it was issued by
    /// this daemon for the call of `digest` and has not expired.
    pub fn resume(
        &self,
        token: &str,
        digest: &[u8; 32],
    ) -> Result<(Arc<Snapshot>, Cursor), OpError> {
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .filter(|r| r.len() == PAYLOAD + TAG && r[0] == VERSION)
            .ok_or_else(|| bad("this is not a token nskd issued (malformed or cut short)"))?;
        let (payload, tag) = raw.split_at(PAYLOAD);
        self.mac(payload, digest).verify_slice(tag).map_err(|_| {
            bad("this token was issued for another call (other arguments or clusters), was altered, or comes from another nskd replica or from before the daemon restarted (pages stay with the replica that made them); repeat the exact call that gave it, or")
        })?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&payload[1..17]);
        let offset = u32::from_be_bytes(payload[17..21].try_into().expect("4 bytes")) as usize;
        let secs = u64::from_be_bytes(payload[21..29].try_into().expect("8 bytes"));
        let expires = UNIX_EPOCH + Duration::from_secs(secs);
        if expires <= SystemTime::now() {
            return Err(bad(&format!(
                "this token expired (pages are kept {} minutes)",
                SNAPSHOT_TTL.as_secs() / 60
            )));
        }
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let snapshot = kept
            .iter()
            .find(|k| k.id == id)
            .map(|k| k.snapshot.clone())
            .ok_or_else(|| {
                bad(&format!(
                    "the answer behind this token is no longer kept (nskd keeps the {MAX_SNAPSHOTS} newest paged answers)"
                ))
            })?;
        Ok((
            snapshot,
            Cursor {
                id,
                offset,
                expires,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        answer::{Entries, Row},
        ops::Output,
    };

    fn snapshot() -> Arc<Snapshot> {
        Arc::new(Snapshot {
            sheet: Sheet {
                noun: "pods".into(),
                header: vec!["NAME".into()],
                entries: Entries::Rows(vec![Row::new(["a"]), Row::new(["b"])]),
                output: Output::Table,
            },
            failures: String::new(),
            from_cache: false,
        })
    }

    #[test]
    fn tokens_resume_only_their_own_call_unaltered() {
        let pages = Pages::new();
        let cursor = pages.keep(snapshot(), &[1; 32]).unwrap();
        let digest = [7u8; 32];
        let token = pages.token(cursor, 1, &digest);
        let (s, c) = pages.resume(&token, &digest).unwrap();
        assert_eq!((c.offset, s.sheet.len()), (1, 2));
        let other = pages.resume(&token, &[8u8; 32]).unwrap_err().to_string();
        assert!(other.contains("another call"), "{other}");
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        raw[20] ^= 1;
        let altered = pages
            .resume(&URL_SAFE_NO_PAD.encode(&raw), &digest)
            .unwrap_err()
            .to_string();
        assert!(altered.contains("altered"), "{altered}");
        let short = pages.resume(&token[..20], &digest).unwrap_err().to_string();
        assert!(short.contains("malformed"), "{short}");
        let foreign = Pages::new()
            .resume(&token, &digest)
            .unwrap_err()
            .to_string();
        assert!(foreign.contains("without `continue`"), "{foreign}");
    }

    #[test]
    fn a_repeated_call_with_the_same_answer_shares_its_snapshot() {
        let pages = Pages::new();
        let first = pages.keep(snapshot(), &[1; 32]).unwrap();
        let again = pages.keep(snapshot(), &[1; 32]).unwrap();
        assert_eq!(first.id, again.id, "same call, same rows: one snapshot");
        let other_call = pages.keep(snapshot(), &[2; 32]).unwrap();
        assert_ne!(first.id, other_call.id);
        let mut changed = Snapshot {
            sheet: snapshot().sheet.clone(),
            failures: String::new(),
            from_cache: false,
        };
        changed.sheet.entries = Entries::Rows(vec![Row::new(["a"]), Row::new(["c"])]);
        let changed = pages.keep(Arc::new(changed), &[1; 32]).unwrap();
        assert_ne!(
            first.id, changed.id,
            "changed rows: a snapshot of their own"
        );
        assert_eq!(pages.kept.lock().unwrap().len(), 3);
    }

    #[test]
    fn expired_and_evicted_snapshots_say_so() {
        let pages = Pages::new();
        let digest = [1u8; 32];
        let mut cursor = pages.keep(snapshot(), &[1; 32]).unwrap();
        cursor.expires = SystemTime::now() - Duration::from_secs(1);
        let e = pages
            .resume(&pages.token(cursor, 1, &digest), &digest)
            .unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
        let first = pages.keep(snapshot(), &[1; 32]).unwrap();
        for i in 0..MAX_SNAPSHOTS {
            pages.keep(snapshot(), &[i as u8 + 2; 32]).unwrap();
        }
        let e = pages
            .resume(&pages.token(first, 1, &digest), &digest)
            .unwrap_err();
        assert!(e.to_string().contains("no longer kept"), "{e}");
    }
}
