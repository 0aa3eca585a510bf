//! The hop graph of a call: endpoints (address:port) as nodes, request forwarding as edges,
//! built from out-of-dialog requests (those are the ones proxies route; in-dialog requests
//! follow the route set and go both ways). It orders ladder columns (caller left, proxies in
//! path order, callee right) and finds forwarding cycles.

use crate::WireMap;
use crate::flow::{Call, SipMessage};
use petgraph::Direction;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use serde::Serialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HopEdge {
    pub from: SocketAddr,
    pub to: SocketAddr,
    /// Out-of-dialog requests sent along this edge.
    pub requests: u32,
    /// The first of them (message index in the call).
    pub first_message: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct HopGraph {
    /// Every endpoint of the call in ladder order.
    pub endpoints: Vec<SocketAddr>,
    pub edges: Vec<HopEdge>,
}

/// Requests that a proxy routes: no To tag yet.
fn routed(m: &SipMessage) -> bool {
    m.is_request() && m.to_tag.is_none()
}

fn graph<'a>(requests: impl Iterator<Item = &'a SipMessage>) -> DiGraph<SocketAddr, (u32, usize)> {
    let mut g: DiGraph<SocketAddr, (u32, usize)> = DiGraph::new();
    // Indexes by address and by endpoint pair: a hostile call with thousands of endpoints
    // must not make building its graph quadratic.
    let mut nodes: WireMap<SocketAddr, NodeIndex> = WireMap::default();
    let mut edges: WireMap<(NodeIndex, NodeIndex), EdgeIndex> = WireMap::default();
    for m in requests {
        let [a, b] =
            [m.src, m.dst].map(|addr| *nodes.entry(addr).or_insert_with(|| g.add_node(addr)));
        match edges.get(&(a, b)) {
            Some(&e) => g[e].0 += 1,
            None => {
                edges.insert((a, b), g.add_edge(a, b, (1, m.index)));
            }
        }
    }
    g
}

impl HopGraph {
    pub fn build(call: &Call) -> HopGraph {
        let any_routed = call.messages.iter().any(routed);
        // A call joined mid-dialog has no routed request: use every request instead.
        let g = graph(call.messages.iter().filter(|m| {
            if any_routed {
                routed(m)
            } else {
                m.is_request()
            }
        }));
        let mut order: Vec<NodeIndex> = Vec::new();
        let mut visited = vec![false; g.node_count()];
        // Depth first from each source in order of first use, children in order of first
        // use: caller, then the path its requests took, forks in the order they happened.
        let mut roots: Vec<(usize, NodeIndex)> = g
            .edge_indices()
            .filter_map(|e| Some((g[e].1, g.edge_endpoints(e)?.0)))
            .collect();
        roots.sort();
        for (_, root) in roots {
            let mut stack = vec![root];
            while let Some(n) = stack.pop() {
                match visited.get_mut(n.index()) {
                    Some(v) if !*v => *v = true,
                    _ => continue,
                }
                order.push(n);
                let mut next: Vec<(usize, NodeIndex)> = g
                    .edges_directed(n, Direction::Outgoing)
                    .map(|e| (e.weight().1, petgraph::visit::EdgeRef::target(&e)))
                    .collect();
                next.sort();
                // Reverse onto the stack so the earliest child is visited first.
                stack.extend(next.into_iter().rev().map(|(_, t)| t));
            }
        }
        let mut endpoints: Vec<SocketAddr> = order.iter().map(|&n| g[n]).collect();
        let mut listed: std::collections::HashSet<SocketAddr, foldhash::fast::RandomState> =
            endpoints.iter().copied().collect();
        for m in &call.messages {
            for a in [m.src, m.dst] {
                if listed.insert(a) {
                    endpoints.push(a);
                }
            }
        }
        let mut edges: Vec<HopEdge> = g
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = g.edge_endpoints(e)?;
                Some(HopEdge {
                    from: g[a],
                    to: g[b],
                    requests: g[e].0,
                    first_message: g[e].1,
                })
            })
            .collect();
        edges.sort_by_key(|e| e.first_message);
        HopGraph { endpoints, edges }
    }
}

/// True when these requests (one request followed across hops) went round in a cycle,
/// including a node forwarding to itself.
pub fn has_cycle<'a>(requests: impl Iterator<Item = &'a SipMessage>) -> bool {
    petgraph::algo::is_cyclic_directed(&graph(requests))
}

#[cfg(test)]
mod tests {
    use crate::diagnose::rules::testkit::*;
    use crate::synth::script::Script;

    #[test]
    fn caller_left_proxy_middle_callee_right() {
        let mut s = Script::new();
        // The callee's response is seen first: order must still follow the request path.
        let ok = M {
            start: "SIP/2.0 100 Trying",
            ..M::default()
        };
        s.udp(0, PROXY, CALLER, &ok.text());
        s.udp(1, CALLER, PROXY, &M::default().text());
        let fwd = M {
            via: ("10.0.0.2:5060", "z9hG4bK-2"),
            vias: 2,
            ..M::default()
        };
        s.udp(2, PROXY, CALLEE, &fwd.text());
        let (calls, _) = run(&s);
        let h = super::HopGraph::build(&calls[0]);
        let names: Vec<String> = h.endpoints.iter().map(|a| a.to_string()).collect();
        assert_eq!(names, vec![CALLER, PROXY, CALLEE]);
        assert_eq!(h.edges.len(), 2);
        assert!(!super::has_cycle(
            calls[0].messages.iter().filter(|m| m.is_request())
        ));
    }
}
