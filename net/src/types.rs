//! What may cross the wire: message types registered by name, with a
//! fingerprint compared in the handshake, and the conversions between the
//! runtime's values (messages, returned values, exit reasons) and their
//! wire forms.
//!
//! A type is sent only if both nodes registered it under the same name with
//! the same fingerprint. Anything else sent to a remote agent is dropped,
//! counted, and logged once per type (node/mod.rs). The fingerprint is a hash of
//! the name, the Rust type's name and its size: a guard against two builds
//! that disagree, not a schema check.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;

use erlangen_runtime::{
    Call, Cast, ExitReason, ExitStatus, Message, Pid, RemoteSignal, ReplyTo, Tag, TraceContext,
    Value,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{
    ERROR_TEXT_BYTES_MAX, MESSAGE_BODY_BYTES_MAX, REASON_TEXT_BYTES_MAX, WIRE_DEPTH_MAX,
};
use crate::hashing::FastMap;
use crate::wire::{
    self, DecodeError, WireLeaf, WireMessage, WireReason, WireSignal, WireStatus, WireValue,
};

/// Encodes a message holding this entry's type.
type EncodeMessage = fn(&Message) -> Result<Vec<u8>, DecodeError>;
/// Encodes a returned value holding this entry's type.
type EncodeValue = fn(&Value) -> Result<Vec<u8>, DecodeError>;
/// Decodes a message body.
type DecodeMessage = fn(&[u8]) -> Result<Message, DecodeError>;
/// Decodes a returned value.
type DecodeValue = fn(&[u8]) -> Result<Value, DecodeError>;

/// One registered type.
struct Entry {
    name: String,
    fingerprint: u64,
    encode_message: EncodeMessage,
    encode_value: EncodeValue,
    decode_message: DecodeMessage,
    decode_value: DecodeValue,
}

/// The registered message types of a node.
///
/// ```
/// use erlangen_net::Types;
/// #[derive(serde::Serialize, serde::Deserialize, Debug)]
/// struct Ping(u32);
/// let types = Types::new().register::<Ping>("example/ping");
/// assert!(types.names().contains(&"example/ping".to_owned()));
/// assert!(types.names().contains(&"u64".to_owned())); // built in
/// ```
#[derive(Clone)]
pub struct Types {
    by_name: FastMap<String, Arc<Entry>>,
    by_id: FastMap<TypeId, Arc<Entry>>,
}

impl fmt::Debug for Types {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Default for Types {
    fn default() -> Types {
        Types::new()
    }
}

impl Types {
    /// The built-in types: `()`, `bool`, `u8`, `u32`, `u64`, `i32`, `i64`,
    /// `f64`, `String`, `Vec<u8>`, `Vec<i64>`, `Vec<f64>`, `Vec<String>`, [`Pid`] and [`crate::WirePid`] (each arrives as the type it was sent as).
    ///
    /// ```
    /// assert!(erlangen_net::Types::new().names().contains(&"String".to_owned()));
    /// ```
    pub fn new() -> Types {
        let types = Types {
            by_name: FastMap::default(),
            by_id: FastMap::default(),
        };
        types
            .register::<()>("()")
            .register::<bool>("bool")
            .register::<u8>("u8")
            .register::<u32>("u32")
            .register::<u64>("u64")
            .register::<i32>("i32")
            .register::<i64>("i64")
            .register::<f64>("f64")
            .register::<String>("String")
            .register_bytes("Vec<u8>")
            .register::<Vec<i64>>("Vec<i64>")
            .register::<Vec<f64>>("Vec<f64>")
            .register::<Vec<String>>("Vec<String>")
            .register::<crate::pid::WirePid>("erlangen/wire-pid")
            .register_call::<crate::observation::Observe>("erlangen/observe")
            .register::<crate::observation::Observed>("erlangen/observed")
            .with_pid()
            .with_bytes()
            .with_traced()
    }

    /// Traced messages (the runtime's trace.rs) travel as
    /// [`TRACED_TYPE_NAME`]: the context and the inner message's wire form
    /// (`encode_message`). Its entry is announced in the handshake, so a
    /// peer that cannot take traced messages drops and counts them as any
    /// unknown type; it is never looked up by type id.
    fn with_traced(mut self) -> Types {
        self.by_name.insert(
            TRACED_TYPE_NAME.to_owned(),
            Arc::new(Entry {
                name: TRACED_TYPE_NAME.to_owned(),
                fingerprint: fingerprint::<WireTraced>(TRACED_TYPE_NAME),
                encode_message: |_| Err(DecodeError("encoded by Types::encode_message".into())),
                encode_value: no_value,
                decode_message: |_| Err(DecodeError("decoded by Types::decode_message".into())),
                decode_value: no_value_back,
            }),
        );
        self
    }

    /// `Vec<u8>` travels as bytes (one copy, not one visit per byte), in
    /// the same wire form as any `Vec<u8>`.
    fn with_bytes(mut self) -> Types {
        #[derive(serde::Serialize)]
        #[serde(transparent)]
        struct Out<'a>(#[serde(with = "wire::bytes")] &'a Vec<u8>);
        #[derive(serde::Deserialize)]
        #[serde(transparent)]
        struct In(#[serde(with = "wire::bytes")] Vec<u8>);
        impl wire::Bounded for In {}
        let entry = self.by_name["Vec<u8>"].clone();
        let bytes_entry = Arc::new(Entry {
            name: entry.name.clone(),
            fingerprint: entry.fingerprint,
            encode_message: |message| {
                wire::encode(&Out(message
                    .downcast_ref::<Vec<u8>>()
                    .expect("checked by type id")))
            },
            encode_value: |value| {
                wire::encode(&Out(value
                    .downcast_ref::<Vec<u8>>()
                    .expect("checked by type id")))
            },
            decode_message: |body| Ok(Message::new(wire::decode_value::<In>(body)?.0)),
            decode_value: |body| Ok(Value::new(wire::decode_value::<In>(body)?.0)),
        });
        self.by_id
            .insert(TypeId::of::<Vec<u8>>(), bytes_entry.clone());
        self.by_name.insert("Vec<u8>".to_owned(), bytes_entry);
        self
    }

    /// Registers `T` under `name` (replacing an earlier registration of
    /// the name). Register the same types under the same names on every
    /// node that exchanges them.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize, Debug)]
    /// struct Point { x: i32, y: i32 }
    /// let types = erlangen_net::Types::new().register::<Point>("example/point");
    /// assert!(types.names().contains(&"example/point".to_owned()));
    /// ```
    pub fn register<T>(mut self, name: &str) -> Types
    where
        T: Serialize + DeserializeOwned + Any + Send + Sync + fmt::Debug,
    {
        let entry = Arc::new(Entry {
            name: name.to_owned(),
            fingerprint: fingerprint::<T>(name),
            encode_message: encode_message::<T>,
            encode_value: encode_value::<T>,
            decode_message: decode_message::<T>,
            decode_value: decode_value::<T>,
        });
        self.by_name.insert(name.to_owned(), entry.clone());
        self.by_id.insert(TypeId::of::<T>(), entry);
        self
    }

    /// Registers `Vec<u8>` under `name`, encoded and decoded in one copy
    /// (serde bytes: the same wire form as a sequence of `u8`, without a
    /// visit per byte, which made a 64 MiB message take a second).
    fn register_bytes(mut self, name: &str) -> Types {
        let entry = Arc::new(Entry {
            name: name.to_owned(),
            fingerprint: fingerprint::<Vec<u8>>(name),
            encode_message: |message| {
                let bytes = message
                    .downcast_ref::<Vec<u8>>()
                    .expect("checked by type id");
                // The length's varint, then the bytes: the size is known.
                wire::encode_with_capacity(&BytesRef(bytes), bytes.len() + 9)
            },
            encode_value: |value| {
                let bytes = value.downcast_ref::<Vec<u8>>().expect("checked by type id");
                wire::encode_with_capacity(&BytesRef(bytes), bytes.len() + 9)
            },
            decode_message: |body| Ok(Message::new(wire::decode_value::<OwnedBytes>(body)?.0)),
            decode_value: |body| Ok(Value::new(wire::decode_value::<OwnedBytes>(body)?.0)),
        });
        self.by_name.insert(name.to_owned(), entry.clone());
        self.by_id.insert(TypeId::of::<Vec<u8>>(), entry);
        self
    }

    /// Registers the calls of a server whose requests are `M` under `name`
    /// (`Ctx::call` sends a `Call<M>`: the caller's `ReplyTo` travels with
    /// the request, and the server's reply goes back under the caller's
    /// tag). Register the reply type with [`Types::register`] too, on both
    /// nodes.
    ///
    /// ```
    /// let types = erlangen_net::Types::new()
    ///     .register_call::<u64>("example/double")
    ///     .register_cast::<String>("example/log");
    /// assert!(types.names().contains(&"example/double".to_owned()));
    /// ```
    pub fn register_call<M>(mut self, name: &str) -> Types
    where
        M: Serialize + DeserializeOwned + Any + Send + Sync + fmt::Debug,
    {
        let entry = Arc::new(Entry {
            name: name.to_owned(),
            fingerprint: fingerprint::<Call<M>>(name),
            encode_message: encode_call::<M>,
            encode_value: no_value,
            decode_message: decode_call::<M>,
            decode_value: no_value_back,
        });
        self.by_name.insert(name.to_owned(), entry.clone());
        self.by_id.insert(TypeId::of::<Call<M>>(), entry);
        self
    }

    /// Registers the casts of a server whose casts are `M` under `name`
    /// (`Ctx::cast` sends a `Cast<M>`).
    pub fn register_cast<M>(mut self, name: &str) -> Types
    where
        M: Serialize + DeserializeOwned + Any + Send + Sync + fmt::Debug,
    {
        let entry = Arc::new(Entry {
            name: name.to_owned(),
            fingerprint: fingerprint::<Cast<M>>(name),
            encode_message: encode_cast::<M>,
            encode_value: no_value,
            decode_message: decode_cast::<M>,
            decode_value: no_value_back,
        });
        self.by_name.insert(name.to_owned(), entry.clone());
        self.by_id.insert(TypeId::of::<Cast<M>>(), entry);
        self
    }

    /// A bare `Pid` travels as the built-in "erlangen/pid" (in the wire
    /// form of a `WirePid`, which travels as "erlangen/wire-pid": each
    /// arrives as the type it was sent as).
    fn with_pid(mut self) -> Types {
        let entry = self.by_name["erlangen/wire-pid"].clone();
        let pid_entry = Arc::new(Entry {
            name: "erlangen/pid".to_owned(),
            fingerprint: entry.fingerprint,
            encode_message: |message| {
                let pid = message.downcast_ref::<Pid>().expect("checked by type id");
                wire::encode(&crate::pid::WirePid(pid.clone()))
            },
            encode_value: |value| {
                let pid = value.downcast_ref::<Pid>().expect("checked by type id");
                wire::encode(&crate::pid::WirePid(pid.clone()))
            },
            decode_message: |body| {
                let wire: crate::pid::WirePid = wire::decode(body)?;
                Ok(Message::new(wire.0))
            },
            decode_value: |body| {
                let wire: crate::pid::WirePid = wire::decode(body)?;
                Ok(Value::new(wire.0))
            },
        });
        self.by_id.insert(TypeId::of::<Pid>(), pid_entry.clone());
        self.by_name.insert("erlangen/pid".to_owned(), pid_entry);
        self
    }

    /// Every registered name, sorted.
    ///
    /// ```
    /// let names = erlangen_net::Types::new().names();
    /// let mut sorted = names.clone();
    /// sorted.sort();
    /// assert_eq!(names, sorted);
    /// ```
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort();
        names
    }

    /// Names and fingerprints, for the handshake.
    pub(crate) fn announce(&self) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self
            .by_name
            .values()
            .map(|entry| (entry.name.clone(), entry.fingerprint))
            .collect();
        all.sort();
        all
    }

    /// Whether a peer that announced `theirs` agrees on `name`.
    pub(crate) fn fingerprint(&self, name: &str) -> Option<u64> {
        self.by_name.get(name).map(|entry| entry.fingerprint)
    }

    /// A message's wire form (encoded where it is called, in the caller's
    /// pid context), or why it can never be sent: its type is not
    /// registered, it does not encode, or it encodes larger than
    /// `MESSAGE_BODY_BYTES_MAX`.
    pub(crate) fn encode_message(&self, message: &Message) -> Result<WireMessage, Unsendable> {
        if let Some(context) = message.trace_context() {
            return self.encode_traced(context, message.untraced());
        }
        let entry = self
            .by_id
            .get(&message.value_type_id())
            .ok_or(Unsendable::Unregistered)?;
        let body =
            (entry.encode_message)(message).map_err(|e| Unsendable::Unencodable(e.to_string()))?;
        if body.len() > MESSAGE_BODY_BYTES_MAX {
            return Err(Unsendable::TooLarge(body.len()));
        }
        Ok(WireMessage {
            type_name: entry.name.clone(),
            body,
        })
    }

    /// A traced message's wire form: the context beside the inner
    /// message's wire form, within the same body limit.
    fn encode_traced(
        &self,
        context: TraceContext,
        message: &Message,
    ) -> Result<WireMessage, Unsendable> {
        let traced = WireTraced {
            trace_id: ((context.trace_id >> 64) as u64, context.trace_id as u64),
            span_id: context.span_id,
            sampled: context.sampled,
            message: self.encode_message(message)?,
        };
        let body = wire::encode(&traced).map_err(|e| Unsendable::Unencodable(e.to_string()))?;
        if body.len() > MESSAGE_BODY_BYTES_MAX {
            return Err(Unsendable::TooLarge(body.len()));
        }
        Ok(WireMessage {
            type_name: TRACED_TYPE_NAME.to_owned(),
            body,
        })
    }

    /// A message from its wire form.
    pub(crate) fn decode_message(
        &self,
        type_name: &str,
        body: &[u8],
    ) -> Result<Message, DecodeError> {
        if type_name == TRACED_TYPE_NAME {
            let traced = wire::decode_value::<Plain<WireTraced>>(body)?.0;
            let trace_id = (u128::from(traced.trace_id.0) << 64) | u128::from(traced.trace_id.1);
            if trace_id == 0 || traced.span_id == 0 || traced.message.type_name == TRACED_TYPE_NAME
            {
                return Err(DecodeError("a malformed trace context".into()));
            }
            let context = TraceContext {
                trace_id,
                span_id: traced.span_id,
                sampled: traced.sampled,
            };
            return Ok(Message::traced(
                context,
                self.decode_message(&traced.message.type_name, &traced.message.body)?,
            ));
        }
        let entry = self
            .by_name
            .get(type_name)
            .ok_or_else(|| DecodeError(format!("unregistered type {type_name:?}")))?;
        (entry.decode_message)(body)
    }

    /// A returned value's wire form; a value of an unregistered type
    /// becomes `None` (the caller makes it a documented reason).
    fn encode_value(&self, value: &Value) -> Option<WireValue> {
        if value.downcast_ref::<()>().is_some() {
            return Some(WireValue::Unit);
        }
        let entry = self.by_id.get(&value.value_type_id())?;
        let body = (entry.encode_value)(value).ok()?;
        if body.len() > MESSAGE_BODY_BYTES_MAX {
            return None;
        }
        Some(WireValue::Typed(WireMessage {
            type_name: entry.name.clone(),
            body,
        }))
    }

    fn decode_value(&self, wire: &WireValue) -> Result<Value, DecodeError> {
        match wire {
            WireValue::Unit => Ok(Value::new(())),
            WireValue::Typed(message) => {
                let entry = self.by_name.get(&message.type_name).ok_or_else(|| {
                    DecodeError(format!("unregistered type {:?}", message.type_name))
                })?;
                (entry.decode_value)(&message.body)
            }
        }
    }

    /// A signal's wire form (`None` for a kind this protocol does not
    /// carry: dropped, never sent as something else).
    pub(crate) fn encode_signal(&self, signal: &RemoteSignal) -> Option<WireSignal> {
        Some(match signal {
            RemoteSignal::Link => WireSignal::Link,
            RemoteSignal::Monitor => WireSignal::Monitor,
            RemoteSignal::Unlink => WireSignal::Unlink,
            RemoteSignal::Kill(reason) => WireSignal::Kill(self.encode_reason(reason)),
            RemoteSignal::EdgeExit(reason) => WireSignal::EdgeExit(self.encode_reason(reason)),
            RemoteSignal::Down(status) => WireSignal::Down(self.encode_status(status)),
            RemoteSignal::Watch { id } => WireSignal::Watch(*id),
            RemoteSignal::Unwatch { id } => WireSignal::Unwatch(*id),
            RemoteSignal::WatchDown { id, status } => {
                WireSignal::WatchDown(*id, self.encode_status(status))
            }
            _ => return None,
        })
    }

    /// A signal from its wire form.
    pub(crate) fn decode_signal(&self, signal: WireSignal) -> Result<RemoteSignal, DecodeError> {
        Ok(match signal {
            WireSignal::Link => RemoteSignal::Link,
            WireSignal::Monitor => RemoteSignal::Monitor,
            WireSignal::Unlink => RemoteSignal::Unlink,
            WireSignal::Kill(reason) => RemoteSignal::Kill(self.decode_reason(&reason)?),
            WireSignal::EdgeExit(reason) => RemoteSignal::EdgeExit(self.decode_reason(&reason)?),
            WireSignal::Down(status) => RemoteSignal::Down(self.decode_status(&status)?),
            WireSignal::Watch(id) => RemoteSignal::Watch { id },
            WireSignal::Unwatch(id) => RemoteSignal::Unwatch { id },
            WireSignal::WatchDown(id, status) => RemoteSignal::WatchDown {
                id,
                status: self.decode_status(&status)?,
            },
        })
    }

    /// An exit status's wire form. A value that cannot be encoded becomes
    /// the reason `unencodable value: <its Debug text>` (never an error on
    /// the connection; Erlangen bug 9).
    pub(crate) fn encode_status(&self, status: &ExitStatus) -> WireStatus {
        match status {
            ExitStatus::Ok(value) => match self.encode_value(value) {
                Some(wire) => WireStatus::Ok(wire),
                None => WireStatus::Exit(unencodable(value)),
            },
            ExitStatus::Exit(reason) => WireStatus::Exit(self.encode_reason(reason)),
        }
    }

    /// An exit reason's wire form, flattened (at most `WIRE_DEPTH_MAX`
    /// links deep; deeper chains are cut there).
    pub(crate) fn encode_reason(&self, reason: &ExitReason) -> WireReason {
        let mut links = 0u32;
        let mut reason = reason;
        loop {
            let leaf = match reason {
                ExitReason::Linked(status) if (links as usize) < WIRE_DEPTH_MAX => {
                    links += 1;
                    match &**status {
                        ExitStatus::Exit(inner) => {
                            reason = inner;
                            continue;
                        }
                        ExitStatus::Ok(value) => match self.encode_value(value) {
                            Some(wire) => WireLeaf::Returned(wire),
                            None => unencodable(value).leaf,
                        },
                    }
                }
                ExitReason::Linked(_) => WireLeaf::Other("linked chain too deep".to_owned()),
                ExitReason::Kill => WireLeaf::Kill,
                ExitReason::Other(text) => {
                    WireLeaf::Other(wire::bounded_text(text.to_string(), REASON_TEXT_BYTES_MAX))
                }
                ExitReason::Panic(text) => {
                    WireLeaf::Panic(wire::bounded_text(text.to_string(), REASON_TEXT_BYTES_MAX))
                }
                ExitReason::Timeout => WireLeaf::Timeout,
                ExitReason::NoProc => WireLeaf::NoProc,
                ExitReason::SystemLimit => WireLeaf::SystemLimit,
                ExitReason::Shutdown => WireLeaf::Shutdown,
                ExitReason::NoConnection => WireLeaf::NoConnection,
                other => WireLeaf::Other(other.to_string()),
            };
            return WireReason { links, leaf };
        }
    }

    /// An exit reason from its wire form.
    pub(crate) fn decode_reason(&self, wire: &WireReason) -> Result<ExitReason, DecodeError> {
        let (mut reason, mut links) = match &wire.leaf {
            WireLeaf::Returned(value) => {
                if wire.links == 0 {
                    return Err(DecodeError("a returned value is not a reason".into()));
                }
                let status = match self.decode_value(value) {
                    Ok(value) => ExitStatus::Ok(value),
                    Err(error) => ExitStatus::Exit(undecodable(value, &error)),
                };
                (ExitReason::Linked(Box::new(status)), wire.links - 1)
            }
            leaf => (leaf_reason(leaf), wire.links),
        };
        while links > 0 {
            reason = ExitReason::Linked(Box::new(ExitStatus::Exit(reason)));
            links -= 1;
        }
        Ok(reason)
    }

    /// An exit status from its wire form. A returned value that does not
    /// decode here becomes the reason `undecodable value: …`: the
    /// notification still arrives (never an error on the connection).
    pub(crate) fn decode_status(&self, wire: &WireStatus) -> Result<ExitStatus, DecodeError> {
        Ok(match wire {
            WireStatus::Ok(value) => match self.decode_value(value) {
                Ok(value) => ExitStatus::Ok(value),
                Err(error) => ExitStatus::Exit(undecodable(value, &error)),
            },
            WireStatus::Exit(reason) => ExitStatus::Exit(self.decode_reason(reason)?),
        })
    }
}

fn leaf_reason(leaf: &WireLeaf) -> ExitReason {
    match leaf {
        WireLeaf::Kill => ExitReason::Kill,
        WireLeaf::Other(text) => ExitReason::other(text),
        WireLeaf::Panic(text) => ExitReason::Panic(text.as_str().into()),
        WireLeaf::Timeout => ExitReason::Timeout,
        WireLeaf::NoProc => ExitReason::NoProc,
        WireLeaf::SystemLimit => ExitReason::SystemLimit,
        WireLeaf::Shutdown => ExitReason::Shutdown,
        WireLeaf::NoConnection => ExitReason::NoConnection,
        WireLeaf::Returned(_) => unreachable!("handled by the caller"),
    }
}

/// The reason a returned value that does not decode here becomes.
fn undecodable(value: &WireValue, error: &DecodeError) -> ExitReason {
    let type_name = match value {
        WireValue::Unit => "()",
        WireValue::Typed(message) => message.type_name.as_str(),
    };
    let text = format!("undecodable value of type {type_name:?}: {error}");
    ExitReason::other(&wire::bounded_text(text, ERROR_TEXT_BYTES_MAX))
}

/// Why a message can never be sent to another node.
#[derive(Debug)]
pub(crate) enum Unsendable {
    /// Its type is not registered for distribution.
    Unregistered,
    /// Its serializer failed.
    Unencodable(String),
    /// It encodes to this many bytes, over `MESSAGE_BODY_BYTES_MAX`.
    TooLarge(usize),
}

impl fmt::Display for Unsendable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsendable::Unregistered => f.write_str("its type is not registered for distribution"),
            Unsendable::Unencodable(why) => write!(f, "it does not encode: {why}"),
            Unsendable::TooLarge(bytes) => write!(
                f,
                "it encodes to {bytes} bytes, over the message limit of {MESSAGE_BODY_BYTES_MAX}"
            ),
        }
    }
}

/// The reason a value that cannot cross the wire becomes.
fn unencodable(value: &Value) -> WireReason {
    let mut text = format!("unencodable value: {value:?}");
    text.truncate(256);
    WireReason {
        links: 0,
        leaf: WireLeaf::Other(text),
    }
}

fn fingerprint<T: 'static>(name: &str) -> u64 {
    let mut hash = Sha256::new();
    hash.update(name.as_bytes());
    hash.update([0]);
    hash.update(std::any::type_name::<T>().as_bytes());
    hash.update((std::mem::size_of::<T>() as u64).to_le_bytes());
    let digest = hash.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn encode_call<M: Serialize + Any>(message: &Message) -> Result<Vec<u8>, DecodeError> {
    let call = message
        .downcast_ref::<Call<M>>()
        .expect("checked by type id");
    let from = crate::pid::WirePid(call.from.pid.clone());
    wire::encode(&(from, call.from.tag.id(), &call.request))
}

fn decode_call<M: DeserializeOwned + Any + Send>(body: &[u8]) -> Result<Message, DecodeError> {
    let (from, tag, request) = wire::decode_value::<Plain<(crate::pid::WirePid, u64, M)>>(body)?.0;
    Ok(Message::new(Call {
        from: ReplyTo {
            pid: from.0,
            tag: Tag::from_id(tag),
        },
        request,
    }))
}

fn encode_cast<M: Serialize + Any>(message: &Message) -> Result<Vec<u8>, DecodeError> {
    let cast = message
        .downcast_ref::<Cast<M>>()
        .expect("checked by type id");
    wire::encode(&cast.request)
}

fn decode_cast<M: DeserializeOwned + Any + Send>(body: &[u8]) -> Result<Message, DecodeError> {
    let request = wire::decode_value::<Plain<M>>(body)?.0;
    Ok(Message::new(Cast { request }))
}

/// Calls and casts are messages, never an agent's returned value.
fn no_value(_: &Value) -> Result<Vec<u8>, DecodeError> {
    Err(DecodeError("a call or cast is not a returned value".into()))
}

fn no_value_back(_: &[u8]) -> Result<Value, DecodeError> {
    Err(DecodeError("a call or cast is not a returned value".into()))
}

fn encode_message<T: Serialize + Any>(message: &Message) -> Result<Vec<u8>, DecodeError> {
    wire::encode(message.downcast_ref::<T>().expect("checked by type id"))
}

fn encode_value<T: Serialize + Any>(value: &Value) -> Result<Vec<u8>, DecodeError> {
    wire::encode(value.downcast_ref::<T>().expect("checked by type id"))
}

fn decode_message<T: DeserializeOwned + Any + Send>(body: &[u8]) -> Result<Message, DecodeError> {
    Ok(Message::new(wire::decode_value::<Plain<T>>(body)?.0))
}

fn decode_value<T: DeserializeOwned + Any + Send + Sync + fmt::Debug>(
    body: &[u8],
) -> Result<Value, DecodeError> {
    Ok(Value::new(wire::decode_value::<Plain<T>>(body)?.0))
}

/// A byte string to encode as serde bytes (`register_bytes`).
struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// A byte string decoded as serde bytes (`register_bytes`).
#[derive(serde::Deserialize)]
struct OwnedBytes(#[serde(with = "wire::bytes")] Vec<u8>);

impl wire::Bounded for OwnedBytes {}

/// A user value: serde's checks are all it gets (its nesting is the user's
/// type's; values are decoded on the node's thread, whose stack is large).
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct Plain<T>(T);

/// The wire name of a traced message.
pub(crate) const TRACED_TYPE_NAME: &str = "erlangen/traced";

/// A traced message's body: its trace context (the trace id as two
/// halves, high first) and the inner message's wire form.
#[derive(Serialize, serde::Deserialize)]
struct WireTraced {
    trace_id: (u64, u64),
    span_id: u64,
    sampled: bool,
    message: WireMessage,
}

impl<T> wire::Bounded for Plain<T> {}
