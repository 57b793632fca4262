//! One scheduler for work with edges: `publish`'s steps (a step waits for the steps it comes
//! after) and `dist`'s parallel artifact phase (no edges). Threads take the first node, in
//! the given order, whose predecessors have all finished; after a failure no new node starts
//! and the ones running finish.

use std::sync::{Condvar, Mutex};

/// Runs `work` for every node on up to `parallel` threads. `waits_for[i]` lists the nodes
/// node `i` starts after (each must finish without `failed`); `failed` says whether a
/// result stops the run. Returns every result by node; `None` for nodes never started.
pub(crate) fn run<T: Send>(
    waits_for: &[Vec<usize>],
    parallel: usize,
    work: impl Fn(usize) -> T + Sync,
    failed: impl Fn(&T) -> bool + Sync,
) -> Vec<Option<T>> {
    struct State {
        started: Vec<bool>,
        done: Vec<bool>,
        started_count: usize,
        stopped: bool,
    }
    let count = waits_for.len();
    let state = Mutex::new(State {
        started: vec![false; count],
        done: vec![false; count],
        started_count: 0,
        stopped: false,
    });
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let wake = Condvar::new();

    std::thread::scope(|scope| {
        for _ in 0..parallel.min(count).max(1) {
            scope.spawn(|| {
                loop {
                    let mut guard = state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let next = loop {
                        if guard.stopped || guard.started_count == count {
                            break None;
                        }
                        let ready = (0..count).find(|&node| {
                            !guard.started[node]
                                && waits_for[node].iter().all(|&before| guard.done[before])
                        });
                        match ready {
                            Some(node) => {
                                guard.started[node] = true;
                                guard.started_count += 1;
                                break Some(node);
                            }
                            None => {
                                guard = wake
                                    .wait(guard)
                                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                            }
                        }
                    };
                    drop(guard);
                    let Some(node) = next else {
                        wake.notify_all();
                        return;
                    };
                    let result = work(node);
                    let stop = failed(&result);
                    results
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)[node] = Some(result);
                    let mut guard = state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if stop {
                        guard.stopped = true;
                    } else {
                        guard.done[node] = true;
                    }
                    drop(guard);
                    wake.notify_all();
                }
            });
        }
    });
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
}
