//! Draws an [`App`] with ratatui: a header of totals, the screen's body,
//! and a status line.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, TableState, Wrap};
use ratatui::Frame;

use crate::app::{App, Screen, KEYS};

/// Draws the whole screen.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App) {
    let [header, body, status] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(header_lines(app)), header);
    match &app.screen {
        Screen::Agents
        | Screen::ConfirmKill { .. }
        | Screen::ConfirmTrace { .. }
        | Screen::Filter { .. } => {
            agents(frame, app, body);
        }
        Screen::Detail => detail(frame, app, body),
        Screen::Nodes => nodes(frame, app, body),
        Screen::Help => help(frame, body),
    }
    let line = match &app.screen {
        Screen::ConfirmKill { serial } => format!("kill <{serial:x}>? y to confirm, n to cancel"),
        Screen::ConfirmTrace { serial } => {
            format!("trace <{serial:x}>'s next message? y to confirm, n to cancel")
        }
        Screen::Filter { typed } => format!("filter: {typed}_  (Enter applies, Esc clears)"),
        _ if !app.status.is_empty() => app.status.clone(),
        _ => "? help  q quit".to_owned(),
    };
    frame.render_widget(
        Paragraph::new(line).style(Style::new().add_modifier(Modifier::REVERSED)),
        status,
    );
}

fn header_lines(app: &App) -> Vec<Line<'static>> {
    let Some(t) = &app.totals else {
        return vec![Line::from(format!(
            "erlangen-top  {}  (connecting)",
            app.node
        ))];
    };
    let queues: Vec<String> = t.run_queue_lengths.iter().map(u64::to_string).collect();
    vec![
        Line::from(format!(
            "erlangen-top  {}  agents {}  spawned {}  workers {} ({} parked)  run queues [{}]",
            t.node,
            t.agents,
            t.spawned,
            t.workers,
            t.parked_workers,
            queues.join(" ")
        )),
        Line::from(format!(
            "messages sent {}  in mailboxes {}  steals {}  node dropped {}  contained panics {}",
            t.messages_sent, t.mailbox_messages, t.steals, t.node_dropped, t.contained_panics
        )),
    ]
}

fn agents(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let header = Row::new([
        "PID", "NAME", "STATE", "WORKER", "MAILBOX", "RECEIVED", "DROPPED", "SLICES", "WARN",
        "STACK", "HIB",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.agents.iter().map(|a| {
        Row::new([
            format!("<{:x}>", a.serial),
            a.names.join(","),
            a.state.clone(),
            a.worker.map_or("-".to_owned(), |w| w.to_string()),
            a.queued.to_string(),
            a.received.to_string(),
            a.dropped.to_string(),
            a.slices.to_string(),
            a.watchdog_warnings.to_string(),
            format!("{}K", a.stack_bytes / 1024),
            if a.hibernated { "yes" } else { "" }.to_owned(),
        ])
    });
    let widths = [
        Constraint::Length(10),
        Constraint::Min(12),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(4),
    ];
    let filter = app
        .filter
        .as_ref()
        .map_or(String::new(), |f| format!(", filter \"{f}\""));
    let title = format!(
        " agents by {} ({} matched{filter}, page {}) ",
        app.sort.name(),
        app.matched,
        app.pages_back.len() + 1
    );
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::new().borders(Borders::TOP).title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut state = TableState::new().with_selected(Some(app.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn detail(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let Some(d) = &app.detail else {
        frame.render_widget(Paragraph::new("(waiting for the agent's detail)"), area);
        return;
    };
    let [top, spark] = Layout::vertical([Constraint::Min(4), Constraint::Length(5)]).areas(area);
    let [facts, tree] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(top);
    let r = &d.row;
    let list = |pids: &[String]| {
        if pids.is_empty() {
            "-".to_owned()
        } else {
            pids.join(" ")
        }
    };
    let text = vec![
        Line::from(format!("agent <{:x}>  {}", r.serial, r.names.join(","))),
        Line::from(format!(
            "state {}  worker {}  hibernated {}",
            r.state,
            r.worker.map_or("-".to_owned(), |w| w.to_string()),
            if r.hibernated { "yes" } else { "no" }
        )),
        Line::from(format!(
            "mailbox {}  received {}  dropped {}",
            r.queued, r.received, r.dropped
        )),
        Line::from(format!(
            "slices {}  watchdog warnings {}  stack {} KiB",
            r.slices,
            r.watchdog_warnings,
            r.stack_bytes / 1024
        )),
        Line::from(format!("links: {}", list(&d.links))),
        Line::from(format!("monitoring: {}", list(&d.monitoring))),
        Line::from(format!("monitored by: {}", list(&d.monitored_by))),
    ];
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .block(Block::new().borders(Borders::TOP).title(" agent ")),
        facts,
    );
    frame.render_widget(
        Paragraph::new(d.tree.clone()).block(
            Block::new()
                .borders(Borders::TOP | Borders::LEFT)
                .title(" tree "),
        ),
        tree,
    );
    let data: Vec<u64> = app.history.iter().copied().collect();
    let max = data.iter().copied().max().unwrap_or(0);
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .block(Block::new().borders(Borders::TOP).title(format!(
                " mailbox length over time (now {}, max {max}) ",
                r.queued
            ))),
        spark,
    );
}

fn nodes(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let header = Row::new([
        "NODE",
        "UP",
        "SENT",
        "RECEIVED",
        "BYTES OUT",
        "BYTES IN",
        "BUFFERED",
        "RTT",
        "HEARD",
        "ERRORS",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.peers.iter().map(|p| {
        Row::new([
            p.node.clone(),
            if p.connected { "up" } else { "down" }.to_owned(),
            p.packets_out.to_string(),
            p.packets_in.to_string(),
            p.bytes_out.to_string(),
            p.bytes_in.to_string(),
            p.buffered_bytes.to_string(),
            p.round_trip_us
                .map_or("-".to_owned(), |us| format!("{us} µs")),
            p.last_heard_ms
                .map_or("-".to_owned(), |ms| format!("{ms} ms ago")),
            p.errors.to_string(),
        ])
    });
    let widths = [
        Constraint::Min(20),
        Constraint::Length(5),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(12),
        Constraint::Length(7),
    ];
    let title = format!(" nodes connected to {} ", app.node);
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::new().borders(Borders::TOP).title(title)),
        area,
    );
}

fn help(frame: &mut Frame<'_>, area: Rect) {
    let lines: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(keys, what)| Line::from(format!("{keys:>16}  {what}")))
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(" keys ")),
        area,
    );
}
