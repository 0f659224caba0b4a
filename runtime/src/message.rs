//! `Message`: any `Send + 'static` value, moved (not copied) into a mailbox.
//!
//! Locally a message is a box of `dyn Any`; nothing is serialized. Types that
//! are meant to cross nodes also implement serde's traits in their own crate;
//! the runtime never looks inside.

use std::any::{Any, TypeId};
use std::fmt;

use crate::exit::Down;

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
    value: Box<dyn Any + Send>,
}

impl Message {
    /// Wraps a value as a message.
    pub fn new<T: Any + Send>(value: T) -> Message {
        Message {
            value: Box::new(value),
        }
    }

    /// Whether the message holds a `T`.
    pub fn is<T: Any>(&self) -> bool {
        (*self.value).type_id() == TypeId::of::<T>()
    }

    /// The value, if it is a `T`; otherwise the message back.
    pub fn downcast<T: Any>(self) -> Result<T, Message> {
        if self.is::<T>() {
            match self.value.downcast::<T>() {
                Ok(value) => Ok(*value),
                Err(value) => Err(Message { value }),
            }
        } else {
            Err(self)
        }
    }

    /// A reference to the value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.value.downcast_ref::<T>()
    }

    /// The exit notification this message holds, if it is one.
    pub fn as_down(&self) -> Option<&Down> {
        self.downcast_ref::<Down>()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(down) = self.as_down() {
            return f.debug_tuple("Message").field(down).finish();
        }
        f.write_str("Message(..)")
    }
}
