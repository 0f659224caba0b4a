//! What `erlangen-top` shows and how keys change it: the state of the
//! program without a terminal or a node (`view.rs` draws it, `main.rs`
//! feeds it answers and carries out its [`Action`]s).

use std::collections::VecDeque;

use erlangen_net::{AgentDetail, AgentRow, AgentsRequest, PeerRow, SortBy, Totals};

/// Samples of the selected agent's mailbox length kept for its sparkline.
pub(crate) const HISTORY_LEN: usize = 120;

/// Every key and what it does, as the help screen lists them.
pub(crate) const KEYS: [(&str, &str); 13] = [
    ("q, Ctrl-C", "quit"),
    ("?", "this help (any key closes it)"),
    ("Up, Down, k, j", "select an agent"),
    ("PgDn, PgUp", "next or previous page of agents"),
    (
        "s",
        "sort by the next figure: mailbox, slices, dropped, received, serial",
    ),
    ("/", "filter by name or pid; Enter applies, Esc clears"),
    (
        "Enter",
        "detail of the selected agent: tree, links, monitors, mailbox sparkline",
    ),
    (
        "n",
        "nodes: the observed node's connections and their traffic",
    ),
    ("x", "kill the selected agent (asks to confirm with y)"),
    (
        "t",
        "trace the selected agent's next message (asks to confirm with y)",
    ),
    ("y, n", "confirm or cancel a kill or a trace"),
    ("r", "refresh now"),
    ("Esc", "back to the agent table"),
];

/// Which screen is up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Screen {
    /// The agent table.
    Agents,
    /// One agent in detail.
    Detail,
    /// The observed node's peers.
    Nodes,
    /// The keys.
    Help,
    /// A kill waits for `y` or `n`.
    ConfirmKill {
        /// The agent's serial.
        serial: u64,
    },
    /// A trace waits for `y` or `n`.
    ConfirmTrace {
        /// The agent's serial.
        serial: u64,
    },
    /// A filter is being typed.
    Filter {
        /// What was typed so far.
        typed: String,
    },
}

/// What the program must do after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing more than drawing again.
    None,
    /// Ask the node again now.
    Refresh,
    /// Kill this agent, then refresh.
    Kill(u64),
    /// Trace this agent's next message.
    Trace(u64),
    /// Leave.
    Quit,
}

/// A key, as the program sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Char(char),
    Enter,
    Esc,
    Up,
    Down,
    PageUp,
    PageDown,
    Backspace,
    CtrlC,
}

/// The state of one `erlangen-top`.
#[derive(Debug)]
pub(crate) struct App {
    /// The observed node's name.
    pub(crate) node: String,
    pub(crate) screen: Screen,
    pub(crate) sort: SortBy,
    pub(crate) filter: Option<String>,
    /// Agents on a page.
    pub(crate) page_len: u32,
    /// Cursors of the pages before this one (the first page has none).
    pub(crate) pages_back: Vec<Option<(u64, u64)>>,
    /// This page's cursor.
    pub(crate) page_at: Option<(u64, u64)>,
    /// The next page's cursor, if there is one.
    pub(crate) next: Option<(u64, u64)>,
    pub(crate) agents: Vec<AgentRow>,
    pub(crate) matched: u64,
    pub(crate) selected: usize,
    pub(crate) totals: Option<Totals>,
    /// The agent the detail screen follows.
    pub(crate) following: Option<u64>,
    /// Its last known state.
    pub(crate) detail: Option<AgentDetail>,
    /// The detailed agent's mailbox length, oldest first.
    pub(crate) history: VecDeque<u64>,
    pub(crate) peers: Vec<PeerRow>,
    /// A line about the last action or error.
    pub(crate) status: String,
}

impl App {
    pub(crate) fn new(node: String, sort: SortBy, page_len: u32) -> App {
        App {
            node,
            screen: Screen::Agents,
            sort,
            filter: None,
            page_len,
            pages_back: Vec::new(),
            page_at: None,
            next: None,
            agents: Vec::new(),
            matched: 0,
            selected: 0,
            totals: None,
            following: None,
            detail: None,
            history: VecDeque::new(),
            peers: Vec::new(),
            status: String::new(),
        }
    }

    /// The request for the page on screen.
    pub(crate) fn agents_request(&self) -> AgentsRequest {
        AgentsRequest {
            sort: self.sort,
            filter: self.filter.clone(),
            after: self.page_at,
            limit: self.page_len,
        }
    }

    /// The agent under the cursor.
    pub(crate) fn selected_agent(&self) -> Option<&AgentRow> {
        self.agents.get(self.selected)
    }

    /// A new page of agents arrived.
    pub(crate) fn set_agents(
        &mut self,
        agents: Vec<AgentRow>,
        matched: u64,
        next: Option<(u64, u64)>,
    ) {
        self.agents = agents;
        self.matched = matched;
        self.next = next;
        self.selected = self.selected.min(self.agents.len().saturating_sub(1));
    }

    /// The detailed agent's state arrived (`None`: it is gone).
    pub(crate) fn set_detail(&mut self, detail: Option<AgentDetail>) {
        match detail {
            Some(detail) => {
                if self.history.len() == HISTORY_LEN {
                    self.history.pop_front();
                }
                self.history.push_back(detail.row.queued);
                self.detail = Some(detail);
            }
            None => {
                if let Some(serial) = self.following.take() {
                    self.status = format!("<{serial:x}> is gone");
                }
                self.detail = None;
                if self.screen == Screen::Detail {
                    self.screen = Screen::Agents;
                }
            }
        }
    }

    /// Applies `key`.
    pub(crate) fn on_key(&mut self, key: Key) -> Action {
        if key == Key::CtrlC {
            return Action::Quit;
        }
        match self.screen.clone() {
            Screen::Help => {
                self.screen = Screen::Agents;
                Action::None
            }
            Screen::ConfirmKill { serial } => {
                self.screen = Screen::Agents;
                match key {
                    Key::Char('y') => Action::Kill(serial),
                    _ => {
                        self.status = "kill cancelled".to_owned();
                        Action::None
                    }
                }
            }
            Screen::ConfirmTrace { serial } => {
                self.screen = Screen::Agents;
                match key {
                    Key::Char('y') => Action::Trace(serial),
                    _ => {
                        self.status = "trace cancelled".to_owned();
                        Action::None
                    }
                }
            }
            Screen::Filter { mut typed } => match key {
                Key::Enter => {
                    self.filter = (!typed.is_empty()).then_some(typed);
                    self.screen = Screen::Agents;
                    self.first_page();
                    Action::Refresh
                }
                Key::Esc => {
                    self.filter = None;
                    self.screen = Screen::Agents;
                    self.first_page();
                    Action::Refresh
                }
                Key::Backspace => {
                    typed.pop();
                    self.screen = Screen::Filter { typed };
                    Action::None
                }
                Key::Char(c) if typed.len() < 64 => {
                    typed.push(c);
                    self.screen = Screen::Filter { typed };
                    Action::None
                }
                _ => Action::None,
            },
            Screen::Agents | Screen::Detail | Screen::Nodes => self.on_browse_key(key),
        }
    }

    fn on_browse_key(&mut self, key: Key) -> Action {
        match key {
            Key::Char('q') => Action::Quit,
            Key::Char('?') => {
                self.screen = Screen::Help;
                Action::None
            }
            Key::Esc => {
                self.screen = Screen::Agents;
                Action::Refresh
            }
            Key::Char('r') => Action::Refresh,
            Key::Char('n') => {
                self.screen = Screen::Nodes;
                Action::Refresh
            }
            Key::Up | Key::Char('k') => {
                self.selected = self.selected.saturating_sub(1);
                Action::None
            }
            Key::Down | Key::Char('j') => {
                if self.selected + 1 < self.agents.len() {
                    self.selected += 1;
                }
                Action::None
            }
            Key::PageDown => {
                if let Some(next) = self.next {
                    self.pages_back.push(self.page_at);
                    self.page_at = Some(next);
                    self.selected = 0;
                }
                Action::Refresh
            }
            Key::PageUp => {
                if let Some(back) = self.pages_back.pop() {
                    self.page_at = back;
                    self.selected = 0;
                }
                Action::Refresh
            }
            Key::Char('s') => {
                let at = SortBy::ALL
                    .iter()
                    .position(|s| *s == self.sort)
                    .unwrap_or(0);
                self.sort = SortBy::ALL[(at + 1) % SortBy::ALL.len()];
                self.first_page();
                Action::Refresh
            }
            Key::Char('/') => {
                self.screen = Screen::Filter {
                    typed: self.filter.clone().unwrap_or_default(),
                };
                Action::None
            }
            Key::Enter => match self.selected_agent() {
                Some(agent) => {
                    let serial = agent.serial;
                    if self.following != Some(serial) {
                        self.detail = None;
                        self.history.clear();
                    }
                    self.following = Some(serial);
                    self.screen = Screen::Detail;
                    Action::Refresh
                }
                None => Action::None,
            },
            Key::Char(c @ ('x' | 't')) => {
                let target = match self.screen {
                    Screen::Detail => self.following,
                    _ => self.selected_agent().map(|agent| agent.serial),
                };
                if let Some(serial) = target {
                    self.screen = if c == 'x' {
                        Screen::ConfirmKill { serial }
                    } else {
                        Screen::ConfirmTrace { serial }
                    };
                }
                Action::None
            }
            _ => Action::None,
        }
    }

    fn first_page(&mut self) {
        self.pages_back.clear();
        self.page_at = None;
        self.selected = 0;
    }
}
