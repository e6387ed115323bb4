//! Engine and mesh tests that need the crate's internals: the pipeline's timing, and the
//! router's cycles, stalls and drops computed by hand.

use accord_firmware::handlers::Op;

use super::engine::Cmd;
use super::mesh::{Exchange, ExchangeCounts, Flit, Mesh};
use super::*;
use crate::chip;
use crate::rule::LayeredNet;

/// `net` on `chip` as `mapping` places it, in the float twin (balance rule, cross-entropy).
fn float_net(
    chip: &ChipModel,
    net: &LayeredNet,
    acts: &[Activation],
    mapping: &Mapping,
    mode: FiringMode,
) -> ChipNet<float::FloatPath> {
    let dp = float_path(chip, &layered_pops(acts, &[]), 0.1, 0.0, 1);
    let mut vars = VarCounters::default();
    ChipNet::from_net(
        dp,
        net,
        mapping,
        chip,
        mode,
        Loss::CrossEntropy,
        ChipRule::Balance,
        None,
        &mut vars,
    )
}

/// A 1-1-1 spiking net whose neurons fire every tick: layer `l`'s first synaptic operation
/// happens in timestep `l` (a spike sent in timestep `t` is handled in `t + 1`), and a sample
/// takes `T + m` timesteps.
#[test]
fn a_spike_reaches_the_next_layer_one_timestep_later() {
    let chip = chip::open("balance-core").unwrap();
    let sizes = [1, 1, 1];
    let acts = [Activation::HardSigmoid, Activation::Identity];
    let mut net = LayeredNet::glorot(&sizes, &acts, 1);
    net.layers[0].w[0] = 1.5;
    net.layers[1].w[0] = 1.0;
    let mapping = mapping::map_layered(&sizes, &chip).unwrap();
    let ticks = 4u32;
    let mode = FiringMode::Spiking {
        ticks,
        encoding: Encoding::Regular,
    };
    let mut cn = float_net(&chip, &net, &acts, &mapping, mode);
    // Drive the schedule by hand and watch each core's synaptic operations.
    cn.engine.reset_sample();
    cn.engine.cores[0].set_rate(0, 1.0);
    let m = 2;
    let mut first_sop = [None::<usize>; 3];
    for ts in 0..ticks as usize + m {
        let mut cmds = Vec::new();
        for l in 0..=m {
            if ts >= l && ts < l + ticks as usize {
                let cmd = Cmd::Tick {
                    tick: (ts - l) as u32,
                    ticks,
                    poisson: false,
                };
                cmds.push((cn.lay.layers[l][0].core as u32, cmd));
            }
        }
        cn.engine.timestep(&cmds, 0, false);
        for (l, f) in first_sop.iter_mut().enumerate() {
            let core = cn.lay.layers[l][0].core;
            if f.is_none() && cn.engine.cores[core].ops.get(Op::Sop) > 0 {
                *f = Some(ts);
            }
        }
    }
    assert_eq!(first_sop, [None, Some(1), Some(2)]);
    // Every input tick reaches the output: 4 spikes in, 4 row walks at each layer.
    assert_eq!(
        cn.engine.cores[cn.lay.layers[1][0].core].ops.get(Op::Sop),
        4
    );
    assert_eq!(
        cn.engine.cores[cn.lay.layers[2][0].core].ops.get(Op::Sop),
        4
    );
    // The driver's own schedule: T + m timesteps per sample.
    cn.engine.take_tally();
    let mut t = Tally::default();
    cn.sample(&[1.0], 0, false, 1, &mut t);
    assert_eq!(t.timesteps, u64::from(ticks) + m as u64);
    // Between samples the idle net gives its queues back; a copy and the next sample have the
    // chip's depth again, and the next sample runs as before.
    let depth = chip.core.input_queue as usize;
    cn.finish(&mut t);
    assert!(cn.engine.queue_capacities().iter().all(|&c| c == 1));
    let copy = cn.clone();
    assert!(copy.engine.queue_capacities().iter().all(|&c| c == depth));
    let mut again = Tally::default();
    cn.sample(&[1.0], 0, false, 1, &mut again);
    assert!(cn.engine.queue_capacities().iter().all(|&c| c == depth));
    cn.finish(&mut again);
    assert_eq!(again.ledger, t.ledger);
    assert_eq!(again.time_ps, t.time_ps);
    // An evaluation copy keeps no traces and runs, counts and converts as a clone does.
    let mut eval = cn.inference_copy();
    assert!(eval.engine.cores.iter().all(|c| c.traces() == 0));
    assert!(cn.engine.cores.iter().any(|c| c.traces() > 0));
    let mut clone = cn.clone();
    let (mut te, mut tc) = (Tally::default(), Tally::default());
    let oe = eval.sample(&[0.7], 0, false, 2, &mut te);
    let oc = clone.sample(&[0.7], 0, false, 2, &mut tc);
    eval.finish(&mut te);
    clone.finish(&mut tc);
    assert_eq!(oe, oc);
    assert_eq!((te.ledger, te.time_ps), (tc.ledger, tc.time_ps));
    assert_eq!(eval.state(), clone.state());
}

/// A three-core row (1 × 3 grid) with the given router settings.
fn row_mesh(depth: Option<u32>, drop: bool) -> Mesh {
    let mut sets = vec![
        ("mesh.cols".to_owned(), "3".to_owned()),
        ("mesh.rows".to_owned(), "1".to_owned()),
        (
            "router.overflow".to_owned(),
            if drop { "drop" } else { "stall" }.to_owned(),
        ),
    ];
    if let Some(d) = depth {
        sets.push(("router.buffer_depth".to_owned(), d.to_string()));
    }
    let chip = chip::open_with("balance-core", &sets).unwrap();
    // Engine core 0 at grid position 0, engine core 1 at position 2.
    Mesh::new(&chip, &[0, 2])
}

fn send(mesh: &mut Mesh, k: u32) {
    for _ in 0..k {
        mesh.send(0, Flit::new(1, false, 1));
    }
}

/// Three packets over two hops with 1-packet buffers (credit-style: a FIFO full at the start of
/// a cycle accepts nothing in it). By hand, cycle by cycle (`E0` = router 0's east FIFO, `L2` =
/// router 2's local port):
///
/// | cycle | moves | injection |
/// |---|---|---|
/// | 0 | — | p0 → E0 |
/// | 1 | p0 E0 → E1 | p1 waits (E0 was full): stall 1 |
/// | 2 | p0 E1 → L2 | p1 → E0 |
/// | 3 | p1 E0 → E1; p0 delivered | p2 waits: stall 2 |
/// | 4 | p1 E1 → L2 | p2 → E0 |
/// | 5 | p2 E0 → E1; p1 delivered | — |
/// | 6 | p2 E1 → L2 | — |
/// | 7 | p2 delivered | — |
///
/// 8 cycles, 6 hops, 2 stall cycles. With unbounded buffers the same packets pipeline in
/// `3 + 2 + 1 = 6` cycles; with `drop`, p1 is lost at E0 in cycle 1 and the rest take 6 cycles.
#[test]
fn router_cycles_stalls_and_drops_by_hand() {
    let mut delivered = Vec::new();
    let mut mesh = row_mesh(Some(1), false);
    send(&mut mesh, 3);
    let mut c = ExchangeCounts::default();
    let r = mesh.run(&mut c, |core, id, _| {
        delivered.push((core, id));
        true
    });
    assert_eq!(r, Exchange::Done);
    assert_eq!(
        (c.cycles, c.hops, c.stall_cycles, c.link_drops),
        (8, 6, 2, 0)
    );
    assert_eq!(delivered.len(), 3);
    assert_eq!(delivered, [(1, 0), (1, 1), (1, 2)]);

    let mut mesh = row_mesh(None, false);
    send(&mut mesh, 3);
    let mut c = ExchangeCounts::default();
    mesh.run(&mut c, |_, _, _| true);
    assert_eq!((c.cycles, c.hops, c.stall_cycles), (6, 6, 0));

    let mut got = Vec::new();
    let mut mesh = row_mesh(Some(1), true);
    send(&mut mesh, 3);
    let mut c = ExchangeCounts::default();
    mesh.run(&mut c, |_, id, _| {
        got.push(id);
        true
    });
    assert_eq!((c.cycles, c.hops, c.link_drops), (6, 4, 1));
    assert_eq!(got, [0, 2]);
    mesh.end_timestep();
    let busiest = &mesh.link_loads()[0];
    assert_eq!((busiest.x, busiest.port), (0, "east"));
    assert_eq!((busiest.packets, busiest.drops), (2, 1));
}

/// A core queue of one packet under `stall`: the exchange stops when only the full queue holds
/// traffic up, the core drains, and the exchange resumes. By hand (unbounded router FIFOs): p0
/// is delivered in cycle 3; p1 finds the queue full in cycles 4 and 5 (stall 2) and the
/// exchange returns after 6 cycles; after the drain p1 goes in cycle 6, p2 waits in cycle 7
/// (stall 3) and the exchange returns again after 8 cycles; p2 goes in cycle 8: 9 cycles.
#[test]
fn full_core_queue_blocks_until_drained() {
    let mut mesh = row_mesh(None, false);
    send(&mut mesh, 3);
    let mut c = ExchangeCounts::default();
    let mut queue = 0usize;
    let mut drains = 0;
    loop {
        let r = mesh.run(&mut c, |_, _, _| {
            if queue >= 1 {
                false
            } else {
                queue += 1;
                true
            }
        });
        match r {
            Exchange::Done => break,
            Exchange::Blocked(cores) => {
                assert_eq!(cores, [1]);
                drains += 1;
                queue = 0;
                if drains == 1 {
                    assert_eq!((c.cycles, c.stall_cycles), (6, 2));
                }
            }
        }
    }
    assert_eq!(drains, 2);
    assert_eq!((c.cycles, c.stall_cycles, c.queue_drops), (9, 3, 0));
}

/// A system of two chips: a route that leaves the chip crosses one interchip link.
#[test]
fn links_between_chips_are_interchip_hops() {
    let sets = [
        ("mesh.cols".to_owned(), "2".to_owned()),
        ("mesh.rows".to_owned(), "1".to_owned()),
        ("system.chips_x".to_owned(), "2".to_owned()),
        ("system.chips_y".to_owned(), "1".to_owned()),
    ];
    let chip = chip::open_with("balance-core", &sets).unwrap();
    assert_eq!(chip.grid().cols, 4);
    let mut mesh: Mesh = Mesh::new(&chip, &[0, 3]);
    mesh.send(0, Flit::new(1, false, 1));
    let mut c = ExchangeCounts::default();
    mesh.run(&mut c, |_, _, _| true);
    assert_eq!((c.hops, c.interchip_hops, c.max_xings), (2, 1, 1));
}

/// A packet is 8 bytes: the retrograde flag rides in the destination, and a handler time that
/// does not fit 32 bits is kept beside the list and reaches the delivery exactly.
#[test]
fn a_handler_time_beyond_32_bits_reaches_delivery_exactly() {
    let chip = chip::open("balance-core").unwrap();
    let mut mesh: Mesh = Mesh::new(&chip, &[0, 2]);
    let mut p = super::router::Packets::default();
    let big = (1u64 << 40) + 7;
    let edge = u64::from(u32::MAX);
    p.push(0, 1, false, 5);
    p.push(0, 1, true, big);
    p.push(0, 1, false, edge - 1);
    p.push(0, 1, true, edge);
    assert_eq!(p.big, vec![(1, big), (3, edge)]);
    assert!(p.flits[1].retro() && !p.flits[2].retro());
    assert_eq!(p.flits[3].dst_core(), 1);
    mesh.send_all(p.flits, &p.runs, &p.big);
    let mut seen = Vec::new();
    let mut c = ExchangeCounts::default();
    mesh.run(&mut c, |core, id, cost| {
        seen.push((core, id, cost));
        true
    });
    assert_eq!(
        seen,
        vec![(1, 0, 5), (1, 1, big), (1, 2, edge - 1), (1, 3, edge)]
    );
    // Two of the four packets were retrograde, each crossing the same two links.
    assert_eq!((c.hops, c.retro_hops), (8, 4));
}

/// The event-driven exchange equals the plain cycle loop: on random traffic over small meshes
/// and systems, with every buffer depth, link capacity, policy and core-queue size, the two give
/// the same cycles, hops, stalls, drops, blocked rounds, per-link counts and delivery order.
#[test]
fn event_driven_exchange_equals_the_cycle_loop() {
    use accord_firmware::arith::CounterRng;
    let mut rng = CounterRng::new(7, 0, 0, 0);
    use accord_firmware::arith::RandomBits;
    let mut draw = |n: u64| rng.next_u64() % n;
    for case in 0..300 {
        let cols = 1 + draw(4) as u32;
        let rows = 1 + draw(3) as u32;
        let chips = 1 + draw(2) as u32;
        let depth = [Some(1u32), Some(2), Some(4), None][draw(4) as usize];
        let cap = 1 + draw(2);
        let drop = draw(3) == 0;
        let queue = [1usize, 2, 3, 1000][draw(4) as usize];
        let mut sets = vec![
            ("mesh.cols".to_owned(), cols.to_string()),
            ("mesh.rows".to_owned(), rows.to_string()),
            ("system.chips_x".to_owned(), chips.to_string()),
            ("system.chips_y".to_owned(), "1".to_owned()),
            ("router.link_packets_per_cycle".to_owned(), cap.to_string()),
            (
                "router.overflow".to_owned(),
                if drop { "drop" } else { "stall" }.to_owned(),
            ),
        ];
        if let Some(d) = depth {
            sets.push(("router.buffer_depth".to_owned(), d.to_string()));
        }
        let chip = chip::open_with("balance-core", &sets).unwrap();
        let n = chip.grid().cores() as u32;
        let cores: Vec<u32> = (0..n).filter(|_| draw(3) != 0).collect();
        if cores.is_empty() {
            continue;
        }
        let mut a: Mesh = Mesh::new(&chip, &cores);
        let mut b: Mesh = Mesh::new(&chip, &cores);
        for _ in 0..(1 + draw(3)) {
            let packets = draw(60);
            for p in 0..packets {
                let src = draw(cores.len() as u64) as u32;
                let dst = draw(cores.len() as u64) as u32;
                let f = Flit::new(dst, p % 3 == 0, 1);
                a.send(src, f);
                b.send(src, f);
            }
            let run = |m: &mut Mesh, simple: bool| {
                let mut c = ExchangeCounts::default();
                let mut q = vec![0usize; cores.len()];
                let mut log = Vec::new();
                loop {
                    let mut deliver = |core: u32, id: u32, _: u64| {
                        if q[core as usize] >= queue {
                            false
                        } else {
                            q[core as usize] += 1;
                            log.push((core, id));
                            true
                        }
                    };
                    let r = if simple {
                        m.run_simple(&mut c, &mut deliver)
                    } else {
                        m.run(&mut c, &mut deliver)
                    };
                    match r {
                        Exchange::Done => break,
                        Exchange::Blocked(list) => {
                            log.push((u32::MAX, list.len() as u32));
                            for k in list {
                                q[k as usize] = 0;
                            }
                        }
                    }
                }
                m.end_timestep();
                (c, log)
            };
            let (ca, la) = run(&mut a, false);
            let (cb, lb) = run(&mut b, true);
            if ca != cb {
                eprintln!("case {case}: depth {depth:?} cap {cap} drop {drop} queue {queue}");
                for (x, y) in a.link_loads().iter().zip(b.link_loads().iter()) {
                    if x != y {
                        eprintln!("  {x:?}\n  {y:?}");
                    }
                }
            }
            assert_eq!(ca, cb, "case {case}: counts");
            assert_eq!(la, lb, "case {case}: deliveries");
        }
        assert_eq!(a.link_loads(), b.link_loads(), "case {case}: links");
    }
}

#[test]
fn input_queues_hold_the_chip_depth_in_storage_sized_to_it() {
    use super::engine::InQueue;
    for (depth, slots) in [
        (0, 16),
        (16, 16),
        (17, 64),
        (256, 256),
        (1000, 1024),
        (4096, 4096),
        (9999, 4096),
    ] {
        let mut q = InQueue::<u64>::new(depth);
        let limit = depth.clamp(1, 4096);
        assert_eq!(q.capacity(), limit, "depth {depth}");
        let bytes = std::mem::size_of_val::<accord_firmware::queue::EventQueueView<u64>>(&q);
        assert!(
            (slots * 8..slots * 8 + 64).contains(&bytes),
            "depth {depth}: {bytes} bytes"
        );
        for k in 0..limit as u64 {
            assert_eq!(q.push(k), Ok(()));
        }
        assert_eq!(q.push(7), Err(7), "depth {depth}: full at the chip's depth");
        let c = q.clone();
        assert_eq!(c.capacity(), limit);
        assert!(c.iter().eq(q.iter()));
    }
}

/// A core's axon ids and return addresses kept as runs give back every axon's own, for the
/// shapes a core's axons take (one range, a range then the layer's own neurons, scattered).
#[test]
fn axon_runs_give_back_every_axons_id_and_return_address() {
    use super::engine::{Wiring, id_runs, retro_runs};
    use accord_firmware::handlers::AxonIds;
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(5);
    let shapes: Vec<Vec<u64>> = vec![
        (0..7).map(|j| layered::gid(1, j)).collect(),
        (0..4)
            .map(|j| layered::gid(0, j))
            .chain((0..3).map(|j| layered::gid(1, j)))
            .collect(),
        (0..50).map(|_| rng.random_range(0..20u64)).collect(),
        Vec::new(),
    ];
    for ids in &shapes {
        let runs = id_runs(ids);
        let a = AxonIds::new(&runs);
        for (j, &id) in ids.iter().enumerate() {
            assert_eq!(a.gid(j), id, "axon {j} of {ids:?}");
        }
        let to: Vec<(u32, u32)> = ids
            .iter()
            .map(|&id| ((id >> 32) as u32 + (id as u32 % 3), id as u32))
            .collect();
        let (retro_runs, retro_axons) = retro_runs(&to);
        let w = Wiring {
            retro_runs,
            retro_axons,
            ..Wiring::default()
        };
        for (j, &addr) in to.iter().enumerate() {
            assert_eq!(w.retro_to(j as u32), Some(addr), "axon {j}");
        }
        assert_eq!(w.retro_to(to.len() as u32), None);
    }
    // One run for a layer below, two with the layer's own neurons after it.
    assert_eq!(id_runs(&shapes[0]).len(), 1);
    assert_eq!(id_runs(&shapes[1]).len(), 2);
}

/// A row's magnitude bound in 32 bits stays an upper bound, exact where it fits, and storing
/// keeps order (so the maximum of stored bounds is the stored maximum).
#[test]
fn a_row_bound_in_32_bits_stays_an_upper_bound() {
    use accord_firmware::handlers::RowBound;
    let values = [
        0u64,
        1,
        32_767,
        u64::from(u32::MAX) - 1,
        u64::from(u32::MAX),
        1 << 40,
        u64::MAX,
    ];
    for &m in &values {
        assert!(RowBound::get(RowBound::put(m)) >= m, "{m}");
        if m < u64::from(u32::MAX) {
            assert_eq!(RowBound::get(RowBound::put(m)), m);
        }
        for &k in &values {
            assert_eq!(
                RowBound::put(m).max(RowBound::put(k)),
                RowBound::put(m.max(k))
            );
        }
    }
}

/// Duplicated inputs (a crossbar core with room for each input twice): every presynaptic
/// neuron sends one packet to each of its two axons, and each packet walks its own row, so a
/// graded firing's synaptic operations are exactly the connected slots of both copies under
/// the active inputs, and its packets twice those of one axon per input.
#[test]
fn a_duplicated_input_sends_a_packet_per_axon_and_walks_each_row() {
    let chip = chip::open_with(
        "balance-core",
        &[
            ("core.axon_types".into(), "2".into()),
            ("core.neurons".into(), "5".into()),
        ],
    )
    .unwrap();
    let sizes = [9, 8, 3];
    let acts = [Activation::HardSigmoid, Activation::Identity];
    let net = LayeredNet::glorot(&sizes, &acts, 4);
    let mapping = mapping::map_layered(&sizes, &chip).unwrap();
    assert_eq!(
        mapping.layers.iter().map(|l| l.copies).collect::<Vec<_>>(),
        [1, 2, 2]
    );
    let mut cn = float_net(&chip, &net, &acts, &mapping, FiringMode::Graded);
    let x: Vec<f64> = (0..9)
        .map(|j| if j % 3 == 1 { 0.0 } else { 0.1 * j as f64 })
        .collect();
    let mut t = Tally::default();
    cn.fire(&x, 0, &mut t);
    let r = cn.state().r;
    let (mut sops, mut packets) = (0u64, 0u64);
    for l in 1..sizes.len() {
        let below = sizes[l - 1];
        let active: Vec<usize> = (0..below).filter(|&j| r[l - 1][j] != 0.0).collect();
        assert!(!active.is_empty() && active.len() < below, "layer {l}");
        packets += (active.len() * cn.lay.layers[l].len() * 2) as u64;
        for p in &cn.lay.layers[l] {
            let rows = cn.engine.cores[p.core].rows();
            assert_eq!(rows.len(), 2 * below * p.len);
            for &j in &active {
                for copy in 0..2 {
                    let row = &rows[(copy * below + j) * p.len..][..p.len];
                    sops += row.iter().filter(|&&w| w != 0.0).count() as u64;
                }
            }
        }
    }
    assert!(sops > 0);
    assert_eq!(t.ledger.get(chip::Action::Sop), sops);
    assert_eq!(t.ledger.get(chip::Action::SpikePacket), packets);
    // What the two copies compute is the net of their summed weights (the float twin against
    // the f64 forward pass of the exported net).
    let held = cn.export();
    let mut s = held.new_state();
    held.fire(&x, &mut s);
    let out = cn.outputs();
    for (a, b) in out.iter().zip(held.output(&s)) {
        assert!((a - b).abs() < 1e-12, "{out:?} vs {:?}", held.output(&s));
    }
    // Some weight is a sum of two connected levels (the second copy is used).
    let second: usize = cn.lay.layers[2]
        .iter()
        .map(|p| {
            let rows = cn.engine.cores[p.core].rows();
            rows[rows.len() / 2..].iter().filter(|&&w| w != 0.0).count()
        })
        .sum();
    assert!(second > 0);
}
