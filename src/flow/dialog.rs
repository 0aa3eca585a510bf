//! Dialogs (RFC 3261 §12): identified by Call-ID + the two tags. The call owns its dialogs,
//! so its key is the tag pair, unordered (in-dialog requests from the callee swap From
//! and To). Forking gives several dialogs, one per To tag.

use compact_str::CompactString;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DialogState {
    /// Created by a provisional response with a To tag (§12.1).
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended by a BYE's response, a non-2xx final to the INVITE (early dialogs), or a 481.
    Terminated,
}

#[derive(Debug, Clone)]
pub struct Dialog {
    pub id: usize,
    /// The From tag of the request that created it (the caller's tag).
    pub local_tag: CompactString,
    /// The To tag the callee chose.
    pub remote_tag: CompactString,
    pub state: DialogState,
    /// The method that created it (INVITE, SUBSCRIBE, REFER, or what first showed both tags).
    pub method: CompactString,
    /// The dialog carries an INVITE session: created by an INVITE, or, when the capture missed
    /// its creation, seen carrying a request or response of a method that exists only in one
    /// ([`invite_session_method`]). Such a dialog, once confirmed, lasts until BYE.
    pub invite_session: bool,
    pub messages: Vec<usize>,
}

/// Methods used only inside an INVITE dialog (RFC 3261 §13, §15; RFC 3262 PRACK, RFC 3311
/// UPDATE, RFC 6086 INFO): a dialog that carries one is an INVITE session, even when the
/// capture began after the INVITE.
pub fn invite_session_method(method: &str) -> bool {
    matches!(
        method,
        "INVITE" | "ACK" | "PRACK" | "UPDATE" | "INFO" | "BYE"
    )
}

/// Methods whose 2xx (or 1xx with To tag, for INVITE) create a dialog (§12.1, RFC 6665).
pub fn creates_dialog(method: &str) -> bool {
    matches!(method, "INVITE" | "SUBSCRIBE" | "REFER" | "NOTIFY")
}
