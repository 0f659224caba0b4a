//! What may be spawned on a node from another: functions registered by
//! name, with serde arguments. There is no eval: a peer can start only
//! what the node registered (the cookie is the trust boundary; whoever has
//! it may start these).

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use erlangen_runtime::{Ctx, Pid, RuntimeHandle, SpawnOptions};
use serde::de::DeserializeOwned;

use crate::config::TYPE_NAME_SHOWN_BYTES_MAX;
use crate::wire::{self, DecodeError};

/// Starts one registered function: decodes its arguments (on the event
/// loop, where pids resolve) and spawns it.
type Starter = dyn Fn(
        &RuntimeHandle,
        &[u8],
        SpawnOptions,
        Option<&Pid>,
        &mut dyn FnMut(&Pid),
    ) -> Result<Pid, Refusal>
    + Send
    + Sync;

/// Why a starter did not start its function.
enum Refusal {
    /// The arguments do not decode as the function's argument type.
    BadArguments {
        expected: &'static str,
        error: DecodeError,
    },
    /// The runtime refused the spawn.
    Spawn(String),
}

/// The functions a node lets other nodes spawn.
///
/// ```
/// use erlangen_net::Functions;
/// let functions = Functions::new().register("double", |_ctx, n: u64| n * 2);
/// assert_eq!(functions.names(), vec!["double".to_owned()]);
/// ```
#[derive(Clone, Default)]
pub struct Functions {
    by_name: HashMap<String, Arc<Starter>>,
}

impl fmt::Debug for Functions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Functions {
    /// No functions.
    ///
    /// ```
    /// assert!(erlangen_net::Functions::new().names().is_empty());
    /// ```
    pub fn new() -> Functions {
        Functions::default()
    }

    /// Registers `f` under `name`: a spawn of `name` with arguments of type
    /// `A` runs `f(ctx, args)`, and its return value is the agent's value.
    /// A value whose type is registered for distribution reaches a remote
    /// monitor's `Down`.
    ///
    /// ```
    /// let functions = erlangen_net::Functions::new()
    ///     .register("greet", |_ctx, name: String| format!("hello, {name}"));
    /// assert_eq!(functions.names(), vec!["greet".to_owned()]);
    /// ```
    pub fn register<A, R, F>(mut self, name: &str, f: F) -> Functions
    where
        A: DeserializeOwned + Send + 'static,
        R: Any + Send + Sync + fmt::Debug,
        F: Fn(&mut Ctx, A) -> R + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let starter = move |runtime: &RuntimeHandle,
                            args: &[u8],
                            options: SpawnOptions,
                            parent: Option<&Pid>,
                            before_run: &mut dyn FnMut(&Pid)|
              -> Result<Pid, Refusal> {
            let args: A = decode_args(args).map_err(|error| Refusal::BadArguments {
                expected: std::any::type_name::<A>(),
                error,
            })?;
            let f = f.clone();
            runtime
                .spawn_then(options, parent, before_run, move |ctx| f(ctx, args))
                .map_err(|e| Refusal::Spawn(e.to_string()))
        };
        self.by_name.insert(name.to_owned(), Arc::new(starter));
        self
    }

    /// Every registered name, sorted.
    ///
    /// ```
    /// let functions = erlangen_net::Functions::new().register("b", |_ctx, (): ()| ()).register("a", |_ctx, (): ()| ());
    /// assert_eq!(functions.names(), vec!["a".to_owned(), "b".to_owned()]);
    /// ```
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort();
        names
    }

    /// Starts `name` with `args` (sent as a `sent_type`), or says why not.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        &self,
        name: &str,
        runtime: &RuntimeHandle,
        args: &[u8],
        sent_type: &str,
        options: SpawnOptions,
        parent: Option<&Pid>,
        before_run: &mut dyn FnMut(&Pid),
    ) -> Result<Pid, String> {
        let starter = self.by_name.get(name).ok_or_else(|| {
            let name = wire::bounded_text(name.to_owned(), 64);
            format!("no function {name:?} is registered on this node")
        })?;
        starter(runtime, args, options, parent, before_run).map_err(|refusal| match refusal {
            Refusal::BadArguments { expected, error } => {
                let sent = wire::bounded_text(sent_type.to_owned(), TYPE_NAME_SHOWN_BYTES_MAX);
                format!("bad arguments: expected {expected}, sent {sent}: {error}")
            }
            Refusal::Spawn(why) => why,
        })
    }
}

fn decode_args<A: DeserializeOwned>(body: &[u8]) -> Result<A, DecodeError> {
    #[derive(serde::Deserialize)]
    #[serde(transparent)]
    struct Args<A>(A);
    impl<A> wire::Bounded for Args<A> {}
    wire::decode_value::<Args<A>>(body).map(|args| args.0)
}
