//! The experiments accord runs on the rule and its chips, each a library entry point that
//! returns a report (the command line only parses, calls and prints):
//!
//! | module | question |
//! |---|---|
//! | [`verify`] | do the rule's credits and updates equal backprop's? (`accord verify`) |
//! | [`modularity`] | does the learning rate shape the wiring into modules? (`accord modules`) |
//! | [`formats`] | which number formats hold a network's variables on a chip? (`accord formats`) |
//! | [`all_to_all`] | does the modularity recipe's all-to-all net learn the same on a chip as in `f64`? (`accord all-to-all`) |
//! | [`probe`] | what happens when the paper's assumptions break? (`accord probe`) |
//! | [`sweep`] | what does each setting of a grid of `accord train` options cost, how well does it learn, and which settings form the accuracy–energy front? (`accord sweep`, `accord sweep merge`) |
//! | [`calibrate`] | which price set of a chip predicts the energy measured on its silicon best? (`accord calibrate`) |
//!
//! The two drivers, [`sweep`] and [`calibrate`], run `accord train … --json` once per point or
//! workload through a [`runner::Runner`] their caller gives them (the command line's starts a
//! child process of its own binary).

pub mod all_to_all;
pub mod calibrate;
pub mod formats;
pub mod modularity;
pub mod probe;
pub mod runner;
pub mod sweep;
pub mod verify;
