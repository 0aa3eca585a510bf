//! Exporters: the JSON contract, the call list (text, CSV), the diagnosis report and the
//! ladder (text, SVG, Mermaid, all from [`ladder::Ladder`], chosen in [`diagram`]), and calls
//! as capture files
//! ([`pcap`]). They read the model built by
//! [`crate::flow`] and never change it.

pub mod audio;
pub mod diagnosis;
pub mod diagram;
pub mod json;
pub mod ladder;
pub mod media;
pub mod mermaid;
pub mod pcap;
pub mod svg;
pub mod table;
