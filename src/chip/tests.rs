//! Tests of chip-model loading, the design-rule check and charge resolution.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hw_models")
}

fn shipped(name: &str) -> ChipModel {
    load(&models_dir().join(format!("{name}.toml"))).unwrap_or_else(|e| panic!("{e}"))
}

/// A small valid chip file; bad variants are made from it by text replacement.
const MINIMAL: &str = r#"
name = "mini"
description = "a test chip"
process = "none"
missing = ["lut_read"]

[mesh]
cols = 2
rows = 1

[core]
neurons = 4
synapses = 16
input_axons = 4
fanout = 4
graded_events = true

[formats.weight]
bits = 16
frac = 12
signed = true
rounding = "stochastic"
overflow = "saturate"

[formats.membrane]
bits = 24
frac = 16
signed = true
rounding = "nearest-even"
overflow = "saturate"

[formats.rate]
bits = 16
frac = 15
signed = false
rounding = "floor"
overflow = "wrap"

[formats.credit]
bits = 16
frac = 14
signed = true
rounding = "toward-zero"
overflow = "saturate"

[formats.delta]
bits = 16
frac = 14
signed = true
rounding = "nearest-even"
overflow = "saturate"

[formats.lut]
bits = 12
frac = 11
signed = false
rounding = "nearest-even"
overflow = "saturate"

[formats.accumulator]
bits = 32
frac = 22
signed = true
rounding = "nearest-even"
overflow = "saturate"

[formats.learning_rate]
bits = 16
frac = 16
signed = false
rounding = "nearest-even"
overflow = "saturate"

[balance_table]
entries = 64
input_min = -8.0
input_max = 8.0

[prices.sop]
energy_pj = 26.0
latency_ns = 3.0
grade = "measured-all-in"
scope = "all-in"
includes = ["hop", "synapse_mem_read_bit"]
source = "test source A"

[prices.weight_update]
energy_pj = 2.0
grade = "derived-model"
scope = "per-term"
source = "test source B"
note = "a note"

[prices.barrier]
latency_ns = 100.0
grade = "pre-silicon"
scope = "per-term"
source = "test source C"

[static_power]
mw_per_core = 0.5
grade = "measured-all-in"
source = "test source D"

[emulations.lut_read]
via = ["neuron_update_active", "neuron_update_active"]
note = "two compartments"
"#;

/// Write `text` to a fresh temp file named after `tag` and load it.
fn load_text(tag: &str, text: &str) -> (String, Result<ChipModel, ChipError>) {
    let path = std::env::temp_dir().join(format!(
        "accord-chip-test-{}-{tag}.toml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    let result = load(&path);
    let _ = std::fs::remove_file(&path);
    (path.display().to_string(), result)
}

/// Load a variant of MINIMAL with `from` replaced by `to` (which must occur), expect an error.
fn bad(tag: &str, from: &str, to: &str) -> (String, ChipError) {
    assert!(MINIMAL.contains(from), "template lacks {from:?}");
    let (file, r) = load_text(tag, &MINIMAL.replacen(from, to, 1));
    match r {
        Ok(_) => panic!("variant {tag} loaded without error"),
        Err(e) => (file, e),
    }
}

/// Assert the error names the file and the key, and its text contains every `needle`.
fn assert_names(file: &str, e: &ChipError, key: &str, needles: &[&str]) {
    let text = e.to_string();
    assert!(text.starts_with(&format!("{file}: ")), "no file in: {text}");
    assert_eq!(e.key.as_deref(), Some(key), "wrong key in: {text}");
    assert!(text.contains(&format!("key '{key}'")), "no key in: {text}");
    for n in needles {
        assert!(text.contains(n), "{n:?} missing in: {text}");
    }
}

#[test]
fn minimal_template_is_valid() {
    let (_, r) = load_text("minimal", MINIMAL);
    let m = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.mesh.cores(), 2);
    assert_eq!(
        m.formats.rate.overflow,
        accord_firmware::arith::Overflow::Wrap
    );
    assert_eq!(
        m.formats.credit.rounding,
        accord_firmware::arith::Rounding::TowardZero
    );
    assert_eq!(m.emulations[&Action::LutRead].via.len(), 2);
}

#[test]
fn every_shipped_model_loads_and_passes_the_drc() {
    let names = models_in(&models_dir());
    for expected in ["balance-core", "loihi", "reckon", "truenorth"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not shipped"
        );
    }
    for name in &names {
        let m = shipped(name);
        assert_eq!(&m.name, name, "name field differs from file name");
        m.validate().unwrap();
    }
}

#[test]
fn describe_mentions_every_source_missing_primitive_and_emulation() {
    for name in models_in(&models_dir()) {
        let m = shipped(&name);
        let d = m.describe();
        assert_eq!(d, m.to_string());
        for (a, p) in &m.prices {
            assert!(
                d.contains(&p.source),
                "{name}: source of {a} not in describe"
            );
            assert!(
                d.contains(p.grade.name()),
                "{name}: grade of {a} not in describe"
            );
        }
        if let Some(sp) = &m.static_power {
            assert!(d.contains(&sp.source));
        }
        for a in &m.missing {
            assert!(d.contains(a.name()));
        }
        for a in m.emulations.keys() {
            assert!(d.contains(&format!("{a} emulated via")), "{name}: {a}");
        }
        for a in m.unpriced() {
            assert!(d.contains(a.name()));
        }
        assert!(d.contains(&format!("{} x {}", m.mesh.cols, m.mesh.rows)));
    }
}

#[test]
fn shipped_models_hold_the_anchor_figures() {
    let l = shipped("loihi");
    assert_eq!(l.mesh.cores(), 128);
    assert_eq!(l.prices[&Action::Sop].energy_pj, Some(23.6));
    assert_eq!(l.prices[&Action::Sop].grade, Grade::PreSilicon);
    assert_eq!(l.prices[&Action::Hop].energy_pj, Some(3.5));
    assert_eq!(l.prices[&Action::WeightUpdate].energy_pj, Some(120.0));
    assert_eq!(l.prices[&Action::Barrier].energy_pj, None);
    assert!(!l.core.graded_events);
    // TrueNorth's default set is the one fitted to Akopyan 2015 Fig. 17 (static power plus a
    // marginal 2.3 pJ per event); its base set is Merolla 2014's all-in 26 pJ.
    let t = shipped("truenorth");
    assert_eq!(t.mesh.cores(), 4096);
    assert_eq!(t.price_set, "akopyan-fit");
    assert_eq!(t.prices[&Action::Sop].energy_pj, Some(2.3));
    assert_eq!(
        t.static_power.as_ref().map(|s| s.mw_per_core),
        Some(0.015723)
    );
    let t = open_with("truenorth", &[("price_set".into(), "base".into())]).unwrap();
    assert_eq!(t.prices[&Action::Sop].energy_pj, Some(26.0));
    assert_eq!(t.prices[&Action::Sop].scope, Scope::AllIn);
    assert!(
        !t.prices.contains_key(&Action::Hop),
        "hop is inside the all-in sop"
    );
    assert!(
        t.static_power.is_none(),
        "static power is inside the all-in sop"
    );
    let r = shipped("reckon");
    assert_eq!(r.prices[&Action::Sop].energy_pj, Some(5.3));
    assert_eq!(r.mesh.cores(), 1);
    let b = shipped("balance-core");
    assert!(b.missing.is_empty());
    assert!(b.core.graded_events);
    assert!(b.prices.values().all(|p| p.grade == Grade::DerivedModel));
    assert!(b.prices.values().all(|p| p.includes.is_empty()));
    assert!(b.unpriced().is_empty(), "balance-core prices every action");
}

// ---- require / supports / charge -------------------------------------------------------------

#[test]
fn truenorth_cannot_train_but_infers() {
    let t = shipped("truenorth");
    let e = t.require(TRAINING_ACTIONS).unwrap_err();
    assert_eq!(e.kind, ChipErrorKind::MissingPrimitives);
    let text = e.to_string();
    assert!(
        text.contains("truenorth.toml: chip 'truenorth' lacks the primitives"),
        "{text}"
    );
    for a in [
        "trace_update",
        "lut_read",
        "retro_sop",
        "retro_packet",
        "credit_accumulate",
        "weight_update",
    ] {
        assert!(text.contains(a), "{a} not named in {text}");
    }
    assert!(
        text.contains("needed for training; inference still runs"),
        "{text}"
    );
    t.require(INFERENCE_ACTIONS).unwrap();
    t.require(&t.required_actions(false)).unwrap();
}

#[test]
fn learning_chips_satisfy_training_requirements() {
    for name in ["balance-core", "loihi", "reckon"] {
        let m = shipped(name);
        m.require(TRAINING_ACTIONS)
            .unwrap_or_else(|e| panic!("{e}"));
        m.require(&m.required_actions(true))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    // Loihi gets there by emulation only.
    let l = shipped("loihi");
    for a in [
        Action::RetroSop,
        Action::RetroPacket,
        Action::CreditAccumulate,
        Action::LutRead,
    ] {
        assert!(l.missing.contains(&a) && l.supports(a) && l.is_emulated(a));
    }
}

#[test]
fn require_without_inference_support_says_so() {
    let text = MINIMAL.replace(
        "missing = [\"lut_read\"]",
        "missing = [\"lut_read\", \"hop\"]",
    );
    let text = text.replace("includes = [\"hop\", ", "includes = [");
    let (_, r) = load_text("no-hop", &text);
    let m = r.unwrap_or_else(|e| panic!("{e}"));
    let e = m.require(INFERENCE_ACTIONS).unwrap_err();
    assert!(
        e.to_string()
            .contains("lacks the primitive hop needed to run"),
        "{e}"
    );
}

#[test]
fn charge_resolves_priced_emulated_included_unpriced_missing() {
    let l = shipped("loihi");
    match l.charge(Action::Sop) {
        Charge::Priced(p) => assert_eq!(p.energy_pj, Some(23.6)),
        c => panic!("{c:?}"),
    }
    match l.charge(Action::RetroSop) {
        Charge::Emulated(e) => assert_eq!(e.via, vec![Action::Sop]),
        c => panic!("{c:?}"),
    }
    assert_eq!(l.energy_pj(Action::RetroSop), Some(23.6));
    assert_eq!(l.energy_pj(Action::RetroPacket), Some(1.7));
    assert_eq!(l.latency_ns(Action::RetroSop), Some(3.5));
    // Loihi publishes no fetch energy and no barrier energy: unpriced, not zero.
    assert_eq!(l.charge(Action::SynapseMemReadBit), Charge::Unpriced);
    assert_eq!(l.charge(Action::Barrier), Charge::Unpriced);
    assert_eq!(l.energy_pj(Action::Barrier), None);
    // 113 ns for one tile, growing with the cores taking part (465 ns at 32 tiles in Davies).
    assert_eq!(l.latency_ns(Action::Barrier), Some(113.0));
    let full = 113.0 + l.timing.barrier_ns_per_core * 127.0;
    assert!((full - 465.0).abs() < 10.0, "{full}");
    assert!(l.unpriced().contains(&Action::TraceUpdate));

    let t = shipped("truenorth");
    assert_eq!(t.charge(Action::Hop), Charge::Included { by: Action::Sop });
    assert_eq!(t.energy_pj(Action::Hop), Some(0.0));
    // A latency-only price does not make the energy "priced": it stays included.
    assert_eq!(
        t.charge(Action::Barrier),
        Charge::Included { by: Action::Sop }
    );
    assert_eq!(t.latency_ns(Action::Barrier), Some(1.0e6));
    assert_eq!(t.charge(Action::LutRead), Charge::Missing);
    assert_eq!(t.energy_pj(Action::LutRead), None);
    assert!(!t.supports(Action::WeightUpdate));
    assert_eq!(t.charge(Action::SynapseMemWriteBit), Charge::Unpriced);

    let r = shipped("reckon");
    // Declared free (empty via) vs. emulated through an unpriced action.
    assert_eq!(r.energy_pj(Action::RetroPacket), Some(0.0));
    assert_eq!(r.energy_pj(Action::CreditAccumulate), None);
    assert_eq!(r.energy_pj(Action::RetroSop), Some(5.3));

    // Emulation counts each via action once: two compartments per lookup.
    let (_, m) = load_text("charge", MINIMAL);
    let m = m.unwrap();
    match m.charge(Action::LutRead) {
        Charge::Emulated(e) => assert_eq!(e.via.len(), 2),
        c => panic!("{c:?}"),
    }
    assert_eq!(m.charge(Action::NeuronUpdateActive), Charge::Unpriced);
    assert_eq!(m.energy_pj(Action::LutRead), None);
}

#[test]
fn supports_matches_charge_on_every_shipped_model() {
    for name in models_in(&models_dir()) {
        let m = shipped(&name);
        for a in Action::ALL {
            let missing = matches!(m.charge(a), Charge::Missing);
            assert_eq!(m.supports(a), !missing, "{name}: {a}");
        }
    }
}

// ---- bad files --------------------------------------------------------------------------------

#[test]
fn missing_key_is_named() {
    let (f, e) = bad("missing-key", "rows = 1\n", "");
    assert_eq!(e.kind, ChipErrorKind::Schema);
    assert_names(&f, &e, "mesh.rows", &["is missing", "line"]);
    let (f, e) = bad("missing-source", "source = \"test source B\"\n", "");
    assert_names(&f, &e, "prices.weight_update.source", &["is missing"]);
    let (f, e) = bad("missing-format", "[formats.lut]", "[formats.lutx]");
    let key = e.key.clone().unwrap_or_default();
    assert!(key == "formats.lutx" || key == "formats.lut", "{e}");
    assert!(e.to_string().starts_with(&f));
}

#[test]
fn unknown_key_is_named() {
    let (f, e) = bad("unknown-key", "cols = 2\n", "cols = 2\ncolz = 3\n");
    assert_eq!(e.kind, ChipErrorKind::Schema);
    assert_names(&f, &e, "mesh.colz", &["is not a known key", "cols", "rows"]);
    let (f, e) = bad(
        "unknown-top",
        "process = \"none\"\n",
        "process = \"none\"\nspeed = 1\n",
    );
    assert_names(&f, &e, "speed", &["is not a known key"]);
}

#[test]
fn wrong_type_is_named_with_toml_position() {
    let (f, e) = bad("wrong-type", "neurons = 4", "neurons = \"four\"");
    assert_names(&f, &e, "core.neurons", &["wrong type", "line"]);
    let (f, e) = bad(
        "bad-grade",
        "grade = \"pre-silicon\"",
        "grade = \"simulated\"",
    );
    assert_names(
        &f,
        &e,
        "prices.barrier.grade",
        &["pre-silicon", "derived-model"],
    );
    let (f, e) = bad("bad-rounding", "rounding = \"floor\"", "rounding = \"up\"");
    assert_names(
        &f,
        &e,
        "formats.rate.rounding",
        &["nearest-even", "stochastic"],
    );
}

#[test]
fn negative_or_non_finite_price_is_rejected() {
    let (f, e) = bad("negative-price", "energy_pj = 2.0", "energy_pj = -2.0");
    assert_eq!(e.kind, ChipErrorKind::DesignRule);
    assert_names(
        &f,
        &e,
        "prices.weight_update.energy_pj",
        &["= -2", "allowed: finite, >= 0"],
    );
    assert!(e.line.is_some(), "no line for {e}");
    let (f, e) = bad("nan-price", "energy_pj = 2.0", "energy_pj = nan");
    assert_names(&f, &e, "prices.weight_update.energy_pj", &["NaN", ">= 0"]);
    let (f, e) = bad("inf-latency", "latency_ns = 100.0", "latency_ns = inf");
    assert_names(&f, &e, "prices.barrier.latency_ns", &["inf"]);
    let (f, e) = bad("negative-static", "mw_per_core = 0.5", "mw_per_core = -0.5");
    assert_names(&f, &e, "static_power.mw_per_core", &[">= 0"]);
    let (f, e) = bad("no-energy-no-latency", "latency_ns = 100.0\n", "");
    assert_names(
        &f,
        &e,
        "prices.barrier",
        &["neither energy_pj nor latency_ns"],
    );
}

#[test]
fn format_bits_out_of_range_are_rejected() {
    let (f, e) = bad("bits-64", "bits = 16\nfrac = 12", "bits = 64\nfrac = 12");
    assert_names(&f, &e, "formats.weight.bits", &["= 64", "allowed 1..=40"]);
    assert_eq!(
        e.to_string(),
        format!(
            "{f}: key 'formats.weight.bits' = 64 is out of range (allowed 1..=40) (line {})",
            e.line.unwrap()
        )
    );
    let (f, e) = bad("bits-0", "bits = 24", "bits = 0");
    assert_names(&f, &e, "formats.membrane.bits", &["= 0", "1..=40"]);
    let (f, e) = bad("frac-41", "frac = 22", "frac = 41");
    assert_names(&f, &e, "formats.accumulator.frac", &["= 41", "0..=40"]);
    let (f, e) = bad("frac-neg", "frac = 22", "frac = -1");
    assert_names(&f, &e, "formats.accumulator.frac", &["= -1", "0..=40"]);
    let (f, e) = bad(
        "unsigned-credit",
        "frac = 14\nsigned = true",
        "frac = 14\nsigned = false",
    );
    assert_names(&f, &e, "formats.credit.signed", &["allowed: true"]);
}

#[test]
fn unknown_primitive_is_rejected_listing_allowed_names() {
    let (f, e) = bad(
        "unknown-missing",
        "missing = [\"lut_read\"]",
        "missing = [\"lut_reed\"]",
    );
    assert_names(
        &f,
        &e,
        "missing",
        &["lut_reed", "allowed:", "retro_sop", "barrier"],
    );
    let (f, e) = bad(
        "unknown-price",
        "[prices.weight_update]",
        "[prices.weight_updat]",
    );
    assert_names(
        &f,
        &e,
        "prices.weight_updat",
        &["weight_updat", "weight_update"],
    );
    let (f, e) = bad(
        "unknown-include",
        "\"synapse_mem_read_bit\"]",
        "\"synapse_read\"]",
    );
    assert_names(&f, &e, "prices.sop.includes", &["synapse_read", "allowed:"]);
    let (f, e) = bad(
        "unknown-via",
        "via = [\"neuron_update_active\", ",
        "via = [\"soma\", ",
    );
    assert_names(&f, &e, "emulations.lut_read.via", &["soma"]);
    let (f, e) = bad(
        "memory-missing",
        "missing = [\"lut_read\"]",
        "missing = [\"lut_read\", \"neuron_mem_read_bit\"]",
    );
    assert_names(
        &f,
        &e,
        "missing",
        &["neuron_mem_read_bit", "memory accounting term"],
    );
}

#[test]
fn zero_capacity_is_rejected() {
    for (tag, from, to, key) in [
        ("neurons-0", "neurons = 4", "neurons = 0", "core.neurons"),
        (
            "synapses-0",
            "synapses = 16",
            "synapses = 0",
            "core.synapses",
        ),
        (
            "axons-0",
            "input_axons = 4",
            "input_axons = 0",
            "core.input_axons",
        ),
        ("fanout-neg", "fanout = 4", "fanout = -4", "core.fanout"),
        ("cols-0", "cols = 2", "cols = 0", "mesh.cols"),
    ] {
        let (f, e) = bad(tag, from, to);
        assert_eq!(e.kind, ChipErrorKind::DesignRule);
        assert_names(&f, &e, key, &["is out of range", "allowed 1..="]);
    }
}

#[test]
fn all_in_double_counting_is_rejected() {
    let (f, e) = bad(
        "double-count",
        "[prices.barrier]",
        "[prices.hop]\nenergy_pj = 2.3\ngrade = \"measured-per-term\"\nscope = \"per-term\"\n\
         source = \"x\"\n\n[prices.barrier]",
    );
    assert_names(
        &f,
        &e,
        "prices.sop.includes",
        &["hop", "double counting", "prices.hop.energy_pj"],
    );
    // A latency-only entry for an included action is fine (no energy is counted twice).
    let (_, r) = load_text(
        "latency-only-included",
        &MINIMAL.replacen(
            "[prices.barrier]",
            "[prices.hop]\nlatency_ns = 5.0\ngrade = \"pre-silicon\"\nscope = \"per-term\"\n\
             source = \"x\"\n\n[prices.barrier]",
            1,
        ),
    );
    r.unwrap();
    let (f, e) = bad(
        "includes-per-term",
        "scope = \"all-in\"",
        "scope = \"per-term\"",
    );
    assert_names(&f, &e, "prices.sop.includes", &["per-term", "all-in"]);
    let (f, e) = bad(
        "includes-self",
        "includes = [\"hop\", ",
        "includes = [\"sop\", ",
    );
    assert_names(&f, &e, "prices.sop.includes", &["itself"]);
    let (f, e) = bad(
        "includes-missing",
        "includes = [\"hop\", ",
        "includes = [\"lut_read\", ",
    );
    assert_names(&f, &e, "prices.sop.includes", &["lut_read", "missing"]);
}

#[test]
fn balance_table_range_is_checked() {
    let (f, e) = bad("table-inverted", "input_min = -8.0", "input_min = 9.0");
    assert_names(
        &f,
        &e,
        "balance_table.input_min",
        &["= 9", "input_min < input_max = 8"],
    );
    let (f, e) = bad("table-entries", "entries = 64", "entries = 1");
    assert_names(
        &f,
        &e,
        "balance_table.entries",
        &["= 1", "allowed 2..=65536"],
    );
    let (f, e) = bad("table-entries-big", "entries = 64", "entries = 70000");
    assert_names(&f, &e, "balance_table.entries", &["2..=65536"]);
    let (f, e) = bad("table-nan", "input_max = 8.0", "input_max = nan");
    assert_names(&f, &e, "balance_table.input_max", &["finite"]);
}

#[test]
fn missing_and_emulation_consistency_is_checked() {
    let (f, e) = bad(
        "missing-and-priced",
        "missing = [\"lut_read\"]",
        "missing = [\"lut_read\", \"weight_update\"]",
    );
    assert_names(&f, &e, "prices.weight_update", &["declares absent"]);
    let (f, e) = bad(
        "via-missing",
        "via = [\"neuron_update_active\", ",
        "via = [\"lut_read\", ",
    );
    assert_names(&f, &e, "emulations.lut_read.via", &["itself"]);
    let (f, e) = bad(
        "via-other-missing",
        "missing = [\"lut_read\"]",
        "missing = [\"lut_read\", \"neuron_update_active\"]",
    );
    assert_names(
        &f,
        &e,
        "emulations.lut_read.via",
        &["neuron_update_active", "missing"],
    );
    let (f, e) = bad(
        "emulate-present",
        "[emulations.lut_read]",
        "[emulations.trace_update]",
    );
    assert_names(&f, &e, "emulations.trace_update", &["not declared missing"]);
    let (f, e) = bad("empty-note", "note = \"two compartments\"", "note = \" \"");
    assert_names(&f, &e, "emulations.lut_read.note", &["empty"]);
    let (f, e) = bad(
        "stochastic-no-rng",
        "missing = [\"lut_read\"]",
        "missing = [\"lut_read\", \"rng_draw\"]",
    );
    assert_names(&f, &e, "formats.weight.rounding", &["rng_draw"]);
    let (f, e) = bad(
        "missing-twice",
        "missing = [\"lut_read\"]",
        "missing = [\"lut_read\", \"lut_read\"]",
    );
    assert_names(&f, &e, "missing", &["twice"]);
}

#[test]
fn toml_syntax_error_names_file_and_position() {
    let (f, e) = bad("syntax", "[mesh]", "[mesh");
    assert_eq!(e.kind, ChipErrorKind::Syntax);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{f}: is not valid TOML")),
        "{text}"
    );
    assert!(text.contains("line 7"), "{text}");
    let (f, e) = bad("dup-key", "cols = 2\n", "cols = 2\ncols = 3\n");
    assert!(e.to_string().starts_with(&f), "{e}");
}

#[test]
fn io_error_names_the_file() {
    let e = load(Path::new("/nonexistent/accord/chip.toml")).unwrap_err();
    assert_eq!(e.kind, ChipErrorKind::Io);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/accord/chip.toml: cannot be read")
    );
}

#[test]
fn validate_catches_in_memory_edits() {
    let mut m = shipped("balance-core");
    m.formats.weight.bits = 41;
    let e = m.validate().unwrap_err();
    assert_eq!(e.key.as_deref(), Some("formats.weight.bits"));
    let mut m = shipped("balance-core");
    m.prices.get_mut(&Action::Sop).unwrap().energy_pj = Some(-1.0);
    assert_eq!(
        m.validate().unwrap_err().key.as_deref(),
        Some("prices.sop.energy_pj")
    );
}

// ---- names and lookup -------------------------------------------------------------------------

#[test]
fn action_names_round_trip() {
    for a in Action::ALL {
        assert_eq!(a.name().parse::<Action>().unwrap(), a);
        assert_eq!(a.to_string(), a.name());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, format!("\"{}\"", a.name()));
        assert!(!a.summary().is_empty());
    }
    let e = "sops".parse::<Action>().unwrap_err();
    let text = e.to_string();
    assert!(text.contains("unknown primitive 'sops'"));
    for a in Action::ALL {
        assert!(text.contains(a.name()));
    }
    let mut sorted = Action::ALL;
    sorted.sort();
    assert_eq!(sorted, Action::ALL, "ALL is in ledger (declaration) order");
}

#[test]
fn resolve_finds_names_and_passes_paths() {
    let dir = models_dir();
    assert_eq!(resolve_in(&dir, "loihi").unwrap(), dir.join("loihi.toml"));
    assert_eq!(
        resolve_in(&dir, "balance-core").unwrap(),
        dir.join("balance-core.toml")
    );
    assert_eq!(
        resolve_in(&dir, "some/where/chip.toml").unwrap(),
        PathBuf::from("some/where/chip.toml")
    );
    assert_eq!(resolve_in(&dir, "x.toml").unwrap(), PathBuf::from("x.toml"));
    let e = resolve_in(&dir, "loihi3").unwrap_err();
    assert_eq!(e.kind, ChipErrorKind::UnknownModel);
    let text = e.to_string();
    for n in ["loihi3", "balance-core", "loihi", "reckon", "truenorth"] {
        assert!(text.contains(n), "{n} not in {text}");
    }
    if std::env::var_os(HW_MODELS_ENV).is_none() {
        assert_eq!(builtin_dir(), dir);
        assert_eq!(open("truenorth").unwrap().name, "truenorth");
        assert!(shipped_models().contains(&"reckon".to_owned()));
    }
}

#[test]
fn models_serialize_with_file_names() {
    let m = open_with("truenorth", &[("price_set".into(), "base".into())]).unwrap();
    let v: serde_json::Value = serde_json::to_value(&m).unwrap();
    assert_eq!(v["prices"]["sop"]["grade"], "measured-all-in");
    assert_eq!(v["prices"]["sop"]["scope"], "all-in");
    assert_eq!(v["prices"]["sop"]["includes"][1], "hop");
    assert_eq!(v["formats"]["weight"]["rounding"], "nearest-even");
    assert_eq!(v["missing"][0], "trace_update");
}

#[test]
fn format_summary_shows_range() {
    let m = shipped("balance-core");
    let (lo, hi, step) = format_range(&m.formats.weight);
    assert_eq!((lo, hi, step), (-8.0, 8.0 - step, 1.0 / 4096.0));
    let (lo, hi, _) = format_range(&m.formats.rate);
    assert_eq!((lo, hi), (0.0, 2.0 - 1.0 / 32768.0));
    assert!(format_summary(&m.formats.weight).starts_with("s16.12"));
}

#[test]
fn mesh_hops_are_manhattan() {
    let mesh = Mesh { cols: 4, rows: 4 };
    assert_eq!(mesh.cores(), 16);
    assert_eq!(mesh.position(6), (2, 1));
    assert_eq!(mesh.hops(0, 15), 6);
    assert_eq!(mesh.hops(5, 5), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Format bit counts load exactly when in range; otherwise the error names the key and range.
    #[test]
    fn format_ranges_are_enforced(bits in -3i64..50, frac in -3i64..50) {
        let text = MINIMAL.replacen("bits = 12\nfrac = 11", &format!("bits = {bits}\nfrac = {frac}"), 1);
        let r = parse(&text, "prop.toml");
        let ok = (1..=40).contains(&bits) && (0..=40).contains(&frac);
        match r {
            Ok(m) => {
                prop_assert!(ok);
                prop_assert_eq!(i64::from(m.formats.lut.bits), bits);
            }
            Err(e) => {
                prop_assert!(!ok, "{}", e);
                let key = if (1..=40).contains(&bits) { "formats.lut.frac" } else { "formats.lut.bits" };
                prop_assert_eq!(e.key.as_deref(), Some(key));
                prop_assert!(e.to_string().starts_with("prop.toml: key 'formats.lut."));
            }
        }
    }

    /// Any non-negative finite energy loads; any negative one is rejected with its key.
    #[test]
    fn price_sign_is_enforced(energy in -1.0e6f64..1.0e6) {
        let text = MINIMAL.replacen("energy_pj = 2.0", &format!("energy_pj = {energy:?}"), 1);
        match parse(&text, "prop.toml") {
            Ok(m) => {
                prop_assert!(energy >= 0.0);
                prop_assert_eq!(m.prices[&Action::WeightUpdate].energy_pj, Some(energy));
            }
            Err(e) => {
                prop_assert!(energy < 0.0, "{}", e);
                prop_assert_eq!(e.key.as_deref(), Some("prices.weight_update.energy_pj"));
            }
        }
    }
}

/// The design-rule check reports every violation, each with its key, the value, the allowed
/// range and its line, not only the first.
#[test]
fn every_design_rule_violation_is_reported() {
    let e = open_with(
        "balance-core",
        &[
            ("prices.sop.energy_pj".into(), "2e9".into()),
            ("core.input_queue".into(), "5000".into()),
            ("timing.barrier_ns_per_core".into(), "-1".into()),
        ],
    )
    .unwrap_err();
    let all: Vec<&ChipError> = e.all().collect();
    assert_eq!(all.len(), 3, "{e}");
    let keys: Vec<&str> = all.iter().filter_map(|x| x.key.as_deref()).collect();
    for k in [
        "prices.sop.energy_pj",
        "core.input_queue",
        "timing.barrier_ns_per_core",
    ] {
        assert!(keys.contains(&k), "{k} not in {keys:?}");
    }
    assert!(all.iter().all(|x| x.kind == ChipErrorKind::DesignRule));
    let text = e.to_string();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.contains("5000") && text.contains("2000000000"),
        "{text}"
    );
}

/// Values out of range when the file is read (capacities, formats, tables, decays, axon types)
/// are all reported too, each with its key and line, not only the first.
#[test]
fn every_value_out_of_range_is_reported() {
    let sets = [
        ("mesh.cols", "0"),
        ("core.neurons", "0"),
        ("core.axon_types", "17"),
        ("router.buffer_depth", "-3"),
        ("formats.weight.bits", "99"),
        ("balance_table.entries", "1"),
        ("soma.model", "cuba-lif"),
        ("soma.du", "5000"),
        ("soma.dv", "-1"),
    ];
    let over: Vec<(String, String)> = sets
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let e = open_with("balance-core", &over).unwrap_err();
    let all: Vec<&ChipError> = e.all().collect();
    let keys: Vec<&str> = all.iter().filter_map(|x| x.key.as_deref()).collect();
    let expect: Vec<&str> = sets
        .iter()
        .map(|&(k, _)| k)
        .filter(|&k| k != "soma.model")
        .collect();
    assert_eq!(keys.len(), expect.len(), "{e}");
    for k in &expect {
        assert!(keys.contains(k), "{k} not in {keys:?}");
    }
    assert!(all.iter().all(|x| x.line.is_some()), "{e}");
    let text = e.to_string();
    assert_eq!(text.lines().count(), expect.len(), "{text}");
    for needle in [
        "= 0 is out of range",
        "= 99",
        "= 1 is out",
        "= 5000",
        "= -1",
        "is 17",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}

/// A price set replaces the base entries it names, whole, and may drop the static power; an
/// unknown set or an unknown action inside any set is an error naming the key.
#[test]
fn price_sets_overlay_the_base_prices() {
    use crate::chip::Action;
    let base = crate::chip::open("loihi").unwrap();
    assert_eq!(base.price_set, "base");
    let names: Vec<&str> = base.price_sets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["base", "sana-fe"]);
    let set = |name: &str| crate::chip::open_with("loihi", &[("price_set".into(), name.into())]);
    let sana = set("sana-fe").unwrap();
    assert_eq!(sana.price_set, "sana-fe");
    assert_eq!(sana.prices[&Action::Sop].energy_pj, Some(35.5));
    assert_eq!(sana.prices[&Action::Sop].grade, Grade::FittedToSilicon);
    assert!(sana.static_power.is_none());
    // Entries the set does not name stay the base ones.
    assert_eq!(
        sana.prices[&Action::WeightUpdate],
        base.prices[&Action::WeightUpdate]
    );
    assert_eq!(set("base").unwrap().prices, base.prices);
    let e = set("nope").unwrap_err().to_string();
    assert!(e.contains("price_set") && e.contains("sana-fe"), "{e}");
    let text = std::fs::read_to_string(crate::chip::resolve("loihi").unwrap()).unwrap();
    let bad = text.replace(
        "[price_sets.sana-fe.prices.sop]",
        "[price_sets.sana-fe.prices.sopp]",
    );
    let e = crate::chip::parse(&bad, "x.toml").unwrap_err().to_string();
    assert!(e.contains("price_sets.sana-fe.prices.sopp"), "{e}");
    let named_base = text.replace("[price_sets.sana-fe]", "[price_sets.base]");
    let named_base = named_base.replace("[price_sets.sana-fe.", "[price_sets.base.");
    let e = crate::chip::parse(&named_base, "x.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("price_sets.base"), "{e}");
    let both = text.replace(
        "no_static_power = true",
        "no_static_power = true\nstatic_power = { mw_per_core = 1.0, grade = \"pre-silicon\", source = \"s\" }",
    );
    let e = crate::chip::parse(&both, "x.toml").unwrap_err().to_string();
    assert!(e.contains("no_static_power"), "{e}");
    let tn =
        crate::chip::open_with("truenorth", &[("price_set".into(), "akopyan-fit".into())]).unwrap();
    assert!(tn.static_power.is_some_and(|s| s.mw_per_core > 0.0));
    assert_eq!(tn.prices[&Action::Sop].energy_pj, Some(2.3));
    // The base set's all-in prices hold the static power; a set with its own does not.
    assert!(!tn.static_in_prices);
    let tn_base =
        crate::chip::open_with("truenorth", &[("price_set".into(), "base".into())]).unwrap();
    assert!(tn_base.static_in_prices && tn_base.static_power.is_none());
    assert!(tn_base.describe().contains("inside the all-in prices"));
    // Static power inside the prices and beside them would be charged twice.
    let twice = crate::chip::open_with("loihi", &[("static_in_prices".into(), "true".into())])
        .unwrap_err()
        .to_string();
    assert!(twice.contains("static_in_prices"), "{twice}");
}
