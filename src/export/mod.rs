//! Exporters: the JSON contract, the call list (text, CSV) and the text ladder. They read the
//! model built by [`crate::flow`] and never change it.

pub mod diagnosis;
pub mod json;
pub mod ladder;
pub mod table;
