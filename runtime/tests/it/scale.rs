//! Many agents at once.

use erlangen_runtime::SpawnOptions;

use crate::support::{recv_down, runtime};

#[test]
fn hundred_thousand_agents_alive_at_once_on_two_workers_all_finish() {
    const N: usize = 100_000;
    let rt = runtime(2);
    let (alive, finished) = rt
        .run(|ctx| {
            let mut children = Vec::with_capacity(N);
            for i in 0..N {
                let child = ctx
                    .spawn_with(SpawnOptions::new().monitor(), move |ctx| {
                        let n = ctx.receive().downcast::<usize>().unwrap();
                        n + i
                    })
                    .unwrap();
                children.push(child);
            }
            // Every child has started and waits: none can finish before its
            // message, so all N are alive together.
            let alive = ctx.agents().len();
            for child in &children {
                ctx.send(child, 1usize);
            }
            let mut finished = 0;
            for _ in 0..N {
                if recv_down(ctx).status.is_ok() {
                    finished += 1;
                }
            }
            (alive, finished)
        })
        .unwrap();
    assert!(alive > N, "{alive} agents alive");
    assert_eq!(finished, N);
    assert_eq!(rt.agent_count(), 0);
}

#[test]
fn spawn_tree_of_111111_agents_sums_its_leaves() {
    fn skynet(
        ctx: &mut erlangen_runtime::Ctx,
        parent: erlangen_runtime::Pid,
        number: u64,
        size: u64,
    ) {
        if size == 1 {
            ctx.send(&parent, number);
            return;
        }
        let me = ctx.pid();
        let step = size / 10;
        for i in 0..10 {
            let me = me.clone();
            ctx.spawn(move |ctx| skynet(ctx, me, number + i * step, step));
        }
        let sum: u64 = (0..10)
            .map(|_| ctx.receive().downcast::<u64>().unwrap())
            .sum();
        ctx.send(&parent, sum);
    }
    let rt = runtime(2);
    let sum = rt
        .run(|ctx| {
            let me = ctx.pid();
            ctx.spawn(move |ctx| skynet(ctx, me, 0, 100_000));
            ctx.receive().downcast::<u64>().unwrap()
        })
        .unwrap();
    assert_eq!(sum, 4_999_950_000);
}
