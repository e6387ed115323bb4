//! Value stability, per chip model × firing mode × arithmetic (rand's habit, tetanes' golden
//! hashes per test ROM): a small net and a seed on every shipped chip, with the report's key
//! figures pinned. A change that moves any of them is a reproducibility-breaking change: update
//! the table deliberately (run with `ACCORD_PRINT_GOLDEN=1` to print it) and record it in
//! CHANGELOG.md.

use accord::chip::{self, Action};
use accord::emulator::{self, Arith, ChipRule, EmuConfig, Encoding, FiringMode};
use accord::rule::{Activation, Loss};

/// The figures pinned for one configuration.
#[derive(Debug, PartialEq, Eq)]
struct Golden {
    /// Test samples classified right after training.
    correct: u64,
    /// Training counts: sop, retro_sop, weight_update, spike_packet, hop.
    train: [u64; 5],
    /// Inference sops.
    infer_sop: u64,
    /// Modelled time over all training and all inference samples, ps.
    time_ps: (u64, u64),
    /// Energy (dynamic and static) over all training and all inference samples, fJ: the
    /// price set in force is pinned too.
    energy_fj: (u64, u64),
    /// FNV-1a over every ledger count and format event of training and inference.
    hash: u64,
}

fn fnv(h: &mut u64, x: u64) {
    for b in x.to_le_bytes() {
        *h ^= u64::from(b);
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

fn run(chip: &str, mode: FiringMode, arith: Arith, epochs: usize) -> Result<Golden, String> {
    let split = accord::data::load("iris", &accord::data::default_data_dir(), 0).unwrap();
    let cfg = EmuConfig {
        chip: chip::open(chip).unwrap(),
        hidden: vec![6],
        activation: Activation::HardSigmoid,
        loss: Loss::CrossEntropy,
        lr: 0.05,
        epochs,
        seed: 3,
        mode,
        arith,
        threads: 1,
        message_threshold: 0.0,
        rule: ChipRule::Balance,
        placement: accord::mapping::Placement::FewestCores,
        duplicate_inputs: true,
    };
    let r = emulator::run(&cfg, &split, None).map_err(|e| e.to_string())?;
    let l = &r.ledger;
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for a in Action::ALL {
        fnv(&mut hash, l.training.get(a));
        fnv(&mut hash, l.inference.get(a));
    }
    for (_, c) in l.format_events.entries() {
        for x in [c.saturations, c.wraps, c.invalid, c.rng_draws, c.lut_clamps] {
            fnv(&mut hash, x);
        }
    }
    let e = &r.energy;
    let total = |p: &emulator::PhaseEnergy| {
        (p.time_ns_per_sample * p.samples as f64 * 1000.0).round() as u64
    };
    let joules = |p: &emulator::PhaseEnergy| {
        ((p.dynamic_pj_per_sample + p.static_pj_per_sample.unwrap_or(0.0))
            * p.samples as f64
            * 1000.0)
            .round() as u64
    };
    Ok(Golden {
        correct: (r.test_accuracy * split.test.len() as f64).round() as u64,
        train: [
            l.training.get(Action::Sop),
            l.training.get(Action::RetroSop),
            l.training.get(Action::WeightUpdate),
            l.training.get(Action::SpikePacket),
            l.training.get(Action::Hop),
        ],
        infer_sop: l.inference.get(Action::Sop),
        time_ps: (total(&e.training), total(&e.inference)),
        energy_fj: (joules(&e.training), joules(&e.inference)),
        hash,
    })
}

const SPIKING: FiringMode = FiringMode::Spiking {
    ticks: 8,
    encoding: Encoding::Regular,
};

#[test]
fn reports_are_value_stable_per_chip_mode_and_arithmetic() {
    let cases: [(&str, FiringMode, Arith, usize); 10] = [
        ("balance-core", FiringMode::Graded, Arith::Fixed, 1),
        ("balance-core", FiringMode::Graded, Arith::Float, 1),
        ("balance-core", SPIKING, Arith::Fixed, 1),
        ("balance-core", SPIKING, Arith::Float, 1),
        ("loihi", SPIKING, Arith::Fixed, 1),
        ("loihi", SPIKING, Arith::Float, 1),
        ("truenorth", SPIKING, Arith::Fixed, 0),
        ("truenorth", SPIKING, Arith::Float, 0),
        ("reckon", SPIKING, Arith::Fixed, 1),
        ("reckon", FiringMode::Graded, Arith::Fixed, 1),
    ];
    let got: Vec<Result<Golden, String>> =
        cases.iter().map(|&(c, m, a, e)| run(c, m, a, e)).collect();
    if std::env::var_os("ACCORD_PRINT_GOLDEN").is_some() {
        for ((c, m, a, _), g) in cases.iter().zip(&got) {
            eprintln!("{c} {m:?} {a:?}: {g:?}");
        }
    }
    let want: [Result<Golden, &str>; 10] = GOLDEN;
    for (((c, m, a, _), g), w) in cases.iter().zip(&got).zip(want) {
        match (g, w) {
            (Ok(g), Ok(w)) => assert_eq!(
                g, &w,
                "{c} {m:?} {a:?} (a deliberate change: list it in CHANGELOG.md and re-run `accord calibrate --record`, whose errors the reports quote)"
            ),
            (Err(g), Err(w)) => assert!(g.contains(w), "{c} {m:?} {a:?}: {g}"),
            (g, w) => panic!("{c} {m:?} {a:?}: got {g:?}, pinned {:?}", w.map(|_| ())),
        }
    }
}

/// The pinned figures (printed by `ACCORD_PRINT_GOLDEN=1`).
const GOLDEN: [Result<Golden, &str>; 10] = [
    Ok(Golden {
        correct: 20,
        train: [3258, 2160, 1463, 613, 1333],
        infer_sop: 801,
        time_ps: (57086000, 6428000),
        energy_fj: (124002454, 13245293),
        hash: 16024576348763883424,
    }),
    Ok(Golden {
        correct: 20,
        train: [3258, 2160, 1463, 613, 1333],
        infer_sop: 801,
        time_ps: (57086000, 6428000),
        energy_fj: (123783004, 13245293),
        hash: 6975505277706420460,
    }),
    Ok(Golden {
        correct: 20,
        train: [9996, 2160, 1333, 1830, 2550],
        infer_sop: 2763,
        time_ps: (111128000, 21104000),
        energy_fj: (299655083, 60797180),
        hash: 15053153385336854534,
    }),
    Ok(Golden {
        correct: 20,
        train: [9834, 2160, 1328, 1803, 2523],
        infer_sop: 2715,
        time_ps: (110498000, 20884000),
        energy_fj: (297762455, 60291218),
        hash: 11463419378740315624,
    }),
    Ok(Golden {
        correct: 20,
        train: [9768, 2160, 2030, 1759, 2465],
        infer_sop: 2694,
        time_ps: (310216900, 60580200),
        energy_fj: (2060377494, 366678638),
        hash: 12807661917516238391,
    }),
    Ok(Golden {
        correct: 19,
        train: [9657, 2160, 2158, 1744, 2464],
        infer_sop: 2655,
        time_ps: (310966700, 60318900),
        energy_fj: (2077034331, 364475919),
        hash: 2690125518374127212,
    }),
    // TrueNorth cannot learn: inference with the initial weights, 10 timesteps of one 1 ms
    // tick for each of the 30 test samples. Energy under its default price set akopyan-fit:
    // 2,640 events × 2.3 pJ plus 3 cores × 0.015723 mW × 0.3 s of static power.
    Ok(Golden {
        correct: 12,
        train: [0, 0, 0, 0, 0],
        infer_sop: 2640,
        time_ps: (0, 300000000000),
        energy_fj: (0, 14156772000),
        hash: 8105886098153094242,
    }),
    Ok(Golden {
        correct: 12,
        train: [0, 0, 0, 0, 0],
        infer_sop: 2649,
        time_ps: (0, 300000000000),
        energy_fj: (0, 14156792700),
        hash: 7825510375503435734,
    }),
    // ReckOn is one core: the layers are packed onto it, the inputs come from off-chip (no
    // latencies are published, so no time); it has binary spikes only.
    Ok(Golden {
        correct: 20,
        train: [11253, 2160, 2694, 2254, 0],
        infer_sop: 3096,
        time_ps: (0, 0),
        energy_fj: (71088900, 16408800),
        hash: 14354875597179074474,
    }),
    Err("chip 'reckon' has no graded events"),
];

/// The figures pinned for one all-to-all run on a chip.
#[derive(Debug, PartialEq, Eq)]
struct AllToAllGolden {
    /// Cores used.
    cores: usize,
    /// Test samples classified right after training.
    correct: u64,
    /// Firing and credit rounds over training (total, most in one sample).
    rounds: [usize; 4],
    /// Training counts: sop, retro_sop, weight_update, spike_packet, hop, interchip_hop.
    train: [u64; 6],
    /// Modelled time over all training and all inference samples, ps.
    time_ps: (u64, u64),
    /// FNV-1a over every priced count of training and inference, every format event and
    /// the trained weights' bits.
    hash: u64,
}

fn all_to_all_run(arith: Arith, n: usize, sets: &[(&str, &str)]) -> AllToAllGolden {
    use accord::experiments::all_to_all::{self, AllToAllConfig};
    let split = accord::data::load("digits", &accord::data::default_data_dir(), 0).unwrap();
    let sets: Vec<(String, String)> = sets
        .iter()
        .map(|&(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cfg = AllToAllConfig {
        chip: chip::open_with("balance-core", &sets).unwrap(),
        arith,
        n,
        lr: 0.1,
        epochs: 1,
        seed: 1,
        samples: Some(30),
    };
    let r = all_to_all::run(&cfg, &split).unwrap().chip_run;
    let count = |p: &emulator::PhaseEnergy, name: &str| {
        p.breakdown
            .actions
            .iter()
            .find(|a| a.action == name)
            .map_or(0, |a| a.count)
    };
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for p in [&r.training, &r.inference] {
        for a in &p.breakdown.actions {
            fnv(&mut hash, a.count);
        }
    }
    for (_, c) in r.format_events.entries() {
        for x in [c.saturations, c.wraps, c.invalid, c.rng_draws, c.lut_clamps] {
            fnv(&mut hash, x);
        }
    }
    for w in &r.weights {
        fnv(&mut hash, w.to_bits());
    }
    let total = |p: &emulator::PhaseEnergy| {
        (p.time_ns_per_sample * p.samples as f64 * 1000.0).round() as u64
    };
    let t = &r.training;
    AllToAllGolden {
        cores: r.cores,
        correct: (r.test_accuracy.last().unwrap() * split.test.len() as f64).round() as u64,
        rounds: [
            r.fire_rounds.0,
            r.fire_rounds.1,
            r.credit_rounds.0,
            r.credit_rounds.1,
        ],
        train: [
            count(t, "sop"),
            count(t, "retro_sop"),
            count(t, "weight_update"),
            count(t, "spike_packet"),
            count(t, "hop"),
            count(t, "interchip_hop"),
        ],
        time_ps: (total(&r.training), total(&r.inference)),
        hash,
    }
}

/// The all-to-all path (the `modules` recipe on a chip, `accord all-to-all`): N = 90 on
/// balance-core's own cores (one core) and on cores of 12 neurons (8 cores over two mesh
/// rows, so the cores' order on the mesh shows), fixed point and float twin.
#[test]
fn all_to_all_runs_are_value_stable() {
    const SMALL: &[(&str, &str)] = &[("core.neurons", "12")];
    // Two chips of 2 × 2 cores side by side: the group's 8 cores span both.
    const TWO_CHIPS: &[(&str, &str)] = &[
        ("core.neurons", "12"),
        ("mesh.cols", "2"),
        ("mesh.rows", "2"),
        ("system.chips_x", "2"),
        ("system.chips_y", "1"),
    ];
    let cases = [
        (Arith::Fixed, 90, &[][..]),
        (Arith::Float, 90, &[][..]),
        (Arith::Fixed, 90, SMALL),
        (Arith::Float, 90, SMALL),
        // 80 neurons on 12-neuron cores: 7 chunks, which do not fill whole mesh rows.
        (Arith::Fixed, 80, SMALL),
        (Arith::Fixed, 90, TWO_CHIPS),
    ];
    let got: Vec<AllToAllGolden> = cases
        .iter()
        .map(|&(a, n, sets)| all_to_all_run(a, n, sets))
        .collect();
    if std::env::var_os("ACCORD_PRINT_GOLDEN").is_some() {
        for ((a, n, sets), g) in cases.iter().zip(&got) {
            eprintln!("all-to-all {a:?} N {n} {sets:?}: {g:?}");
        }
    }
    // The two-chip system sends across the interchip links; one chip never does.
    assert!(got[5].train[5] > 0 && got[2].train[5] == 0, "{:?}", got[5]);
    for (((a, n, sets), g), w) in cases.iter().zip(&got).zip(ALL_TO_ALL_GOLDEN) {
        assert_eq!(
            g, &w,
            "all-to-all {a:?}, N {n}, {sets:?} (a deliberate change: list it in CHANGELOG.md)"
        );
    }
}

/// The pinned all-to-all figures (printed by `ACCORD_PRINT_GOLDEN=1`).
const ALL_TO_ALL_GOLDEN: [AllToAllGolden; 6] = [
    AllToAllGolden {
        cores: 1,
        correct: 40,
        rounds: [120, 4, 131, 5],
        train: [161460, 72875, 45837, 8070, 0, 0],
        time_ps: (893676000, 5025792000),
        hash: 6471491228607710416,
    },
    AllToAllGolden {
        cores: 1,
        correct: 38,
        rounds: [210, 7, 188, 7],
        train: [297180, 110200, 46020, 13380, 0, 0],
        time_ps: (1333484000, 9082296000),
        hash: 14497086278919565422,
    },
    AllToAllGolden {
        cores: 8,
        correct: 40,
        rounds: [120, 4, 139, 5],
        train: [161460, 78100, 45837, 64560, 120181, 0],
        time_ps: (512852000, 3148118000),
        hash: 6994632785666525638,
    },
    AllToAllGolden {
        cores: 8,
        correct: 38,
        rounds: [210, 7, 188, 7],
        train: [297180, 110200, 46020, 107040, 197820, 0],
        time_ps: (762944000, 5527022000),
        hash: 13884152047576858972,
    },
    AllToAllGolden {
        cores: 7,
        correct: 44,
        rounds: [120, 4, 123, 5],
        train: [84960, 26730, 23417, 48090, 79023, 0],
        time_ps: (397722000, 2704826000),
        hash: 10454229239501916327,
    },
    AllToAllGolden {
        cores: 8,
        correct: 40,
        rounds: [120, 4, 139, 5],
        train: [161460, 78100, 45837, 64560, 84752, 35429],
        time_ps: (512852000, 3148118000),
        hash: 16441474529129212073,
    },
];
