//! `Ctx`'s receive side: plain, timed and selective receive (the order
//! in which it looks at the skipped queues and the two lanes is in the
//! parent module's header), sleeping, and calls' replies by tag.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::agent::coroutine::Suspend;
use crate::config::REDUCTIONS_PER_SLICE;
use crate::exit::Timeout;
use crate::mailbox::{Item, Signal};
use crate::message::Message;
use crate::timer::TimerAction;

use super::Ctx;

impl Ctx {
    /// Takes the first message of `queue` (a saved queue: only this agent
    /// touches it) that `matches`. Every message looked at counts against
    /// the slice, and a spent slice yields in the middle of the scan: a
    /// long mailbox cannot hold the worker. The scan resumes where it
    /// stopped (nothing else changes a saved queue meanwhile).
    fn take_first(
        &self,
        queue: &RefCell<VecDeque<Message>>,
        matches: &mut dyn FnMut(&Message) -> bool,
    ) -> Option<Message> {
        let mut index = 0;
        loop {
            let (found, end) = {
                let queue = queue.borrow();
                let end = (index + REDUCTIONS_PER_SLICE as usize).min(queue.len());
                ((index..end).find(|&i| matches(&queue[i])), end)
            };
            if let Some(found) = found {
                self.charge_skipped(found - index);
                return queue.borrow_mut().remove(found);
            }
            self.charge_skipped(end - index);
            if end >= queue.borrow().len() {
                return None;
            }
            index = end;
        }
    }

    /// Counts `n` messages looked at and skipped against the slice; yields
    /// when it is used up.
    fn charge_skipped(&self, n: usize) {
        let left = self.reductions.get();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        if n >= left {
            self.yield_now();
        } else {
            self.reductions.set(left - n);
        }
    }

    /// Takes the next message, suspending until one comes. Notifications
    /// ([`crate::Down`]) come ahead of ordinary messages.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     let me = ctx.pid();
    ///     ctx.spawn(move |ctx| ctx.send(&me, 3u64));
    ///     ctx.receive().downcast::<u64>().unwrap()
    /// });
    /// assert_eq!(got.unwrap(), 3);
    /// ```
    pub fn receive(&self) -> Message {
        if !self.charge_fast() {
            self.charge_slow();
            self.before_receive();
        }
        if self.saved_control.borrow().is_empty() && self.saved_data.borrow().is_empty() {
            // Fast path: nothing was skipped by an earlier selective receive,
            // so the mailbox's own order is the answer.
            loop {
                match self.cell().mailbox.pop() {
                    Some(Item::Message(message)) => return message,
                    Some(Item::Signal(Signal::Traced(message))) => {
                        return self.traced_taken(message);
                    }
                    // Notifications are made here, never traced.
                    Some(Item::Signal(Signal::Down(down))) => return Message::new(down),
                    Some(Item::Signal(Signal::Notice(notice))) => return notice,
                    Some(Item::Signal(Signal::TraceNext)) => self.start_requested_trace(),
                    Some(Item::Signal(Signal::Exit(reason))) => self.die(reason),
                    None => {
                        self.suspend(Suspend::Wait);
                        self.check_exit();
                    }
                }
            }
        }
        match self.receive_until(&mut |_| true, None) {
            Ok(message) => message,
            Err(Timeout) => unreachable!("a receive without deadline cannot time out"),
        }
    }

    /// Like [`Ctx::receive`], but gives up after `timeout` (zero: do not
    /// wait at all).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| ctx.receive_timeout(Duration::from_millis(1)).is_err());
    /// assert!(got.unwrap());
    /// ```
    pub fn receive_timeout(&self, timeout: Duration) -> Result<Message, Timeout> {
        self.receive_until(&mut |_| true, Some(self.shared().deadline_after(timeout)))
    }

    /// Takes the first message for which `matches` is true, leaving the
    /// others queued in their order (Erlang's selective receive).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), 1u8);
    ///     ctx.send(&ctx.pid(), "wanted");
    ///     let wanted = ctx.receive_match(|m| m.is::<&str>()).downcast::<&str>().unwrap();
    ///     (wanted, ctx.receive().downcast::<u8>().unwrap())
    /// });
    /// assert_eq!(got.unwrap(), ("wanted", 1));
    /// ```
    pub fn receive_match(&self, mut matches: impl FnMut(&Message) -> bool) -> Message {
        match self.receive_until(&mut matches, None) {
            Ok(message) => message,
            Err(Timeout) => unreachable!("a receive without deadline cannot time out"),
        }
    }

    /// Selective receive with a timeout.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), 1u8);
    ///     ctx.receive_match_timeout(|m| m.is::<String>(), Duration::from_millis(1)).is_err()
    /// });
    /// assert!(got.unwrap());
    /// ```
    pub fn receive_match_timeout(
        &self,
        mut matches: impl FnMut(&Message) -> bool,
        timeout: Duration,
    ) -> Result<Message, Timeout> {
        self.receive_until(&mut matches, Some(self.shared().deadline_after(timeout)))
    }

    /// The receive loop shared by every variant.
    fn receive_until(
        &self,
        matches: &mut dyn FnMut(&Message) -> bool,
        deadline: Option<Instant>,
    ) -> Result<Message, Timeout> {
        self.charge();
        self.before_receive();
        let mut armed = false;
        let mut look_at_saved = true;
        let result = loop {
            if let Some(message) = self.take_match(matches, look_at_saved) {
                break Ok(self.taken(message));
            }
            look_at_saved = false;
            if let Some(deadline) = deadline {
                if self.shared().now() >= deadline {
                    break Err(Timeout);
                }
                if !armed {
                    self.arm_wake(deadline);
                    armed = true;
                }
            }
            self.suspend(Suspend::Wait);
            self.check_exit();
        };
        if armed {
            self.disarm_wake();
        }
        result
    }

    /// One pass over the saved queues and the mailbox.
    fn take_match(
        &self,
        matches: &mut dyn FnMut(&Message) -> bool,
        look_at_saved: bool,
    ) -> Option<Message> {
        if look_at_saved {
            if let Some(message) = self.take_first(&self.saved_control, matches) {
                return Some(message);
            }
            if !self.saved_data.borrow().is_empty() {
                while let Some(signal) = self.cell().mailbox.pop_signal() {
                    if let Some(message) = self.consider_signal(signal, matches) {
                        return Some(message);
                    }
                }
                if let Some(message) = self.take_first(&self.saved_data, matches) {
                    return Some(message);
                }
            }
        }
        while let Some(item) = self.cell().mailbox.pop() {
            match item {
                // A traced message is a data message here: `Message::is`
                // looks through its context, and `receive_until` unwraps
                // the one it takes.
                Item::Message(message) | Item::Signal(Signal::Traced(message)) => {
                    if matches(&message) {
                        return Some(message);
                    }
                    self.saved_data.borrow_mut().push_back(message);
                    // Each skipped message counts against the slice.
                    self.charge_skipped(1);
                }
                Item::Signal(signal) => {
                    if let Some(message) = self.consider_signal(signal, matches) {
                        return Some(message);
                    }
                }
            }
        }
        None
    }

    /// An exit signal ends the agent; a notification is offered to `matches`
    /// and saved if it does not match.
    fn consider_signal(
        &self,
        signal: Signal,
        matches: &mut dyn FnMut(&Message) -> bool,
    ) -> Option<Message> {
        match signal {
            Signal::Exit(reason) => self.die(reason),
            Signal::Down(down) => self.offer(Message::new(down), matches),
            Signal::Notice(notice) => self.offer(notice, matches),
            Signal::TraceNext => {
                self.start_requested_trace();
                None
            }
            Signal::Traced(_) => unreachable!("take_match takes traced messages as messages"),
        }
    }

    /// Takes back queued notifications an `unlink` or `unwatch` raced with:
    /// those of the control lane for which `in_lane` holds and those a
    /// selective receive set aside for which `saved` holds, dropped
    /// (contained) outside the mailbox's lock. None is received afterwards.
    pub(super) fn take_back(
        &self,
        in_lane: &dyn Fn(&Signal) -> bool,
        saved: &dyn Fn(&Message) -> bool,
    ) {
        let serial = self.cell().serial;
        let removed = self.cell().mailbox.remove_control(in_lane);
        self.shared().drop_each(removed, serial);
        let set_aside: VecDeque<Message> = {
            let mut queue = self.saved_control.borrow_mut();
            let (gone, kept) = std::mem::take(&mut *queue)
                .into_iter()
                .partition(|m| saved(m));
            *queue = kept;
            gone
        };
        self.shared().drop_each(set_aside, serial);
    }

    /// A notification offered to a selective receive: taken if it matches,
    /// else saved.
    fn offer(
        &self,
        message: Message,
        matches: &mut dyn FnMut(&Message) -> bool,
    ) -> Option<Message> {
        if matches(&message) {
            return Some(message);
        }
        self.saved_control.borrow_mut().push_back(message);
        None
    }

    /// Arms a timer that wakes this agent at `deadline`.
    fn arm_wake(&self, deadline: Instant) {
        let cell = self.cell();
        let seq = cell.timer_seq.fetch_add(1, Ordering::AcqRel) + 1;
        let worker = self.worker();
        let action = TimerAction::Wake {
            cell: cell.clone(),
            seq,
        };
        worker
            .shared
            .arm_timer(worker.index, deadline, action, Some(worker));
    }

    /// Makes any armed timer stale.
    fn disarm_wake(&self) {
        self.pid
            .local_cell()
            .timer_seq
            .fetch_add(1, Ordering::AcqRel);
    }

    /// Suspends the agent for `duration`. A kill ends it at once.
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// rt.run(|ctx| ctx.sleep(Duration::from_millis(1))).unwrap();
    /// ```
    pub fn sleep(&self, duration: Duration) {
        self.check_exit();
        let deadline = self.shared().deadline_after(duration);
        self.arm_wake(deadline);
        while self.shared().now() < deadline {
            self.suspend(Suspend::Wait);
            self.check_exit();
        }
        self.disarm_wake();
    }

    /// A new tag for a call: send [`Ctx::reply_to`] with the request, then
    /// wait with [`Ctx::receive_reply`] (see `reply` in the crate docs).
    ///
    /// # Example
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.make_tag() != ctx.make_tag()).unwrap());
    /// ```
    pub fn make_tag(&self) -> crate::reply::Tag {
        let tag = self.next_id();
        self.cell().mailbox.open_tag(tag);
        crate::reply::Tag(tag)
    }

    /// A number unique within this agent (call tags, watch ids).
    pub(super) fn next_id(&self) -> u64 {
        let id = self.next_tag.get();
        self.next_tag.set(id + 1);
        id
    }

    /// Where a reply to this agent's call `tag` goes.
    ///
    /// # Example
    ///
    /// ```
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// assert!(rt.run(|ctx| ctx.reply_to(ctx.make_tag()).pid == ctx.pid()).unwrap());
    /// ```
    pub fn reply_to(&self, tag: crate::reply::Tag) -> crate::reply::ReplyTo {
        crate::reply::ReplyTo {
            pid: self.pid.clone(),
            tag,
        }
    }

    /// Answers a call: `message` goes to `to.pid`, filed under its tag, for
    /// its [`Ctx::receive_reply`] (a remote caller gets it as an ordinary
    /// message).
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let got = rt.run(|ctx| {
    ///     let tag = ctx.make_tag();
    ///     ctx.reply(&ctx.reply_to(tag), "to myself");
    ///     ctx.receive_reply(tag, Duration::from_secs(1)).unwrap().downcast::<&str>().unwrap()
    /// });
    /// assert_eq!(got.unwrap(), "to myself");
    /// ```
    pub fn reply<M: Any + Send>(&self, to: &crate::reply::ReplyTo, message: M) {
        if let Some(id) = to.pid.as_remote() {
            self.charge();
            // Its node files it under the tag (refused ones were counted
            // by the route).
            let worker = self.worker();
            if let Ok(sent) = id.route().reply_from_worker(
                self.pid.serial(),
                id,
                to.tag.0,
                self.outgoing(Message::new(message)),
            ) {
                if sent.flush {
                    worker.owe_flush(id.route());
                }
                self.after_remote_send(&to.pid, sent);
            }
            return;
        }
        self.charge();
        let worker = self.worker();
        worker.shared.deliver_reply(
            &to.pid,
            to.tag.0,
            self.outgoing(Message::new(message)),
            Some(worker),
        );
    }

    /// Waits for the reply to this agent's call `tag`, taking it without
    /// looking at any other message (O(1), whatever the mailbox holds), or
    /// gives up after `timeout`. Exit signals still end the agent while it
    /// waits; notifications and messages stay queued.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let timed_out = rt.run(|ctx| ctx.receive_reply(ctx.make_tag(), Duration::from_millis(1)).is_err());
    /// assert!(timed_out.unwrap());
    /// ```
    pub fn receive_reply(
        &self,
        tag: crate::reply::Tag,
        timeout: Duration,
    ) -> Result<Message, Timeout> {
        self.charge();
        let deadline = self.shared().deadline_after(timeout);
        let mailbox = &self.cell().mailbox;
        let mut armed = false;
        let result = loop {
            if let Some(reply) = mailbox.take_reply(tag.0) {
                // A traced reply continues the trace as any traced message;
                // an untraced one leaves the caller's span as it is (the
                // call is part of the caller's work).
                break Ok(self.taken(reply));
            }
            if self.shared().now() >= deadline {
                break Err(Timeout);
            }
            if !armed {
                self.arm_wake(deadline);
                armed = true;
            }
            self.suspend(Suspend::Wait);
            self.check_exit();
        };
        if armed {
            self.disarm_wake();
        }
        if result.is_err() {
            // A reply that comes now is late: refused, never kept.
            if let Some(late) = mailbox.close_tag(tag.0) {
                self.shared().drop_contained(late, self.cell().serial);
            }
        }
        result
    }

    /// Takes every message now queued without waiting (Erlangen's
    /// `flush-messages`).
    ///
    /// # Example
    ///
    /// ```
    /// use erlangen_runtime::*;
    /// use std::time::Duration;
    /// let rt = erlangen_runtime::Runtime::builder().workers(1).build().unwrap();
    /// let n = rt.run(|ctx| {
    ///     ctx.send(&ctx.pid(), 1u8);
    ///     ctx.send(&ctx.pid(), 2u8);
    ///     ctx.flush().len()
    /// });
    /// assert_eq!(n.unwrap(), 2);
    /// ```
    pub fn flush(&self) -> Vec<Message> {
        let mut all = Vec::new();
        while let Ok(message) = self.receive_timeout(Duration::ZERO) {
            all.push(message);
        }
        all
    }
}
