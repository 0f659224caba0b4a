//! `Message`: any `Send + 'static` value, moved (not copied) into a mailbox.
//!
//! Locally a message is never serialized. A message is three words: a
//! pointer to a static per-type table and two words of data. A value of at
//! most two words (integers, small tuples, a `Pid`, a `Box`) is stored in the
//! data words, so sending it allocates nothing; a larger value is boxed and
//! the box pointer is stored instead. Types that are meant to cross nodes
//! also implement serde's traits in their own crate; the runtime never looks
//! inside.
//!
//! # Safety
//!
//! Rule PAYLOAD: `data` holds an initialised value of the table's `Stored`
//! type: the `T` itself when `table.boxed` is false, a `Box<T>` when it is
//! true, where `T` is the type whose `TypeId` is `table.type_id`. The stored
//! value is dropped exactly once: by `Drop`, or moved out by `downcast`
//! (which then skips `Drop`).

use std::any::{Any, TypeId};
use std::fmt;
use std::mem::{align_of, size_of, ManuallyDrop, MaybeUninit};

use crate::exit::Down;
use crate::trace::{TraceContext, Traced};

/// Room for the payload.
type Words = [usize; 2];

/// What a message knows about its value's type.
struct Table {
    /// The value's type.
    type_id: TypeId,
    /// Its name, for messages about it (`Debug`, a refused send).
    type_name: fn() -> &'static str,
    /// Whether `data` holds a `Box<T>` rather than the `T`.
    boxed: bool,
    /// Drops the stored payload in place.
    drop: unsafe fn(*mut u8),
}

/// The table of `T`.
struct TableOf<T>(std::marker::PhantomData<T>);

impl<T: Any> TableOf<T> {
    /// Whether a `T` fits in the data words.
    const INLINE: bool =
        size_of::<T>() <= size_of::<Words>() && align_of::<T>() <= align_of::<Words>();
    /// The table; a constant, so every message of `T` shares one static.
    const TABLE: Table = Table {
        type_id: TypeId::of::<T>(),
        type_name: std::any::type_name::<T>,
        boxed: !Self::INLINE,
        drop: if Self::INLINE {
            drop_stored::<T>
        } else {
            drop_stored::<Box<T>>
        },
    };
}

/// `value` as a `U` if `T` is `U` (a type check the compiler folds away),
/// else `value` back. No allocation, no unsafe code.
/// The table of a traced message (trace.rs): a static, so that its address
/// tells a traced message from any other, a `Traced` a user wrapped with
/// `Message::new` included (that one is an ordinary message).
static TRACED_TABLE: Table = Table {
    type_id: TypeId::of::<Traced>(),
    type_name: std::any::type_name::<Traced>,
    boxed: true,
    drop: drop_stored::<Box<Traced>>,
};

pub(crate) fn cast<T: Any, U: Any>(value: T) -> Result<U, T> {
    let mut slot = Some(value);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(same) => Ok(same.take().expect("the slot was just filled")),
        None => Err(slot.expect("the slot is taken only when the types match")),
    }
}

/// Drops a stored `S` in place.
///
/// # Safety
///
/// `ptr` points at an initialised `S` that is not used afterwards.
unsafe fn drop_stored<S>(ptr: *mut u8) {
    // SAFETY: the caller's obligation.
    unsafe { std::ptr::drop_in_place(ptr.cast::<S>()) }
}

/// A received message. Take its value out with [`Message::downcast`].
///
/// ```
/// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
/// let n = rt.run(|ctx| {
///     ctx.send(&ctx.pid(), 41u32);
///     ctx.receive().downcast::<u32>().unwrap() + 1
/// });
/// assert_eq!(n.unwrap(), 42);
/// ```
pub struct Message {
    /// The value's type table.
    table: &'static Table,
    /// The value, or its box (rule PAYLOAD).
    data: MaybeUninit<Words>,
    /// A message may hold a `!Sync` value.
    _not_sync: std::marker::PhantomData<std::cell::Cell<()>>,
}

// SAFETY: a message only ever holds `T: Send` values (`Message::new`), and
// moving it moves the value.
unsafe impl Send for Message {}

impl Message {
    /// Wraps a value as a message. A `Message` is not wrapped again: it is
    /// the message, so forwarding what an agent received sends it on as it
    /// came (a proxy's receiver can downcast it to the original type).
    ///
    /// ```
    /// use erlangen_runtime::Message;
    /// let forwarded = Message::new(Message::new(7u8));
    /// assert_eq!(forwarded.downcast::<u8>().unwrap(), 7);
    /// ```
    pub fn new<T: Any + Send>(value: T) -> Message {
        let value = match cast::<T, Message>(value) {
            Ok(message) => return message,
            Err(value) => value,
        };
        let table: &'static Table = &TableOf::<T>::TABLE;
        let mut data = MaybeUninit::<Words>::uninit();
        if TableOf::<T>::INLINE {
            // SAFETY: `data` is big and aligned enough for T (INLINE); this
            // establishes rule PAYLOAD for an unboxed T.
            unsafe { data.as_mut_ptr().cast::<T>().write(value) };
        } else {
            // SAFETY: a Box is one word; this establishes rule PAYLOAD for a
            // boxed T.
            unsafe { data.as_mut_ptr().cast::<Box<T>>().write(Box::new(value)) };
        }
        Message {
            table,
            data,
            _not_sync: std::marker::PhantomData,
        }
    }

    /// The type of the value it holds (what the nodes layer looks up to
    /// encode it).
    ///
    /// ```
    /// use erlangen_runtime::Message;
    /// assert_eq!(Message::new(1u8).value_type_id(), std::any::TypeId::of::<u8>());
    /// ```
    pub fn value_type_id(&self) -> TypeId {
        self.table.type_id
    }

    /// The name of the type of the value it holds (`std::any::type_name`:
    /// for messages to people, not for comparing).
    ///
    /// ```
    /// use erlangen_runtime::Message;
    /// assert_eq!(Message::new(1u8).value_type_name(), "u8");
    /// assert_eq!(format!("{:?}", Message::new(1u8)), "Message(u8)");
    /// ```
    pub fn value_type_name(&self) -> &'static str {
        (self.table.type_name)()
    }

    /// Whether the message holds a `T` (looking through a trace context,
    /// trace.rs).
    #[inline]
    pub fn is<T: Any>(&self) -> bool {
        self.table.type_id == TypeId::of::<T>() || (self.is_traced() && self.traced_is::<T>())
    }

    /// Whether this is a traced message around a `T`.
    #[cold]
    #[inline(never)]
    fn traced_is<T: Any>(&self) -> bool {
        self.traced_ref()
            .is_some_and(|traced| traced.message.is::<T>())
    }

    /// Whether the message carries a trace context (trace.rs): one
    /// compare of the table's address, on every receive (a `TypeId`
    /// compare costs several nanoseconds there).
    #[inline(always)]
    pub(crate) fn is_traced(&self) -> bool {
        std::ptr::eq(self.table, &TRACED_TABLE)
    }

    /// The trace context and the message, if it carries one.
    fn traced_ref(&self) -> Option<&Traced> {
        if !self.is_traced() {
            return None;
        }
        // SAFETY: rule PAYLOAD: a Traced is larger than the data words, so
        // it is boxed (type checked above).
        Some(unsafe { &**self.data.as_ptr().cast::<Box<Traced>>() })
    }

    /// `message` with a trace context (trace.rs step 2): what the nodes
    /// layer delivers when a traced message arrives. Delivered by
    /// `Runtime::send` or `RuntimeHandle::send`, the receiver continues its
    /// trace; sent by an agent that is in no trace, it arrives as an
    /// ordinary message whose type is seen through.
    ///
    /// ```
    /// use erlangen_runtime::{Message, TraceContext};
    /// let context = TraceContext { trace_id: 1, span_id: 2, sampled: true };
    /// let traced = Message::traced(context, Message::new(7u8));
    /// assert!(traced.is::<u8>());
    /// assert_eq!(traced.trace_context(), Some(context));
    /// assert_eq!(traced.downcast::<u8>().unwrap(), 7);
    /// ```
    pub fn traced(context: TraceContext, message: Message) -> Message {
        let message = message.split_trace().1;
        let mut data = MaybeUninit::<Words>::uninit();
        // SAFETY: a Box is one word; with TRACED_TABLE (a boxed Traced)
        // this establishes rule PAYLOAD.
        unsafe {
            data.as_mut_ptr()
                .cast::<Box<Traced>>()
                .write(Box::new(Traced { context, message }));
        }
        Message {
            table: &TRACED_TABLE,
            data,
            _not_sync: std::marker::PhantomData,
        }
    }

    /// The trace context the message carries, if any.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.traced_ref().map(|traced| traced.context)
    }

    /// The message without its trace context, and that context.
    ///
    /// ```
    /// use erlangen_runtime::Message;
    /// let (context, message) = Message::new(7u8).split_trace();
    /// assert_eq!((context, message.downcast::<u8>().unwrap()), (None, 7));
    /// ```
    pub fn split_trace(self) -> (Option<TraceContext>, Message) {
        if !self.is_traced() {
            return (None, self);
        }
        match self.downcast_exact::<Traced>() {
            Ok(traced) => (Some(traced.context), traced.message),
            Err(message) => (None, message),
        }
    }

    /// The message without its trace context, by reference.
    pub fn untraced(&self) -> &Message {
        self.traced_ref().map_or(self, |traced| &traced.message)
    }

    /// The value, if it is a `T` (looking through a trace context);
    /// otherwise the message back.
    pub fn downcast<T: Any>(self) -> Result<T, Message> {
        // One `TypeId` compare on the common path (it costs more than a
        // pointer compare); the trace's look is on the mismatch path only.
        if self.table.type_id == TypeId::of::<T>() {
            // SAFETY: the type was checked just above.
            return Ok(unsafe { self.into_value::<T>() });
        }
        if self.is_traced() {
            return self.downcast_traced();
        }
        Err(self)
    }

    /// `downcast` of a traced message: the inner message's value, or the
    /// traced message back.
    #[cold]
    #[inline(never)]
    fn downcast_traced<T: Any>(self) -> Result<T, Message> {
        let (context, message) = self.split_trace();
        message.downcast_exact().map_err(|message| match context {
            Some(context) => Message::traced(context, message),
            None => message,
        })
    }

    /// The value, if the message holds exactly a `T`.
    fn downcast_exact<T: Any>(self) -> Result<T, Message> {
        if self.table.type_id != TypeId::of::<T>() {
            return Err(self);
        }
        // SAFETY: the type was checked just above.
        Ok(unsafe { self.into_value::<T>() })
    }

    /// The value, moved out.
    ///
    /// # Safety
    ///
    /// The message holds exactly a `T` (its table's type id is `T`'s).
    #[inline(always)]
    unsafe fn into_value<T: Any>(self) -> T {
        let this = ManuallyDrop::new(self);
        if this.table.boxed {
            // SAFETY: rule PAYLOAD: a Box<T> (the caller checked the type), moved out
            // once; `this` is never dropped.
            let boxed = unsafe { this.data.as_ptr().cast::<Box<T>>().read() };
            *boxed
        } else {
            // SAFETY: rule PAYLOAD: an unboxed T, moved out once.
            unsafe { this.data.as_ptr().cast::<T>().read() }
        }
    }

    /// A reference to the value, if it is a `T` (looking through a trace
    /// context).
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        if self.table.type_id != TypeId::of::<T>() {
            return self
                .traced_ref()
                .and_then(|traced| traced.message.downcast_ref::<T>());
        }
        if self.table.boxed {
            // SAFETY: rule PAYLOAD: a Box<T> (type checked above).
            Some(unsafe { &**self.data.as_ptr().cast::<Box<T>>() })
        } else {
            // SAFETY: rule PAYLOAD: an unboxed T.
            Some(unsafe { &*self.data.as_ptr().cast::<T>() })
        }
    }

    /// The exit notification this message holds, if it is one.
    pub fn as_down(&self) -> Option<&Down> {
        self.downcast_ref::<Down>()
    }
}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: rule PAYLOAD: the table's drop matches the stored payload,
        // which is dropped only here.
        unsafe { (self.table.drop)(self.data.as_mut_ptr().cast::<u8>()) }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(down) = self.as_down() {
            return f.debug_tuple("Message").field(down).finish();
        }
        write!(f, "Message({})", (self.table.type_name)())
    }
}

#[cfg(test)]
mod tests {
    use super::Message;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn small_and_large_values_round_trip() {
        assert_eq!(Message::new(7u8).downcast::<u8>().unwrap(), 7);
        assert_eq!(
            Message::new((1u64, 2u64)).downcast::<(u64, u64)>().unwrap(),
            (1, 2)
        );
        let big = [9u64; 8];
        assert_eq!(Message::new(big).downcast::<[u64; 8]>().unwrap(), big);
        assert_eq!(
            Message::new(String::from("x"))
                .downcast::<String>()
                .unwrap(),
            "x"
        );
        assert_eq!(
            Message::new(u128::MAX).downcast::<u128>().unwrap(),
            u128::MAX
        );
        assert!(Message::new(()).is::<()>());
        assert_eq!(
            std::mem::size_of::<Message>(),
            3 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn wrong_type_gives_the_message_back_intact() {
        let message = Message::new(5i32);
        let message = message.downcast::<u32>().unwrap_err();
        assert_eq!(message.downcast_ref::<i32>(), Some(&5));
        let message = Message::new(vec![1, 2, 3]).downcast::<u8>().unwrap_err();
        assert_eq!(message.downcast_ref::<Vec<i32>>(), Some(&vec![1, 2, 3]));
    }

    #[test]
    fn values_are_dropped_exactly_once_inline_or_boxed() {
        struct Counted(Arc<AtomicUsize>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let drops = Arc::new(AtomicUsize::new(0));
        drop(Message::new(Counted(drops.clone())));
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let taken = Message::new(Counted(drops.clone()))
            .downcast::<Counted>()
            .ok();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(taken);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
        // Too big to be inline: boxed.
        drop(Message::new((Counted(drops.clone()), [0u64; 4])));
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        let taken = Message::new((Counted(drops.clone()), [0u64; 4]))
            .downcast::<(Counted, [u64; 4])>()
            .ok();
        assert_eq!(drops.load(Ordering::SeqCst), 3);
        drop(taken);
        assert_eq!(drops.load(Ordering::SeqCst), 4);
    }
}
