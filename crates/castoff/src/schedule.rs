//! One scheduler for work with edges: `publish`'s steps (a step waits for the steps it comes
//! after) and `dist`'s parallel artifact phase (no edges). Threads take the first node, in
//! the given order, whose predecessors have all finished; after a failure no new node starts
//! and the ones running finish.
//!
//! The ready nodes are kept in an ordered set, and each node counts the predecessors it still
//! waits for, decremented once per edge when a predecessor finishes: a run costs
//! O((nodes + edges) log nodes), not a scan of every node per start.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex};

/// Runs `work` for every node on up to `parallel` threads. `waits_for[i]` lists the nodes
/// node `i` starts after (each must finish without `failed`); `failed` says whether a
/// result stops the run. Returns every result by node; `None` for nodes never started. A
/// panic in `work` stops the run too, and is raised again once the running nodes finish.
pub(crate) fn run<T: Send>(
    waits_for: &[Vec<usize>],
    parallel: usize,
    work: impl Fn(usize) -> T + Sync,
    failed: impl Fn(&T) -> bool + Sync,
) -> Vec<Option<T>> {
    struct State {
        /// Nodes whose predecessors have all finished, not started yet.
        ready: BTreeSet<usize>,
        /// Per node, the edges from predecessors that have not finished.
        waiting: Vec<usize>,
        running: usize,
        stopped: bool,
    }
    let count = waits_for.len();
    let mut successors: Vec<Vec<usize>> = vec![Vec::new(); count];
    for (node, before) in waits_for.iter().enumerate() {
        for &before in before {
            successors[before].push(node);
        }
    }
    let waiting: Vec<usize> = waits_for.iter().map(Vec::len).collect();
    let ready = (0..count).filter(|&node| waiting[node] == 0).collect();
    let state = Mutex::new(State {
        ready,
        waiting,
        running: 0,
        stopped: false,
    });
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let wake = Condvar::new();
    // A panic in `work` stops the run like a failure (the other threads would otherwise wait
    // for a node that never finishes) and is raised again once they are done.
    let panicked: Mutex<Option<Box<dyn std::any::Any + Send>>> = Mutex::new(None);

    std::thread::scope(|scope| {
        for _ in 0..parallel.min(count).max(1) {
            scope.spawn(|| {
                loop {
                    let mut guard = state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let next = loop {
                        if guard.stopped {
                            break None;
                        }
                        if let Some(node) = guard.ready.pop_first() {
                            guard.running += 1;
                            break Some(node);
                        }
                        // Nothing ready and nothing running: every node has run, or waits
                        // for one that never will.
                        if guard.running == 0 {
                            break None;
                        }
                        guard = wake
                            .wait(guard)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                    };
                    drop(guard);
                    let Some(node) = next else {
                        wake.notify_all();
                        return;
                    };
                    let result =
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(node)))
                        {
                            Ok(result) => result,
                            Err(panic) => {
                                panicked
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                                    .get_or_insert(panic);
                                let mut guard = state
                                    .lock()
                                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                                guard.running -= 1;
                                guard.stopped = true;
                                drop(guard);
                                wake.notify_all();
                                return;
                            }
                        };
                    let stop = failed(&result);
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[node] = Some(result);
                    let mut guard = state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    guard.running -= 1;
                    if stop {
                        guard.stopped = true;
                    } else {
                        for &after in &successors[node] {
                            guard.waiting[after] -= 1;
                            if guard.waiting[after] == 0 {
                                guard.ready.insert(after);
                            }
                        }
                    }
                    drop(guard);
                    wake.notify_all();
                }
            });
        }
    });
    if let Some(panic) = panicked
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        std::panic::resume_unwind(panic);
    }
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_start_after_their_predecessors_and_stop_after_a_failure() {
        // 0 → 1 → 3, 0 → 2; node 2 fails, so 3 (after 1 only) may still run, 4 (after 2) never.
        let waits_for = vec![vec![], vec![0], vec![0], vec![1], vec![2]];
        let order = Mutex::new(Vec::new());
        let results = run(
            &waits_for,
            3,
            |node| {
                order.lock().unwrap().push(node);
                node != 2
            },
            |ok| !ok,
        );
        let order = order.into_inner().unwrap();
        assert_eq!(order[0], 0);
        for (node, before) in waits_for.iter().enumerate() {
            for &before in before {
                if let Some(at) = order.iter().position(|&n| n == node) {
                    let before_at = order.iter().position(|&n| n == before).unwrap();
                    assert!(before_at < at, "{node} ran before {before}: {order:?}");
                }
            }
        }
        assert_eq!(results[2], Some(false));
        assert_eq!(results[4], None);
    }

    #[test]
    fn without_edges_every_node_runs_once() {
        let results = run(&vec![vec![]; 50], 4, |node| node * 2, |_| false);
        assert_eq!(
            results,
            (0..50).map(|node| Some(node * 2)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn one_thread_takes_the_first_ready_node_in_order() {
        // 0 and 3 are ready at the start; 1 waits for 3, 2 for 0 (twice: duplicate edges
        // count once each), 4 for 1 and 2.
        let waits_for = vec![vec![], vec![3], vec![0, 0], vec![], vec![1, 2]];
        let order = Mutex::new(Vec::new());
        let results = run(
            &waits_for,
            1,
            |node| order.lock().unwrap().push(node),
            |_| false,
        );
        assert_eq!(order.into_inner().unwrap(), vec![0, 2, 3, 1, 4]);
        assert!(results.iter().all(Option::is_some));
    }

    #[test]
    fn a_panic_in_a_node_stops_the_run_and_is_raised_again() {
        // Node 1 panics while node 0 waits on a second thread: without the catch the other
        // thread would wait forever for node 1 to finish.
        let started = Mutex::new(Vec::new());
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run(
                &[vec![], vec![], vec![1]],
                2,
                |node| {
                    started.lock().unwrap().push(node);
                    assert!(node != 1, "node 1 fails");
                    node
                },
                |_| false,
            )
        }));
        let panic = outcome.expect_err("the panic was swallowed");
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()));
        assert_eq!(message.as_deref(), Some("node 1 fails"));
        assert!(
            !started.into_inner().unwrap().contains(&2),
            "a node after the panic started"
        );
    }

    #[test]
    fn a_node_waiting_on_a_cycle_never_starts_and_the_run_ends() {
        let waits_for = vec![vec![], vec![2], vec![1]];
        let results = run(&waits_for, 2, |node| node, |_| false);
        assert_eq!(results, vec![Some(0), None, None]);
    }
}
