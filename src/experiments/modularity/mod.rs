//! The learning-rate → modularity experiment: does the rule wire an all-to-all network into
//! modules (block-diagonal) or across them (off-diagonal)? Community detection and block
//! statistics live in [`community`], the training regimes compared in [`protocol`], the
//! lenses and their null model in [`lens`].

pub mod community;
pub mod experiment;
pub mod lens;
pub mod protocol;
pub mod study;
