//! Correlation (RFC 3261): transactions by top Via branch (§17), dialogs by Call-ID and tags
//! (§12), calls by Call-ID. Owns the model that every exporter and the UI read. It is fed
//! owned [`SipMessage`]s in capture order and never sees packets or bytes of other layers.

pub mod call;
pub mod dialog;
pub mod message;
pub mod points;
pub mod scanner;
pub mod transaction;

pub use call::{Call, CallInit, CallSummary, Outcome, Party};
pub use dialog::{Dialog, DialogState};
pub use message::{Kind, SipMessage};
pub use transaction::{Transaction, TransactionKey};
