//! The thread budget: at most `N` threads compute at once, however many models and concurrent
//! callers share it.
//!
//! A [`ThreadPool`] holds `N` permits. Every thread that runs engine work holds one: the calling
//! thread first (it waits for its turn, first come first served, when all are taken), then, for a
//! call that can use more, pool workers for as many permits as are free right now — never by
//! making anyone wait. So eight callers on a budget of two run two at a time, each on its own
//! thread, while one caller alone gets both threads. The caller's own thread always computes
//! (no hand-off for a single short text); the workers are persistent (no thread start per call).
//!
//! Every model uses [`ThreadPool::global`] (sized to the machine's cores) unless its
//! [`LoadOptions`](crate::LoadOptions) name another pool.
//!
//! ```
//! use sembed::{LoadOptions, ThreadPool};
//! let pool = ThreadPool::new(2); // a server's budget, shared by all its models
//! let opts = LoadOptions { threads: Some(pool.clone()), ..Default::default() };
//! assert_eq!(pool.threads(), 2);
//! # let _ = opts;
//! ```

use std::any::Any;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};

use crate::ops::Team;

/// A budget of threads shared by models and callers (cheap to clone: clones share the budget).
#[derive(Clone)]
pub struct ThreadPool {
    inner: Arc<Inner>,
    /// Shared by the handles only (not by workers or permits): when the last handle goes, the
    /// workers are told to exit.
    _users: Arc<Users>,
}

/// Dropped with the last [`ThreadPool`] handle: ends the idle workers.
struct Users(Arc<Inner>);

impl Drop for Users {
    fn drop(&mut self) {
        lock(&self.0.jobs).shutdown = true;
        self.0.job_ready.notify_all();
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("threads", &self.inner.capacity.get())
            .field("peak_busy", &self.peak_busy())
            .finish()
    }
}

struct Inner {
    /// The budget; for the global pool, the core count, probed only once a second thread is
    /// wanted (std reads the cgroup quota files, which a one-thread run need not pay for).
    capacity: OnceLock<usize>,
    permits: Mutex<Permits>,
    turn: Condvar,
    jobs: Mutex<Jobs>,
    job_ready: Condvar,
    peak_busy: AtomicUsize,
    workers: AtomicUsize,
}

/// Permits in use and the queue of callers waiting for one (tickets served in order).
struct Permits {
    busy: usize,
    next_ticket: u64,
    serving: u64,
}

struct Jobs {
    queue: VecDeque<Job>,
    /// Workers waiting for a job right now.
    idle: usize,
    /// No handle is left: workers exit once the queue is empty.
    shutdown: bool,
}

/// Work for a pool worker: a closure borrowed from a caller's stack frame, with its lifetime
/// erased. Whoever queues it waits on `done` before that frame ends (see [`ThreadPool::dispatch`]).
struct Job {
    run: *const (dyn Fn() + Sync + 'static),
    done: Arc<Latch>,
}

// SAFETY: the closure behind `run` is `Sync` (shared between the queuing thread and one worker,
// which only calls it through `&`), and it outlives the job (the queuing thread waits for `done`).
unsafe impl Send for Job {}

/// Counts finished jobs; keeps the first panic to re-raise in the caller.
struct Latch {
    left: AtomicUsize,
    lock: Mutex<Option<Box<dyn Any + Send>>>,
    zero: Condvar,
}

impl Latch {
    fn new(n: usize) -> Self {
        Latch {
            left: AtomicUsize::new(n),
            lock: Mutex::new(None),
            zero: Condvar::new(),
        }
    }

    /// One more job to wait for.
    fn add(&self) {
        self.left.fetch_add(1, Ordering::AcqRel);
    }

    fn count_down(&self, panic: Option<Box<dyn Any + Send>>) {
        let mut slot = lock(&self.lock);
        if slot.is_none() {
            *slot = panic;
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.zero.notify_all();
        }
    }

    /// Waits until every job has counted down; returns the first panic, if any.
    fn wait(&self) -> Option<Box<dyn Any + Send>> {
        // The helper of a one-sentence pass finishes microseconds after it is told to stop:
        // spin briefly before sleeping.
        for _ in 0..2000 {
            if self.left.load(Ordering::Acquire) == 0 {
                break;
            }
            std::hint::spin_loop();
        }
        let mut slot = lock(&self.lock);
        while self.left.load(Ordering::Acquire) != 0 {
            slot = self.zero.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
        slot.take()
    }
}

/// Poison is not an error here: every critical section leaves the state consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One thread's right to compute; given back when dropped.
pub(crate) struct Permit {
    pool: Arc<Inner>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut p = lock(&self.pool.permits);
        p.busy -= 1;
        drop(p);
        self.pool.turn.notify_all();
    }
}

impl ThreadPool {
    /// A budget of `threads` threads (at least 1).
    pub fn new(threads: usize) -> ThreadPool {
        let capacity = OnceLock::new();
        let _ = capacity.set(threads.max(1));
        Self::with_capacity(capacity)
    }

    fn with_capacity(capacity: OnceLock<usize>) -> ThreadPool {
        let inner = Arc::new(Inner {
            capacity,
            permits: Mutex::new(Permits {
                busy: 0,
                next_ticket: 0,
                serving: 0,
            }),
            turn: Condvar::new(),
            jobs: Mutex::new(Jobs {
                queue: VecDeque::new(),
                idle: 0,
                shutdown: false,
            }),
            job_ready: Condvar::new(),
            peak_busy: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
        });
        ThreadPool {
            _users: Arc::new(Users(inner.clone())),
            inner,
        }
    }

    /// The process-wide pool every model uses by default: one thread per available core.
    pub fn global() -> ThreadPool {
        static GLOBAL: OnceLock<ThreadPool> = OnceLock::new();
        GLOBAL
            .get_or_init(|| Self::with_capacity(OnceLock::new()))
            .clone()
    }

    /// The budget: how many threads may compute at once.
    pub fn threads(&self) -> usize {
        *self
            .inner
            .capacity
            .get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The most threads that ever held a permit at the same time (for tests and metrics).
    pub fn peak_busy(&self) -> usize {
        self.inner.peak_busy.load(Ordering::Relaxed)
    }

    /// Pool worker threads alive (never more than `threads() - 1`: the calling thread is the
    /// budget's first thread).
    pub fn workers(&self) -> usize {
        self.inner.workers.load(Ordering::Relaxed)
    }

    fn granted(&self, p: &mut Permits) -> Permit {
        p.busy += 1;
        self.inner.peak_busy.fetch_max(p.busy, Ordering::Relaxed);
        Permit {
            pool: self.inner.clone(),
        }
    }

    /// A permit for the calling thread, waiting in line while all are taken.
    pub(crate) fn acquire(&self) -> Permit {
        let mut p = lock(&self.inner.permits);
        // An idle pool always has a permit (the budget is at least 1): no need to know its size.
        if p.busy == 0 && p.next_ticket == p.serving {
            p.next_ticket += 1;
            p.serving += 1;
            return self.granted(&mut p);
        }
        drop(p);
        let capacity = self.threads();
        let mut p = lock(&self.inner.permits);
        let ticket = p.next_ticket;
        p.next_ticket += 1;
        while !(p.serving == ticket && p.busy < capacity) {
            p = self.inner.turn.wait(p).unwrap_or_else(|e| e.into_inner());
        }
        p.serving += 1;
        let permit = self.granted(&mut p);
        drop(p);
        // The next in line may also fit.
        self.inner.turn.notify_all();
        permit
    }

    /// A permit if one is free and nobody is waiting for one (extra threads never jump the queue).
    pub(crate) fn try_acquire(&self) -> Option<Permit> {
        let capacity = self.threads();
        let mut p = lock(&self.inner.permits);
        (p.next_ticket == p.serving && p.busy < capacity).then(|| self.granted(&mut p))
    }

    /// Queues `job` for a worker, starting one unless enough are waiting or finishing. Every
    /// queued job gets a worker of its own (a job may be the helper another job waits for): jobs,
    /// queued or running, hold a permit each, and a caller holds one, so there are at most
    /// `threads() - 1` of them — as many as workers may be started; a worker that is neither
    /// waiting nor running a job is finishing one and takes the queue next. Gives the job back
    /// when no thread can be started (the process is out of threads or memory).
    fn push(&self, job: Job) -> Result<(), Job> {
        let done = job.done.clone();
        let mut jobs = lock(&self.inner.jobs);
        jobs.queue.push_back(job);
        let at_most = self.threads().saturating_sub(1);
        if jobs.queue.len() <= jobs.idle || self.inner.workers.load(Ordering::Relaxed) >= at_most {
            drop(jobs);
            self.inner.job_ready.notify_one();
            return Ok(());
        }
        self.inner.workers.fetch_add(1, Ordering::Relaxed);
        drop(jobs);
        let inner = self.inner.clone();
        let spawned = std::thread::Builder::new()
            .name("sembed-worker".into())
            .spawn(move || worker(&inner));
        if spawned.is_ok() {
            return Ok(());
        }
        self.inner.workers.fetch_sub(1, Ordering::Relaxed);
        let mut jobs = lock(&self.inner.jobs);
        match jobs.queue.iter().rposition(|j| Arc::ptr_eq(&j.done, &done)) {
            Some(i) => jobs.queue.remove(i).map_or(Ok(()), Err),
            // A worker that was finishing took it after all.
            None => Ok(()),
        }
    }

    /// Runs `f(1)`, `f(2)`, … on worker threads, one call per permit (given back when the call
    /// ends), while `local` runs on this thread; returns once every call has finished, re-raising
    /// the first panic. A call no worker can take runs on this thread, before `local`.
    fn dispatch<R>(
        &self,
        permits: Vec<Permit>,
        f: &(dyn Fn(usize) + Sync),
        local: impl FnOnce() -> R,
    ) -> R {
        if permits.is_empty() {
            return local();
        }
        let n = permits.len();
        let done = Arc::new(Latch::new(0));
        let slots: Vec<Mutex<Option<Permit>>> =
            permits.into_iter().map(|p| Mutex::new(Some(p))).collect();
        let next = AtomicUsize::new(0);
        let call = || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let _permit = lock(&slots[i]).take();
            f(i + 1);
        };
        let call: &(dyn Fn() + Sync) = &call;
        // If anything below panics, the unwinding still waits for the workers: they borrow this
        // frame.
        struct WaitOnUnwind<'a>(&'a Latch);
        impl Drop for WaitOnUnwind<'_> {
            fn drop(&mut self) {
                let _ = self.0.wait();
            }
        }
        let guard = WaitOnUnwind(&done);
        for _ in 0..n {
            // SAFETY: only the lifetime is erased. This function does not return or unwind before
            // `done` has counted every job down (the wait below, or `guard`), so `call` and what
            // it borrows outlive all uses.
            let run: *const (dyn Fn() + Sync + 'static) = unsafe { std::mem::transmute(call) };
            done.add();
            if let Err(job) = self.push(Job {
                run,
                done: done.clone(),
            }) {
                run_job(job);
            }
        }
        let r = local();
        std::mem::forget(guard);
        if let Some(p) = done.wait() {
            std::panic::resume_unwind(p);
        }
        r
    }

    /// Runs `f(0)`, `f(1)`, … on up to `want` threads at once (this one included, which waits for
    /// its turn first); `f` receives a worker index in `0..threads used`, and the number of
    /// threads used is returned. Threads beyond the first are only those free right now, so `f`
    /// should take its work from a shared queue (an atomic counter) rather than by its index.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// let pool = sembed::ThreadPool::new(2);
    /// let (next, sum) = (AtomicUsize::new(0), AtomicUsize::new(0));
    /// pool.run(2, &|_worker| {
    ///     loop {
    ///         let i = next.fetch_add(1, Ordering::Relaxed);
    ///         if i >= 100 { break }
    ///         sum.fetch_add(i, Ordering::Relaxed);
    ///     }
    /// });
    /// assert_eq!(sum.into_inner(), 4950);
    /// ```
    pub fn run(&self, want: usize, f: &(dyn Fn(usize) + Sync)) -> usize {
        let _mine = self.acquire();
        let mut extra = Vec::new();
        while extra.len() + 1 < want {
            match self.try_acquire() {
                Some(p) => extra.push(p),
                None => break,
            }
        }
        let used = extra.len() + 1;
        self.dispatch(extra, f, || f(0));
        used
    }

    /// Runs `f` on this thread with a helper from the budget spinning beside it, if a permit is
    /// free (`Some(team)`), else alone (`None`). The caller must already hold a permit.
    pub(crate) fn with_helper<'w, R>(&self, f: impl FnOnce(Option<&Team<'w>>) -> R) -> R {
        let Some(permit) = self.try_acquire() else {
            return f(None);
        };
        let team = Team::new();
        let done = Arc::new(Latch::new(1));
        // (Counted before the push: a push that fails gives the job back, counted down below.)
        let serve = || {
            let _permit = &permit;
            team.serve();
        };
        let serve: &(dyn Fn() + Sync) = &serve;
        // SAFETY: only the lifetime is erased. Once queued, the job is waited for (`Stop`) before
        // this frame ends, normally or by unwinding, so `serve` and `team` outlive it.
        let run: *const (dyn Fn() + Sync + 'static) = unsafe { std::mem::transmute(serve) };
        if self
            .push(Job {
                run,
                done: done.clone(),
            })
            .is_err()
        {
            done.count_down(None);
            return f(None);
        }
        // Stops the helper and waits for it, also when `f` panics (as it does when the helper
        // panicked: `Team::matmul` does not wait for a failed helper).
        struct Stop<'a, 'w>(&'a Team<'w>, &'a Latch);
        impl Drop for Stop<'_, '_> {
            fn drop(&mut self) {
                self.0.stop();
                let _ = self.1.wait();
            }
        }
        let stop = Stop(&team, &done);
        let r = f(Some(&team));
        std::mem::forget(stop);
        team.stop();
        if let Some(p) = done.wait() {
            std::panic::resume_unwind(p);
        }
        r
    }
}

fn run_job(job: Job) {
    // SAFETY: the queuing thread keeps the closure alive until `done` has counted this job down.
    let run = unsafe { &*job.run };
    let result = std::panic::catch_unwind(AssertUnwindSafe(run));
    job.done.count_down(result.err());
}

/// A worker: runs queued jobs, sleeping in between, until the pool's last handle is dropped.
fn worker(inner: &Inner) {
    loop {
        let mut jobs = lock(&inner.jobs);
        let job = loop {
            if let Some(job) = jobs.queue.pop_front() {
                break job;
            }
            if jobs.shutdown {
                inner.workers.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            jobs.idle += 1;
            jobs = inner
                .job_ready
                .wait(jobs)
                .unwrap_or_else(|p| p.into_inner());
            jobs.idle -= 1;
        };
        drop(jobs);
        run_job(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads inside `f` at once, measured by `f` itself (not by the pool's own accounting).
    struct Gauge {
        now: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Gauge {
        fn new() -> Self {
            Gauge {
                now: AtomicUsize::new(0),
                peak: AtomicUsize::new(0),
            }
        }
        fn enter_for(&self, micros: u64) {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_micros(micros));
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn many_callers_never_exceed_the_budget() {
        let pool = ThreadPool::new(3);
        let gauge = Gauge::new();
        let used_max = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let used = pool.run(4, &|_| gauge.enter_for(300));
                        used_max.fetch_max(used, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(gauge.peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(pool.peak_busy(), 3, "the budget was used");
        assert!(pool.workers() <= 2, "{} workers", pool.workers());
        assert!(used_max.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    fn one_caller_gets_every_thread_and_all_indices_run() {
        let pool = ThreadPool::new(4);
        let seen = Mutex::new(Vec::new());
        let used = pool.run(8, &|i| lock(&seen).push(i));
        assert_eq!(used, 4);
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, [0, 1, 2, 3]);
        assert_eq!(pool.run(1, &|i| assert_eq!(i, 0)), 1);
    }

    #[test]
    fn a_panic_in_a_worker_reaches_the_caller_and_the_pool_survives() {
        let pool = ThreadPool::new(2);
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            pool.run(2, &|i| {
                if i == 1 {
                    panic!("worker failed");
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            })
        }));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        assert_eq!(
            pool.run(2, &|_| {
                count.fetch_add(1, Ordering::SeqCst);
            }),
            2
        );
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    /// Workers end when the last handle of their pool is dropped (a server with a pool per
    /// tenant must not collect idle threads).
    #[test]
    fn workers_exit_with_the_last_handle() {
        let pool = ThreadPool::new(3);
        let inner = pool.inner.clone();
        assert_eq!(
            pool.run(3, &|_| std::thread::sleep(
                std::time::Duration::from_millis(2)
            )),
            3
        );
        assert_eq!(pool.workers(), 2);
        let clone = pool.clone();
        drop(pool);
        assert_eq!(clone.workers(), 2, "a handle is left");
        drop(clone);
        for _ in 0..500 {
            if inner.workers.load(Ordering::Relaxed) == 0 {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!(
            "{} workers still alive",
            inner.workers.load(Ordering::Relaxed)
        );
    }

    /// A helper that panics makes the caller panic, not wait for it forever.
    #[test]
    fn a_failing_helper_is_not_waited_for() {
        let pool = ThreadPool::new(2);
        let _mine = pool.acquire();
        let (m, k, n) = (2, 8, 96);
        let w = vec![0.5f32; n * k];
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            pool.with_helper(|team| {
                let team = team.expect("a permit is free");
                team.fail_next_job();
                let x = vec![1.0f32; m * k];
                // The helper fails on the first product it takes up; the caller withdraws those
                // it finished alone before the helper came, so it posts products until one fails.
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_secs(60) {
                    let mut y = vec![0f32; m * n];
                    team.matmul(
                        &x,
                        crate::ops::Weights::Rows(crate::ops::Floats::F32(&w)),
                        &mut y,
                        (m, k, n),
                        crate::ops::CpuLevel::portable(),
                    );
                }
            })
        }));
        assert!(r.is_err(), "the helper never took a product up in 60 s");
        // The pool still works.
        assert!(pool.with_helper(|t| t.is_some()));
    }

    #[test]
    fn the_helper_is_lent_only_when_free() {
        let pool = ThreadPool::new(2);
        let _held = pool.acquire();
        assert!(pool.with_helper(|t| t.is_some()));
        let _other = pool.acquire();
        assert!(!pool.with_helper(|t| t.is_some()), "budget spent");
    }
}
