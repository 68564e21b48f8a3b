//! The queue between HTTP and compute, one per model: handlers put [`Tokenized`] pieces in, one
//! thread takes as many queued pieces as fit in the token budget, runs them as one engine batch
//! on the shared thread budget, and sends each piece its rows back.
//!
//! An idle server runs a lone request at once (no batching window: the thread waits on the queue,
//! not on a timer); under load, what queued while a batch ran forms the next one. Pieces whose
//! caller has gone (a client that disconnected) are dropped before they are computed. Pieces whose
//! options differ (normalization, truncate-dim, prompt) cannot share a batch — the engine refuses
//! to join them — and wait for a batch of their own, in order.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use sembed::{Embedder, Embeddings, Tokenized};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

/// What a piece's caller receives: its rows, or why the batch failed.
pub(crate) type Reply = Result<Embeddings, String>;

struct Job {
    /// The texts, as token ids.
    piece: Tokenized,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    max_batch_tokens: usize,
    metrics: Arc<Metrics>,
}

/// One model's queue and its batching thread.
pub(crate) struct Batcher {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Batching threads per model. Two, so one batch gathers (and the rows of the last go back to
/// their requests) while the other computes; both draw on the same thread budget, so the cores
/// are not oversubscribed.
const BATCHERS: usize = 2;

impl Batcher {
    pub(crate) fn start(
        model: Arc<Embedder>,
        max_batch_tokens: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Batcher> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            max_batch_tokens,
            metrics,
        });
        let mut threads = Vec::with_capacity(BATCHERS);
        for _ in 0..BATCHERS {
            let (s, model) = (Arc::clone(&shared), Arc::clone(&model));
            threads.push(
                std::thread::Builder::new()
                    .name("sembed-batcher".into())
                    .spawn(move || run(&s, &model))?,
            );
        }
        Ok(Batcher {
            shared,
            threads: Mutex::new(threads),
        })
    }

    /// Queues `piece` (at most the token budget, unless it is one text); the rows come back on
    /// the receiver, in the piece's order. Dropping the receiver cancels the piece if it has
    /// not started.
    pub(crate) fn submit(&self, piece: Tokenized) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        let mut q = lock(&self.shared.queue);
        if q.closed {
            let _ = tx.send(Err("the server is shutting down".into()));
            return rx;
        }
        q.jobs.push_back(Job { piece, reply: tx });
        self.shared.metrics.queue_depth.inc();
        drop(q);
        self.shared.ready.notify_one();
        rx
    }

    /// Stops the thread once the queue is empty, and waits for it.
    pub(crate) fn close(&self) {
        lock(&self.shared.queue).closed = true;
        self.shared.ready.notify_all();
        for t in lock(&self.threads).drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.close();
    }
}

/// A poisoned lock only means a panic elsewhere while holding it; the queue itself stays valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(shared: &Shared, model: &Embedder) {
    loop {
        let Some((batch, members)) = next_batch(shared) else {
            return;
        };
        let m = &shared.metrics;
        m.batch_texts.observe(batch.len() as f64);
        m.batch_tokens.observe(batch.total_tokens() as f64);
        // The engine does not panic on valid input; if it ever did, the callers get a 500 and the
        // server goes on.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            model.embed_tokenized(&batch)
        }));
        match result {
            Ok(Ok(e)) => {
                m.embedded_texts.inc_by(batch.len() as u64);
                m.embedded_tokens.inc_by(batch.total_tokens() as u64);
                let dim = e.dim();
                let mut rows = e.into_vec();
                // Hand the rows back from the end, so each piece's are split off without copying
                // the rest.
                for (reply, n) in members.into_iter().rev() {
                    let tail = rows.split_off(rows.len() - n * dim);
                    let _ = reply.send(Ok(Embeddings::new(dim, tail)));
                }
            }
            Ok(Err(e)) => fail(members, &e.to_string()),
            Err(_) => fail(members, "the embedding engine panicked"),
        }
    }
}

fn fail(members: Vec<(oneshot::Sender<Reply>, usize)>, why: &str) {
    for (reply, _) in members {
        let _ = reply.send(Err(why.to_string()));
    }
}

/// Waits for work, then takes the first live piece and every later one that fits the budget
/// and can share its batch. `None` when closed and drained.
#[allow(clippy::type_complexity)]
fn next_batch(shared: &Shared) -> Option<(Tokenized, Vec<(oneshot::Sender<Reply>, usize)>)> {
    let mut q = lock(&shared.queue);
    loop {
        // Pieces whose caller is gone are dropped unseen.
        let before = q.jobs.len();
        q.jobs.retain(|j| !j.reply.is_closed());
        let dropped = before - q.jobs.len();
        shared.metrics.queue_depth.dec_by(dropped as i64);
        shared.metrics.cancelled.inc_by(dropped as u64);
        if let Some(first) = q.jobs.pop_front() {
            shared.metrics.queue_depth.dec();
            let mut batch = first.piece;
            let mut members = vec![(first.reply, batch.len())];
            let mut i = 0;
            while i < q.jobs.len() {
                let job = &q.jobs[i];
                if batch.total_tokens() + job.piece.total_tokens() > shared.max_batch_tokens {
                    break;
                }
                if batch.append(&job.piece).is_ok() {
                    let job = q.jobs.remove(i).expect("index checked above");
                    shared.metrics.queue_depth.dec();
                    members.push((job.reply, job.piece.len()));
                } else {
                    i += 1;
                }
            }
            return Some((batch, members));
        }
        if q.closed {
            return None;
        }
        q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
    }
}
