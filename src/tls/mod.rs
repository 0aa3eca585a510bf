//! TLS seen from the side: key log files (`keylog`), cipher suites, key derivation and record
//! decryption (`cipher`), for SIP over TLS and secure WebSocket captured with the key log of
//! one of the ends. Passive only: nothing here speaks TLS, verifies a certificate or holds a
//! private key; secrets and plaintext are never written anywhere by this module.
//!
//! Why by hand: RustCrypto provides the primitives (AES-GCM, ChaCha20-Poly1305, AES-CBC, HMAC,
//! HKDF); what no maintained crate does is the observer's side of the record layer (following
//! both directions of a captured connection, switching keys where each side did, with keys
//! from a log rather than a handshake).

pub mod cipher;
pub mod keylog;
pub mod session;

pub use cipher::{DecryptError, RecordCipher, Side, Suite, suite, suite_name};
pub use keylog::{KeyLog, Secrets};
