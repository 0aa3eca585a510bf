//! Cipher suites, key derivation and record decryption (RFC 5246 §6.3 and §5 for TLS 1.2,
//! RFC 5288 and 7905 for its AEAD suites, RFC 7366 for encrypt-then-MAC, RFC 8446 §7 for TLS
//! 1.3), over RustCrypto's AES-GCM, ChaCha20-Poly1305, AES-CBC, HMAC and HKDF. Keys and
//! plaintext are never logged.

use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use hmac::{Hmac, Mac as _};
use sha2::{Sha256, Sha384};

/// The hash of a suite's PRF / key schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
}

impl Hash {
    /// Its output size in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
}

/// The record protection of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bulk {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
    /// AES-CBC with an HMAC (MAC-then-encrypt, or encrypt-then-MAC when negotiated).
    AesCbc {
        key_len: usize,
        mac: MacHash,
    },
}

/// The HMAC of a CBC suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacHash {
    Sha1,
    Sha256,
    Sha384,
}

impl MacHash {
    fn len(self) -> usize {
        match self {
            MacHash::Sha1 => 20,
            MacHash::Sha256 => 32,
            MacHash::Sha384 => 48,
        }
    }
}

impl Bulk {
    fn key_len(self) -> usize {
        match self {
            Bulk::Aes128Gcm => 16,
            Bulk::Aes256Gcm | Bulk::ChaCha20Poly1305 => 32,
            Bulk::AesCbc { key_len, .. } => key_len,
        }
    }

    /// IV bytes from the TLS 1.2 key block: the GCM salt, ChaCha's whole nonce, none for CBC
    /// (its IV is in each record).
    fn fixed_iv_len(self) -> usize {
        match self {
            Bulk::Aes128Gcm | Bulk::Aes256Gcm => 4,
            Bulk::ChaCha20Poly1305 => 12,
            Bulk::AesCbc { .. } => 0,
        }
    }

    fn mac_len(self) -> usize {
        match self {
            Bulk::AesCbc { mac, .. } => mac.len(),
            _ => 0,
        }
    }
}

/// A cipher suite sipscope decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    pub id: u16,
    pub name: &'static str,
    pub bulk: Bulk,
    pub hash: Hash,
    pub tls13: bool,
}

const fn s(id: u16, name: &'static str, bulk: Bulk, hash: Hash, tls13: bool) -> Suite {
    Suite {
        id,
        name,
        bulk,
        hash,
        tls13,
    }
}

const CBC128_SHA1: Bulk = Bulk::AesCbc {
    key_len: 16,
    mac: MacHash::Sha1,
};
const CBC256_SHA1: Bulk = Bulk::AesCbc {
    key_len: 32,
    mac: MacHash::Sha1,
};
const CBC128_SHA256: Bulk = Bulk::AesCbc {
    key_len: 16,
    mac: MacHash::Sha256,
};
const CBC256_SHA256: Bulk = Bulk::AesCbc {
    key_len: 32,
    mac: MacHash::Sha256,
};
const CBC256_SHA384: Bulk = Bulk::AesCbc {
    key_len: 32,
    mac: MacHash::Sha384,
};

/// Every suite decrypted: TLS 1.3's three, TLS 1.2's AES-GCM and ChaCha20-Poly1305 suites, and
/// the AES-CBC suites still seen on SBCs.
pub const SUITES: &[Suite] = &[
    s(
        0x1301,
        "TLS_AES_128_GCM_SHA256",
        Bulk::Aes128Gcm,
        Hash::Sha256,
        true,
    ),
    s(
        0x1302,
        "TLS_AES_256_GCM_SHA384",
        Bulk::Aes256Gcm,
        Hash::Sha384,
        true,
    ),
    s(
        0x1303,
        "TLS_CHACHA20_POLY1305_SHA256",
        Bulk::ChaCha20Poly1305,
        Hash::Sha256,
        true,
    ),
    s(
        0xC02F,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Bulk::Aes128Gcm,
        Hash::Sha256,
        false,
    ),
    s(
        0xC030,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Bulk::Aes256Gcm,
        Hash::Sha384,
        false,
    ),
    s(
        0xC02B,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Bulk::Aes128Gcm,
        Hash::Sha256,
        false,
    ),
    s(
        0xC02C,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Bulk::Aes256Gcm,
        Hash::Sha384,
        false,
    ),
    s(
        0x009C,
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        Bulk::Aes128Gcm,
        Hash::Sha256,
        false,
    ),
    s(
        0x009D,
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        Bulk::Aes256Gcm,
        Hash::Sha384,
        false,
    ),
    s(
        0x009E,
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        Bulk::Aes128Gcm,
        Hash::Sha256,
        false,
    ),
    s(
        0x009F,
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        Bulk::Aes256Gcm,
        Hash::Sha384,
        false,
    ),
    s(
        0xCCA8,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Bulk::ChaCha20Poly1305,
        Hash::Sha256,
        false,
    ),
    s(
        0xCCA9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Bulk::ChaCha20Poly1305,
        Hash::Sha256,
        false,
    ),
    s(
        0xCCAA,
        "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Bulk::ChaCha20Poly1305,
        Hash::Sha256,
        false,
    ),
    s(
        0x002F,
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        CBC128_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0x0035,
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        CBC256_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0x003C,
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        CBC128_SHA256,
        Hash::Sha256,
        false,
    ),
    s(
        0x003D,
        "TLS_RSA_WITH_AES_256_CBC_SHA256",
        CBC256_SHA256,
        Hash::Sha256,
        false,
    ),
    s(
        0x0033,
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        CBC128_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0x0039,
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        CBC256_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0x0067,
        "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        CBC128_SHA256,
        Hash::Sha256,
        false,
    ),
    s(
        0x006B,
        "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        CBC256_SHA256,
        Hash::Sha256,
        false,
    ),
    s(
        0xC009,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        CBC128_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0xC00A,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        CBC256_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0xC013,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        CBC128_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0xC014,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        CBC256_SHA1,
        Hash::Sha256,
        false,
    ),
    s(
        0xC023,
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        CBC128_SHA256,
        Hash::Sha256,
        false,
    ),
    s(
        0xC024,
        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        CBC256_SHA384,
        Hash::Sha384,
        false,
    ),
    s(
        0xC027,
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        CBC128_SHA256,
        Hash::Sha256,
        false,
    ),
    s(
        0xC028,
        "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        CBC256_SHA384,
        Hash::Sha384,
        false,
    ),
];

/// The suite with this id, if sipscope decrypts it.
pub fn suite(id: u16) -> Option<Suite> {
    SUITES.iter().find(|s| s.id == id).copied()
}

/// The IANA name of a cipher suite, decrypted or not (tls-parser's table).
pub fn suite_name(id: u16) -> Option<&'static str> {
    suite(id)
        .map(|s| s.name)
        .or_else(|| tls_parser::TlsCipherSuite::from_id(id).map(|s| s.name))
}

fn hmac(hash: MacHash, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    macro_rules! run {
        ($h:ty) => {{
            // HMAC takes a key of any length.
            let Ok(mut m) = <Hmac<$h> as hmac::Mac>::new_from_slice(key) else {
                return Vec::new();
            };
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }};
    }
    match hash {
        MacHash::Sha1 => run!(sha1::Sha1),
        MacHash::Sha256 => run!(Sha256),
        MacHash::Sha384 => run!(Sha384),
    }
}

fn prf_hash(hash: Hash) -> MacHash {
    match hash {
        Hash::Sha256 => MacHash::Sha256,
        Hash::Sha384 => MacHash::Sha384,
    }
}

/// TLS 1.2's PRF (RFC 5246 §5): P_hash(secret, label ‖ seed), `len` bytes.
pub fn prf12(hash: Hash, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let h = prf_hash(hash);
    let mut out = Vec::with_capacity(len + 48);
    let mut a = hmac(h, secret, &[label, seed]);
    while out.len() < len {
        out.extend_from_slice(&hmac(h, secret, &[&a, label, seed]));
        a = hmac(h, secret, &[&a]);
    }
    out.truncate(len);
    out
}

/// TLS 1.3's HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
pub fn expand_label(hash: Hash, secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let full = format!("tls13 {label}");
    let mut info = Vec::with_capacity(4 + full.len());
    info.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    info.push(u8::try_from(full.len()).ok()?);
    info.extend_from_slice(full.as_bytes());
    info.push(0);
    let mut out = vec![0u8; len];
    match hash {
        Hash::Sha256 => hkdf::Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
        Hash::Sha384 => hkdf::Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand(&info, &mut out)
            .ok()?,
    }
    Some(out)
}

/// Why a record did not decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecryptError {
    /// Shorter than its nonce, tag, IV or MAC.
    Short,
    /// The AEAD tag or the HMAC did not verify: wrong keys, or damaged bytes.
    Authentication,
    /// CBC padding that does not fit.
    Padding,
}

/// One direction's record protection: keys, IV, and the record sequence number.
#[derive(Clone)]
pub struct RecordCipher {
    suite: Suite,
    key: Vec<u8>,
    iv: Vec<u8>,
    mac_key: Vec<u8>,
    /// RFC 7366 encrypt-then-MAC (CBC suites, TLS 1.2).
    encrypt_then_mac: bool,
    pub seq: u64,
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCipher")
            .field("suite", &self.suite.name)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// Which side a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

impl RecordCipher {
    /// TLS 1.2: the keys of `side` from the master secret and the two randoms (RFC 5246
    /// §6.3: key_block = PRF(master, "key expansion", server_random ‖ client_random), split
    /// into client MAC, server MAC, client key, server key, client IV, server IV).
    pub fn tls12(
        suite: Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
        side: Side,
        encrypt_then_mac: bool,
    ) -> RecordCipher {
        let (mac, key, iv) = (
            suite.bulk.mac_len(),
            suite.bulk.key_len(),
            suite.bulk.fixed_iv_len(),
        );
        let mut seed = Vec::with_capacity(64);
        seed.extend_from_slice(server_random);
        seed.extend_from_slice(client_random);
        let block = prf12(
            suite.hash,
            master,
            b"key expansion",
            &seed,
            2 * (mac + key + iv),
        );
        let part = |at: usize, len: usize| block.get(at..at + len).unwrap_or(&[]).to_vec();
        let client = side == Side::Client;
        let mac_key = part(if client { 0 } else { mac }, mac);
        let k = part(2 * mac + if client { 0 } else { key }, key);
        let v = part(2 * mac + 2 * key + if client { 0 } else { iv }, iv);
        RecordCipher {
            suite,
            key: k,
            iv: v,
            mac_key,
            encrypt_then_mac,
            seq: 0,
        }
    }

    /// TLS 1.3: the keys of a traffic secret (RFC 8446 §7.3).
    pub fn tls13(suite: Suite, secret: &[u8]) -> Option<RecordCipher> {
        Some(RecordCipher {
            suite,
            key: expand_label(suite.hash, secret, "key", suite.bulk.key_len())?,
            iv: expand_label(suite.hash, secret, "iv", 12)?,
            mac_key: Vec::new(),
            encrypt_then_mac: false,
            seq: 0,
        })
    }

    /// TLS 1.3 KeyUpdate: the next traffic secret after `secret` (RFC 8446 §7.2).
    pub fn next_secret(suite: Suite, secret: &[u8]) -> Option<Vec<u8>> {
        expand_label(suite.hash, secret, "traffic upd", suite.hash.output_len())
    }

    /// The per-record nonce from a 12-byte IV and the sequence number (RFC 8446 §5.3, RFC 7905).
    fn xor_nonce(&self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        for (n, v) in nonce.iter_mut().zip(&self.iv) {
            *n = *v;
        }
        for (n, s) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        nonce
    }

    fn aead_open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        let payload = Payload { msg: data, aad };
        let nonce = aes_gcm::Nonce::from_slice(nonce);
        let r = match self.suite.bulk {
            Bulk::Aes128Gcm => aes_gcm::Aes128Gcm::new_from_slice(&self.key)
                .map_err(|_| DecryptError::Authentication)?
                .decrypt(nonce, payload),
            Bulk::Aes256Gcm => aes_gcm::Aes256Gcm::new_from_slice(&self.key)
                .map_err(|_| DecryptError::Authentication)?
                .decrypt(nonce, payload),
            Bulk::ChaCha20Poly1305 => chacha20poly1305::ChaCha20Poly1305::new_from_slice(&self.key)
                .map_err(|_| DecryptError::Authentication)?
                .decrypt(chacha20poly1305::Nonce::from_slice(nonce), payload),
            Bulk::AesCbc { .. } => return Err(DecryptError::Authentication),
        };
        r.map_err(|_| DecryptError::Authentication)
    }

    /// Decrypts one record's fragment (`header` is its 5-byte header). Returns the content
    /// type and the plaintext; TLS 1.3's inner content type is taken off the end. The sequence
    /// number advances on success only.
    pub fn open(
        &mut self,
        header: [u8; 5],
        fragment: &[u8],
    ) -> Result<(u8, Vec<u8>), DecryptError> {
        let [kind, v0, v1, _, _] = header;
        let plain = if self.suite.tls13 {
            let mut plain = self.aead_open(&self.xor_nonce(), &header, fragment)?;
            // The inner plaintext: content, its real type, then zero padding.
            while plain.last() == Some(&0) {
                plain.pop();
            }
            let inner = plain.pop().ok_or(DecryptError::Padding)?;
            self.seq = self.seq.wrapping_add(1);
            return Ok((inner, plain));
        } else {
            let aad = |len: usize| -> Vec<u8> {
                let mut aad = Vec::with_capacity(13);
                aad.extend_from_slice(&self.seq.to_be_bytes());
                aad.extend_from_slice(&[kind, v0, v1]);
                aad.extend_from_slice(&(len as u16).to_be_bytes());
                aad
            };
            match self.suite.bulk {
                Bulk::Aes128Gcm | Bulk::Aes256Gcm => {
                    if fragment.len() < 8 + 16 {
                        return Err(DecryptError::Short);
                    }
                    let (explicit, data) = fragment.split_at(8);
                    let mut nonce = [0u8; 12];
                    for (n, b) in nonce.iter_mut().zip(self.iv.iter().chain(explicit)) {
                        *n = *b;
                    }
                    self.aead_open(&nonce, &aad(data.len() - 16), data)?
                }
                Bulk::ChaCha20Poly1305 => {
                    if fragment.len() < 16 {
                        return Err(DecryptError::Short);
                    }
                    self.aead_open(&self.xor_nonce(), &aad(fragment.len() - 16), fragment)?
                }
                Bulk::AesCbc { mac, .. } => self.cbc_open(mac, &aad, fragment)?,
            }
        };
        self.seq = self.seq.wrapping_add(1);
        Ok((kind, plain))
    }

    fn cbc_open(
        &self,
        mac: MacHash,
        aad: &dyn Fn(usize) -> Vec<u8>,
        fragment: &[u8],
    ) -> Result<Vec<u8>, DecryptError> {
        use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::NoPadding};
        let mac_len = mac.len();
        let (body, tag) = if self.encrypt_then_mac {
            let split = fragment
                .len()
                .checked_sub(mac_len)
                .ok_or(DecryptError::Short)?;
            let (body, tag) = fragment.split_at(split);
            let expected = hmac(mac, &self.mac_key, &[&aad(body.len()), body]);
            if expected.as_slice() != tag {
                return Err(DecryptError::Authentication);
            }
            (body, None)
        } else {
            (fragment, Some(()))
        };
        if body.len() < 32 || body.len() % 16 != 0 {
            return Err(DecryptError::Short);
        }
        let (iv, data) = body.split_at(16);
        let mut buf = data.to_vec();
        let plain = match self.key.len() {
            16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(&self.key, iv)
                .map_err(|_| DecryptError::Authentication)?
                .decrypt_padded_mut::<NoPadding>(&mut buf)
                .map_err(|_| DecryptError::Padding)?
                .len(),
            _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(&self.key, iv)
                .map_err(|_| DecryptError::Authentication)?
                .decrypt_padded_mut::<NoPadding>(&mut buf)
                .map_err(|_| DecryptError::Padding)?
                .len(),
        };
        buf.truncate(plain);
        // TLS padding: its length byte last, that many bytes of the same value before it.
        let pad = usize::from(*buf.last().ok_or(DecryptError::Padding)?) + 1;
        let content_end = buf.len().checked_sub(pad).ok_or(DecryptError::Padding)?;
        if buf
            .get(content_end..)
            .is_some_and(|p| p.iter().any(|b| usize::from(*b) + 1 != pad))
        {
            return Err(DecryptError::Padding);
        }
        buf.truncate(content_end);
        if tag.is_some() {
            let split = buf.len().checked_sub(mac_len).ok_or(DecryptError::Short)?;
            let got = buf.split_off(split);
            let expected = hmac(mac, &self.mac_key, &[&aad(buf.len()), &buf]);
            if expected != got {
                return Err(DecryptError::Authentication);
            }
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8448 §3 (simple 1-RTT handshake): the server handshake traffic secret gives the
    /// key and IV the RFC shows.
    #[test]
    fn tls13_traffic_keys_match_rfc_8448() {
        let hex = |s: &str| -> Vec<u8> {
            let s: String = s.split_whitespace().collect();
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let secret = hex(
            "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38",
        );
        let suite = suite(0x1301).unwrap();
        assert_eq!(
            expand_label(suite.hash, &secret, "key", 16).unwrap(),
            hex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(
            expand_label(suite.hash, &secret, "iv", 12).unwrap(),
            hex("5d 31 3e b2 67 12 76 ee 13 00 0b 30")
        );
    }

    #[test]
    fn every_suite_has_consistent_lengths() {
        for s in SUITES {
            assert!(matches!(s.bulk.key_len(), 16 | 32), "{}", s.name);
            assert_eq!(s.tls13, s.id >> 8 == 0x13, "{}", s.name);
        }
        assert!(suite(0x0005).is_none(), "RC4 is not decrypted");
    }
}
