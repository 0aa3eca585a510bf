//! Call-IDs masked by Kamailio's `topoh` module (`mask_callid=1`): the callee's leg carries
//! `!!:` and the caller's Call-ID in base64 over an alphabet shuffled with the module's
//! `mask_key`. With the key (Kamailio's default unless the operator set one) the original is
//! read back exactly, which ties the two legs beyond doubt. The shuffle is Kamailio's own
//! (`th_mask.c`: MD5 of the key twice and its CRC-CCITT pick each swap), so it is written
//! here: no crate does it.

use md5::{Digest, Md5};

/// Kamailio's default `mask_key`.
pub const DEFAULT_KEY: &str = "_static_value_";
/// Kamailio's default `callid_prefix`.
pub const PREFIX: &str = "!!:";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-";

/// CRC-16 with the reflected CCITT polynomial, as Kamailio's `crcitt_string` computes it.
fn crcitt(s: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &c in s {
        let mut x = (crc ^ u16::from(c)) & 0xff;
        for _ in 0..8 {
            x = if x & 1 == 1 {
                (x >> 1) ^ 0x8408
            } else {
                x >> 1
            };
        }
        crc = x ^ (crc >> 8);
    }
    !crc
}

/// The decoding table of one key: the value of each alphabet byte, or `None`.
#[derive(Clone)]
pub struct Mask {
    values: [Option<u8>; 256],
}

impl std::fmt::Debug for Mask {
    // The table is the key in disguise: not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mask")
    }
}

impl Mask {
    pub fn new(key: &str) -> Option<Mask> {
        let key = key.as_bytes();
        if key.is_empty() {
            return None;
        }
        let mut md5 = Md5::new();
        md5.update(key);
        md5.update(key);
        let digest = md5.finalize();
        let word = |i: usize| -> u32 {
            let b = |k: usize| digest.get(4 * i + k).copied().unwrap_or(0);
            u32::from_le_bytes([b(0), b(1), b(2), b(3)])
        };
        let crc = u32::from(crcitt(key));
        let len = key.len() as u32;
        let mut table = *ALPHABET;
        for last in (2..=64u32).rev() {
            let pick = crc.wrapping_add(last).wrapping_add(len);
            // `char` is signed where Kamailio runs: a key byte above 127 counts negative.
            let k = key.get((pick % len) as usize).copied().unwrap_or(0) as i8 as i32 as u32;
            let r = word((pick % 4) as usize).wrapping_add(k) % last;
            table.swap(r as usize, (last - 1) as usize);
        }
        let mut values = [None; 256];
        for (i, &c) in table.iter().enumerate() {
            if let Some(v) = values.get_mut(usize::from(c)) {
                *v = Some(i as u8);
            }
        }
        Some(Mask { values })
    }

    /// The Call-ID that `masked` (with the `!!:` prefix) was made from, if it decodes to text.
    pub fn unmask(&self, masked: &str) -> Option<String> {
        let body = masked.strip_prefix(PREFIX)?.trim_end_matches('*');
        if body.is_empty() || body.len() > 1024 {
            return None;
        }
        let mut out = Vec::with_capacity(body.len() * 3 / 4);
        let mut block: u32 = 0;
        let mut bits = 0;
        for c in body.bytes() {
            let v = self.values.get(usize::from(c)).copied().flatten()?;
            block = (block << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((block >> bits) as u8);
                block &= (1 << bits) - 1;
            }
        }
        let text = String::from_utf8(out).ok()?;
        // A Call-ID is printable text; a wrong key gives bytes that are not.
        text.bytes().all(|b| b.is_ascii_graphic()).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kamailio's `crcitt_string` is CRC-16/X-25: the check value of "123456789" is 0x906E.
    #[test]
    fn crc_is_kamailios() {
        assert_eq!(crcitt(b"123456789"), 0x906e);
    }

    /// Call-IDs kamailio 5.6's topoh masked with `mask_key` "sipscope-sample-key"
    /// (samples/groups/sbc-topoh.pcap) read back exactly; with another key they do not.
    #[test]
    fn kamailios_masked_call_ids_read_back() {
        let m = Mask::new("sipscope-sample-key").unwrap();
        assert_eq!(
            m.unmask("!!:FNCtFSGCb.GkFoV3FPTMsof*").as_deref(),
            Some("1-30046@127.0.0.1")
        );
        assert_eq!(
            m.unmask("!!:FgCtFSGCb.GkFoV3FPTMsof*").as_deref(),
            Some("2-30046@127.0.0.1")
        );
        let other = Mask::new(DEFAULT_KEY).unwrap();
        assert_ne!(
            other.unmask("!!:FNCtFSGCb.GkFoV3FPTMsof*").as_deref(),
            Some("1-30046@127.0.0.1")
        );
    }

    #[test]
    fn what_is_not_masked_is_not_read() {
        let m = Mask::new(DEFAULT_KEY).unwrap();
        assert_eq!(m.unmask("abc@host"), None);
        assert_eq!(m.unmask("!!:"), None);
        assert_eq!(m.unmask("!!:@@@@"), None);
        assert!(Mask::new("").is_none());
    }
}
