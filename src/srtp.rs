//! SRTP (RFC 3711) read from the side with the keys an SDP carried (SDES, RFC 4568
//! `a=crypto` lines): the `a=crypto` attribute read into its suite and master key, the session
//! keys derived from it, and RTP payloads decrypted after their tag is checked. The suites are
//! AES counter mode with HMAC-SHA1 (`AES_CM_128_HMAC_SHA1_80`, `_32`, and the AES-256 ones of
//! RFC 6188). SRTCP is not decrypted, and DTLS-SRTP keys (RFC 5764) never appear in a capture:
//! streams keyed that way are told apart, not read.
//!
//! Why by hand: RustCrypto provides AES, CTR and HMAC-SHA1; the crates that implement SRTP
//! itself bind libsrtp (C) or speak it as an endpoint. The listener's side is the key
//! derivation, the rollover counter guessed from sequence numbers, and one decryption per
//! packet, here.
//!
//! Key material never leaves this module in any printable form: [`MasterKey`]'s debug output
//! names its suite only.

use aes::cipher::{KeyInit, KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// An SRTP crypto suite this module decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesCm128Sha1_80,
    AesCm128Sha1_32,
    AesCm256Sha1_80,
    AesCm256Sha1_32,
}

impl Suite {
    /// The suite of an `a=crypto` name (RFC 4568 §6.2, RFC 6188).
    pub fn of(name: &str) -> Option<Suite> {
        Some(match name {
            "AES_CM_128_HMAC_SHA1_80" => Suite::AesCm128Sha1_80,
            "AES_CM_128_HMAC_SHA1_32" => Suite::AesCm128Sha1_32,
            "AES_256_CM_HMAC_SHA1_80" | "AES_CM_256_HMAC_SHA1_80" => Suite::AesCm256Sha1_80,
            "AES_256_CM_HMAC_SHA1_32" | "AES_CM_256_HMAC_SHA1_32" => Suite::AesCm256Sha1_32,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128Sha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128Sha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AesCm256Sha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::AesCm256Sha1_32 => "AES_256_CM_HMAC_SHA1_32",
        }
    }

    fn key_len(self) -> usize {
        match self {
            Suite::AesCm128Sha1_80 | Suite::AesCm128Sha1_32 => 16,
            Suite::AesCm256Sha1_80 | Suite::AesCm256Sha1_32 => 32,
        }
    }

    /// Bytes of the authentication tag at the end of each SRTP packet.
    pub fn tag_len(self) -> usize {
        match self {
            Suite::AesCm128Sha1_80 | Suite::AesCm256Sha1_80 => 10,
            Suite::AesCm128Sha1_32 | Suite::AesCm256Sha1_32 => 4,
        }
    }
}

const SALT_LEN: usize = 14;
const AUTH_KEY_LEN: usize = 20;

/// An SDES master key and salt, with the suite and MKI length it came with.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub suite: Suite,
    key: Vec<u8>,
    salt: [u8; SALT_LEN],
    /// Bytes of Master Key Identifier between the payload and the tag (`inline:…|1:4`).
    pub mki_len: usize,
}

// The key is never shown.
impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("suite", &self.suite)
            .field("mki_len", &self.mki_len)
            .finish_non_exhaustive()
    }
}

/// One `a=crypto` attribute's value (`1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crypto {
    pub tag: u32,
    /// The suite as written.
    pub suite_name: String,
    /// The first inline key, when the suite is one decrypted here and the key decodes to the
    /// suite's length.
    pub key: Option<MasterKey>,
}

impl Crypto {
    /// Reads an `a=crypto` value; `None` when it has no tag and suite.
    pub fn parse(value: &str) -> Option<Crypto> {
        use base64::Engine as _;
        let mut words = value.split_ascii_whitespace();
        let tag = words.next()?.parse().ok()?;
        let suite_name = words.next()?;
        let params = words.next().unwrap_or("");
        let suite = Suite::of(suite_name);
        let key = suite.and_then(|suite| {
            // Several keys are separated by ';'; the first is the one in use from the start.
            let first = params.split(';').next()?.strip_prefix("inline:")?;
            let mut fields = first.split('|');
            let b64 = fields.next()?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
                .ok()?;
            if bytes.len() != suite.key_len() + SALT_LEN {
                return None;
            }
            // Lifetime ("2^20") and MKI ("1:4"): the MKI is the field with a colon.
            let mki_len = fields
                .filter_map(|f| f.split_once(':'))
                .find_map(|(_, len)| len.parse::<usize>().ok())
                .filter(|&n| n <= 128)
                .unwrap_or(0);
            let (key, salt) = bytes.split_at(suite.key_len());
            Some(MasterKey {
                suite,
                key: key.to_vec(),
                salt: salt.try_into().ok()?,
                mki_len,
            })
        });
        Some(Crypto {
            tag,
            suite_name: suite_name.chars().take(64).collect(),
            key,
        })
    }
}

/// Why a packet was not decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("the packet is shorter than its header and tag")]
    Short,
    #[error("the authentication tag does not match")]
    Authentication,
}

/// AES in counter mode over a 16-byte initial counter block: the keystream XORed in place.
fn aes_ctr(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
    type Ctr128<C> = ctr::Ctr128BE<C>;
    match key.len() {
        16 => {
            if let Ok(mut c) = Ctr128::<aes::Aes128>::new_from_slices(key, iv) {
                c.apply_keystream(data);
            }
        }
        32 => {
            if let Ok(mut c) = Ctr128::<aes::Aes256>::new_from_slices(key, iv) {
                c.apply_keystream(data);
            }
        }
        _ => {}
    }
}

/// The key derivation function (RFC 3711 §4.3.1, key derivation rate 0): `len` bytes for
/// `label` from the master key and salt.
fn derive(master: &MasterKey, label: u8, len: usize) -> Vec<u8> {
    let mut iv = [0u8; 16];
    for (v, s) in iv.iter_mut().zip(&master.salt) {
        *v = *s;
    }
    // key_id = label || r (r = 0), 56 bits aligned to the right of the 112-bit salt.
    iv[7] ^= label;
    let mut out = vec![0u8; len];
    aes_ctr(&master.key, &iv, &mut out);
    out
}

/// The session keys of one SRTP stream and its rollover counter.
pub struct Context {
    suite: Suite,
    mki_len: usize,
    key: Vec<u8>,
    salt: [u8; SALT_LEN],
    auth: Hmac<Sha1>,
    roc: u32,
    /// The highest sequence number authenticated, with `roc` its rollover counter.
    last_seq: Option<u16>,
}

impl Context {
    pub fn new(master: &MasterKey) -> Context {
        let key = derive(master, 0, master.suite.key_len());
        let auth_key = derive(master, 1, AUTH_KEY_LEN);
        let mut salt = [0u8; SALT_LEN];
        for (s, d) in salt.iter_mut().zip(derive(master, 2, SALT_LEN)) {
            *s = d;
        }
        // HMAC takes a key of any length; this cannot fail.
        let auth = <Hmac<Sha1> as Mac>::new_from_slice(&auth_key)
            .unwrap_or_else(|_| <Hmac<Sha1> as KeyInit>::new(&Default::default()));
        Context {
            suite: master.suite,
            mki_len: master.mki_len,
            key,
            salt,
            auth,
            roc: 0,
            last_seq: None,
        }
    }

    /// The rollover counter a packet with sequence number `seq` most likely has (§3.3.1).
    fn guess_roc(&self, seq: u16) -> u32 {
        let Some(last) = self.last_seq else {
            return self.roc;
        };
        if last < 32768 {
            if seq > last && seq - last > 32768 {
                self.roc.wrapping_sub(1)
            } else {
                self.roc
            }
        } else if last - 32768 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        }
    }

    /// Checks a whole SRTP packet (`header_len` bytes of RTP header, with its CSRCs and
    /// extension) and returns its decrypted payload (RTP padding still on it).
    pub fn unprotect(&mut self, packet: &[u8], header_len: usize) -> Result<Vec<u8>, SrtpError> {
        let tag_len = self.suite.tag_len();
        let end = packet
            .len()
            .checked_sub(tag_len + self.mki_len)
            .filter(|&e| e >= header_len && header_len >= 12)
            .ok_or(SrtpError::Short)?;
        let (Some(authenticated), Some(tag), Some(header)) = (
            packet.get(..end),
            packet.get(packet.len() - tag_len..),
            packet.get(..12).and_then(|h| <[u8; 12]>::try_from(h).ok()),
        ) else {
            return Err(SrtpError::Short);
        };
        let seq = u16::from_be_bytes([header[2], header[3]]);
        let ssrc = [header[8], header[9], header[10], header[11]];
        let roc = self.guess_roc(seq);
        let mut mac = self.auth.clone();
        mac.update(authenticated);
        mac.update(&roc.to_be_bytes());
        let full = mac.finalize().into_bytes();
        if full.get(..tag_len) != Some(tag) {
            return Err(SrtpError::Authentication);
        }
        // IV = (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16), index = ROC · 2^16 + SEQ.
        let mut iv = [0u8; 16];
        for (v, s) in iv.iter_mut().zip(&self.salt) {
            *v = *s;
        }
        for (v, b) in iv.iter_mut().skip(4).zip(ssrc) {
            *v ^= b;
        }
        let index = (u64::from(roc) << 16) | u64::from(seq);
        for (v, b) in iv
            .iter_mut()
            .skip(8)
            .zip(index.to_be_bytes().iter().skip(2))
        {
            *v ^= b;
        }
        let mut payload = authenticated.get(header_len..).unwrap_or(&[]).to_vec();
        aes_ctr(&self.key, &iv, &mut payload);
        // The packet authenticated: remember how far the stream has come.
        match self.last_seq {
            None => {
                self.roc = roc;
                self.last_seq = Some(seq);
            }
            Some(last) => {
                if roc > self.roc || (roc == self.roc && seq > last) {
                    self.roc = roc;
                    self.last_seq = Some(seq);
                }
            }
        }
        Ok(payload)
    }
}

/// One AES block encrypted (for the known-answer tests of the primitives).
#[cfg(test)]
fn aes128_block(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    use aes::cipher::BlockEncrypt;
    let c = aes::Aes128::new(key.into());
    let mut b = (*block).into();
    c.encrypt_block(&mut b);
    b.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn master(key: &str, salt: &str) -> MasterKey {
        MasterKey {
            suite: Suite::AesCm128Sha1_80,
            key: hex(key),
            salt: hex(salt).try_into().unwrap(),
            mki_len: 0,
        }
    }

    /// RFC 3711 Appendix B.3: the session keys of the example master key.
    #[test]
    fn key_derivation_matches_rfc_3711_b3() {
        let m = master(
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        assert_eq!(derive(&m, 0, 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(derive(&m, 2, 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            derive(&m, 1, 20),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    /// RFC 3711 Appendix B.2: the AES-CM keystream for SSRC 0, index 0.
    #[test]
    fn keystream_matches_rfc_3711_b2() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C").try_into().unwrap();
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut stream = [0u8; 48];
        aes_ctr(&key, &iv, &mut stream);
        assert_eq!(
            stream.to_vec(),
            hex(concat!(
                "E03EAD0935C95E80E166B16DD92B4EB4",
                "D23513162B02D0F72A43A2FE4A5F97AB",
                "41E95B3BB0A2E8DD477901E4FCA894C0"
            ))
        );
        assert_eq!(aes128_block(&key, &iv).to_vec(), stream[..16].to_vec());
    }

    /// `a=crypto` values: the suite, the key's length checked, the MKI read, junk refused.
    #[test]
    fn crypto_attributes() {
        let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"; // 30 bytes
        let c = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4")).unwrap();
        assert_eq!(c.tag, 1);
        let k = c.key.unwrap();
        assert_eq!((k.suite, k.mki_len), (Suite::AesCm128Sha1_80, 4));
        assert!(!format!("{k:?}").contains("WVNf"));
        let c = Crypto::parse(&format!("2 AES_CM_128_HMAC_SHA1_32 inline:{key}")).unwrap();
        assert_eq!(c.key.unwrap().suite.tag_len(), 4);
        // A key of the wrong length, a suite not decrypted here, junk.
        assert!(
            Crypto::parse("1 AES_CM_128_HMAC_SHA1_80 inline:AAAA")
                .unwrap()
                .key
                .is_none()
        );
        assert!(
            Crypto::parse(&format!("1 AEAD_AES_128_GCM inline:{key}"))
                .unwrap()
                .key
                .is_none()
        );
        assert!(Crypto::parse("x").is_none());
        assert!(Crypto::parse("").is_none());
    }

    /// A packet protected as RFC 3711 says (the tag over header, payload and ROC; the payload
    /// XORed with the keystream at its index) opens to its payload; one bit changed fails.
    #[test]
    fn packets_open_and_tampering_fails() {
        let m = master(
            "E1F97A0D3E018BE0D64FA32C06DE4139",
            "0EC675AD498AFEEBB6960B3AABE6",
        );
        let protect = |seq: u16, roc: u32, payload: &[u8]| -> Vec<u8> {
            let c = Context::new(&m);
            let mut p = vec![
                0x80,
                8,
                (seq >> 8) as u8,
                seq as u8,
                0,
                0,
                0,
                160,
                1,
                2,
                3,
                4,
            ];
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(&c.salt);
            for (i, b) in [1u8, 2, 3, 4].iter().enumerate() {
                iv[4 + i] ^= b;
            }
            let index = (u64::from(roc) << 16) | u64::from(seq);
            for (i, b) in index.to_be_bytes().iter().skip(2).enumerate() {
                iv[8 + i] ^= b;
            }
            let mut body = payload.to_vec();
            aes_ctr(&c.key, &iv, &mut body);
            p.extend_from_slice(&body);
            let mut mac = c.auth.clone();
            mac.update(&p);
            mac.update(&roc.to_be_bytes());
            p.extend_from_slice(&mac.finalize().into_bytes()[..10]);
            p
        };
        let mut c = Context::new(&m);
        let payload: Vec<u8> = (0..160u8).collect();
        assert_eq!(
            c.unprotect(&protect(65534, 0, &payload), 12).unwrap(),
            payload
        );
        assert_eq!(
            c.unprotect(&protect(65535, 0, &payload), 12).unwrap(),
            payload
        );
        // Past the wrap, the rollover counter is guessed as 1.
        assert_eq!(c.unprotect(&protect(1, 1, &payload), 12).unwrap(), payload);
        let mut bad = protect(2, 1, &payload);
        bad[20] ^= 1;
        assert_eq!(c.unprotect(&bad, 12), Err(SrtpError::Authentication));
        assert_eq!(c.unprotect(&[0x80; 15], 12), Err(SrtpError::Short));
    }
}
