//! The learning-rate → modularity experiment: does the rule wire an all-to-all network into
//! modules (block-diagonal) or across them (off-diagonal)? Community detection and block
//! statistics live in [`community`].

pub mod community;
pub mod experiment;
