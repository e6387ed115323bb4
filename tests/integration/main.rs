//! accord's integration tests, in one binary (matklad's pattern): each module carries one claim.

mod calibrate;
mod cli;
mod dendrites;
mod emulator;
mod equivalence;
mod golden;
mod malformed;
mod mapping;
mod modules;
mod nir;
mod probe;
mod recurrent;
mod robustness;
mod sharing;
mod support;
mod sweep;
mod training;
mod value_stability;
