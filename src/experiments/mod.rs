//! The experiments accord runs on the rule and its chips, each a library entry point that
//! returns a report (the command line only parses, calls and prints):
//!
//! | module | question |
//! |---|---|
//! | [`verify`] | do the rule's credits and updates equal backprop's? (`accord verify`) |
//! | [`modularity`] | does the learning rate shape the wiring into modules? (`accord modules`, `accord all-to-all`) |
//! | [`probe`] | what happens when the paper's assumptions break? (`accord probe`) |

pub mod modularity;
pub mod probe;
pub mod verify;
