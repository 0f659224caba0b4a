//! The hasher of the maps a message passes through on its way (the
//! outboxes by peer, the types by name and by id, the exported agents by
//! serial, the loop's connections by token): foldhash, several times
//! faster than the standard library's SipHash on these short keys. Their
//! keys are chosen here or by an authenticated peer, and a peer's key is
//! only looked up in a table this node filled, so SipHash's resistance to
//! crafted collisions buys nothing on them. Seeded at random per table,
//! as the standard library's: nothing may depend on their order. The only
//! module that imports foldhash.

use std::collections::{HashMap, HashSet};

/// A map with the fast hasher.
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A set with the fast hasher.
pub(crate) type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;
