//! Rust values as Erlang terms and back, through serde: an agent sends and
//! receives its own `#[derive(Serialize, Deserialize)]` types with Erlang
//! processes ([`to_term`], [`from_term`]).
//!
//! | Rust | Erlang |
//! | --- | --- |
//! | `bool` | `true`, `false` |
//! | integers | integers (small or big) |
//! | `f32`, `f64` | floats |
//! | `char`, `&str`, `String` | binaries (UTF-8, as Elixir strings); a charlist is read too |
//! | `Vec<u8>`, `&[u8]`, bytes | binaries |
//! | `Option<T>` | `undefined` or the value |
//! | `()` | `{}` |
//! | `struct Unit;` | the atom `unit` (the name in snake case) |
//! | `struct Meters(f64)` (newtype) | the inner value |
//! | `struct Pair(A, B)`, tuples | tuples `{A, B}` |
//! | `struct Point { x, y }` | a record: `{point, X, Y}` (a map with atom keys is read too) |
//! | `enum E { Red }` | the atom `red` |
//! | `E::Circle(r)`, `E::V(a, b)`, `E::S { a, b }` | `{circle, R}`, `{v, A, B}`, `{s, A, B}` |
//! | `Vec<T>`, sequences | lists |
//! | maps | maps |
//! | [`ErlangPid`] | a pid |
//! | [`Term`] itself | not through serde: send a `Term` as it is |
//!
//! Decoding holds every term to the shape above and says what it expected
//! and what it found.

use std::fmt;

use eetf::{Atom, Binary, FixInteger, Float, List, Map, Term, Tuple};
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

/// The name serde sees for an [`ErlangPid`] (a newtype of the pid's four
/// fields, which the serializer turns into a pid term).
const PID_NEWTYPE: &str = "$erlangen::erlang::ErlangPid";

/// An Erlang pid inside a serde type ([`to_term`] makes it a pid term;
/// [`super::ErlangPids::erlang_pid`] makes it a `Pid` to send to).
///
/// ```
/// use erlangen_net::erlang::{eetf, serde_term, ErlangPid, Term};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Request { from: ErlangPid, n: i64 }
/// let request = Request { from: ErlangPid(eetf::Pid::new("e@h", 1, 0, 3)), n: 7 };
/// let term = serde_term::to_term(&request).unwrap();
/// assert!(matches!(&term, Term::Tuple(t) if matches!(&t.elements[1], Term::Pid(_))));
/// assert_eq!(serde_term::from_term::<Request>(&term).unwrap(), request);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErlangPid(pub eetf::Pid);

impl Serialize for ErlangPid {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let pid = &self.0;
        let fields = (pid.node.name.as_str(), pid.id, pid.serial, pid.creation);
        serializer.serialize_newtype_struct(PID_NEWTYPE, &fields)
    }
}

impl<'de> serde::Deserialize<'de> for ErlangPid {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<ErlangPid, D::Error> {
        struct PidVisitor;
        impl<'de> Visitor<'de> for PidVisitor {
            type Value = ErlangPid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an Erlang pid")
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<ErlangPid, D::Error> {
                let (node, id, serial, creation): (String, u32, u32, u32) =
                    serde::Deserialize::deserialize(deserializer)?;
                Ok(ErlangPid(eetf::Pid::new(node, id, serial, creation)))
            }
        }
        deserializer.deserialize_newtype_struct(PID_NEWTYPE, PidVisitor)
    }
}

/// Why a value did not become a term, or a term not a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Error {
        Error(msg.to_string())
    }
}

/// `value` as a term (module docs).
///
/// ```
/// use erlangen_net::erlang::serde_term::{from_term, to_term};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// enum Shape { Circle(f64), Square { side: f64 }, Empty }
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Drawing { name: String, shapes: Vec<Shape>, data: Vec<u8>, note: Option<String> }
/// let drawing = Drawing {
///     name: "d".into(),
///     shapes: vec![Shape::Circle(1.5), Shape::Square { side: 2.0 }, Shape::Empty],
///     data: vec![1, 2, 3],
///     note: None,
/// };
/// let term = to_term(&drawing).unwrap();
/// // (eetf's text form: atoms quoted, binaries as bytes.)
/// assert_eq!(
///     term.to_string(),
///     "{'drawing',<<100>>,[{'circle',1.5},{'square',2},'empty'],<<1,2,3>>,'undefined'}"
/// );
/// assert_eq!(from_term::<Drawing>(&term).unwrap(), drawing);
/// ```
pub fn to_term<T: Serialize + ?Sized>(value: &T) -> Result<Term, Error> {
    value.serialize(TermSerializer)
}

/// The value of type `T` that `term` stands for (module docs).
pub fn from_term<T: DeserializeOwned>(term: &Term) -> Result<T, Error> {
    T::deserialize(TermDeserializer(term))
}

fn atom(name: &str) -> Term {
    Term::from(Atom::from(name))
}

fn tuple(elements: Vec<Term>) -> Term {
    Term::from(Tuple::from(elements))
}

/// `CamelCase` to `snake_case`, as an Erlang atom is written.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn integer(n: i128) -> Term {
    match i32::try_from(n) {
        Ok(small) => Term::from(FixInteger::from(small)),
        Err(_) => Term::from(eetf::BigInteger { value: n.into() }),
    }
}

/// The serializer (module docs).
struct TermSerializer;

/// A sequence, tuple or record being built.
struct Elements {
    elements: Vec<Term>,
    /// Every element so far was a `u8` (a `Vec<u8>` becomes a binary).
    bytes: bool,
    /// A list (else a tuple).
    list: bool,
}

impl Elements {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let term = value.serialize(TermSerializer)?;
        self.bytes &=
            self.list && matches!(&term, Term::FixInteger(n) if (0..=255).contains(&n.value));
        self.elements.push(term);
        Ok(())
    }

    fn finish(self) -> Term {
        if self.list && self.bytes && !self.elements.is_empty() {
            let bytes: Vec<u8> = self
                .elements
                .iter()
                .map(|t| match t {
                    Term::FixInteger(n) => n.value as u8,
                    _ => 0,
                })
                .collect();
            return Term::from(Binary::from(bytes));
        }
        if self.list {
            Term::from(List::from(self.elements))
        } else {
            tuple(self.elements)
        }
    }
}

/// A map being built.
struct MapBuilder {
    entries: Vec<(Term, Term)>,
    key: Option<Term>,
}

impl ser::Serializer for TermSerializer {
    type Ok = Term;
    type Error = Error;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = Elements;
    type SerializeTupleStruct = Elements;
    type SerializeTupleVariant = Elements;
    type SerializeMap = MapBuilder;
    type SerializeStruct = Elements;
    type SerializeStructVariant = Elements;

    fn serialize_bool(self, v: bool) -> Result<Term, Error> {
        Ok(atom(if v { "true" } else { "false" }))
    }
    fn serialize_i8(self, v: i8) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_i128(self, v: i128) -> Result<Term, Error> {
        Ok(integer(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Term, Error> {
        Ok(integer(v.into()))
    }
    fn serialize_f32(self, v: f32) -> Result<Term, Error> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<Term, Error> {
        Float::try_from(v)
            .map(Term::from)
            .map_err(|_| Error(format!("{v} is not a float Erlang has")))
    }
    fn serialize_char(self, v: char) -> Result<Term, Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<Term, Error> {
        Ok(Term::from(Binary::from(v.as_bytes().to_vec())))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Term, Error> {
        Ok(Term::from(Binary::from(v.to_vec())))
    }
    fn serialize_none(self) -> Result<Term, Error> {
        Ok(atom("undefined"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Term, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Term, Error> {
        Ok(tuple(Vec::new()))
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<Term, Error> {
        Ok(atom(&snake(name)))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Term, Error> {
        Ok(atom(&snake(variant)))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        let inner = value.serialize(self)?;
        if name != PID_NEWTYPE {
            return Ok(inner);
        }
        // (node, id, serial, creation), from `ErlangPid`.
        let Term::Tuple(Tuple { elements }) = inner else {
            return Err(Error("a malformed pid".into()));
        };
        match elements.as_slice() {
            [Term::Binary(node), id, serial, creation] => {
                let field = |t: &Term| super::term::integer(t).and_then(|n| u32::try_from(n).ok());
                let node = String::from_utf8(node.bytes.clone())
                    .map_err(|_| Error("a pid's node is not UTF-8".into()))?;
                match (field(id), field(serial), field(creation)) {
                    (Some(id), Some(serial), Some(creation)) => {
                        Ok(Term::from(eetf::Pid::new(node, id, serial, creation)))
                    }
                    _ => Err(Error("a malformed pid".into())),
                }
            }
            _ => Err(Error("a malformed pid".into())),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        Ok(tuple(vec![atom(&snake(variant)), value.serialize(self)?]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, Error> {
        Ok(SeqBuilder(Elements {
            elements: Vec::with_capacity(len.unwrap_or(0).min(4096)),
            bytes: true,
            list: true,
        }))
    }
    fn serialize_tuple(self, len: usize) -> Result<Elements, Error> {
        Ok(Elements {
            elements: Vec::with_capacity(len.min(4096)),
            bytes: false,
            list: false,
        })
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Elements, Error> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Elements, Error> {
        let mut elements = self.serialize_tuple(len + 1)?;
        elements.elements.push(atom(&snake(variant)));
        Ok(elements)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<MapBuilder, Error> {
        Ok(MapBuilder {
            entries: Vec::new(),
            key: None,
        })
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Elements, Error> {
        let mut elements = self.serialize_tuple(len + 1)?;
        elements.elements.push(atom(&snake(name)));
        Ok(elements)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Elements, Error> {
        self.serialize_tuple_variant("", 0, variant, len)
    }
}

/// A sequence: a list, or a binary if it is all `u8`.
struct SeqBuilder(Elements);

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Term;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.0.push(value)
    }
    fn end(self) -> Result<Term, Error> {
        Ok(self.0.finish())
    }
}

macro_rules! elements_impl {
    ($trait:ident, $method:ident) => {
        impl ser::$trait for Elements {
            type Ok = Term;
            type Error = Error;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.push(value)
            }
            fn end(self) -> Result<Term, Error> {
                Ok(self.finish())
            }
        }
    };
}

elements_impl!(SerializeTuple, serialize_element);
elements_impl!(SerializeTupleStruct, serialize_field);
elements_impl!(SerializeTupleVariant, serialize_field);

impl ser::SerializeStruct for Elements {
    type Ok = Term;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for Elements {
    type Ok = Term;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.push(value)
    }
    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Term;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(TermSerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("a map value without a key".into()))?;
        self.entries.push((key, value.serialize(TermSerializer)?));
        Ok(())
    }
    fn end(self) -> Result<Term, Error> {
        Ok(Term::from(Map::from(
            self.entries
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )))
    }
}

/// The deserializer over one term (module docs).
struct TermDeserializer<'a>(&'a Term);

impl<'a> TermDeserializer<'a> {
    fn expected(&self, what: &str) -> Error {
        Error(format!("expected {what}, found {}", self.0))
    }

    fn integer(&self) -> Result<i128, Error> {
        match self.0 {
            Term::FixInteger(n) => Ok(n.value.into()),
            Term::BigInteger(n) => {
                i128::try_from(&n.value).map_err(|_| self.expected("an integer that fits"))
            }
            _ => Err(self.expected("an integer")),
        }
    }

    /// The elements of a tuple whose first element is the atom `tag`.
    fn tagged(&self, tag: &str) -> Result<&'a [Term], Error> {
        match self.0 {
            Term::Tuple(Tuple { elements }) => match elements.split_first() {
                Some((Term::Atom(Atom { name }), rest)) if *name == tag => Ok(rest),
                _ => Err(self.expected(&format!("{{{tag}, …}}"))),
            },
            _ => Err(self.expected(&format!("{{{tag}, …}}"))),
        }
    }

    /// The bytes of a binary or a charlist.
    fn bytes(&self) -> Result<Vec<u8>, Error> {
        match self.0 {
            Term::Binary(b) => Ok(b.bytes.clone()),
            Term::ByteList(b) => Ok(b.bytes.clone()),
            Term::List(l) if l.is_nil() => Ok(Vec::new()),
            _ => Err(self.expected("a binary")),
        }
    }
}

macro_rules! deserialize_integer {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let n = self.integer()?;
            let n = <$ty>::try_from(n)
                .map_err(|_| Error(format!("{n} does not fit {}", stringify!($ty))))?;
            visitor.$visit(n)
        }
    };
}

impl<'de> de::Deserializer<'de> for TermDeserializer<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Atom(Atom { name }) if name == "true" => visitor.visit_bool(true),
            Term::Atom(Atom { name }) if name == "false" => visitor.visit_bool(false),
            Term::Atom(Atom { name }) if name == "undefined" => visitor.visit_none(),
            Term::Atom(Atom { name }) => visitor.visit_string(name.clone()),
            Term::FixInteger(_) | Term::BigInteger(_) => visitor.visit_i128(self.integer()?),
            Term::Float(f) => visitor.visit_f64(f.value),
            Term::Binary(b) => match std::str::from_utf8(&b.bytes) {
                Ok(text) => visitor.visit_string(text.to_owned()),
                Err(_) => visitor.visit_byte_buf(b.bytes.clone()),
            },
            Term::List(_) | Term::ByteList(_) => self.deserialize_seq(visitor),
            Term::Tuple(Tuple { elements }) => visitor.visit_seq(Items(elements.iter())),
            Term::Map(_) => self.deserialize_map(visitor),
            other => Err(Error(format!("{other} has no serde form"))),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Atom(Atom { name }) if name == "true" => visitor.visit_bool(true),
            Term::Atom(Atom { name }) if name == "false" => visitor.visit_bool(false),
            _ => Err(self.expected("true or false")),
        }
    }

    deserialize_integer!(deserialize_i8, visit_i8, i8);
    deserialize_integer!(deserialize_i16, visit_i16, i16);
    deserialize_integer!(deserialize_i32, visit_i32, i32);
    deserialize_integer!(deserialize_i64, visit_i64, i64);
    deserialize_integer!(deserialize_i128, visit_i128, i128);
    deserialize_integer!(deserialize_u8, visit_u8, u8);
    deserialize_integer!(deserialize_u16, visit_u16, u16);
    deserialize_integer!(deserialize_u32, visit_u32, u32);
    deserialize_integer!(deserialize_u64, visit_u64, u64);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_f64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Float(f) => visitor.visit_f64(f.value),
            Term::FixInteger(n) => visitor.visit_f64(n.value.into()),
            _ => Err(self.expected("a float")),
        }
    }
    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let bytes = match self.0 {
            // A charlist of any code points.
            Term::List(list) => {
                let mut text = String::new();
                for element in &list.elements {
                    let c = super::term::integer(element)
                        .and_then(|n| u32::try_from(n).ok())
                        .and_then(char::from_u32)
                        .ok_or_else(|| self.expected("a string"))?;
                    text.push(c);
                }
                return visitor.visit_string(text);
            }
            _ => self.bytes()?,
        };
        let text = String::from_utf8(bytes).map_err(|_| self.expected("a UTF-8 string"))?;
        visitor.visit_string(text)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_byte_buf(self.bytes()?)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_byte_buf(self.bytes()?)
    }
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Atom(Atom { name }) if name == "undefined" => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Tuple(Tuple { elements }) if elements.is_empty() => visitor.visit_unit(),
            _ => Err(self.expected("{}")),
        }
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            Term::Atom(Atom { name: found }) if *found == snake(name) => visitor.visit_unit(),
            _ => Err(self.expected(&snake(name))),
        }
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == PID_NEWTYPE {
            let Term::Pid(pid) = self.0 else {
                return Err(self.expected("a pid"));
            };
            let fields = (pid.node.name.clone(), pid.id, pid.serial, pid.creation);
            return visitor.visit_newtype_struct(fields.into_deserializer_tuple());
        }
        visitor.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::List(list) => visitor.visit_seq(Items(list.elements.iter())),
            Term::Binary(_) | Term::ByteList(_) => {
                visitor.visit_seq(de::value::SeqDeserializer::new(self.bytes()?.into_iter()))
            }
            _ => Err(self.expected("a list")),
        }
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Tuple(Tuple { elements }) if elements.len() == len => {
                visitor.visit_seq(Items(elements.iter()))
            }
            _ => Err(self.expected(&format!("a tuple of {len}"))),
        }
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_tuple(len, visitor)
    }
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Map(map) => visitor.visit_map(Entries {
                entries: map.map.iter().collect(),
                at: 0,
            }),
            _ => Err(self.expected("a map")),
        }
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        if let Term::Map(_) = self.0 {
            return self.deserialize_map(visitor);
        }
        let rest = self.tagged(&snake(name))?;
        if rest.len() != fields.len() {
            return Err(self.expected(&format!(
                "{{{}, …}} with {} fields",
                snake(name),
                fields.len()
            )));
        }
        visitor.visit_seq(Items(rest.iter()))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (tag, rest): (&str, &[Term]) = match self.0 {
            Term::Atom(Atom { name }) => (name, &[]),
            Term::Tuple(Tuple { elements }) => match elements.split_first() {
                Some((Term::Atom(Atom { name }), rest)) => (name, rest),
                _ => return Err(self.expected("{variant, …}")),
            },
            _ => return Err(self.expected("an atom or {variant, …}")),
        };
        let variant = variants
            .iter()
            .find(|v| snake(v) == tag)
            .ok_or_else(|| Error(format!("{tag} is not one of {variants:?} (in snake case)")))?;
        visitor.visit_enum(Variant { variant, rest })
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Term::Atom(Atom { name }) => visitor.visit_string(name.clone()),
            _ => self.deserialize_string(visitor),
        }
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// A pid's four fields as a deserializer of a 4-tuple.
trait IntoTuple {
    fn into_deserializer_tuple(
        self,
    ) -> de::value::SeqDeserializer<std::vec::IntoIter<TupleField>, Error>;
}

/// One field of a pid's tuple.
enum TupleField {
    Text(String),
    Number(u32),
}

impl<'de> IntoDeserializer<'de, Error> for TupleField {
    type Deserializer = TupleFieldDeserializer;
    fn into_deserializer(self) -> TupleFieldDeserializer {
        TupleFieldDeserializer(self)
    }
}

/// Deserializes a [`TupleField`].
struct TupleFieldDeserializer(TupleField);

impl<'de> de::Deserializer<'de> for TupleFieldDeserializer {
    type Error = Error;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            TupleField::Text(text) => visitor.visit_string(text),
            TupleField::Number(n) => visitor.visit_u32(n),
        }
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl IntoTuple for (String, u32, u32, u32) {
    fn into_deserializer_tuple(
        self,
    ) -> de::value::SeqDeserializer<std::vec::IntoIter<TupleField>, Error> {
        de::value::SeqDeserializer::new(
            vec![
                TupleField::Text(self.0),
                TupleField::Number(self.1),
                TupleField::Number(self.2),
                TupleField::Number(self.3),
            ]
            .into_iter(),
        )
    }
}

/// The elements of a list or tuple, one after the other.
struct Items<'a>(std::slice::Iter<'a, Term>);

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = Error;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(term) => seed.deserialize(TermDeserializer(term)).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A map's entries, one after the other.
struct Entries<'a> {
    entries: Vec<(&'a Term, &'a Term)>,
    at: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = Error;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.get(self.at) {
            Some((key, _)) => seed.deserialize(TermDeserializer(key)).map(Some),
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let (_, value) = self
            .entries
            .get(self.at)
            .ok_or_else(|| Error("a value without a key".into()))?;
        self.at += 1;
        seed.deserialize(TermDeserializer(value))
    }
}

/// An enum's variant and what follows its tag.
struct Variant<'a> {
    variant: &'static str,
    rest: &'a [Term],
}

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<S: de::DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let value = seed.deserialize(self.variant.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_> {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error(format!("{} takes no fields", snake(self.variant))))
        }
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.rest {
            [value] => seed.deserialize(TermDeserializer(value)),
            _ => Err(Error(format!(
                "{{{}, Value}} expected",
                snake(self.variant)
            ))),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        if self.rest.len() != len {
            return Err(Error(format!(
                "{{{}, …}} with {len} fields expected",
                snake(self.variant)
            )));
        }
        visitor.visit_seq(Items(self.rest.iter()))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.tuple_variant(fields.len(), visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Point {
        x: i64,
        y: i64,
    }

    #[test]
    fn a_term_of_the_wrong_shape_is_an_error_that_says_what_it_expected() {
        let error = from_term::<Point>(&atom("nope")).unwrap_err();
        assert!(error.to_string().contains("expected {point"), "{error}");
        let short = tuple(vec![atom("point"), integer(1)]);
        assert!(from_term::<Point>(&short).is_err());
        let big = tuple(vec![atom("point"), integer(1 << 40), integer(2)]);
        assert!(from_term::<(u8, u8)>(&tuple(vec![integer(300), integer(1)])).is_err());
        assert_eq!(
            from_term::<Point>(&big).unwrap(),
            Point { x: 1 << 40, y: 2 }
        );
    }

    #[test]
    fn a_map_with_atom_keys_reads_as_a_struct_and_strings_read_from_charlists() {
        let map = Term::from(Map::from([
            (atom("x"), integer(1)),
            (atom("y"), integer(2)),
        ]));
        assert_eq!(from_term::<Point>(&map).unwrap(), Point { x: 1, y: 2 });
        let charlist = Term::from(List::from(vec![integer(104), integer(105)]));
        assert_eq!(from_term::<String>(&charlist).unwrap(), "hi");
        assert_eq!(
            from_term::<Vec<u8>>(&to_term(&vec![1u8, 2]).unwrap()).unwrap(),
            [1, 2]
        );
    }
}
