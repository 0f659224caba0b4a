//! Ids: a node's name (`host/node`) and an agent's node-qualified id
//! (`host/node/serial#incarnation`), Erlangen's `host/node/aid` with the
//! node's incarnation added so that ids of a restarted node never alias the
//! agents of its new run (Erlangen bug 6).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::config::NODE_NAME_BYTES_MAX;

/// A node's name: the host it runs on and its name there.
///
/// ```
/// use erlangen_net::NodeName;
/// let name: NodeName = "localhost/alpha".parse().unwrap();
/// assert_eq!((name.host(), name.name()), ("localhost", "alpha"));
/// assert_eq!(name.to_string(), "localhost/alpha");
/// assert!("alpha".parse::<NodeName>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeName {
    /// The host, as the port mapper is reached there.
    host: String,
    /// The name registered with that host's port mapper.
    name: String,
}

impl NodeName {
    /// The node `name` on `host`; both are checked.
    ///
    /// ```
    /// let name = erlangen_net::NodeName::new("localhost", "alpha").unwrap();
    /// assert_eq!(name.to_string(), "localhost/alpha");
    /// assert!(erlangen_net::NodeName::new("local/host", "alpha").is_err());
    /// ```
    pub fn new(host: &str, name: &str) -> Result<NodeName, IdError> {
        check_part(host, "host")?;
        erlangen_portmap::wire::validate_name(name).map_err(IdError)?;
        check_part(name, "node name")?;
        Ok(NodeName {
            host: host.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The host.
    ///
    /// ```
    /// assert_eq!("h/n".parse::<erlangen_net::NodeName>().unwrap().host(), "h");
    /// ```
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The name on that host.
    ///
    /// ```
    /// assert_eq!("h/n".parse::<erlangen_net::NodeName>().unwrap().name(), "n");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn check_part(part: &str, what: &str) -> Result<(), IdError> {
    if part.is_empty() || part.len() > NODE_NAME_BYTES_MAX {
        return Err(IdError(format!(
            "{what} must be 1 to {NODE_NAME_BYTES_MAX} bytes"
        )));
    }
    if part.contains('/') || part.contains('#') || part.chars().any(char::is_control) {
        return Err(IdError(format!(
            "{what} {part:?} holds '/', '#' or a control character"
        )));
    }
    Ok(())
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.name)
    }
}

impl FromStr for NodeName {
    type Err = IdError;

    fn from_str(text: &str) -> Result<NodeName, IdError> {
        let (host, name) = text
            .split_once('/')
            .ok_or_else(|| IdError(format!("{text:?} is not host/node")))?;
        NodeName::new(host, name)
    }
}

/// An agent's node-qualified id.
///
/// ```
/// use erlangen_net::AgentId;
/// let id: AgentId = "localhost/alpha/42#7".parse().unwrap();
/// assert_eq!((id.serial, id.incarnation), (42, 7));
/// assert_eq!(id.to_string(), "localhost/alpha/42#7");
/// assert!("localhost/alpha/x#7".parse::<AgentId>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AgentId {
    /// The agent's node.
    pub node: NodeName,
    /// That node's incarnation.
    pub incarnation: u64,
    /// The agent's serial number there.
    pub serial: u64,
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}#{}", self.node, self.serial, self.incarnation)
    }
}

impl FromStr for AgentId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<AgentId, IdError> {
        let bad = || IdError(format!("{text:?} is not host/node/serial#incarnation"));
        let (node, rest) = text.rsplit_once('/').ok_or_else(bad)?;
        let (serial, incarnation) = rest.split_once('#').ok_or_else(bad)?;
        Ok(AgentId {
            node: node.parse()?,
            serial: serial.parse().map_err(|_| bad())?,
            incarnation: incarnation.parse().map_err(|_| bad())?,
        })
    }
}

/// A malformed name or id.
///
/// ```
/// let error = "no-slash".parse::<erlangen_net::NodeName>().unwrap_err();
/// assert!(error.to_string().contains("host/node"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdError(pub String);

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IdError {}
