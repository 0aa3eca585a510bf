//! Capture filters for live capture without libpcap: a subset of the pcap-filter language
//! (`host`, `src host`, `dst host`, `net`, `port`, `src port`, `dst port`, `portrange`, `udp`,
//! `tcp`, `sctp`, `ip`, `ip6`, `and`/`&&`, `or`/`||`, `not`/`!`, parentheses), evaluated on each
//! frame in the capture thread, before the frame is queued or parsed.
//!
//! Owns the expression syntax and its evaluation on the outer IP and transport headers. Unlike
//! BPF, a port test is true for an IP fragment that is not the first (it carries no ports), so
//! that `port 5060` keeps every fragment of a large INVITE, not only the first.

use super::LinkType;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Host(Dir, IpAddr),
    Net(Dir, IpAddr, u8),
    Port(Dir, u16, u16),
    Proto(Proto),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Src,
    Dst,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Ip,
    Ip6,
    Udp,
    Tcp,
    Sctp,
}

/// Why a capture filter was refused: one line for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// Parses a filter expression.
pub fn parse(text: &str) -> Result<Expr, FilterError> {
    parse_expr(text).map_err(FilterError)
}

fn parse_expr(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text);
    if tokens.is_empty() {
        return Err("empty capture filter".into());
    }
    let mut p = Parser { tokens, at: 0 };
    let e = p.or()?;
    match p.peek() {
        None => Ok(e),
        Some(t) => Err(format!("capture filter: unexpected `{t}`")),
    }
}

fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let two = |next: char, chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            chars.next_if_eq(&next).is_some()
        };
        let symbol = match c {
            '(' | ')' => Some(c.to_string()),
            '!' => Some("not".into()),
            '&' if two('&', &mut chars) => Some("and".into()),
            '|' if two('|', &mut chars) => Some("or".into()),
            _ => None,
        };
        if c.is_whitespace() || symbol.is_some() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            out.extend(symbol);
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }
    fn next(&mut self) -> Option<String> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.peek() == Some("or") {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        loop {
            match self.peek() {
                Some("and") => {
                    self.at += 1;
                    e = Expr::And(Box::new(e), Box::new(self.not()?));
                }
                // Juxtaposition is `and`, as in pcap-filter: `udp port 5060`.
                Some(t) if t != "or" && t != ")" => {
                    e = Expr::And(Box::new(e), Box::new(self.not()?));
                }
                _ => return Ok(e),
            }
        }
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.peek() == Some("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let t = self.next().ok_or("capture filter ends too early")?;
        let dir = match t.as_str() {
            "src" => Some(Dir::Src),
            "dst" => Some(Dir::Dst),
            _ => None,
        };
        let (dir, t) = match dir {
            Some(d) => (d, self.next().ok_or("capture filter ends after src/dst")?),
            None => (Dir::Either, t),
        };
        let value = |p: &mut Parser, what: &str| {
            p.next()
                .ok_or_else(|| format!("capture filter: `{what}` needs a value"))
        };
        match t.as_str() {
            "(" if dir == Dir::Either => {
                let e = self.or()?;
                match self.next().as_deref() {
                    Some(")") => Ok(e),
                    _ => Err("capture filter: missing `)`".into()),
                }
            }
            "host" => {
                let v = value(self, "host")?;
                let ip = v
                    .parse()
                    .map_err(|_| format!("capture filter: `{v}` is not an IP address"))?;
                Ok(Expr::Host(dir, ip))
            }
            "net" => {
                let v = value(self, "net")?;
                let (addr, bits) = v.split_once('/').unwrap_or((&v, ""));
                let ip: IpAddr = addr
                    .parse()
                    .map_err(|_| format!("capture filter: `{v}` is not a network"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let bits = if bits.is_empty() {
                    max
                } else {
                    bits.parse::<u8>()
                        .ok()
                        .filter(|b| *b <= max)
                        .ok_or_else(|| format!("capture filter: bad prefix length in `{v}`"))?
                };
                Ok(Expr::Net(dir, ip, bits))
            }
            "port" => {
                let v = value(self, "port")?;
                let n = v
                    .parse()
                    .map_err(|_| format!("capture filter: `{v}` is not a port"))?;
                Ok(Expr::Port(dir, n, n))
            }
            "portrange" => {
                let v = value(self, "portrange")?;
                let range = v
                    .split_once('-')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .filter(|(a, b)| a <= b)
                    .ok_or_else(|| format!("capture filter: `{v}` is not a port range"))?;
                Ok(Expr::Port(dir, range.0, range.1))
            }
            "ip" | "ip6" | "udp" | "tcp" | "sctp" if dir == Dir::Either => {
                Ok(Expr::Proto(match t.as_str() {
                    "ip" => Proto::Ip,
                    "ip6" => Proto::Ip6,
                    "udp" => Proto::Udp,
                    "tcp" => Proto::Tcp,
                    _ => Proto::Sctp,
                }))
            }
            other => Err(format!(
                "capture filter: `{other}` is not supported without libpcap (host, net, port, \
                 portrange, udp, tcp, sctp, ip, ip6, and, or, not, parentheses)"
            )),
        }
    }
}

/// What a filter looks at in a frame: the outer IP header's addresses and protocol, and the
/// transport's ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    /// `None` for an IP fragment that is not the first (no transport header).
    pub ports: Option<(u16, u16)>,
}

/// Reads a frame's [`Facts`]. Capture does not look into packets: the command line passes the
/// network stage's reader (`net::link::filter_facts`).
pub type FactsOf = fn(LinkType, &[u8]) -> Option<Facts>;

/// A parsed capture filter with the reader of the frames it tests.
#[derive(Debug, Clone)]
pub struct CaptureFilter {
    expr: Expr,
    facts: FactsOf,
}

impl CaptureFilter {
    /// Parses `text`; the error is one line for the user.
    pub fn parse(text: &str, facts: FactsOf) -> Result<CaptureFilter, FilterError> {
        Ok(CaptureFilter {
            expr: parse(text)?,
            facts,
        })
    }

    /// True when the frame passes. Frames that are not IP match only negations.
    pub fn matches(&self, link: LinkType, data: &[u8]) -> bool {
        self.expr.eval((self.facts)(link, data).as_ref())
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Expr {
    fn eval(&self, f: Option<&Facts>) -> bool {
        let either = |dir: Dir, test: &dyn Fn(IpAddr) -> bool, f: &Facts| match dir {
            Dir::Src => test(f.src),
            Dir::Dst => test(f.dst),
            Dir::Either => test(f.src) || test(f.dst),
        };
        match self {
            Expr::Not(e) => !e.eval(f),
            Expr::And(a, b) => a.eval(f) && b.eval(f),
            Expr::Or(a, b) => a.eval(f) || b.eval(f),
            _ => {
                let Some(f) = f else {
                    return false;
                };
                match self {
                    Expr::Host(dir, ip) => either(*dir, &|a| a == *ip, f),
                    Expr::Net(dir, net, bits) => either(*dir, &|a| in_net(a, *net, *bits), f),
                    Expr::Port(dir, lo, hi) => match f.ports {
                        // A later fragment: its ports are unknown, keep it (see module doc).
                        None => true,
                        Some(_) if !matches!(f.proto, 6 | 17 | 132) => false,
                        Some((s, d)) => {
                            let inr = |p: u16| (*lo..=*hi).contains(&p);
                            match dir {
                                Dir::Src => inr(s),
                                Dir::Dst => inr(d),
                                Dir::Either => inr(s) || inr(d),
                            }
                        }
                    },
                    Expr::Proto(p) => match p {
                        Proto::Ip => f.src.is_ipv4(),
                        Proto::Ip6 => f.src.is_ipv6(),
                        Proto::Udp => f.proto == 17,
                        Proto::Tcp => f.proto == 6,
                        Proto::Sctp => f.proto == 132,
                    },
                    _ => false,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn udp(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(src, dst, 64)
            .udp(sp, dp)
            .write(&mut v, b"x")
            .unwrap();
        v
    }

    fn m(f: &str, pkt: &[u8]) -> bool {
        CaptureFilter::parse(f, crate::net::link::filter_facts)
            .unwrap()
            .matches(LinkType::RAW, pkt)
    }

    #[test]
    fn primitives_and_combinations() {
        let p = udp([10, 0, 0, 1], [192, 168, 1, 2], 40000, 5060);
        assert!(m("port 5060", &p));
        assert!(m("udp and dst port 5060", &p));
        assert!(!m("src port 5060", &p));
        assert!(m("portrange 5060-5070", &p));
        assert!(!m("tcp", &p));
        assert!(m("host 10.0.0.1", &p));
        assert!(m("src host 10.0.0.1 && dst net 192.168.0.0/16", &p));
        assert!(!m("net 172.16.0.0/12", &p));
        assert!(m("not tcp", &p));
        assert!(m("!(tcp || port 80)", &p));
        assert!(m("(tcp and port 5060) or (udp and port 5060)", &p));
        assert!(m("ip and not ip6", &p));
        assert!(m("udp port 5060", &p), "juxtaposition is `and`");
        assert!(!m("tcp port 5060", &p));
        assert!(m("udp dst port 5060 or tcp", &p));
    }

    #[test]
    fn later_fragments_pass_port_tests() {
        let whole = udp([10, 0, 0, 1], [10, 0, 0, 2], 5060, 5060);
        // An IPv4 header with fragment offset 185 (×8 bytes), protocol UDP, no UDP header.
        let mut frag = whole[..20].to_vec();
        frag[6] = 0;
        frag[7] = 185;
        frag.extend_from_slice(b"rest of the datagram");
        let len = (frag.len() as u16).to_be_bytes();
        frag[2..4].copy_from_slice(&len);
        assert!(m("port 5060", &frag));
        assert!(m("udp and host 10.0.0.2", &frag));
        assert!(!m("port 5060", &udp([10, 0, 0, 1], [10, 0, 0, 2], 1, 2)));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        assert!(parse("").is_err());
        assert!(parse("port").unwrap_err().0.contains("needs a value"));
        assert!(
            parse("host example.com")
                .unwrap_err()
                .0
                .contains("not an IP")
        );
        assert!(
            parse("ether host 1:2:3:4:5:6")
                .unwrap_err()
                .0
                .contains("libpcap")
        );
        assert!(parse("(udp").unwrap_err().0.contains(")"));
        assert!(parse("udp )").unwrap_err().0.contains("unexpected"));
        assert!(parse("net 10.0.0.0/40").is_err());
        assert!(parse("portrange 9-1").is_err());
    }
}
