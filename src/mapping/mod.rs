//! TEMPORARY stand-in for the mapping module (replaced by the mapping branch on merge).
#![allow(missing_docs)]
use crate::chip::ChipModel;
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Chunk {
    pub core: usize,
    pub start: usize,
    pub len: usize,
}
#[derive(Clone, Debug, Serialize)]
pub struct LayerPlacement {
    pub layer: usize,
    pub size: usize,
    pub chunks: Vec<Chunk>,
}
#[derive(Clone, Debug, Serialize)]
pub struct Mapping {
    pub chip: String,
    pub mesh_cols: usize,
    pub mesh_rows: usize,
    pub layers: Vec<LayerPlacement>,
    pub hop_histogram: Vec<u64>,
    #[serde(skip)]
    dest: Vec<Vec<usize>>,
}
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MapError(String);

impl Mapping {
    pub fn core_of(&self, layer: usize, neuron: usize) -> usize {
        let l = &self.layers[layer];
        l.chunks
            .iter()
            .find(|c| neuron < c.start + c.len)
            .map(|c| c.core)
            .unwrap_or(0)
    }
    pub fn dest_cores(&self, layer: usize) -> &[usize] {
        &self.dest[layer]
    }
    pub fn hops(&self, from: usize, to: usize) -> u32 {
        let (fx, fy) = (from % self.mesh_cols, from / self.mesh_cols);
        let (tx, ty) = (to % self.mesh_cols, to / self.mesh_cols);
        (fx.abs_diff(tx) + fy.abs_diff(ty)) as u32
    }
    pub fn cores_used(&self) -> usize {
        self.layers.iter().map(|l| l.chunks.len()).sum()
    }
}

pub fn map_layered(sizes: &[usize], chip: &ChipModel) -> Result<Mapping, MapError> {
    let cols = chip.mesh.cols as usize;
    let mut core = 0;
    let mut layers = Vec::new();
    for (k, &n) in sizes.iter().enumerate() {
        let fan_in = if k == 0 { 0 } else { sizes[k - 1] };
        let mut cap = chip.core.neurons as usize;
        if fan_in > 0 {
            cap = cap.min(chip.core.synapses as usize / fan_in);
        }
        if cap == 0 {
            return Err(MapError(format!("layer {k} does not fit")));
        }
        let ncores = n.div_ceil(cap);
        let mut chunks = Vec::new();
        let base = n / ncores;
        let extra = n % ncores;
        let mut start = 0;
        for c in 0..ncores {
            let len = base + usize::from(c < extra);
            chunks.push(Chunk { core, start, len });
            start += len;
            core += 1;
        }
        layers.push(LayerPlacement {
            layer: k,
            size: n,
            chunks,
        });
    }
    if core > chip.mesh.cores() as usize {
        return Err(MapError(format!("needs {core} cores")));
    }
    let dest = layers
        .iter()
        .map(|l| l.chunks.iter().map(|c| c.core).collect())
        .collect();
    Ok(Mapping {
        chip: chip.name.clone(),
        mesh_cols: cols,
        mesh_rows: chip.mesh.rows as usize,
        layers,
        hop_histogram: vec![],
        dest,
    })
}
