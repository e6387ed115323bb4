//! Engine and mesh tests that need the crate's internals: the pipeline's timing, and the
//! router's cycles, stalls and drops computed by hand.

use accord_firmware::handlers::{Op, Packet};

use super::engine::Cmd;
use super::mesh::{Exchange, ExchangeCounts, Flit, Mesh};
use super::*;
use crate::chip;
use crate::rule::LayeredNet;

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
    let pops = layered_pops(&acts, &[]);
    let dp = float_path(&chip, &pops, 0.1, 0.0, 1);
    let ticks = 4u32;
    let mode = FiringMode::Spiking {
        ticks,
        encoding: Encoding::Regular,
    };
    let mut vars = VarCounters::default();
    let mut cn = ChipNet::from_net(
        dp,
        &net,
        &mapping,
        &chip,
        mode,
        Loss::CrossEntropy,
        ChipRule::Balance,
        None,
        &mut vars,
    );
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
                cmds.push((cn.layers[l][0].core as u32, cmd));
            }
        }
        cn.engine.timestep(&cmds, 0, false);
        for (l, f) in first_sop.iter_mut().enumerate() {
            let core = cn.layers[l][0].core;
            if f.is_none() && cn.engine.cores[core].ops.get(Op::Sop) > 0 {
                *f = Some(ts);
            }
        }
    }
    assert_eq!(first_sop, [None, Some(1), Some(2)]);
    // Every input tick reaches the output: 4 spikes in, 4 row walks at each layer.
    assert_eq!(cn.engine.cores[cn.layers[1][0].core].ops.get(Op::Sop), 4);
    assert_eq!(cn.engine.cores[cn.layers[2][0].core].ops.get(Op::Sop), 4);
    // The driver's own schedule: T + m timesteps per sample.
    cn.engine.take_tally();
    let mut t = Tally::default();
    cn.sample(&[1.0], 0, false, 1, &mut t);
    assert_eq!(t.timesteps, u64::from(ticks) + m as u64);
}

/// A three-core row (1 × 3 grid) with the given router settings.
fn row_mesh(depth: Option<u32>, drop: bool) -> Mesh<i64> {
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

fn send(mesh: &mut Mesh<i64>, k: u32) {
    for axon in 0..k {
        mesh.send(
            0,
            Flit {
                dst_core: 1,
                dst: 2,
                retro: false,
                xings: 0,
                packet: Packet::Spike { axon },
            },
        );
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
    let r = mesh.run(&mut c, |core, p| {
        delivered.push((core, p));
        Ok(())
    });
    assert_eq!(r, Exchange::Done);
    assert_eq!(
        (c.cycles, c.hops, c.stall_cycles, c.link_drops),
        (8, 6, 2, 0)
    );
    assert_eq!(delivered.len(), 3);
    assert_eq!(delivered[0], (1, Packet::Spike { axon: 0 }));

    let mut mesh = row_mesh(None, false);
    send(&mut mesh, 3);
    let mut c = ExchangeCounts::default();
    mesh.run(&mut c, |_, _| Ok(()));
    assert_eq!((c.cycles, c.hops, c.stall_cycles), (6, 6, 0));

    let mut got = Vec::new();
    let mut mesh = row_mesh(Some(1), true);
    send(&mut mesh, 3);
    let mut c = ExchangeCounts::default();
    mesh.run(&mut c, |_, p| {
        got.push(p);
        Ok(())
    });
    assert_eq!((c.cycles, c.hops, c.link_drops), (6, 4, 1));
    assert_eq!(got, [Packet::Spike { axon: 0 }, Packet::Spike { axon: 2 }]);
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
        let r = mesh.run(&mut c, |_, p| {
            if queue >= 1 {
                Err(p)
            } else {
                queue += 1;
                Ok(())
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
    let mut mesh: Mesh<i64> = Mesh::new(&chip, &[0, 3]);
    mesh.send(
        0,
        Flit {
            dst_core: 1,
            dst: 3,
            retro: false,
            xings: 0,
            packet: Packet::Spike { axon: 0 },
        },
    );
    let mut c = ExchangeCounts::default();
    mesh.run(&mut c, |_, _| Ok(()));
    assert_eq!((c.hops, c.interchip_hops, c.max_xings), (2, 1, 1));
}
