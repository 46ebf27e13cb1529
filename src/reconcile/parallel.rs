//! Independent actions side by side: which of a plan's actions must wait
//! for which ([`ordering`], pure), and a bounded pool that carries them out
//! in that order ([`run_ordered`]). Containers of a set come up and go away
//! together (their CNI ADDs and DELs overlap: the plugins lock their own
//! state and berth locks each container), while everything a plan orders
//! for a reason keeps its order.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Condvar, Mutex};

use super::desired::Desired;
use super::plan::{Action, Target, Verb};
use crate::manifest::Kind;

/// How many actions run at once unless `--parallel` says otherwise: a few
/// per CPU, since most of an action's time is spent waiting (for runc, the
/// shim, the CNI plugins, a stopping container's grace period).
pub fn default_parallelism() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus * 4).clamp(1, 32)
}

/// For each action, the earlier actions it must wait for. The plan's order
/// stands wherever it means something:
/// - images, networks and volumes are barriers: each waits for everything
///   before it, and everything after waits for it (a container is created
///   after its network, a network replaced after its containers left);
/// - two actions about one object keep their order;
/// - two workloads where one depends on the other keep their order (a
///   dependent starts after what it depends on; deleted before it);
/// - removals and the rest keep their order: a pruned container's host port
///   or address is free before anything after it is created.
///
/// Edges go only within the run of workloads between two barriers: the
/// barrier carries the order across.
pub fn ordering(actions: &[Action], wanted: &Desired) -> Vec<Vec<usize>> {
    let dependencies = dependencies_by_name(wanted);
    let depends_on = |dependent: &Action, dependency: &Action| {
        dependencies
            .get(dependent.name.as_str())
            .is_some_and(|names| names.contains(&dependency.name))
    };
    let related = |a: &Action, b: &Action| depends_on(a, b) || depends_on(b, a);
    let mut after = vec![Vec::new(); actions.len()];
    let mut last_barrier: Option<usize> = None;
    let mut since_barrier: Vec<usize> = Vec::new();
    for (i, action) in actions.iter().enumerate() {
        if is_barrier(action) {
            after[i] = since_barrier.clone();
            after[i].extend(last_barrier);
            last_barrier = Some(i);
            since_barrier.clear();
            continue;
        }
        after[i].extend(last_barrier);
        for &j in &since_barrier {
            let earlier = &actions[j];
            let same_object = earlier.target == action.target && earlier.name == action.name;
            let removal_order = is_removal(earlier) != is_removal(action);
            if same_object || removal_order || related(earlier, action) {
                after[i].push(j);
            }
        }
        since_barrier.push(i);
    }
    after
}

fn is_barrier(action: &Action) -> bool {
    !matches!(action.target, Target::Container | Target::Job)
}

fn is_removal(action: &Action) -> bool {
    action.verb == Verb::Delete
}

/// What each workload depends on, by name (containers and Jobs share one
/// namespace of names there): looked up once per pair of actions.
fn dependencies_by_name(wanted: &Desired) -> BTreeMap<&str, Vec<String>> {
    wanted
        .objects
        .iter()
        .filter(|o| matches!(o.kind, Kind::Container | Kind::Job))
        .map(|o| {
            let names = o.dependencies().into_iter().map(|(name, _)| name);
            (o.name.as_str(), names.collect())
        })
        .collect()
}

/// Where each item stands in the pool.
struct Board {
    started: Vec<bool>,
    done: Vec<bool>,
    /// The lowest index not yet started: the scan for work starts there.
    first_open: usize,
}

impl Board {
    /// The first item not started whose predecessors are all done.
    fn take_ready(&mut self, after: &[Vec<usize>]) -> Option<usize> {
        self.skip_started();
        let ready = (self.first_open..self.started.len())
            .find(|&i| !self.started[i] && after[i].iter().all(|&j| self.done[j]))?;
        self.started[ready] = true;
        Some(ready)
    }

    fn skip_started(&mut self) {
        while self.first_open < self.started.len() && self.started[self.first_open] {
            self.first_open += 1;
        }
    }

    fn all_started(&mut self) -> bool {
        self.skip_started();
        self.first_open >= self.started.len()
    }
}

/// Runs `work` on every item, at most `workers` at once, each only after the
/// items `after` names for it are done. `on_done` sees each result on the
/// calling thread as it arrives. Once `stop` says so, no further item
/// starts (those running finish): the result has `None` for the ones never
/// started. A failing item does not stop the others: what its result means
/// is the caller's business.
pub fn run_ordered<T: Sync, R: Send>(
    items: &[T],
    after: &[Vec<usize>],
    workers: usize,
    stop: &(dyn Fn() -> bool + Sync),
    work: &(dyn Fn(&T) -> R + Sync),
    on_done: &mut dyn FnMut(usize, &R),
) -> Vec<Option<R>> {
    let board = Mutex::new(Board {
        started: vec![false; items.len()],
        done: vec![false; items.len()],
        first_open: 0,
    });
    let changed = Condvar::new();
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let (sender, finished) = mpsc::channel::<(usize, R)>();
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            let sender = sender.clone();
            let (board, changed) = (&board, &changed);
            scope.spawn(move || loop {
                let Some(index) = next_item(board, changed, after, stop) else {
                    return;
                };
                let result = catch_unwind(AssertUnwindSafe(|| work(&items[index])));
                // Done even when it panicked: what waits for it must not
                // wait for ever (the panic goes on once the pool is over).
                lock(board).done[index] = true;
                changed.notify_all();
                match result {
                    // The receiver lives until every worker is gone.
                    Ok(result) => drop(sender.send((index, result))),
                    Err(panic) => resume_unwind(panic),
                }
            });
        }
        drop(sender);
        for (index, result) in finished {
            on_done(index, &result);
            results[index] = Some(result);
        }
    });
    results
}

/// Waits for an item this worker may start; `None` when none is left to
/// start, or a stop was asked for.
fn next_item(
    board: &Mutex<Board>,
    changed: &Condvar,
    after: &[Vec<usize>],
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<usize> {
    let mut state = lock(board);
    loop {
        if stop() || state.all_started() {
            // Others may be waiting for work that will now never come.
            changed.notify_all();
            return None;
        }
        if let Some(index) = state.take_ready(after) {
            return Some(index);
        }
        state = changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// The board's lock; a worker that panicked left it consistent (it only
/// flips flags), so a poisoned lock is used as it is.
fn lock(board: &Mutex<Board>) -> std::sync::MutexGuard<'_, Board> {
    board
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    fn action(target: Target, name: &str, verb: Verb) -> Action {
        Action::new(target, name, verb, "because")
    }

    #[test]
    fn containers_between_barriers_wait_only_for_the_barrier() {
        let actions = vec![
            action(Target::Network, "net", Verb::Create),
            action(Target::Container, "a", Verb::Create),
            action(Target::Container, "b", Verb::Create),
            action(Target::Volume, "v", Verb::Create),
            action(Target::Container, "c", Verb::Create),
        ];
        let after = ordering(&actions, &Desired::default());
        assert_eq!(
            after,
            vec![vec![], vec![0], vec![0], vec![1, 2, 0], vec![3]]
        );
    }

    #[test]
    fn removals_and_creations_keep_their_order_and_one_object_its_own() {
        let actions = vec![
            action(Target::Container, "new", Verb::Create),
            action(Target::Container, "other", Verb::Replace),
            action(Target::Container, "old", Verb::Delete),
            action(Target::Container, "older", Verb::Delete),
            action(Target::Job, "j", Verb::Create),
            action(Target::Job, "j", Verb::Start),
        ];
        let after = ordering(&actions, &Desired::default());
        assert_eq!(
            after[1],
            Vec::<usize>::new(),
            "two creations are independent"
        );
        assert_eq!(
            after[2],
            vec![0, 1],
            "a removal waits for the creations before it"
        );
        assert_eq!(after[3], vec![0, 1], "two removals are independent");
        assert_eq!(
            after[4],
            vec![2, 3],
            "a creation waits for the removals before it"
        );
        assert_eq!(
            after[5],
            vec![2, 3, 4],
            "one Job's actions keep their order"
        );
    }

    #[test]
    fn every_item_runs_once_and_after_what_it_waits_for() {
        // A chain 0 <- 2 <- 4 among free items 1 and 3.
        let after = vec![vec![], vec![], vec![0], vec![], vec![2]];
        let order = Mutex::new(Vec::new());
        let items: Vec<usize> = (0..5).collect();
        let results = run_ordered(
            &items,
            &after,
            3,
            &|| false,
            &|item: &usize| {
                order.lock().unwrap().push(*item);
                item * 10
            },
            &mut |_, _| {},
        );
        assert_eq!(
            results,
            vec![Some(0), Some(10), Some(20), Some(30), Some(40)]
        );
        let order = order.into_inner().unwrap();
        let at = |item: usize| order.iter().position(|&i| i == item).unwrap();
        assert!(at(0) < at(2) && at(2) < at(4), "{order:?}");
    }

    #[test]
    fn independent_items_overlap() {
        // Each of three items waits until all three have started: only a
        // pool that runs them at once gets past the barrier (a sequential
        // one would wait for ever, hence the generous way out).
        let started = AtomicUsize::new(0);
        let items = [0, 1, 2];
        let results = run_ordered(
            &items,
            &[vec![], vec![], vec![]],
            3,
            &|| false,
            &|_: &i32| {
                started.fetch_add(1, Ordering::SeqCst);
                let deadline = std::time::Instant::now() + Duration::from_secs(120);
                while started.load(Ordering::SeqCst) < 3 {
                    if std::time::Instant::now() > deadline {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                true
            },
            &mut |_, _| {},
        );
        assert_eq!(results, vec![Some(true); 3]);
    }

    #[test]
    fn a_failed_item_does_not_stop_the_others_and_results_arrive_as_they_finish() {
        let items = ["ok", "fails", "ok too"];
        let mut seen = Vec::new();
        let results = run_ordered(
            &items,
            &[vec![], vec![], vec![1]],
            2,
            &|| false,
            &|item: &&str| if *item == "fails" { Err(()) } else { Ok(()) },
            &mut |index, result| seen.push((index, result.is_ok())),
        );
        assert_eq!(results, vec![Some(Ok(())), Some(Err(())), Some(Ok(()))]);
        seen.sort();
        assert_eq!(seen, vec![(0, true), (1, false), (2, true)]);
    }

    #[test]
    fn after_a_stop_nothing_new_starts() {
        let stop = AtomicBool::new(false);
        let items = [0, 1, 2, 3];
        // One worker, in order: the stop comes while item 1 runs.
        let results = run_ordered(
            &items,
            &[vec![], vec![], vec![], vec![]],
            1,
            &|| stop.load(Ordering::SeqCst),
            &|item: &i32| {
                if *item == 1 {
                    stop.store(true, Ordering::SeqCst);
                }
                *item
            },
            &mut |_, _| {},
        );
        assert_eq!(results, vec![Some(0), Some(1), None, None]);
    }

    #[test]
    fn no_items_no_workers() {
        let results = run_ordered(&[] as &[u8], &[], 4, &|| false, &|_: &u8| 0, &mut |_, _| {});
        assert!(results.is_empty());
    }
}
