//! `agents_page`: a paged, sorted, filtered listing of the live agents.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use erlangen_runtime::{AgentOrder, AgentQuery, AgentState, ExitReason, Pid, SpawnOptions};

use crate::support::{recv_as, runtime};

#[test]
fn a_listing_by_mailbox_puts_the_longest_first_and_its_pages_cover_every_agent_once() {
    let rt = runtime(2);
    // Agent i holds i messages it never takes.
    let agents: Vec<Pid> = (0..40usize)
        .map(|i| {
            let pid = rt
                .spawn_with(SpawnOptions::new().mailbox_len(64), |ctx| {
                    ctx.sleep(Duration::from_secs(3600));
                })
                .unwrap();
            for n in 0..i {
                rt.send(&pid, n);
            }
            pid
        })
        .collect();
    let first = rt.agents_page(&AgentQuery::new().order(AgentOrder::Mailbox).limit(3));
    let queued: Vec<usize> = first.agents.iter().map(|a| a.queued).collect();
    assert_eq!(queued, [39, 38, 37]);
    assert_eq!(first.agents[0].pid, agents[39]);
    assert_eq!(first.matched, 40);
    // Pages of 7 by cursor: every agent once, in order, then no cursor.
    let mut seen = Vec::new();
    let mut query = AgentQuery::new().order(AgentOrder::Mailbox).limit(7);
    loop {
        let page = rt.agents_page(&query);
        seen.extend(page.agents.iter().map(|a| a.queued));
        match page.next {
            Some(cursor) => query = query.after(cursor),
            None => break,
        }
    }
    assert_eq!(seen, (0..40).rev().collect::<Vec<_>>());
    // By serial: oldest first.
    let by_serial = rt.agents_page(&AgentQuery::new().limit(2));
    assert_eq!(
        by_serial
            .agents
            .iter()
            .map(|a| a.pid.clone())
            .collect::<Vec<_>>(),
        agents[..2]
    );
    for pid in &agents {
        rt.kill(pid, ExitReason::Kill);
    }
}

#[test]
fn a_filter_lists_only_the_agents_whose_name_or_pid_contains_it() {
    let rt = runtime(1);
    let named: Vec<Pid> = ["cache-a", "cache-b", "db"]
        .iter()
        .map(|name| {
            let pid = rt.spawn(|ctx| ctx.sleep(Duration::from_secs(3600)));
            rt.register(name, &pid).unwrap();
            pid
        })
        .collect();
    let anonymous = rt.spawn(|ctx| ctx.sleep(Duration::from_secs(3600)));
    let page = rt.agents_page(&AgentQuery::new().filter("cache"));
    let mut found: Vec<Pid> = page.agents.iter().map(|a| a.pid.clone()).collect();
    found.sort();
    assert_eq!(found, named[..2]);
    assert_eq!(page.matched, 2);
    assert_eq!(page.agents[0].names, ["cache-a"]);
    let by_pid = rt.agents_page(&AgentQuery::new().filter(anonymous.to_string()));
    assert_eq!(by_pid.agents.len(), 1);
    assert_eq!(by_pid.agents[0].pid, anonymous);
    for pid in named.iter().chain([&anonymous]) {
        rt.kill(pid, ExitReason::Kill);
    }
}

#[test]
fn a_listing_shows_each_agents_state_worker_slices_and_hibernation() {
    let rt = runtime(1);
    let (waiting, hibernating, me_info) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let waiting = ctx.spawn(move |ctx| {
                for _ in 0..3 {
                    ctx.yield_now();
                }
                ctx.send(&me, "waiting");
                ctx.receive();
            });
            let me = ctx.pid();
            let hibernating = ctx.spawn(move |ctx| {
                ctx.send(&me, "hibernating");
                ctx.hibernate(|ctx| {
                    ctx.receive();
                })
            });
            let mut ready = [recv_as::<&str>(ctx), recv_as::<&str>(ctx)];
            ready.sort();
            assert_eq!(ready, ["hibernating", "waiting"]);
            // Let the hibernating agent finish its hibernation.
            ctx.yield_now();
            let me = ctx.pid();
            let page = ctx.agents_page(&AgentQuery::new());
            let info = |pid: &Pid| page.agents.iter().find(|a| a.pid == *pid).unwrap().clone();
            (info(&waiting), info(&hibernating), info(&me))
        })
        .unwrap();
    assert_eq!(waiting.state, AgentState::Waiting);
    assert_eq!(waiting.worker, Some(0));
    assert!(!waiting.hibernated);
    assert_eq!(
        waiting.stack_bytes,
        erlangen_runtime::STACK_SIZE_BYTES_DEFAULT
    );
    assert!(hibernating.hibernated);
    assert_eq!(me_info.state, AgentState::Running);
    rt.kill(&waiting.pid, ExitReason::Kill);
    rt.kill(&hibernating.pid, ExitReason::Kill);
}

#[test]
fn a_listing_from_an_agent_yields_its_worker_between_chunks() {
    let rt = runtime(1);
    let sleepers: Vec<Pid> = (0..20_000)
        .map(|_| rt.spawn(|ctx| ctx.sleep(Duration::from_secs(3600))))
        .collect();
    // An agent that counts its turns on the one worker until told to stop.
    let turns = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counter = rt.spawn({
        let (turns, stop) = (turns.clone(), stop.clone());
        move |ctx| {
            while !stop.load(Ordering::Relaxed) {
                turns.fetch_add(1, Ordering::Relaxed);
                ctx.yield_now();
            }
        }
    });
    let (before, after, matched) = rt
        .run({
            let turns = turns.clone();
            move |ctx| {
                let before = turns.load(Ordering::Relaxed);
                let page = ctx.agents_page(&AgentQuery::new().order(AgentOrder::Slices));
                (before, turns.load(Ordering::Relaxed), page.matched)
            }
        })
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(matched >= 20_000);
    // The counter ran between the chunks of the walk (20,000 agents make
    // many chunks), on the walker's only worker.
    assert!(after - before >= 10, "{before} → {after}");
    drop(counter);
    for pid in &sleepers {
        rt.kill(pid, ExitReason::Kill);
    }
}

#[test]
fn an_agent_that_runs_many_slices_is_counted_many_and_a_waiting_one_few() {
    // Slices are sampled: every 61st resume of a worker counts 61 for the
    // agent it resumes.
    let rt = runtime(1);
    let (busy, idle) = rt
        .run(|ctx| {
            let me = ctx.pid();
            let idle = ctx.spawn(|ctx| {
                ctx.receive();
            });
            let busy = ctx.spawn(move |ctx| {
                for _ in 0..6100 {
                    ctx.yield_now();
                }
                ctx.send(&me, ());
                ctx.receive();
            });
            ctx.receive();
            let page = ctx.agents_page(&AgentQuery::new().order(AgentOrder::Slices).limit(2));
            let slices = |pid: &Pid| page.agents.iter().find(|a| a.pid == *pid).map(|a| a.slices);
            let found = (slices(&busy), slices(&idle));
            ctx.kill(&busy, ExitReason::Kill);
            ctx.kill(&idle, ExitReason::Kill);
            found
        })
        .unwrap();
    // The busy one leads the sort by slices; the idle one, if it made the
    // page of two, was sampled once at most.
    let busy = busy.expect("the busy agent leads");
    assert!(busy >= 1000, "{busy}");
    assert!(idle.is_none_or(|idle| idle <= 61), "{idle:?}");
}
