//! `accord import` and `accord export`: NIR graphs in and out (ARCHITECTURE.md §13).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use super::emit;
use crate::chip::{self, SomaSpec};
use crate::mapping::{MapError, MapOptions, map_graph};
use crate::nir::{self, Graph, Node};

/// A NIR model as a run takes it: the chain with its neurons folded into the weights (at time
/// step `dt`, under `chip`'s soma program; `None`: a run without a chip), and per layer the
/// program that runs its neurons.
pub(crate) struct Model {
    pub(crate) chain: nir::Chain,
    pub(crate) programs: Vec<Option<nir::Program>>,
    /// The graph read, and its neuron nodes in discrete time (what [`nir::Chain::export`]
    /// takes to write a trained net back).
    pub(crate) graph: Graph,
    pub(crate) discrete: Vec<Option<nir::Discrete>>,
}

/// Read `path` as a [`Model`].
///
/// # Errors
/// The file, the chain or a neuron node at `dt`, named as `--model FILE`.
pub(crate) fn load_model(path: &std::path::Path, dt: f64, chip: Option<SomaSpec>) -> Result<Model> {
    let at = || format!("--model {}", path.display());
    let g = nir::read(path)?;
    let mut chain = g.to_layered().with_context(at)?;
    let discrete = chain.discrete(&g, dt).with_context(at)?;
    let programs: Vec<Option<nir::Program>> = discrete
        .iter()
        .map(|d| Option::zip(d.as_ref(), chip).map(|(d, c)| d.program(c)))
        .collect();
    chain.apply(&discrete, &programs);
    Ok(Model {
        chain,
        programs,
        graph: g,
        discrete,
    })
}

/// `accord import` options.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// A NIR file (HDF5, as written by the Python `nir` package).
    pub file: PathBuf,
    /// Print one JSON document (top-level `file`, `nodes`, `edges`, `chain`, `chips`).
    #[arg(long)]
    pub json: bool,
    /// The time step, seconds, at which the neurons are stepped (forward Euler).
    #[arg(long, value_name = "SECONDS", default_value_t = nir::DEFAULT_DT)]
    pub dt: f64,
}

/// `accord export` options.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// A checkpoint of `accord train --save` whose network is written.
    #[arg(long, value_name = "FILE")]
    pub load: PathBuf,
    /// The NIR file to write.
    #[arg(long, value_name = "FILE.nir")]
    pub out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// The time step, seconds, the exported neurons assume (their `r` is `1/dt`, so that one
    /// step of input adds the input to the voltage, as in accord). A net trained from
    /// `--model FILE` is written into FILE's graph with its own neurons and the run's `--dt`.
    #[arg(long, value_name = "SECONDS", default_value_t = nir::DEFAULT_DT)]
    pub dt: f64,
}

#[derive(Serialize, Debug)]
struct NodeRow {
    name: String,
    kind: String,
    detail: String,
}

#[derive(Serialize, Debug)]
struct ChipRow {
    chip: String,
    /// Cores used, if the chain fits.
    cores: Option<usize>,
    /// Why not, or what is approximated.
    notes: Vec<String>,
    /// Per layer, its weights and biases (its neurons' factors folded in) in the chip's weight
    /// format.
    conversion: Vec<Conversion>,
    /// Per neuron node, its decays in the chip's soma program.
    neurons: Vec<nir::ParamConversion>,
    /// On a crossbar chip the net fits, how each layer's weights fit the crossbar.
    crossbar: Vec<crate::emulator::CrossbarFit>,
}

/// A parameter array converted to a chip format.
#[derive(Serialize, Debug)]
pub(crate) struct Conversion {
    node: String,
    /// What was converted: `"weights and biases"`, or `"weights"` (a recurrent loop, whose
    /// bias is folded into its layer's).
    values: &'static str,
    /// The format, `bits` total with `frac` fractional bits.
    format: String,
    /// Smallest and largest value in the file.
    min: f64,
    max: f64,
    /// Largest and root-mean-square |stored − file value| over the values that fit.
    max_error: f64,
    rms_error: f64,
    /// Values outside the format's range (clamped).
    saturations: u64,
    /// Non-zero values stored as 0 (below half a step of the format).
    flushed: u64,
    /// Non-zero values in the file (all of them flushed: the layer is stored as zeros).
    nonzero: u64,
}

/// How `chip` stores the weights of the chain's expanded layer `name` (the tail of import's
/// note on it): shared once per channel, or why each neuron keeps its own copy.
pub(super) fn sharing_note(
    chain: &nir::Chain,
    chip: &chip::ChipModel,
    mapping: Option<&crate::mapping::Mapping>,
    name: &str,
) -> String {
    if !chip.core.weight_sharing {
        return " (the chip declares no weight sharing: each neuron keeps its own copy of the kernel)"
            .into();
    }
    let Some(l) = chain.layers.iter().position(|(syn, _)| syn == name) else {
        return String::new();
    };
    let check = chain.kernel_checks(&chain.net).get(l).cloned().flatten();
    let shared = mapping
        .and_then(|m| m.layers.get(l + 1))
        .and_then(|lp| lp.shared);
    if mapping.is_none() {
        // (The layer is not placed: the "does not fit" line says why.)
        return String::new();
    }
    match (check, shared) {
        (None, _) => " (the chip shares weights, but this layer is not one convolution or pooling: each neuron keeps its own weights)".into(),
        (Some(Err(u)), _) => format!(
            " (the chip shares weights, but the copies of this layer's kernel differ once converted — channel {}, weight {}: neurons {} and {} hold {:e} and {:e}, per-neuron factors folded into the rows — so each neuron keeps its own)",
            u.channel, u.tap, u.neurons.0, u.neurons.1, u.weights.0, u.weights.1
        ),
        (Some(Ok(())), Some(w)) => format!("; weights shared: {}", w.describe()),
        (Some(Ok(())), None) => " (the chip shares weights only in a layer placed by receptive field: here each neuron keeps its own copy of the kernel)".into(),
    }
}

/// Whether `chain` trains on `chip` with the balance rule, or what stops it: a recurrent
/// projection, a crossbar that holds fitted weights, a primitive the chip lacks.
fn trainable(chain: &nir::Chain, chip: &chip::ChipModel) -> String {
    if let Some(r) = chain.recurrent.iter().flatten().next() {
        return format!(
            "inference only: node '{}' is a recurrent projection, and the balance rule on a chip trains feed-forward projections",
            r.node
        );
    }
    if let Some(t) = chip.core.axon_types {
        return format!(
            "inference only: the crossbar ({t} axon types) holds weights fitted once, when the net is built; train elsewhere and run the trained net here"
        );
    }
    match chip.require(&chip.required_actions(true)) {
        Ok(()) if chip.core.weight_sharing
            && chain.kernel_checks(&chain.net).iter().flatten().any(Result::is_ok) =>
        {
            "trains on the chip with the balance rule (accord train --model FILE --chip …), its convolutions expanded while it trains: accord trains each synapse on its own and does not tie a shared kernel's updates".into()
        }
        Ok(()) => {
            "trains on the chip with the balance rule (accord train --model FILE --chip …)".into()
        }
        Err(e) => format!("inference only: {e}"),
    }
}

/// A value for a range: four decimals, or three significant digits where those would read 0.
fn short(v: f64) -> String {
    if v == 0.0 || v.abs() >= 1e-3 {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

impl Conversion {
    /// One line: the values' range, the format, the error over the values that fit, and the
    /// values saturated and flushed.
    fn line(&self) -> String {
        format!(
            "{}: {} {}..{} in {}: max error {:.2e}, rms {:.2e} (of the values that fit), {} saturated, {} of {} non-zero flushed to 0",
            self.node,
            self.values,
            short(self.min),
            short(self.max),
            self.format,
            self.max_error,
            self.rms_error,
            self.saturations,
            self.flushed,
            self.nonzero
        )
    }

    /// Every non-zero value stored as 0 (and there was one).
    fn all_flushed(&self) -> bool {
        self.nonzero > 0 && self.flushed == self.nonzero
    }
}

/// Per layer of `chain` (its neurons' factors folded in), its existing synapses and biases in
/// `fmt`; then each recurrent loop's weights.
pub(crate) fn conversions(
    chain: &nir::Chain,
    fmt: &accord_firmware::arith::Format,
) -> Vec<Conversion> {
    let mut out = Vec::new();
    for (((syn, _), layer), mask) in chain.layers.iter().zip(&chain.net.layers).zip(&chain.masks) {
        // Every stored synapse that exists, and the biases.
        let all: Vec<f64> = match mask {
            Some(m) => m.iter_ones().map(|k| layer.w[k]).collect(),
            None => layer.w.clone(),
        }
        .into_iter()
        .chain(layer.b.iter().copied())
        .collect();
        out.push(convert(syn, &all, fmt));
    }
    for r in chain.recurrent.iter().flatten() {
        out.push(Conversion {
            values: "weights",
            ..convert(&r.node, &r.w, fmt)
        });
    }
    out
}

/// Print `--model`'s conversion to the chip's weight format, as `accord import` shows it, and
/// warn where values saturate or flush to 0.
///
/// # Errors
/// An inference run (`epochs == 0`) in which a layer's every non-zero weight and bias is
/// stored as 0: it would compute nothing and report chance as a result.
pub(crate) fn report_conversion(
    path: &std::path::Path,
    chain: &nir::Chain,
    fmt: &accord_firmware::arith::Format,
    epochs: usize,
) -> Result<()> {
    for c in conversions(chain, fmt) {
        let lossy = c.saturations > 0 || c.flushed > 0;
        if c.all_flushed() && epochs == 0 {
            anyhow::bail!(
                "--model {}: {}; every value of '{}' is stored as 0, so the run would compute nothing (a smaller --dt shrinks the neurons' factors folded into the weights; try a larger --dt, or a chip with more fractional weight bits)",
                path.display(),
                c.line(),
                c.node
            );
        }
        eprintln!(
            "{}: --model {}: {}{}",
            if lossy { "warning" } else { "note" },
            path.display(),
            c.line(),
            if c.all_flushed() {
                " — the layer starts from zero"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `values` in `fmt` (round to nearest, as weights load), with the error it makes.
fn convert(node: &str, values: &[f64], fmt: &accord_firmware::arith::Format) -> Conversion {
    let mut c = accord_firmware::arith::Counters::default();
    let (mut max_error, mut sq, mut n, mut flushed) = (0.0f64, 0.0f64, 0u64, 0u64);
    let nonzero = values.iter().filter(|&&v| v != 0.0).count() as u64;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        lo = lo.min(v);
        hi = hi.max(v);
        let before = c.saturations;
        let raw = fmt.from_f64(v, &mut c);
        flushed += u64::from(raw == 0 && v != 0.0);
        let q = fmt.to_f64(raw);
        if c.saturations == before {
            let e = (q - v).abs();
            max_error = max_error.max(e);
            sq += e * e;
            n += 1;
        }
    }
    Conversion {
        node: node.into(),
        values: "weights and biases",
        format: format!("{} bits, {} fractional", fmt.bits, fmt.frac),
        min: lo,
        max: hi,
        max_error,
        rms_error: (sq / n.max(1) as f64).sqrt(),
        saturations: c.saturations,
        flushed,
        nonzero,
    }
}

#[derive(Serialize, Debug)]
struct ImportReport {
    file: String,
    nir_version: String,
    nodes: Vec<NodeRow>,
    edges: Vec<(String, String)>,
    /// Layer widths, input first, when the graph is a chain accord takes.
    chain: Option<Vec<usize>>,
    /// Why the graph is not a chain accord takes.
    chain_error: Option<String>,
    /// The chain's recurrent projections: (neuron layer, loop node).
    recurrent: Vec<(usize, String)>,
    /// The chain as a network graph, as the mapping places it (`None`: not a chain).
    graph: Option<crate::graph::Graph>,
    /// [`crate::graph::Graph::describe`] of it.
    #[serde(skip)]
    graph_text: Option<String>,
    chips: Vec<ChipRow>,
}

fn detail(node: &Node) -> String {
    match node {
        Node::Input { shape } | Node::Output { shape } => format!("shape {shape:?}"),
        Node::Affine { weight, .. } => format!("weight {:?} + bias", weight.shape),
        Node::Linear { weight } => format!("weight {:?}", weight.shape),
        Node::If { r, v_threshold, .. } => {
            format!("{} neurons, threshold {}", r.len(), range(v_threshold))
        }
        Node::Lif {
            tau, v_threshold, ..
        } => format!(
            "{} neurons, tau {}, threshold {}",
            tau.len(),
            range(tau),
            range(v_threshold)
        ),
        Node::CubaLif {
            tau_syn, tau_mem, ..
        } => format!(
            "{} neurons, tau_syn {}, tau_mem {}",
            tau_syn.len(),
            range(tau_syn),
            range(tau_mem)
        ),
        Node::Li { tau, .. } => format!("{} integrators, tau {}", tau.len(), range(tau)),
        Node::Conv2d {
            weight,
            stride,
            padding,
            dilation,
            input_shape,
            groups,
            one_d: true,
            ..
        } => format!(
            "kernels [{}, {}, {}], stride {}, padding {}, dilation {}, groups {groups}, input length {}",
            weight.shape[0],
            weight.shape[1],
            weight.shape[3],
            stride[1],
            padding[1],
            dilation[1],
            input_shape[1]
        ),
        Node::Conv2d {
            weight,
            stride,
            padding,
            dilation,
            input_shape,
            groups,
            ..
        } => format!(
            "kernels {:?}, stride {stride:?}, padding {padding:?}, dilation {dilation:?}, groups {groups}, input {}×{}",
            weight.shape, input_shape[0], input_shape[1]
        ),
        Node::Pool2d {
            kernel,
            stride,
            padding,
            ..
        } => format!("window {kernel:?}, stride {stride:?}, padding {padding:?}"),
        Node::Scale { scale } => format!("{} factors {}", scale.len(), range(scale)),
        Node::Flatten { .. } => "flatten (a pass-through: accord's layers are flat)".into(),
        Node::Other { .. } => "not taken by accord yet".into(),
    }
}

fn range(v: &[f64]) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // NIR stores float32: print what was stored, not its f64 widening.
    let (lo, hi) = (lo as f32, hi as f32);
    if v.is_empty() {
        "-".into()
    } else if lo == hi {
        format!("{lo}")
    } else {
        format!("{lo}..{hi}")
    }
}

/// `--dt` is a positive, finite time step.
fn check_dt(dt: f64) -> Result<()> {
    if !(dt > 0.0 && dt.is_finite()) {
        anyhow::bail!("--dt {dt:e}: not a positive time step, seconds");
    }
    Ok(())
}

/// Run `accord import`.
///
/// # Errors
/// The file cannot be read as a NIR graph (the message names the file, node and parameter).
pub fn run_import(a: &ImportArgs) -> Result<ExitCode> {
    check_dt(a.dt)?;
    let g = nir::read(&a.file)?;
    let nodes: Vec<NodeRow> = g
        .nodes
        .iter()
        .map(|(n, node)| NodeRow {
            name: n.clone(),
            kind: node.kind().into(),
            detail: detail(node),
        })
        .collect();
    let (chain, chain_error) = match g
        .to_layered()
        .and_then(|c| c.discrete(&g, a.dt).map(|d| (c, d)))
    {
        Ok(c) => (Some(c), None),
        Err(e) => (None, Some(e.to_string())),
    };
    // (A chain's own masks always fit it: a failure here is a chain error, shown per chip.)
    let graph = chain.as_ref().map(|(c, _)| c.graph(&g));
    let mut chips = Vec::new();
    for name in chip::shipped_models() {
        let model = chip::open(&name).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut row = ChipRow {
            chip: name.clone(),
            cores: None,
            notes: Vec::new(),
            conversion: Vec::new(),
            neurons: Vec::new(),
            crossbar: Vec::new(),
        };
        match &chain {
            None => row
                .notes
                .push("not a chain accord takes (see above)".into()),
            Some((c, discrete)) => {
                // The chip's weights: the file's, converted for its neurons.
                let programs: Vec<Option<nir::Program>> = discrete
                    .iter()
                    .map(|d| d.as_ref().map(|d| d.program(model.soma)))
                    .collect();
                let raw = c;
                let mut c = c.clone();
                c.apply(discrete, &programs);
                // Placed as the run places it: kernels shared where the converted weights
                // still hold one per channel.
                let placed = match &graph {
                    Some(Ok(_)) => c
                        .graph(&g)
                        .map_err(MapError::from)
                        .and_then(|g| map_graph(&g, &model, MapOptions::default())),
                    Some(Err(e)) => Err(MapError::from(e.clone())),
                    None => raw
                        .graph(&g)
                        .map_err(MapError::from)
                        .and_then(|g| map_graph(&g, &model, MapOptions::default())),
                };
                let mut mapping = None;
                let sparse = match placed {
                    Ok(m) => {
                        row.cores = Some(m.cores_used());
                        for l in m.layers.iter().filter(|l| l.copies > 1) {
                            row.notes.push(format!(
                                "neuron layer {}: its inputs duplicated onto {} axons each (a crossbar core with room for them twice; a neuron may take the sum of two of its levels)",
                                l.layer, l.copies
                            ));
                        }
                        for c in m.split_costs(&model) {
                            row.notes.push(super::map::split_line(&c));
                        }
                        let sparse = m.sparse;
                        mapping = Some(m);
                        sparse
                    }
                    Err(e) => {
                        row.notes.push(format!("does not fit: {e}"));
                        None
                    }
                };
                row.conversion = conversions(&c, &model.formats.weight);
                if let Some(m) = &mapping {
                    let rec = c.recurrent_weights();
                    for f in super::map::fit_of(&c.net, &c.masks, &rec, &model, m) {
                        row.notes.push(format!(
                            "crossbar fit of neuron layer {}'s weights: {}",
                            f.layer,
                            f.describe()
                        ));
                        row.crossbar.push(f);
                    }
                }
                for r in c.recurrent.iter().flatten() {
                    row.notes.push(format!(
                        "{}: a recurrent projection (its spikes of one step reach the layer in the next); runs in spiking mode, inference only",
                        r.node
                    ));
                }
                for p in programs.into_iter().flatten() {
                    row.neurons.extend(p.params);
                    row.notes.extend(p.notes);
                }
                for (layer, zeros, total) in &c.expanded {
                    row.notes.push(if *zeros == 0 {
                        format!("{layer}: composed into one dense layer of {total} synapses, exactly")
                    } else {
                        let placed = match sparse {
                            Some(s) if s.chosen == "receptive-field" => format!(
                                "placed by receptive field ({} cores; dense rows: {}), a core holding rows only for the inputs its neurons see",
                                s.receptive_field_cores.unwrap_or(0),
                                s.dense_cores.map_or("do not fit".into(), |d| format!("{d} cores"))
                            ),
                            Some(s) => match (s.dense_cores, s.receptive_field_cores) {
                                (Some(d), Some(f)) => format!("stored in dense rows ({d} cores; by receptive field: {f})"),
                                _ => "stored in dense rows (placing it by receptive field is not possible here: it does not fit, a field is wider than a core, the layer is recurrent, or the layers share cores)".into(),
                            },
                            None => "stored in dense rows".into(),
                        };
                        format!(
                            "{layer} expanded into a masked layer: {zeros} of {total} synapses are structural zeros, neither walked, counted nor trained; {placed}{}",
                            sharing_note(&c, &model, mapping.as_ref(), layer)
                        )
                    });
                }
                if !model.core.graded_events {
                    row.notes
                        .push("spiking mode only (binary spikes: no graded events)".into());
                }
                if mapping.is_some() {
                    row.notes.push(trainable(&c, &model));
                }
            }
        }
        chips.push(row);
    }
    let report = ImportReport {
        file: a.file.display().to_string(),
        nir_version: g.version.clone(),
        nodes,
        edges: g.edges.clone(),
        chain: chain.as_ref().map(|c| c.0.net.sizes()),
        chain_error,
        recurrent: chain.as_ref().map_or(Vec::new(), |c| {
            c.0.recurrent
                .iter()
                .enumerate()
                .filter_map(|(l, r)| r.as_ref().map(|r| (l + 1, r.node.clone())))
                .collect()
        }),
        graph_text: graph
            .as_ref()
            .and_then(|g| g.as_ref().ok())
            .map(crate::graph::Graph::describe),
        graph: graph.and_then(Result::ok),
        chips,
    };
    if a.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&render(&report))?;
    }
    // A graph accord cannot run (its report says why) is an error for a script asking.
    Ok(if report.chain_error.is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn render(r: &ImportReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "accord import: {} (NIR {}), {} nodes, {} edges",
        r.file,
        r.nir_version,
        r.nodes.len(),
        r.edges.len()
    );
    let _ = writeln!(o, "{:<16} {:<10} detail", "node", "type");
    for n in &r.nodes {
        let _ = writeln!(o, "{:<16} {:<10} {}", n.name, n.kind, n.detail);
    }
    let edges: Vec<String> = r.edges.iter().map(|(a, b)| format!("{a} → {b}")).collect();
    let _ = writeln!(o, "edges: {}", edges.join(", "));
    match (&r.chain, &r.chain_error) {
        (Some(sizes), _) => {
            let s: Vec<String> = sizes.iter().map(usize::to_string).collect();
            let _ = writeln!(o, "as a layered net: {}", s.join("-"));
            if let Some(g) = &r.graph_text {
                let _ = writeln!(o, "as a graph: {g}");
            }
            for (l, node) in &r.recurrent {
                let _ = writeln!(
                    o,
                    "  layer {l} projects onto itself through '{node}' (spikes of one step reach it in the next)"
                );
            }
        }
        (None, Some(e)) => {
            let _ = writeln!(o, "accord cannot run this graph: {e}");
        }
        _ => {}
    }
    let _ = writeln!(o, "chips:");
    for c in &r.chips {
        let fit = c
            .cores
            .map_or_else(|| "—".to_string(), |k| format!("{k} cores"));
        let _ = writeln!(o, "  {:<14} {fit}", c.chip);
        for v in &c.conversion {
            let _ = writeln!(o, "  {:<14}   {}", "", v.line());
        }
        for p in &c.neurons {
            let _ = writeln!(
                o,
                "  {:<14}   {}: {} = {:.3}/4096 per step, stored {}: error {:.2e} per step{}",
                "",
                p.node,
                p.parameter,
                p.exact,
                p.stored,
                p.error,
                if p.saturated { ", saturated" } else { "" }
            );
        }
        for n in &c.notes {
            let _ = writeln!(o, "  {:<14}   {n}", "");
        }
    }
    o
}

/// Run `accord export`.
///
/// # Errors
/// An unreadable checkpoint, a net NIR has no primitives for, an unwritable file, or a `--dt`
/// that is not a positive time step (or given for a `--model` run, which keeps its own).
pub fn run_export(a: &ExportArgs, given: &[String]) -> Result<ExitCode> {
    check_dt(a.dt)?;
    if a.out.exists() && !a.force {
        anyhow::bail!(
            "--out {}: the file exists; pass --force to replace it",
            a.out.display()
        );
    }
    let ck = crate::checkpoint::Checkpoint::load(&a.load).context("--load")?;
    let mut report = String::new();
    let g = match super::parse_train(&ck.args)?.0 {
        run if run.model.is_some() => {
            if given.iter().any(|g| g == "dt") {
                anyhow::bail!(
                    "--dt: the net was trained from --model {}, whose neurons are written back \
                     at that run's time step ({} s); drop --dt",
                    run.model
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string()),
                    run.dt
                );
            }
            let (g, notes) = export_model(&run, &ck.net)?;
            report = notes;
            g
        }
        _ => Graph::from_layered(&ck.net, a.dt)?,
    };
    nir::write(&a.out, &g)?;
    let sizes: Vec<String> = ck.net.sizes().iter().map(usize::to_string).collect();
    emit(&format!(
        "wrote {} ({} net, {} nodes) from {}\n{report}",
        a.out.display(),
        sizes.join("-"),
        g.nodes.len(),
        a.load.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The trained net of a run started from `--model FILE` written into that file's graph
/// ([`nir::Chain::export`]: its neuron nodes, its structure where the weights still follow
/// it), and a line per layer saying how it was written.
///
/// A layer counts as unchanged where no weight differs from the start by more than half a
/// step of the chip's weight format (a whole step under stochastic rounding: a chip run
/// quantises the file's weights even when it trains nothing), or by more than 1e-12 in the
/// `f64` reference and the float twin.
fn export_model(run: &super::TrainArgs, net: &crate::rule::LayeredNet) -> Result<(Graph, String)> {
    let path = run.model.as_ref().context("no --model")?;
    if !path.exists() {
        anyhow::bail!(
            "--load: the run was started from --model {}, which is not found from here; export from where the run was started",
            path.display()
        );
    }
    let chip = if run.reference {
        None
    } else {
        Some(super::chip_model(run)?)
    };
    let m = load_model(path, run.dt, chip.as_ref().map(|c| c.soma))?;
    let tol = match &chip {
        Some(c) if !matches!(run.arith, super::ArithArg::Float) => {
            // Stochastic rounding may take either neighbour: a whole step.
            let steps = match c.formats.weight.rounding {
                accord_firmware::arith::Rounding::Stochastic => 1.0,
                _ => 0.5,
            };
            steps * 2f64.powi(-i32::from(c.formats.weight.frac)) + 1e-12
        }
        _ => 1e-12,
    };
    let e = m
        .chain
        .export(&m.graph, &m.discrete, &m.programs, net, tol)
        .with_context(|| format!("--model {}", path.display()))?;
    let mut notes = String::new();
    for (name, w) in &e.layers {
        let line = match w {
            nir::Written::Unchanged => format!(
                "  {name}: as in {} (no weight differs from it by more than {})\n",
                path.display(),
                crate::output::format_value(tol)
            ),
            nir::Written::Updated => {
                format!("  {name}: the trained weights and bias (the neurons' factors taken out)\n")
            }
            nir::Written::Dense { node, zeros, cells } => format!(
                "  {name}: written as one Affine '{node}': the trained synapses no longer follow the file's structure (accord trains each synapse of an expanded or composed layer on its own){}\n",
                if *zeros > 0 {
                    format!(
                        "; {zeros} of its {cells} weights are structural zeros that NIR cannot mark, so a reader sees a dense layer"
                    )
                } else {
                    String::new()
                }
            ),
        };
        notes.push_str(&line);
    }
    Ok((e.graph, notes))
}
