//! `Body`: the function an unstarted agent will run, kept inline in its cell
//! when it is small, boxed otherwise.
//!
//! Most agent closures capture a few words (a pid, a counter, a number), so
//! storing them in place saves one allocation and one free per spawn, which
//! matters for spawn churn. The closure moves onto the agent's own stack when
//! the coroutine starts.
//!
//! Layout: `data` holds either the closure itself (if it fits in
//! `BODY_INLINE_WORDS` words and needs no more than word alignment) or a
//! `Box` of it; `call` and `drop` are the functions for that choice, fixed
//! at construction. Exactly one of them runs, once: `run` consumes the body
//! and skips its `Drop`.

use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};

use super::coroutine::{ResumeArg, Suspender};
use crate::config::BODY_INLINE_WORDS;
use crate::exit::ExitStatus;

/// Inline room for a body.
type Storage = MaybeUninit<[usize; BODY_INLINE_WORDS]>;

/// Runs the body stored at the pointer, moving it out.
type CallFn = unsafe fn(*mut Storage, &Suspender, ResumeArg) -> Ending;

/// How a body's run ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The agent's function returned or the agent exited.
    Exit(ExitStatus),
    /// The agent hibernated (`Ctx::hibernate`): its stack is given up, and
    /// `then` runs on a fresh one when a message arrives, or at once when
    /// `at_once` (one was already there). Boxed: every resume returns an
    /// `Ending` by value, and the rare hibernation must not make that copy
    /// as large as a body.
    Hibernate { then: Box<Body>, at_once: bool },
}

/// Drops the body stored at the pointer without running it.
type DropFn = unsafe fn(*mut Storage);

/// What an unstarted (or hibernated) agent will run: given its suspender and
/// the first resume's worker, it returns how it ended.
pub(crate) struct Body {
    /// The closure, or a `Box` of it.
    data: Storage,
    call: CallFn,
    drop: DropFn,
}

// SAFETY: `Body::new` only accepts `Send` closures, and the box or the inline
// bytes are owned by the body alone.
unsafe impl Send for Body {}

impl Body {
    /// Wraps `f`, inline if it fits.
    pub(crate) fn new<F>(f: F) -> Body
    where
        F: FnOnce(&Suspender, ResumeArg) -> Ending + Send + 'static,
    {
        let mut data = Storage::uninit();
        if size_of::<F>() <= size_of::<Storage>() && align_of::<F>() <= align_of::<Storage>() {
            // SAFETY: `F` fits in `data` and its alignment divides the
            // storage's (checked just above).
            unsafe { data.as_mut_ptr().cast::<F>().write(f) };
            Body {
                data,
                call: call_inline::<F>,
                drop: drop_inline::<F>,
            }
        } else {
            let boxed: *mut F = Box::into_raw(Box::new(f));
            // SAFETY: a pointer is one word, which the storage holds.
            unsafe { data.as_mut_ptr().cast::<*mut F>().write(boxed) };
            Body {
                data,
                call: call_boxed::<F>,
                drop: drop_boxed::<F>,
            }
        }
    }

    /// Runs the body.
    pub(crate) fn run(self, suspender: &Suspender, arg: ResumeArg) -> Ending {
        let mut this = ManuallyDrop::new(self);
        let call = this.call;
        // SAFETY: `call` was chosen with `data`'s contents in `new`; it moves
        // them out, and `ManuallyDrop` keeps `Drop` from touching them again.
        unsafe { call(&mut this.data, suspender, arg) }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // SAFETY: `drop` was chosen with `data`'s contents in `new`, and a
        // body that ran never gets here (`run` skips `Drop`).
        unsafe { (self.drop)(&mut self.data) }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body")
    }
}

/// # Safety
/// `data` holds an `F` written by `Body::new`, read here once.
unsafe fn call_inline<F>(data: *mut Storage, suspender: &Suspender, arg: ResumeArg) -> Ending
where
    F: FnOnce(&Suspender, ResumeArg) -> Ending,
{
    // SAFETY: the caller's contract.
    let f = unsafe { data.cast::<F>().read() };
    f(suspender, arg)
}

/// # Safety
/// `data` holds an `F` written by `Body::new`, dropped here once.
unsafe fn drop_inline<F>(data: *mut Storage) {
    // SAFETY: the caller's contract.
    unsafe { data.cast::<F>().drop_in_place() }
}

/// # Safety
/// `data` holds a `Box<F>`'s pointer written by `Body::new`, taken here once.
unsafe fn call_boxed<F>(data: *mut Storage, suspender: &Suspender, arg: ResumeArg) -> Ending
where
    F: FnOnce(&Suspender, ResumeArg) -> Ending,
{
    // SAFETY: the caller's contract; the pointer came from `Box::into_raw`.
    let f = unsafe { Box::from_raw(data.cast::<*mut F>().read()) };
    f(suspender, arg)
}

/// # Safety
/// `data` holds a `Box<F>`'s pointer written by `Body::new`, freed here once.
unsafe fn drop_boxed<F>(data: *mut Storage) {
    // SAFETY: the caller's contract; the pointer came from `Box::into_raw`.
    drop(unsafe { Box::from_raw(data.cast::<*mut F>().read()) });
}

// Plain code, so that Miri can check it:
// `cargo +nightly miri test -p erlangen-runtime --lib -- gather body`
#[cfg(all(test, not(loom)))]
mod tests {
    use std::ptr::NonNull;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::exit::Value;

    fn run(body: Body) -> ExitStatus {
        let suspender = Suspender::detached();
        match body.run(&suspender, NonNull::dangling()) {
            Ending::Exit(status) => status,
            Ending::Hibernate { .. } => panic!("these bodies do not hibernate"),
        }
    }

    /// Counts drops.
    struct Counted(Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn small_and_large_bodies_run_once_or_drop_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let small = Counted(drops.clone());
        let large = (Counted(drops.clone()), [7u64; 16]);
        let status = run(Body::new(move |_, _| {
            let _keep = &small;
            Ending::Exit(ExitStatus::Ok(Value::new(1u32)))
        }));
        assert_eq!(status.value().unwrap().downcast_ref::<u32>(), Some(&1));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let status = run(Body::new(move |_, _| {
            let (_counted, words) = &large;
            Ending::Exit(ExitStatus::Ok(Value::new(words.iter().sum::<u64>())))
        }));
        assert_eq!(status.value().unwrap().downcast_ref::<u64>(), Some(&112));
        assert_eq!(drops.load(Ordering::SeqCst), 2);

        let small = Counted(drops.clone());
        let large = (Counted(drops.clone()), [0u8; 100]);
        drop(Body::new(move |_, _| {
            let _keep = &small;
            Ending::Exit(ExitStatus::Ok(Value::new(())))
        }));
        drop(Body::new(move |_, _| {
            let _keep = &large;
            Ending::Exit(ExitStatus::Ok(Value::new(())))
        }));
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn an_overaligned_body_is_boxed_and_still_runs() {
        #[repr(align(64))]
        struct Wide(u8);
        let wide = Wide(5);
        let status = run(Body::new(move |_, _| {
            Ending::Exit(ExitStatus::Ok(Value::new(wide.0)))
        }));
        assert_eq!(status.value().unwrap().downcast_ref::<u8>(), Some(&5));
    }
}
