//! Per-conversation call counts for the `[[standin:fail-first=..]]` trigger: how many
//! times a conversation key has been seen, bounded in size.

use std::collections::{HashMap, VecDeque};

/// Most conversation keys remembered; beyond it the oldest key is forgotten (its count
/// starts again from 1 if it comes back).
pub(crate) const MAX_CONVERSATIONS: usize = 10_000;

/// Call counts per key, forgetting the oldest key once more than `cap` are held.
#[derive(Debug)]
pub(crate) struct Attempts {
    counts: HashMap<u128, u64>,
    order: VecDeque<u128>,
    cap: usize,
}

impl Default for Attempts {
    fn default() -> Self {
        Self::with_capacity(MAX_CONVERSATIONS)
    }
}

impl Attempts {
    /// An empty counter holding at most `cap` keys (at least 1).
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            counts: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Counts one more call for `key` and returns its number (1 for the first).
    pub(crate) fn next(&mut self, key: u128) -> u64 {
        if let Some(count) = self.counts.get_mut(&key) {
            *count = count.saturating_add(1);
            return *count;
        }
        while self.counts.len() >= self.cap {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.counts.remove(&oldest);
                }
                None => break,
            }
        }
        self.counts.insert(key, 1);
        self.order.push_back(key);
        1
    }

    /// Number of keys held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.counts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_forgets_the_oldest_when_full() {
        let mut attempts = Attempts::with_capacity(2);
        assert_eq!(attempts.next(1), 1);
        assert_eq!(attempts.next(1), 2);
        assert_eq!(attempts.next(2), 1);
        assert_eq!(attempts.next(3), 1, "key 1 is forgotten");
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts.next(2), 2);
        assert_eq!(attempts.next(1), 1, "key 1 starts again");
        assert_eq!(attempts.len(), 2);
        assert_eq!(Attempts::default().cap, MAX_CONVERSATIONS);
    }
}
