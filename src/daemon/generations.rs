//! Which generation is in force: each new reading of the tree that differs
//! from the last becomes a numbered generation; a valid one replaces the
//! one in force, an invalid one is rejected and the one in force stays.
//! Pure bookkeeping, with validation passed in.

use crate::manifest::{Diagnostic, ManifestSet};
use crate::watch::generation::Snapshot;

/// The generation being reconciled toward.
#[derive(Debug, Clone)]
pub struct InForce {
    pub number: u64,
    pub snapshot: Snapshot,
    /// Its objects that select this host.
    pub set: ManifestSet,
    /// When a pass first carried it out with no failed action.
    pub applied_unix_ms: Option<u64>,
    /// Taken from the daemon's record, not (yet) read from the tree.
    pub restored: bool,
}

/// What a new reading of the tree led to.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// The same as the last reading: nothing new.
    Unchanged,
    /// A new generation in force.
    Accepted(u64),
    /// A new generation that is not applied; the one in force stays.
    Rejected(u64, Vec<Diagnostic>),
}

#[derive(Debug, Default)]
pub struct Generations {
    in_force: Option<InForce>,
    /// The digest of the last reading considered, accepted or not.
    last_seen: Option<String>,
    /// The last number given.
    numbered: u64,
}

impl Generations {
    /// Numbering goes on from `numbered` (the daemon's record), with
    /// `restored` in force until the tree says otherwise.
    pub fn resume(numbered: u64, restored: Option<InForce>) -> Self {
        let numbered = numbered.max(restored.as_ref().map_or(0, |g| g.number));
        Generations {
            in_force: restored,
            last_seen: None,
            numbered,
        }
    }

    pub fn in_force(&self) -> Option<&InForce> {
        self.in_force.as_ref()
    }

    pub fn in_force_mut(&mut self) -> Option<&mut InForce> {
        self.in_force.as_mut()
    }

    pub fn numbered(&self) -> u64 {
        self.numbered
    }

    /// Considers a new reading of the tree.
    pub fn consider(
        &mut self,
        snapshot: Snapshot,
        validate: impl FnOnce(&Snapshot) -> Result<ManifestSet, Vec<Diagnostic>>,
    ) -> Decision {
        if self.last_seen.as_deref() == Some(snapshot.digest.as_str()) {
            return Decision::Unchanged;
        }
        self.last_seen = Some(snapshot.digest.clone());
        if let Some(in_force) = &mut self.in_force {
            if in_force.snapshot.digest == snapshot.digest {
                // The tree still says what is in force (after a restart,
                // or back from a rejected edit): the same generation.
                in_force.restored = false;
                in_force.snapshot.revision = snapshot.revision;
                return Decision::Unchanged;
            }
        }
        self.numbered += 1;
        let number = self.numbered;
        match validate(&snapshot) {
            Ok(set) => {
                self.in_force = Some(InForce {
                    number,
                    snapshot,
                    set,
                    applied_unix_ms: None,
                    restored: false,
                });
                Decision::Accepted(number)
            }
            Err(problems) => Decision::Rejected(number, problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(digest: &str) -> Snapshot {
        Snapshot {
            digest: digest.into(),
            revision: None,
            read_unix_ms: 0,
            files: Vec::new(),
            problems: Vec::new(),
        }
    }

    fn valid(_: &Snapshot) -> Result<ManifestSet, Vec<Diagnostic>> {
        Ok(ManifestSet::default())
    }

    fn invalid(_: &Snapshot) -> Result<ManifestSet, Vec<Diagnostic>> {
        Err(vec![Diagnostic::for_file("web.yaml", "broken")])
    }

    #[test]
    fn a_bad_generation_leaves_the_good_one_in_force_until_fixed() {
        let mut generations = Generations::default();
        assert_eq!(
            generations.consider(reading("a"), valid),
            Decision::Accepted(1)
        );
        assert_eq!(
            generations.consider(reading("a"), valid),
            Decision::Unchanged
        );
        let Decision::Rejected(2, problems) = generations.consider(reading("b"), invalid) else {
            panic!("rejected");
        };
        assert_eq!(problems.len(), 1);
        assert_eq!(generations.in_force().unwrap().number, 1);
        assert_eq!(
            generations.consider(reading("b"), valid),
            Decision::Unchanged,
            "the same bad reading is not judged twice"
        );
        assert_eq!(
            generations.consider(reading("c"), valid),
            Decision::Accepted(3)
        );
        assert_eq!(generations.in_force().unwrap().snapshot.digest, "c");
    }

    #[test]
    fn back_to_what_is_in_force_is_no_new_generation() {
        let mut generations = Generations::default();
        generations.consider(reading("a"), valid);
        generations.consider(reading("b"), invalid);
        assert_eq!(
            generations.consider(reading("a"), valid),
            Decision::Unchanged
        );
        assert_eq!(generations.in_force().unwrap().number, 1);
    }

    #[test]
    fn a_restarted_daemon_keeps_its_generation_and_numbering() {
        let restored = InForce {
            number: 7,
            snapshot: reading("a"),
            set: ManifestSet::default(),
            applied_unix_ms: Some(1),
            restored: true,
        };
        let mut generations = Generations::resume(9, Some(restored));
        assert_eq!(
            generations.consider(reading("a"), valid),
            Decision::Unchanged
        );
        assert!(!generations.in_force().unwrap().restored);
        assert_eq!(
            generations.consider(reading("x"), valid),
            Decision::Accepted(10)
        );
    }
}
