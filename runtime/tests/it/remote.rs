//! The seam to the nodes layer (remote.rs), driven by a recording route:
//! remote pids are accepted everywhere and edges across nodes keep the
//! local semantics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use erlangen_runtime::{
    Down, ExitReason, ExitStatus, Message, Pid, Remote, RemotePid, RemoteSignal, SpawnOptions,
};

use crate::support::{recv_down, runtime};

/// What the route was asked to do.
#[derive(Debug)]
enum Sent {
    Message(u64),
    Signal(Option<Pid>, u64, RemoteSignal),
}

/// A route that records everything and delivers nothing.
#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<Sent>>,
}

impl Remote for Recorder {
    fn send(&self, to: &RemotePid, _message: Message) -> Result<(), erlangen_runtime::Error> {
        self.sent.lock().unwrap().push(Sent::Message(to.serial()));
        Ok(())
    }

    fn signal(&self, from: Option<&Pid>, to: &RemotePid, signal: RemoteSignal) {
        self.sent
            .lock()
            .unwrap()
            .push(Sent::Signal(from.cloned(), to.serial(), signal));
    }
}

fn remote(route: &Arc<Recorder>, serial: u64) -> Pid {
    Pid::remote(RemotePid::new("host/far", 1, serial, route.clone()))
}

#[test]
fn sends_kills_and_timers_to_a_remote_pid_go_through_its_route() {
    let rt = runtime(1);
    let route = Arc::new(Recorder::default());
    let far = remote(&route, 9);
    rt.send(&far, 1u8);
    let target = far.clone();
    rt.run(move |ctx| {
        ctx.send(&target, 2u8);
        ctx.send_after(&target, 3u8, Duration::from_millis(1));
        ctx.kill(&target, ExitReason::other("bye"));
        ctx.sleep(Duration::from_millis(20));
    })
    .unwrap();
    let sent = route.sent.lock().unwrap();
    let messages = sent
        .iter()
        .filter(|s| matches!(s, Sent::Message(9)))
        .count();
    assert_eq!(messages, 3);
    assert!(sent.iter().any(|s| matches!(
        s,
        Sent::Signal(Some(_), 9, RemoteSignal::Kill(reason)) if reason.to_string() == "bye"
    )));
    assert!(matches!(
        rt.register("far", &far),
        Err(erlangen_runtime::Error::NotLocal(_))
    ));
}

#[test]
fn a_remote_link_fires_once_and_never_after_unlink() {
    let rt = runtime(1);
    let route = Arc::new(Recorder::default());
    let far = remote(&route, 5);
    let handle = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            let target = far.clone();
            rt.run(move |ctx| {
                let (t1, t2) = (target.clone(), target.clone());
                let (tx1, tx2) = (tx.clone(), tx.clone());
                let linked = ctx
                    .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                        ctx.link(&t1).unwrap();
                        tx1.send(ctx.pid()).unwrap();
                        ctx.receive();
                    })
                    .unwrap();
                let unlinked = ctx
                    .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                        ctx.link(&t2).unwrap();
                        ctx.unlink(&t2).unwrap();
                        tx2.send(ctx.pid()).unwrap();
                        ctx.receive().downcast::<&str>().unwrap()
                    })
                    .unwrap();
                let mut statuses = Vec::new();
                for _ in 0..2 {
                    let down: Down = recv_down(ctx);
                    statuses.push((down.pid == linked, down.pid == unlinked, down.status));
                    if statuses.len() == 1 {
                        ctx.send(&unlinked, "still here");
                    }
                }
                statuses
            })
        });
        let first: Pid = rx.recv().unwrap();
        let second: Pid = rx.recv().unwrap();
        for agent in [&first, &second] {
            let reason = ExitReason::other("far side died");
            handle.signal(&far, agent, RemoteSignal::EdgeExit(reason));
        }
        run.join().unwrap().unwrap()
    });
    let linked = outcome.iter().find(|(l, _, _)| *l).unwrap();
    assert_eq!(linked.2.reason().unwrap().to_string(), "far side died");
    let unlinked = outcome.iter().find(|(_, u, _)| *u).unwrap();
    assert_eq!(
        unlinked.2.value().unwrap().downcast_ref::<&str>(),
        Some(&"still here")
    );
    let sent = route.sent.lock().unwrap();
    let links = sent
        .iter()
        .filter(|s| matches!(s, Sent::Signal(Some(_), 5, RemoteSignal::Link)))
        .count();
    let unlinks = sent
        .iter()
        .filter(|s| matches!(s, Sent::Signal(Some(_), 5, RemoteSignal::Unlink)))
        .count();
    assert_eq!((links, unlinks), (2, 1));
}

#[test]
fn edge_checked_signals_from_a_remote_agent_apply_once() {
    let rt = runtime(1);
    let route = Arc::new(Recorder::default());
    let far = remote(&route, 6);
    let handle = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let target = far.clone();
    let (first, no_second) = std::thread::scope(|scope| {
        let run = scope.spawn(|| {
            rt.run(move |ctx| {
                ctx.monitor(&target).unwrap();
                tx.send(ctx.pid()).unwrap();
                let first: Down = recv_down(ctx);
                // A second Down for the same edge must not arrive.
                let second = ctx.receive_timeout(Duration::from_millis(50));
                (first, second.is_err())
            })
        });
        let me: Pid = rx.recv().unwrap();
        let gone = ExitStatus::Exit(ExitReason::NoConnection);
        handle.signal(&far, &me, RemoteSignal::Down(gone.clone()));
        handle.signal(&far, &me, RemoteSignal::Down(gone));
        run.join().unwrap().unwrap()
    });
    assert_eq!(first.pid, far);
    assert!(matches!(
        first.status,
        ExitStatus::Exit(ExitReason::NoConnection)
    ));
    assert!(no_second);
}

#[test]
fn an_exiting_agent_tells_its_remote_monitor_through_the_route() {
    let rt = runtime(1);
    let route = Arc::new(Recorder::default());
    let far = remote(&route, 8);
    let handle = rt.handle();
    let pid = handle
        .spawn_then(
            SpawnOptions::new().monitor(),
            Some(&far),
            |_| {},
            |ctx| ctx.receive().downcast::<u32>().unwrap() * 2,
        )
        .unwrap();
    rt.send(&pid, 21u32);
    let deadline = std::time::Instant::now() + crate::support::HANG_GUARD;
    loop {
        let done = route.sent.lock().unwrap().iter().any(|s| {
            matches!(s, Sent::Signal(Some(from), 8, RemoteSignal::Down(ExitStatus::Ok(v)))
                if *from == pid && v.downcast_ref::<u32>() == Some(&42))
        });
        if done {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the Down went out");
        std::thread::sleep(Duration::from_millis(1));
    }
}
