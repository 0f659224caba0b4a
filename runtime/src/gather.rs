//! [`Gather`]: one output vector that several agents fill in place, each its
//! own part, so that a parallel map needs no concatenation copy.
//!
//! An agent's result normally travels in its exit notification; for a
//! parallel map over millions of elements that means one vector per worker
//! and a copy (and a page fault per 4 KiB) to join them. A `Gather` is
//! allocated once by the mapper; each worker claims a part, writes it, and
//! the mapper takes the whole vector when every part is written.
//!
//! Protocol:
//! 1. `Gather::new(len, parts)` allocates room for `len` elements (unwritten)
//!    and splits it into `parts` ranges; every part is `FREE`.
//! 2. `part(i)` claims part `i` with a compare-exchange `FREE → CLAIMED`; only
//!    one [`PartWriter`] can exist per part, and it holds a counted reference
//!    to the buffer, so the buffer outlives every writer.
//! 3. The writer appends to its range only (a bounds-checked `push`).
//! 4. Dropping the writer publishes its part (Release): `DONE` if the range is
//!    full, else it drops what it wrote and marks the part `FAILED`.
//! 5. `into_vec` succeeds only when it holds the last reference (so no writer
//!    exists) and every part is `DONE` (Acquire): the buffer becomes a `Vec`
//!    without a copy. Otherwise the gather is handed back.
//! 6. Dropping the last reference drops the elements of `DONE` parts and
//!    frees the buffer.

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// A part nobody has claimed.
const FREE: u8 = 0;
/// A part a writer holds.
const CLAIMED: u8 = 1;
/// A part written in full.
const DONE: u8 = 2;
/// A part whose writer went away early; its elements were dropped.
const FAILED: u8 = 3;

/// An output vector of `len` elements, filled in place by up to `parts`
/// writers, one per part. Cloning shares it.
///
/// ```
/// use erlangen_runtime::{Gather, Runtime, SpawnOptions, Down};
///
/// let rt = Runtime::builder().workers(2).build().unwrap();
/// let squares = rt.run(|ctx| {
///     let out = Gather::<u64>::new(1000, 4);
///     for i in 0..out.parts() {
///         let mut part = out.part(i).unwrap();
///         ctx.spawn_with(SpawnOptions::new().monitor(), move |_| {
///             for x in part.range() {
///                 part.push(x as u64 * x as u64).unwrap();
///             }
///         })
///         .unwrap();
///     }
///     for _ in 0..out.parts() {
///         ctx.receive().downcast::<Down>().unwrap();
///     }
///     out.into_vec().unwrap()
/// });
/// let squares = squares.unwrap();
/// assert_eq!(squares.len(), 1000);
/// assert_eq!(squares[999], 999 * 999);
/// ```
pub struct Gather<T> {
    shared: Arc<Buffer<T>>,
}

/// The allocation and the state of its parts.
struct Buffer<T> {
    /// Start of room for `len` elements (a `Vec`'s buffer, taken apart).
    ptr: *mut T,
    /// The `Vec`'s capacity, to rebuild it.
    capacity: usize,
    len: usize,
    /// One state word per part (`FREE`, `CLAIMED`, `DONE`, `FAILED`).
    states: Box<[AtomicU8]>,
}

// SAFETY: the buffer owns `T`s and hands them to other threads (writers run
// anywhere, the vector ends up with whoever calls `into_vec`): `T: Send` is
// what that needs. Shared access never reads an element: writers write
// disjoint ranges (one writer per part, step 2), and elements are read only
// through the unique owner (steps 5 and 6).
unsafe impl<T: Send> Send for Buffer<T> {}
// SAFETY: as above; `&Buffer` only gives access to the atomic state words.
unsafe impl<T: Send> Sync for Buffer<T> {}

/// Why [`Gather::into_vec`] could not hand the vector over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatherError {
    /// A writer (or another clone of the gather) still exists.
    Shared,
    /// This part was not written in full (never claimed, still being
    /// written, or its writer went away early).
    Unwritten(usize),
}

impl fmt::Display for GatherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatherError::Shared => write!(f, "the gather is still shared"),
            GatherError::Unwritten(i) => write!(f, "part {i} was not written in full"),
        }
    }
}

impl std::error::Error for GatherError {}

impl<T> Gather<T> {
    /// Room for `len` elements in `parts` parts of `len / parts` elements
    /// each, the last taking the remainder. `parts` is at least one.
    ///
    /// # Panics
    ///
    /// As `Vec::with_capacity`: if `len` elements overflow the address
    /// space.
    pub fn new(len: usize, parts: usize) -> Gather<T> {
        let parts = parts.max(1);
        let mut vec = ManuallyDrop::new(Vec::<T>::with_capacity(len));
        let states = (0..parts).map(|_| AtomicU8::new(FREE)).collect();
        Gather {
            shared: Arc::new(Buffer {
                ptr: vec.as_mut_ptr(),
                capacity: vec.capacity(),
                len,
                states,
            }),
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.shared.len
    }

    /// Whether the vector has no elements.
    pub fn is_empty(&self) -> bool {
        self.shared.len == 0
    }

    /// The number of parts.
    pub fn parts(&self) -> usize {
        self.shared.states.len()
    }

    /// The index range of part `i` (empty past the last part).
    pub fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.shared.range(i)
    }

    /// Claims part `i` for writing; `None` if it was claimed before or does
    /// not exist.
    pub fn part(&self, i: usize) -> Option<PartWriter<T>> {
        let state = self.shared.states.get(i)?;
        state
            .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        let range = self.shared.range(i);
        Some(PartWriter {
            shared: self.shared.clone(),
            index: i,
            start: range.start,
            end: range.end,
            written: 0,
        })
    }

    /// The whole vector, once every part is written and no writer or clone
    /// remains; otherwise the reason and the gather back.
    pub fn into_vec(self) -> Result<Vec<T>, (GatherError, Gather<T>)> {
        let shared = match Arc::try_unwrap(self.shared) {
            Ok(shared) => shared,
            Err(shared) => return Err((GatherError::Shared, Gather { shared })),
        };
        // Acquire pairs with each writer's Release in `PartWriter::drop`: the
        // elements it wrote are visible here.
        if let Some(i) =
            (0..shared.states.len()).find(|&i| shared.states[i].load(Ordering::Acquire) != DONE)
        {
            let shared = Arc::new(shared);
            return Err((GatherError::Unwritten(i), Gather { shared }));
        }
        let mut shared = ManuallyDrop::new(shared);
        drop(std::mem::take(&mut shared.states));
        // SAFETY: `ptr` and `capacity` come from a `Vec<T>` (step 1) whose
        // buffer nobody else owns (we hold the only reference, taken apart
        // with `ManuallyDrop` so `Buffer::drop` does not free it), and every
        // part is DONE, so all `len` elements are initialized.
        Ok(unsafe { Vec::from_raw_parts(shared.ptr, shared.len, shared.capacity) })
    }
}

impl<T> Clone for Gather<T> {
    fn clone(&self) -> Self {
        Gather {
            shared: self.shared.clone(),
        }
    }
}

impl<T> fmt::Debug for Gather<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gather")
            .field("len", &self.shared.len)
            .field("parts", &self.shared.states.len())
            .finish()
    }
}

impl<T> Buffer<T> {
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let parts = self.states.len();
        if i >= parts {
            return self.len..self.len;
        }
        let chunk = self.len / parts;
        let start = i * chunk;
        let end = if i + 1 == parts {
            self.len
        } else {
            start + chunk
        };
        start..end
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        for i in 0..self.states.len() {
            // `&mut self`: no writer exists (each holds a reference).
            if *self.states[i].get_mut() == DONE {
                let range = self.range(i);
                // SAFETY: a DONE part's elements are initialized (step 4),
                // nobody else can reach them (we are the last reference),
                // and they are dropped once, here.
                unsafe {
                    let part =
                        std::ptr::slice_from_raw_parts_mut(self.ptr.add(range.start), range.len());
                    std::ptr::drop_in_place(part);
                }
            }
        }
        // SAFETY: `ptr` and `capacity` come from a `Vec<T>` (step 1); with
        // length 0 the rebuilt vector frees the buffer and drops nothing.
        drop(unsafe { Vec::from_raw_parts(self.ptr, 0, self.capacity) });
    }
}

/// The right to write one part of a [`Gather`]. Dropping it publishes the
/// part: whole if every element was pushed, else discarded.
pub struct PartWriter<T> {
    shared: Arc<Buffer<T>>,
    index: usize,
    start: usize,
    end: usize,
    /// Elements written so far, from `start`.
    written: usize,
}

impl<T> PartWriter<T> {
    /// The index range this part covers in the whole vector.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    /// How many elements are still to be pushed.
    pub fn remaining(&self) -> usize {
        self.end - self.start - self.written
    }

    /// Writes the next element of the part; gives it back if the part is
    /// full.
    pub fn push(&mut self, value: T) -> Result<(), T> {
        if self.remaining() == 0 {
            return Err(value);
        }
        // SAFETY: `start + written < end <= len <= capacity`, so the slot is
        // inside the allocation; it lies in this part's range, which only
        // this writer can reach (one writer per part), and it has not been
        // written before (`written` only grows).
        unsafe { self.shared.ptr.add(self.start + self.written).write(value) };
        self.written += 1;
        Ok(())
    }

    /// Pushes every element of `values` until the part is full; returns how
    /// many were pushed.
    pub fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) -> usize {
        let before = self.written;
        for value in values {
            if self.push(value).is_err() {
                break;
            }
        }
        self.written - before
    }
}

impl<T> Drop for PartWriter<T> {
    fn drop(&mut self) {
        let state = if self.remaining() == 0 {
            DONE
        } else {
            // SAFETY: the first `written` elements of the part were written
            // by this writer and nobody else can reach them; they are
            // dropped once, here, and the part is marked FAILED so the
            // buffer never drops them again.
            unsafe {
                let part = std::ptr::slice_from_raw_parts_mut(
                    self.shared.ptr.add(self.start),
                    self.written,
                );
                std::ptr::drop_in_place(part);
            }
            FAILED
        };
        // Release pairs with the Acquire in `into_vec`.
        self.shared.states[self.index].store(state, Ordering::Release);
    }
}

impl<T> fmt::Debug for PartWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartWriter")
            .field("part", &self.index)
            .field("range", &self.range())
            .field("written", &self.written)
            .finish()
    }
}

// Plain threads, so that Miri can check the unsafe code (it cannot run
// agents: corosensei switches stacks in assembly).
// `cargo +nightly miri test -p erlangen-runtime --lib -- gather body`
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn threads_fill_parts_and_failed_parts_drop_once() {
        let out = Gather::<Box<usize>>::new(37, 4);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let mut part = out.part(i).unwrap();
                std::thread::spawn(move || {
                    let range = part.range();
                    // Part 3 stops one short: it fails and drops what it wrote.
                    let take = if i == 3 { range.len() - 1 } else { range.len() };
                    part.extend(range.take(take).map(Box::new));
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let (error, out) = out.into_vec().unwrap_err();
        assert_eq!(error, GatherError::Unwritten(3));
        drop(out);

        let out = Gather::<Box<usize>>::new(37, 4);
        std::thread::scope(|scope| {
            for i in 0..4 {
                let mut part = out.part(i).unwrap();
                scope.spawn(move || {
                    let range = part.range();
                    part.extend(range.map(Box::new));
                });
            }
        });
        let all = out.into_vec().unwrap();
        assert!(all.iter().enumerate().all(|(i, v)| **v == i));
    }
}
