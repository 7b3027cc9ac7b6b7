//! A linearizability checker for one key at a time.
//!
//! The model is a register that holds nothing or a *token* (a number that identifies the write
//! that put the value there; writers make tokens unique). Operations:
//!
//! - [`Op::Read`] observed the token (or absence) it returned;
//! - [`Op::Create`] puts a token if the key is absent;
//! - [`Op::Cas`] replaces the token `expected` by a new one (compare-and-swap, as an update with
//!   a `resourceVersion` or a `mod_revision` precondition).
//!
//! Each operation has an invocation and a completion time (any monotonic clock) and an
//! [`Outcome`]: it took effect, it definitely did not (a conflict), or nobody knows (a timeout or
//! a connection cut by a server kill). An unknown operation may have taken effect at any moment
//! after its invocation, or never.
//!
//! The search is the Wing–Gong / Lowe algorithm: depth-first over which pending operation takes
//! effect next, memoizing (set of linearized operations, register value). Histories are checked
//! per key and capped at [`MAX_OPS`] operations, and the search at a step budget, so a check
//! cannot blow up: a history that exceeds either is reported as [`Verdict::TooLarge`], never as
//! passing.

use std::collections::HashSet;

/// The most operations one key's history may have (the visited set keys on a 128-bit mask).
pub const MAX_OPS: usize = 128;

/// The most search steps per key before the checker gives up with [`Verdict::TooLarge`].
pub const MAX_STEPS: u64 = 2_000_000;

/// What an operation did to or saw of the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// A read that returned this token (`None`: the key did not exist).
    Read(Option<u64>),
    /// Create-if-absent with this token.
    Create(u64),
    /// Compare-and-swap: replace `expected` by `new`.
    Cas {
        /// The token the writer expected to replace.
        expected: u64,
        /// The token it wrote.
        new: u64,
    },
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect (a read always "takes effect" when it returned).
    Ok,
    /// It definitely did not take effect: the precondition failed (the key existed for a
    /// create; it held another token, or nothing, for a compare-and-swap).
    Failed,
    /// Unknown: it may have taken effect at any time after its invocation, or never.
    Unknown,
}

/// One operation of the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When the client invoked it.
    pub invoke: u64,
    /// When the client saw its answer (ignored for [`Outcome::Unknown`]).
    pub complete: u64,
    /// The operation.
    pub op: Op,
    /// How it ended.
    pub outcome: Outcome,
}

/// The checker's answer for one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// None exists. `longest` is the longest prefix of definite operations that could be
    /// ordered, to help read the failure.
    NotLinearizable {
        /// Indices (into the history) of the longest linearizable prefix found.
        longest: Vec<usize>,
    },
    /// The history is over [`MAX_OPS`] or the search over [`MAX_STEPS`]: no answer.
    TooLarge {
        /// Why.
        reason: String,
    },
}

/// The register before any operation of the history (the key's state when recording began).
pub type Initial = Option<u64>;

/// Checks one key's history, starting from `initial`.
pub fn check(initial: Initial, history: &[Entry]) -> Verdict {
    if history.len() > MAX_OPS {
        return Verdict::TooLarge {
            reason: format!(
                "{} operations on one key, more than the bound of {MAX_OPS}",
                history.len()
            ),
        };
    }
    let mut search = Search {
        history,
        visited: HashSet::new(),
        steps: 0,
        longest: Vec::new(),
        path: Vec::new(),
    };
    let required: u128 = history
        .iter()
        .enumerate()
        .filter(|(_, e)| e.outcome != Outcome::Unknown)
        .fold(0, |m, (i, _)| m | (1u128 << i));
    match search.dfs(0, initial, required) {
        Some(true) => Verdict::Linearizable,
        Some(false) => Verdict::NotLinearizable {
            longest: search.longest,
        },
        None => Verdict::TooLarge {
            reason: format!("the search took more than {MAX_STEPS} steps"),
        },
    }
}

struct Search<'a> {
    history: &'a [Entry],
    visited: HashSet<(u128, Option<u64>)>,
    steps: u64,
    longest: Vec<usize>,
    path: Vec<usize>,
}

impl Search<'_> {
    /// Whether the operations not in `done` can be linearized from `state`; `None` when the
    /// step budget ran out.
    fn dfs(&mut self, done: u128, state: Option<u64>, required: u128) -> Option<bool> {
        if done & required == required {
            return Some(true);
        }
        if !self.visited.insert((done, state)) {
            return Some(false);
        }
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return None;
        }
        // An operation can take effect next only if it was invoked before every pending
        // definite operation completed.
        let horizon = self
            .history
            .iter()
            .enumerate()
            .filter(|(i, e)| done & (1 << i) == 0 && e.outcome != Outcome::Unknown)
            .map(|(_, e)| e.complete)
            .min()
            .unwrap_or(u64::MAX);
        for (i, e) in self.history.iter().enumerate() {
            if done & (1 << i) != 0 || e.invoke > horizon {
                continue;
            }
            let Some(next) = step(state, e) else {
                continue;
            };
            self.path.push(i);
            if self.path.len() > self.longest.len() {
                self.longest = self.path.clone();
            }
            let found = self.dfs(done | (1 << i), next, required);
            self.path.pop();
            match found {
                Some(false) => {}
                other => return other,
            }
        }
        Some(false)
    }
}

/// Applies `e` to `state`: the new state, or `None` when `e`'s recorded result is impossible
/// from `state`.
fn step(state: Option<u64>, e: &Entry) -> Option<Option<u64>> {
    match (e.op, e.outcome) {
        (Op::Read(seen), Outcome::Ok) => (seen == state).then_some(state),
        // A read that failed observed nothing.
        (Op::Read(_), Outcome::Failed | Outcome::Unknown) => Some(state),
        (Op::Create(token), Outcome::Ok | Outcome::Unknown) => {
            state.is_none().then_some(Some(token))
        }
        (Op::Create(_), Outcome::Failed) => state.is_some().then_some(state),
        (Op::Cas { expected, new }, Outcome::Ok | Outcome::Unknown) => {
            (state == Some(expected)).then_some(Some(new))
        }
        (Op::Cas { expected, .. }, Outcome::Failed) => (state != Some(expected)).then_some(state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(invoke: u64, complete: u64, op: Op, outcome: Outcome) -> Entry {
        Entry {
            invoke,
            complete,
            op,
            outcome,
        }
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(2, 3, Op::Read(Some(1)), Outcome::Ok),
            e(
                4,
                5,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Ok,
            ),
            e(
                6,
                7,
                Op::Cas {
                    expected: 1,
                    new: 3,
                },
                Outcome::Failed,
            ),
            e(8, 9, Op::Read(Some(2)), Outcome::Ok),
        ];
        assert_eq!(check(None, &h), Verdict::Linearizable);
    }

    #[test]
    fn concurrent_read_may_see_either_value() {
        let h = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(
                2,
                10,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Ok,
            ),
            e(3, 4, Op::Read(Some(2)), Outcome::Ok),
            e(5, 6, Op::Read(Some(2)), Outcome::Ok),
        ];
        assert_eq!(check(None, &h), Verdict::Linearizable);
    }

    /// Negative control: a read that returns an old value after a newer write completed.
    #[test]
    fn stale_read_is_flagged() {
        let h = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(
                2,
                3,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Ok,
            ),
            e(4, 5, Op::Read(Some(1)), Outcome::Ok),
        ];
        assert!(matches!(check(None, &h), Verdict::NotLinearizable { .. }));
    }

    /// Negative control: two compare-and-swaps from the same value both succeeding.
    #[test]
    fn lost_update_is_flagged() {
        let h = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(
                2,
                5,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Ok,
            ),
            e(
                3,
                6,
                Op::Cas {
                    expected: 1,
                    new: 3,
                },
                Outcome::Ok,
            ),
        ];
        assert!(matches!(check(None, &h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn unknown_write_may_take_effect_late_or_never() {
        // The unknown CAS is seen by a read long after the client gave up on it...
        let late = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(
                2,
                3,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Unknown,
            ),
            e(4, 5, Op::Read(Some(1)), Outcome::Ok),
            e(6, 7, Op::Read(Some(2)), Outcome::Ok),
        ];
        assert_eq!(check(None, &late), Verdict::Linearizable);
        // ...or never.
        let never = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(
                2,
                3,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Unknown,
            ),
            e(4, 5, Op::Read(Some(1)), Outcome::Ok),
        ];
        assert_eq!(check(None, &never), Verdict::Linearizable);
        // But it cannot take effect before it was invoked.
        let early = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(2, 3, Op::Read(Some(2)), Outcome::Ok),
            e(
                4,
                5,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Unknown,
            ),
        ];
        assert!(matches!(
            check(None, &early),
            Verdict::NotLinearizable { .. }
        ));
    }

    /// Negative control: a value that was acknowledged, then disappears (a lost write).
    #[test]
    fn value_reverting_after_acknowledged_write_is_flagged() {
        let h = [
            e(0, 1, Op::Create(1), Outcome::Ok),
            e(
                2,
                3,
                Op::Cas {
                    expected: 1,
                    new: 2,
                },
                Outcome::Ok,
            ),
            e(4, 5, Op::Read(None), Outcome::Ok),
        ];
        assert!(matches!(check(None, &h), Verdict::NotLinearizable { .. }));
    }

    #[test]
    fn too_large_history_is_refused_not_passed() {
        let h: Vec<Entry> = (0..=MAX_OPS as u64)
            .map(|i| e(i * 2, i * 2 + 1, Op::Read(None), Outcome::Ok))
            .collect();
        assert!(matches!(check(None, &h), Verdict::TooLarge { .. }));
    }

    #[test]
    fn many_concurrent_unknowns_stay_within_budget() {
        // 40 overlapping unknown CAS on a chain plus reads: the memo keeps this small.
        let mut h = vec![e(0, 1, Op::Create(0), Outcome::Ok)];
        for i in 0..40u64 {
            h.push(e(
                2 + i,
                1000,
                Op::Cas {
                    expected: i,
                    new: i + 1,
                },
                Outcome::Unknown,
            ));
        }
        h.push(e(1001, 1002, Op::Read(Some(40)), Outcome::Ok));
        assert_eq!(check(None, &h), Verdict::Linearizable);
    }
}
