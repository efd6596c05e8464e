//! What `helm_list` shows of a release record, kept per record version: a
//! record's content never changes without a new `resourceVersion`, so a
//! fleet-wide list decodes each record once and afterwards costs only the
//! metadata lists. Bounded: past [`MAX_ENTRIES`] the oldest half is dropped.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

use super::answer::ListRow;

/// Most records remembered (about 300 bytes each).
pub const MAX_ENTRIES: usize = 100_000;

/// A record version on a cluster: cluster name, object uid, resourceVersion.
pub type Key = (String, String, String);

#[derive(Debug, Default)]
struct Rows {
    rows: HashMap<Key, ListRow>,
    order: VecDeque<Key>,
}

/// The daemon's decoded release rows (one per daemon, held by its App).
#[derive(Debug, Default)]
pub struct RowCache {
    rows: Mutex<Rows>,
}

impl RowCache {
    /// The row decoded earlier from this record version, if any.
    pub fn get(&self, key: &Key) -> Option<ListRow> {
        self.rows.lock().ok()?.rows.get(key).cloned()
    }

    /// Remembers a row decoded from this record version.
    pub fn put(&self, key: Key, row: ListRow) {
        let Ok(mut r) = self.rows.lock() else { return };
        if r.rows.len() >= MAX_ENTRIES {
            for _ in 0..MAX_ENTRIES / 2 {
                if let Some(old) = r.order.pop_front() {
                    r.rows.remove(&old);
                }
            }
        }
        if r.rows.insert(key.clone(), row).is_none() {
            r.order.push_back(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_resource_version_is_a_new_entry() {
        let row = ListRow {
            name: "web".into(),
            namespace: "a".into(),
            revision: 1,
            updated: String::new(),
            status: "deployed".into(),
            chart: "c".into(),
            chart_version: "1".into(),
            app_version: String::new(),
            problem: None,
        };
        let key = |rv: &str| {
            (
                "test-cluster".to_string(),
                "uid-1".to_string(),
                rv.to_string(),
            )
        };
        let cache = RowCache::default();
        cache.put(key("10"), row.clone());
        assert_eq!(cache.get(&key("10")), Some(row));
        assert_eq!(cache.get(&key("11")), None);
        assert_eq!(RowCache::default().get(&key("10")), None);
    }
}
