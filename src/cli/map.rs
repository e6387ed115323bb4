//! `accord map`: place a network — layered, from a NIR file, or the all-to-all recipe — on a
//! chip model, as its [graph](crate::graph), and report cores, utilisation, fan-in/fan-out
//! pressure and the hop histogram.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde::Serialize;

use crate::chip::{self, ChipModel, CoreCaps, Mesh};
use crate::data;
use crate::graph::Graph;
use crate::mapping::{MapOptions, Mapping, map_graph};

/// The network mapped when neither `--sizes` nor `--data` is given: the digits net 64-32-10.
pub const DEFAULT_SIZES: [usize; 3] = [64, 32, 10];

/// `accord map` options.
#[derive(Args, Debug, Clone)]
pub struct MapArgs {
    /// Chip model: a shipped name (balance-core, loihi, reckon, truenorth) or a path to a
    /// .toml file.
    #[arg(long, default_value = "balance-core")]
    pub chip: String,
    /// Layer widths, input first, comma-separated (e.g. 784,128,10). Default: the digits
    /// network 64,32,10.
    #[arg(long, value_delimiter = ',', value_parser = parse_width,
          conflicts_with_all = ["data", "hidden"])]
    pub sizes: Option<Vec<usize>>,
    /// Take the input width and the class count from a dataset, as `accord train` does: a
    /// bundled name (mnist, digits, iris) or a CSV path.
    #[arg(long)]
    pub data: Option<String>,
    /// Hidden widths, comma-separated, between the dataset's input width and class count
    /// (default 32, as `accord train`; without --data, the digits widths 64 and 10).
    #[arg(long, value_delimiter = ',', value_parser = parse_width)]
    pub hidden: Option<Vec<usize>>,
    /// Map the network of a NIR file (a chain, a neuron node possibly looping onto itself; see
    /// `accord import`).
    #[arg(long, value_name = "FILE.nir", conflicts_with_all = ["sizes", "data", "hidden"])]
    pub model: Option<std::path::PathBuf>,
    /// Map the all-to-all net of `accord all-to-all` and `accord modules` instead: N neurons,
    /// the dataset's inputs (--data, default digits) and classes among them, in one group
    /// projecting onto itself.
    #[arg(long, value_name = "N", value_parser = parse_width,
          conflicts_with_all = ["sizes", "hidden", "model"])]
    pub all_to_all: Option<usize>,
    /// How the --model's sparse layers (convolutions, pools) are placed: by receptive field or
    /// with dense rows, whichever needs fewer cores; or the one named.
    #[arg(long, value_enum, default_value = "fewest-cores", requires = "model")]
    pub placement: super::PlacementArg,
    /// On a crossbar chip (TrueNorth), give every input one axon instead of duplicating the
    /// inputs of layers whose cores have room (an all-to-all group never duplicates them).
    #[arg(long, conflicts_with = "all_to_all")]
    pub no_duplicate_inputs: bool,
    /// Any chip-file override, KEY=VALUE with dotted keys (core.input_axons=128, …), as on
    /// `accord train`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The time step, seconds, at which a --model's neurons are stepped (their factors fold
    /// into the weights that a crossbar chip's fit reports).
    #[arg(long, value_name = "SECONDS", default_value_t = crate::nir::DEFAULT_DT, requires = "model")]
    pub dt: f64,
    /// Print one JSON document (top-level `chip`, `sizes`, `graph`, `mapping`, and on a
    /// crossbar chip `crossbar`) instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Most synapses whose crossbar fit `accord map` computes (the fit holds each layer's real
/// weights: 8 bytes a slot).
const CROSSBAR_FIT_MAX: usize = 1 << 24;

/// How a net's weights fit a crossbar chip (`accord map` on TrueNorth).
#[derive(Serialize, Debug)]
struct CrossbarReport {
    /// Whose weights: the `--model`'s, or the Glorot initialisation `accord train` starts from.
    weights: String,
    /// Per neuron layer fed.
    layers: Vec<CrossbarLayer>,
}

#[derive(Serialize, Debug)]
struct CrossbarLayer {
    #[serde(flatten)]
    fit: crate::emulator::CrossbarFit,
    /// `‖W − Ŵ‖ / ‖W‖`.
    relative_error: f64,
}

/// The largest `--all-to-all` net whose synapse mask (N² bits, 32 MiB here) is built for the
/// graph's description.
const RECIPE_MASK_MAX: usize = 1 << 14;

/// A layer width to map (nothing is allocated per synapse): 1 to 2^24.
fn parse_width(s: &str) -> Result<usize, String> {
    super::width_at_most(s, 1 << 24)
}

/// The chip as the JSON report names it: where it came from, its mesh and core capacities.
#[derive(Serialize, Debug)]
struct ChipSummary<'a> {
    name: &'a str,
    origin: &'a str,
    mesh: Mesh,
    core: CoreCaps,
}

#[derive(Serialize, Debug)]
struct MapReport<'a> {
    chip: ChipSummary<'a>,
    sizes: Vec<usize>,
    graph: &'a Graph,
    mapping: &'a Mapping,
    crossbar: Option<CrossbarReport>,
    /// Per split layer, what its partial sums cost per firing step.
    splits: Vec<crate::mapping::SplitCost>,
}

/// A split layer's cost as a line: packets, links and energy per firing step, and back.
pub(crate) fn split_line(c: &crate::mapping::SplitCost) -> String {
    let pj = |e: Option<f64>| e.map_or("unpriced".to_string(), |e| format!("{e:.1} pJ"));
    format!(
        "split cost: layer {}: at most {} partial-sum packets over {} links{} per firing step (one per neuron and segment whose sum is not 0), {} (packet, links, the add at the soma); a training step sends as many δ back, {}; +{} timestep of latency",
        c.layer,
        c.packets,
        c.hops,
        if c.interchip_hops > 0 {
            format!(" ({} between chips)", c.interchip_hops)
        } else {
            String::new()
        },
        pj(c.forward_pj),
        pj(c.backward_pj),
        c.extra_timesteps
    )
}

/// On a crossbar chip, how the net's weights fit it: a `--model`'s (its neurons folded in at
/// `--dt`, as a run folds them), else the Glorot initialisation `accord train` starts from
/// (seed 1). `None` elsewhere, for the all-to-all net, and beyond [`CROSSBAR_FIT_MAX`]
/// synapses (said in the text).
fn crossbar(
    a: &MapArgs,
    chip: &ChipModel,
    graph: &Graph,
    mapping: &Mapping,
) -> Result<Option<CrossbarReport>> {
    use crate::rule::{Activation, LayeredNet};
    if chip.core.axon_types.is_none() || a.all_to_all.is_some() {
        return Ok(None);
    }
    let sizes = graph.sizes();
    let synapses: usize = sizes.windows(2).map(|w| w[0].saturating_mul(w[1])).sum();
    if synapses > CROSSBAR_FIT_MAX {
        return Ok(None);
    }
    let (net, masks, recurrent, weights) = match &a.model {
        Some(p) => {
            let m = super::nir::load_model(p, a.dt, Some(chip.soma))?;
            let rec = m.chain.recurrent_weights();
            (
                m.chain.net,
                m.chain.masks,
                rec,
                format!("--model {} at dt = {:e} s", p.display(), a.dt),
            )
        }
        None => {
            let mut acts = vec![Activation::HardSigmoid; sizes.len() - 2];
            acts.push(Activation::Identity);
            (
                LayeredNet::glorot(&sizes, &acts, 1),
                Vec::new(),
                Vec::new(),
                "the Glorot initialisation accord train starts from (seed 1; a trained net's fit: accord train --load CKPT --epochs 0 on this chip)".to_string(),
            )
        }
    };
    let layers = fit_of(&net, &masks, &recurrent, chip, mapping)
        .into_iter()
        .map(|fit| CrossbarLayer {
            relative_error: fit.relative_error(),
            fit,
        })
        .collect();
    Ok(Some(CrossbarReport { weights, layers }))
}

/// How `net` (with its layers' masks and loops) fits `chip`'s crossbar placed as `mapping`.
pub(crate) fn fit_of(
    net: &crate::rule::LayeredNet,
    masks: &Masks,
    recurrent: &[Option<Vec<f64>>],
    chip: &ChipModel,
    mapping: &Mapping,
) -> Vec<crate::emulator::CrossbarFit> {
    use crate::emulator::{ChipRule, FiringMode, NetSpec};
    use crate::rule::{Activation, Loss};
    let sizes = net.sizes();
    let acts: Vec<Activation> = net.layers.iter().map(|l| l.act).collect();
    let loss = if acts.last() == Some(&Activation::Identity) {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    };
    let spec = NetSpec {
        sizes: &sizes,
        acts: &acts,
        weights: net,
        masks,
        recurrent,
        feedback: None,
        mapping,
        // (The fit does not depend on the mode: TrueNorth runs spikes.)
        mode: FiringMode::Spiking {
            ticks: 1,
            encoding: crate::emulator::Encoding::Regular,
        },
        loss,
        rule: ChipRule::Balance,
        threads: 1,
        training: false,
    };
    crate::emulator::crossbar_fit(&spec, chip)
}

/// The network the arguments describe, as a graph: `--all-to-all N`, or a chain of the widths
/// [`sizes`] gives.
///
/// # Errors
/// The dataset or model cannot be loaded; an all-to-all net too small for the dataset's inputs
/// and classes.
pub fn graph(a: &MapArgs) -> Result<Graph> {
    if let Some(n) = a.all_to_all {
        let name = a.data.as_deref().unwrap_or("digits");
        let split = data::load(name, &data::default_data_dir(), 0)
            .with_context(|| format!("loading --data {name}"))?;
        let (inputs, classes) = (split.train.dim, split.train.n_classes);
        return Graph::all_to_all(n, inputs, classes, None).map_err(|e| {
            anyhow!(e).context(format!(
                "--all-to-all {n}: the net holds --data {name}'s {inputs} inputs and {classes} \
                 outputs among its neurons"
            ))
        });
    }
    if let Some(path) = &a.model {
        // The file's graph: its nodes' names and neuron kinds on the groups and projections.
        let g = crate::nir::read(path)?;
        let chain = g
            .to_layered()
            .with_context(|| format!("--model {}", path.display()))?;
        return Ok(chain.graph(&g)?);
    }
    let (sizes, recurrent, masks) = sizes(a)?;
    Ok(Graph::layered(&sizes, &recurrent, masks)?)
}

/// The layer widths the arguments describe: `--sizes`, or dataset input width, `--hidden`,
/// class count; or [`DEFAULT_SIZES`]. With `--model`, also which neuron layers project onto
/// themselves and the synapse masks of sparse layers (empty otherwise).
///
/// # Errors
/// The dataset cannot be loaded.
pub fn sizes(a: &MapArgs) -> Result<(Vec<usize>, Vec<bool>, Masks)> {
    if let Some(s) = &a.sizes {
        return Ok((s.clone(), Vec::new(), Vec::new()));
    }
    if let Some(path) = &a.model {
        let chain = crate::nir::read(path)?
            .to_layered()
            .with_context(|| format!("--model {}", path.display()))?;
        let (sizes, rec) = (chain.net.sizes(), chain.recurrent_layers());
        return Ok((sizes, rec, chain.masks));
    }
    let hidden = a.hidden.clone().unwrap_or_else(|| vec![32]);
    let Some(name) = &a.data else {
        if a.hidden.is_none() {
            return Ok((DEFAULT_SIZES.to_vec(), Vec::new(), Vec::new()));
        }
        let mut v = vec![DEFAULT_SIZES[0]];
        v.extend(&hidden);
        v.push(DEFAULT_SIZES[2]);
        return Ok((v, Vec::new(), Vec::new()));
    };
    let split = data::load(name, &data::default_data_dir(), 0)
        .with_context(|| format!("loading --data {name}"))?;
    let mut v = vec![split.train.dim];
    v.extend(&hidden);
    v.push(split.train.n_classes);
    Ok((v, Vec::new(), Vec::new()))
}

/// Per synaptic layer, the synapses that exist (`None`: dense).
type Masks = Vec<Option<bitvec::vec::BitVec<usize, bitvec::order::Lsb0>>>;

/// Run `accord map`.
///
/// # Errors
/// Unknown or invalid chip model (the message lists the shipped models), unloadable dataset,
/// or a network that does not fit the chip (the message names the constraint and the numbers).
pub fn run(a: &MapArgs) -> Result<ExitCode> {
    let sets = super::parse_sets(&a.set)?;
    let chip: ChipModel = chip::open_with(&a.chip, &sets)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("--chip {}", a.chip))?;
    let mut graph = graph(a)?;
    if let Some(p) = &a.model {
        // Kernels shared only where the weights the chip holds (its neurons' factors folded
        // in at --dt) keep one per channel, as a run and `accord import` place them.
        let m = super::nir::load_model(p, a.dt, Some(chip.soma))?;
        for pr in &mut graph.projections {
            pr.kernel = None;
        }
        graph = graph.with_kernels(&m.chain.shared_kernels(&m.chain.net))?;
    }
    let sizes = graph.sizes();
    let text: Vec<String> = sizes.iter().map(usize::to_string).collect();
    match &a.model {
        Some(p) => {
            let sparse = graph.projections.iter().any(|p| p.mask.is_some());
            super::check_placement(a.placement, p, sparse)?;
        }
        // (clap's `requires` does not hold it back beside --sizes.)
        None if a.placement != super::PlacementArg::FewestCores => bail!(
            "--placement {} places a --model's sparse layers (convolutions, pools); this \
             network has none",
            crate::mapping::Placement::from(a.placement).name()
        ),
        None => {}
    }
    super::check_duplication(a.no_duplicate_inputs, &chip, &a.chip)?;
    let opts = MapOptions {
        placement: a.placement.into(),
        duplicate_inputs: !a.no_duplicate_inputs,
    };
    let mapping = map_graph(&graph, &chip, opts).map_err(|e| {
        let from = if a.all_to_all.is_some() {
            "--all-to-all"
        } else if a.sizes.is_some() {
            "--sizes"
        } else if a.model.is_some() {
            "--model"
        } else if a.data.is_some() {
            "--data and --hidden"
        } else {
            "--hidden"
        };
        let asked = match a.placement {
            super::PlacementArg::FewestCores => String::new(),
            p => format!(
                " with --placement {}",
                crate::mapping::Placement::from(p).name()
            ),
        };
        anyhow!(e).context(format!(
            "cannot map the {} network ({from}) onto --chip {}{asked}",
            text.join("-"),
            a.chip
        ))
    })?;
    // The recipe's synapses (its relays receive none, no neuron its own), once the mapping
    // shows the net fits a core's axons (the group is placed with dense rows either way);
    // beyond RECIPE_MASK_MAX neurons its N² bits are not built and the count is given.
    let mut graph = graph;
    let mut note = String::new();
    if let Some(n) = a.all_to_all {
        let inputs = graph.groups[0].inputs();
        if n <= RECIPE_MASK_MAX {
            graph.projections[0].mask = Some(Graph::all_to_all_recipe_mask(n, inputs));
        } else {
            note = format!(
                "note: the recipe net has {} of these synapses (its {inputs} inputs receive \
                 none, no neuron its own)\n",
                ((n - inputs) as u64).saturating_mul(n as u64 - 1)
            );
        }
    }
    let fit = crossbar(a, &chip, &graph, &mapping)?;
    let splits = mapping.split_costs(&chip);
    let mut fit_text = String::new();
    for c in &splits {
        let _ = writeln!(fit_text, "{}", split_line(c));
    }
    if let Some(f) = &fit {
        let _ = writeln!(fit_text, "crossbar fit of {}:", f.weights);
        for l in &f.layers {
            let _ = writeln!(fit_text, "  layer {}: {}", l.fit.layer, l.fit.describe());
        }
    } else if chip.core.axon_types.is_some() && a.all_to_all.is_none() {
        let _ = writeln!(
            fit_text,
            "crossbar fit: not computed beyond {CROSSBAR_FIT_MAX} synapses (a run reports it)"
        );
    }
    if a.json {
        let report = MapReport {
            chip: ChipSummary {
                name: &chip.name,
                origin: &chip.origin,
                mesh: chip.mesh,
                core: chip.core,
            },
            sizes,
            graph: &graph,
            mapping: &mapping,
            crossbar: fit,
            splits,
        };
        super::emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        super::emit(&format!(
            "graph: {}\n{note}{}{fit_text}",
            graph.describe(),
            mapping.describe()
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
