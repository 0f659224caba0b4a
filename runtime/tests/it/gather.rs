//! `Gather`: agents fill one output vector in place, one part each.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use erlangen_runtime::{ExitReason, Gather, GatherError, SpawnOptions};

use crate::support::{recv_down, runtime, DropCounter as Counted};

#[test]
fn agents_fill_a_gather_in_place_and_the_mapper_takes_the_whole_vector() {
    let rt = runtime(2);
    let out = rt
        .run(|ctx| {
            let out = Gather::<u64>::new(100_003, 7);
            for i in 0..out.parts() {
                let mut part = out.part(i).expect("a free part");
                ctx.spawn_with(SpawnOptions::new().monitor(), move |_| {
                    let range = part.range();
                    assert_eq!(part.extend(range.map(|x| 3 * x as u64)), part.range().len());
                })
                .unwrap();
            }
            for _ in 0..out.parts() {
                assert!(recv_down(ctx).status.is_ok());
            }
            out.into_vec().map_err(|(error, _)| error)
        })
        .unwrap()
        .expect("every part written");
    assert_eq!(out.len(), 100_003);
    assert!(out.iter().enumerate().all(|(i, &v)| v == 3 * i as u64));
}

#[test]
fn a_part_can_be_claimed_once_and_the_parts_cover_the_vector_without_overlap() {
    let out = Gather::<u8>::new(10, 3);
    assert_eq!(
        (out.range(0), out.range(1), out.range(2)),
        (0..3, 3..6, 6..10)
    );
    assert_eq!(out.range(3), 10..10);
    let first = out.part(1).expect("free");
    assert!(out.part(1).is_none(), "a second writer for one part");
    assert!(out.part(3).is_none(), "a part past the last");
    drop(first);
    assert!(
        out.part(1).is_none(),
        "a part is claimed once, even after its writer went"
    );
}

#[test]
fn a_writer_cannot_write_past_its_part() {
    let out = Gather::<u32>::new(4, 2);
    let mut part = out.part(0).unwrap();
    assert_eq!(part.push(1), Ok(()));
    assert_eq!(part.push(2), Ok(()));
    assert_eq!(part.push(3), Err(3));
    assert_eq!(part.extend([4, 5]), 0);
    assert_eq!(part.remaining(), 0);
}

#[test]
fn the_vector_is_refused_while_a_writer_lives_or_a_part_is_unwritten() {
    let out = Gather::<u32>::new(4, 2);
    let mut first = out.part(0).unwrap();
    first.extend([1, 2]);
    let (error, out) = out.into_vec().unwrap_err();
    assert_eq!(error, GatherError::Shared);
    drop(first);
    let (error, out) = out.into_vec().unwrap_err();
    assert_eq!(error, GatherError::Unwritten(1));
    let mut second = out.part(1).unwrap();
    second.extend([3, 4]);
    drop(second);
    assert_eq!(out.into_vec().unwrap(), vec![1, 2, 3, 4]);
}

#[test]
fn elements_of_a_panicking_writer_are_dropped_once_and_its_part_reported() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = runtime(1);
    let drops_in = drops.clone();
    let error = rt
        .run(move |ctx| {
            let out = Gather::<Counted>::new(10, 2);
            let mut whole = out.part(0).unwrap();
            let mut broken = out.part(1).unwrap();
            let counter = drops_in.clone();
            ctx.spawn_with(SpawnOptions::new().monitor(), move |_| {
                whole.extend((0..5).map(|_| Counted(counter.clone())));
            })
            .unwrap();
            let counter = drops_in.clone();
            ctx.spawn_with(SpawnOptions::new().monitor(), move |_| {
                broken.extend((0..3).map(|_| Counted(counter.clone())));
                panic!("the writer fails half-way");
            })
            .unwrap();
            let mut panicked = 0;
            for _ in 0..2 {
                if matches!(recv_down(ctx).status.reason(), Some(ExitReason::Panic(_))) {
                    panicked += 1;
                }
            }
            assert_eq!(panicked, 1);
            assert_eq!(
                drops_in.load(Ordering::SeqCst),
                3,
                "the broken part's 3 elements"
            );
            let (error, out) = out.into_vec().unwrap_err();
            drop(out);
            error
        })
        .unwrap();
    assert_eq!(error, GatherError::Unwritten(1));
    assert_eq!(drops.load(Ordering::SeqCst), 8, "3 + 5, each once");
}

#[test]
fn a_gather_of_zero_sized_or_no_elements_works() {
    let empty = Gather::<u64>::new(0, 4);
    for i in 0..4 {
        drop(empty.part(i).unwrap());
    }
    assert_eq!(empty.into_vec().unwrap(), Vec::<u64>::new());
    let units = Gather::<()>::new(5, 2);
    let mut a = units.part(0).unwrap();
    let mut b = units.part(1).unwrap();
    a.extend(std::iter::repeat_n((), 10));
    b.extend(std::iter::repeat_n((), 10));
    drop((a, b));
    assert_eq!(units.into_vec().unwrap().len(), 5);
}
