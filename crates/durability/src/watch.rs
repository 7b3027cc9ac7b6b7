//! Validates what a watcher saw against the store's history.
//!
//! The history is every change the store made (revision, key, new value or deletion), recorded
//! by the writers from their acknowledged results. A watcher's record is what its stream
//! delivered, in order: batches of events with the revision the stream claims to have covered
//! (progress), an explicit "too old" (HTTP 410, `Error::Compacted`), a relist (a snapshot at a
//! revision), or a resumption (the watch reopened after a restart from the last revision seen).
//!
//! The rules: events arrive in strictly increasing revision order (an event at or below the
//! revision already covered is a duplicate or out of order); between two consecutive points of
//! the stream, every change under the prefix appears (no gap), also across a progress
//! notification, which claims everything up to its revision; each event equals the history's
//! change at its revision; after "too old" the client relists, and the relist equals the
//! history's state at its revision; and by the end the watcher covered the final revision.

use std::collections::BTreeMap;
use std::fmt;

/// One change: the key got `value`, or was deleted (`None`), at `revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The revision of the change.
    pub revision: i64,
    /// The key.
    pub key: String,
    /// The new value, or `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// What a watcher observed, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A batch of events (possibly empty: a progress notification) and the revision the stream
    /// says it has delivered everything up to.
    Batch {
        /// The events, as delivered.
        events: Vec<Change>,
        /// Everything up to here was delivered.
        revision: i64,
    },
    /// The stream ended with "too old" (compacted).
    Gone,
    /// The client listed the prefix at `revision` and got `items`.
    Relist {
        /// The list's revision.
        revision: i64,
        /// Key and value of every item.
        items: Vec<(String, Vec<u8>)>,
    },
    /// The client opened a new watch from `after` (after a server restart or a broken stream).
    Resume {
        /// The revision the new watch starts after.
        after: i64,
    },
}

/// The store's history: every change, by revision.
#[derive(Clone, Debug, Default)]
pub struct History {
    changes: BTreeMap<i64, Change>,
}

/// A broken watch guarantee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An event at or below the revision already covered (`covered`).
    DuplicateOrOutOfOrder {
        /// The event's revision.
        revision: i64,
        /// What the stream had covered before it.
        covered: i64,
    },
    /// A change under the prefix was skipped.
    Gap {
        /// The missing change.
        missing: Change,
        /// The point of the stream that skipped it.
        at: String,
    },
    /// An event differs from the history's change at its revision (or there is none).
    Mismatch {
        /// What the watcher got.
        got: Change,
        /// What the history has at that revision.
        expected: Option<Change>,
    },
    /// Events were delivered after a "too old" without a relist or resumption.
    EventsAfterGone,
    /// A relist does not match the history's state at its revision.
    BadRelist {
        /// The list's revision.
        revision: i64,
        /// What differs.
        detail: String,
    },
    /// A revision went backwards (a progress, relist or resumption below what was covered).
    Backwards {
        /// The new revision.
        revision: i64,
        /// What was covered.
        covered: i64,
    },
    /// The stream ended before covering the final revision.
    Incomplete {
        /// How far it got.
        covered: i64,
        /// How far it had to get.
        until: i64,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What a valid stream contained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events delivered.
    pub events: u64,
    /// Progress notifications (empty batches).
    pub progress: u64,
    /// "Too old" endings.
    pub gone: u64,
    /// Relists.
    pub relists: u64,
    /// Resumptions.
    pub resumes: u64,
}

impl History {
    /// Builds the history; fails if two changes share a revision.
    pub fn new(changes: impl IntoIterator<Item = Change>) -> Result<History, String> {
        let mut map = BTreeMap::new();
        for c in changes {
            if let Some(old) = map.insert(c.revision, c.clone()) {
                return Err(format!(
                    "two changes at revision {}: {old:?} and {c:?}",
                    c.revision
                ));
            }
        }
        Ok(History { changes: map })
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether it holds no change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The last revision, or 0.
    pub fn last_revision(&self) -> i64 {
        self.changes.keys().next_back().copied().unwrap_or(0)
    }

    /// The keys under `prefix` and their values as of `revision`.
    pub fn state_at(&self, prefix: &str, revision: i64) -> BTreeMap<String, Vec<u8>> {
        let mut state = BTreeMap::new();
        for c in self.changes.range(..=revision).map(|(_, c)| c) {
            if !c.key.starts_with(prefix) {
                continue;
            }
            match &c.value {
                Some(v) => state.insert(c.key.clone(), v.clone()),
                None => state.remove(&c.key),
            };
        }
        state
    }

    fn first_between(&self, prefix: &str, after: i64, upto: i64) -> Option<&Change> {
        if upto <= after {
            return None;
        }
        self.changes
            .range(after + 1..=upto)
            .map(|(_, c)| c)
            .find(|c| c.key.starts_with(prefix))
    }
}

/// Checks one watcher's record: the watch on `prefix` started after revision `after`, and had to
/// cover every change up to `until` by its end.
pub fn validate(
    history: &History,
    prefix: &str,
    after: i64,
    observed: &[Observed],
    until: i64,
) -> Result<Summary, Violation> {
    let mut covered = after;
    let mut gone = false;
    let mut summary = Summary::default();
    let gap =
        |covered: i64, upto: i64, at: String| match history.first_between(prefix, covered, upto) {
            Some(missing) => Err(Violation::Gap {
                missing: missing.clone(),
                at,
            }),
            None => Ok(()),
        };
    for (i, o) in observed.iter().enumerate() {
        match o {
            Observed::Batch { events, revision } => {
                if gone {
                    return Err(Violation::EventsAfterGone);
                }
                if events.is_empty() {
                    summary.progress += 1;
                }
                for ev in events {
                    if ev.revision <= covered {
                        return Err(Violation::DuplicateOrOutOfOrder {
                            revision: ev.revision,
                            covered,
                        });
                    }
                    gap(
                        covered,
                        ev.revision - 1,
                        format!("record {i}: event {ev:?}"),
                    )?;
                    let expected = history.changes.get(&ev.revision);
                    if expected != Some(ev) {
                        return Err(Violation::Mismatch {
                            got: ev.clone(),
                            expected: expected.cloned(),
                        });
                    }
                    covered = ev.revision;
                    summary.events += 1;
                }
                if *revision < covered {
                    return Err(Violation::Backwards {
                        revision: *revision,
                        covered,
                    });
                }
                gap(
                    covered,
                    *revision,
                    format!("record {i}: progress to {revision}"),
                )?;
                covered = *revision;
            }
            Observed::Gone => {
                gone = true;
                summary.gone += 1;
            }
            Observed::Relist { revision, items } => {
                if *revision < covered {
                    return Err(Violation::Backwards {
                        revision: *revision,
                        covered,
                    });
                }
                let want = history.state_at(prefix, *revision);
                let got: BTreeMap<String, Vec<u8>> = items.iter().cloned().collect();
                if got != want || got.len() != items.len() {
                    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
                    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
                    return Err(Violation::BadRelist {
                        revision: *revision,
                        detail: format!(
                            "{} items, expected {}; missing {missing:?}, unexpected {extra:?}",
                            items.len(),
                            want.len()
                        ),
                    });
                }
                covered = *revision;
                gone = false;
                summary.relists += 1;
            }
            Observed::Resume { after } => {
                if *after < covered {
                    return Err(Violation::Backwards {
                        revision: *after,
                        covered,
                    });
                }
                gap(
                    covered,
                    *after,
                    format!("record {i}: resumed after {after}"),
                )?;
                covered = *after;
                gone = false;
                summary.resumes += 1;
            }
        }
    }
    if covered < until {
        return Err(Violation::Incomplete { covered, until });
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: i64, key: &str, v: &str) -> Change {
        Change {
            revision,
            key: key.into(),
            value: Some(v.as_bytes().to_vec()),
        }
    }

    fn history() -> History {
        History::new([
            put(1, "/a/1", "x"),
            put(2, "/b/1", "y"),
            put(3, "/a/2", "z"),
            Change {
                revision: 4,
                key: "/a/1".into(),
                value: None,
            },
            put(5, "/a/2", "w"),
        ])
        .expect("history")
    }

    fn batch(events: Vec<Change>, revision: i64) -> Observed {
        Observed::Batch { events, revision }
    }

    fn good() -> Vec<Observed> {
        let h = history();
        let c = |r| h.changes[&r].clone();
        vec![
            batch(vec![c(1)], 1),
            batch(vec![], 2),
            batch(vec![c(3), c(4)], 4),
            batch(vec![c(5)], 5),
        ]
    }

    #[test]
    fn complete_ordered_stream_is_valid() {
        let s = validate(&history(), "/a/", 0, &good(), 5).expect("valid");
        assert_eq!(s.events, 4);
        assert_eq!(s.progress, 1);
    }

    /// Negative control: one event dropped.
    #[test]
    fn dropped_event_is_a_gap() {
        let mut o = good();
        o[2] = batch(vec![history().changes[&4].clone()], 4);
        assert!(matches!(
            validate(&history(), "/a/", 0, &o, 5),
            Err(Violation::Gap { missing, .. }) if missing.revision == 3
        ));
    }

    /// Negative control: one event delivered twice.
    #[test]
    fn duplicated_event_is_flagged() {
        let mut o = good();
        o.insert(2, batch(vec![history().changes[&1].clone()], 1));
        assert!(matches!(
            validate(&history(), "/a/", 0, &o, 5),
            Err(Violation::DuplicateOrOutOfOrder { revision: 1, .. })
        ));
    }

    /// Negative control: a progress notification that claims past an undelivered event.
    #[test]
    fn progress_past_a_missing_event_is_a_gap() {
        let o = vec![batch(vec![], 3)];
        assert!(matches!(
            validate(&history(), "/a/", 0, &o, 3),
            Err(Violation::Gap { .. })
        ));
    }

    #[test]
    fn wrong_value_and_truncated_stream_are_flagged() {
        let mut o = good();
        o[3] = batch(vec![put(5, "/a/2", "not-w")], 5);
        assert!(matches!(
            validate(&history(), "/a/", 0, &o, 5),
            Err(Violation::Mismatch { .. })
        ));
        let o = good()[..2].to_vec();
        assert!(matches!(
            validate(&history(), "/a/", 0, &o, 5),
            Err(Violation::Incomplete { .. })
        ));
    }

    #[test]
    fn gone_then_relist_is_valid_and_a_bad_relist_is_not() {
        let h = history();
        let mut o = vec![
            batch(vec![h.changes[&1].clone()], 1),
            Observed::Gone,
            Observed::Relist {
                revision: 4,
                items: vec![("/a/2".into(), b"z".to_vec())],
            },
            batch(vec![h.changes[&5].clone()], 5),
        ];
        let s = validate(&h, "/a/", 0, &o, 5).expect("valid");
        assert_eq!((s.gone, s.relists), (1, 1));
        o[2] = Observed::Relist {
            revision: 4,
            items: vec![],
        };
        assert!(matches!(
            validate(&h, "/a/", 0, &o, 5),
            Err(Violation::BadRelist { .. })
        ));
        let o = vec![Observed::Gone, batch(vec![h.changes[&5].clone()], 5)];
        assert_eq!(
            validate(&h, "/a/", 0, &o, 5),
            Err(Violation::EventsAfterGone)
        );
    }
}
