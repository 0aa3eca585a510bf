//! Live inputs on the command line: interfaces (`-i`), HEP listeners (`--hep-listen`), the HEP
//! sender (`--hep-send`), `--duration`, and stopping on Ctrl-C.
//!
//! Builds [`crate::capture::LiveSource`]s from arguments and reports their counters; reading
//! interfaces and sockets belongs to [`crate::capture`].

use super::hep_send::HepSender;
use crate::capture::hep::HepListen;
use crate::capture::{InputStats, LiveSource, privilege};
use crate::hep::SenderIdentity;
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Args, Debug, Clone, Default)]
pub(super) struct LiveArgs {
    /// Capture live on this interface (repeatable; `any` for all). Needs root or
    /// `setcap cap_net_raw,cap_net_admin=eip` on the binary. Ends with Ctrl-C or --duration.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// Capture filter, applied to each packet before it is queued or parsed: host, net, port,
    /// portrange, udp, tcp, sctp, ip, ip6, and/or/not, parentheses (see README); full BPF, in
    /// the kernel, with the `libpcap` build.
    #[arg(short = 'f', long = "capture-filter", value_name = "EXPR")]
    pub capture_filter: Option<String>,
    /// Receive HEP (v1/v2/v3) from agents: `udp:ADDR:PORT` or `tcp:ADDR:PORT` (repeatable).
    #[arg(long = "hep-listen", value_name = "udp:ADDR:PORT")]
    pub hep_listen: Vec<HepListen>,
    /// Forward every SIP message seen as HEP v3 to a collector: `udp:HOST:PORT`.
    #[arg(long = "hep-send", value_name = "udp:HOST:PORT")]
    pub hep_send: Option<String>,
    /// HEP capture agent id sent with --hep-send.
    #[arg(long = "hep-id", value_name = "N", default_value_t = 1)]
    pub hep_id: u32,
    /// HEP authentication key sent with --hep-send.
    #[arg(long = "hep-pass", value_name = "KEY")]
    pub hep_pass: Option<String>,
    /// HEP node name sent with --hep-send.
    #[arg(long = "hep-node", value_name = "NAME")]
    pub hep_node: Option<String>,
    /// Stop live capture after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Run as root, become this user once the capture sockets are open (default: the user
    /// that ran sudo, else `nobody`; `root` stays root). Output files are created after that.
    #[arg(short = 'Z', long = "user", value_name = "USER")]
    pub user: Option<String>,
}

impl LiveArgs {
    pub fn any(&self) -> bool {
        !self.interfaces.is_empty() || !self.hep_listen.is_empty()
    }

    /// Opens the live inputs (sources numbered from `first`) with their names. The sockets are
    /// opened here, so that a missing privilege or a port in use is an error before anything
    /// runs. `wait` is how long the source waits for a frame before a tick.
    pub fn open(
        &self,
        first: usize,
        stop: Arc<AtomicBool>,
        wait: Duration,
    ) -> Result<(LiveSource, Vec<String>)> {
        let duration = match self.duration {
            Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
            Some(_) => anyhow::bail!("--duration must be a positive number of seconds"),
            None => None,
        };
        let mut live = LiveSource::new(stop, duration, first);
        live.set_wait(wait);
        let mut names = Vec::new();
        for iface in &self.interfaces {
            crate::capture::interface::open(
                &mut live,
                iface,
                self.capture_filter.as_deref(),
                crate::net::link::filter_facts,
            )?;
            names.push(iface.clone());
        }
        for spec in &self.hep_listen {
            let bound = crate::capture::hep::listen(&mut live, *spec)
                .with_context(|| format!("cannot listen for HEP on {spec}"))?;
            names.push(match spec {
                HepListen::Udp(_) => format!("hep udp:{bound}"),
                HepListen::Tcp(_) => format!("hep tcp:{bound}"),
            });
        }
        // Every socket is open: root is not needed any more (tcpdump's -Z).
        let who = privilege::target(self.user.as_deref())
            .with_context(|| format!("--user {}", self.user.as_deref().unwrap_or("")))?;
        if let Some(who) = who {
            privilege::become_user(who).context("cannot drop root privileges")?;
        }
        Ok((live, names))
    }

    /// The HEP sender, when asked for.
    pub fn sender(&self) -> Result<Option<HepSender>> {
        let Some(spec) = &self.hep_send else {
            return Ok(None);
        };
        let me = SenderIdentity {
            capture_id: self.hep_id,
            auth_key: self.hep_pass.clone(),
            node: self.hep_node.clone(),
        };
        HepSender::connect(spec, me)
            .map(Some)
            .with_context(|| format!("cannot send HEP to {spec}"))
    }
}

/// Ctrl-C and SIGTERM end live inputs cleanly (the commands then write what they have); a
/// second Ctrl-C ends the process at once.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, the conditional shutdown exits when the flag is already set.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    Ok(stop)
}

/// One line per live input on stderr: what it received and what was dropped, never silent.
pub fn report(stats: &[InputStats], sender: Option<&super::hep_send::SenderCounters>) {
    let mut err = std::io::stderr();
    for s in stats {
        let _ = writeln!(
            err,
            "sipscope: {}: {} packets received, {} dropped by the kernel, {} dropped by sipscope{}",
            crate::sanitize::terminal(&s.name),
            s.received,
            s.dropped_kernel,
            s.dropped_internal,
            if s.errors > 0 {
                format!(", {} unusable", s.errors)
            } else {
                String::new()
            }
        );
    }
    if let Some(c) = sender {
        let _ = writeln!(
            err,
            "sipscope: HEP sent: {} messages, {} failed; {} RTCP compounds, {} call reports",
            c.sent.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.rtcp.load(Ordering::Relaxed),
            c.reports.load(Ordering::Relaxed)
        );
    }
}
