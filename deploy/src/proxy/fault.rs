//! The fault vocabulary of the proxy: what can go wrong on a link, per direction.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One direction of a proxied connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Bytes the client sends towards the upstream (the broker).
    ToUpstream,
    /// Bytes the upstream sends back towards the client.
    ToClient,
}

impl Direction {
    /// Both directions, in a fixed order.
    pub const BOTH: [Direction; 2] = [Direction::ToUpstream, Direction::ToClient];

    /// The kebab-case name used in logs and serialized faults.
    pub fn name(self) -> &'static str {
        match self {
            Direction::ToUpstream => "to-upstream",
            Direction::ToClient => "to-client",
        }
    }
}

/// Added delay for every chunk of bytes, `delay ± jitter` (uniformly drawn).
///
/// Byte order is always preserved: a chunk is never delivered before the
/// chunk read before it, so a jitter larger than the gap between chunks
/// compresses rather than reorders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latency {
    pub delay: Duration,
    pub jitter: Duration,
}

impl Latency {
    /// Draws one delay from `[delay - jitter, delay + jitter]` (the lower end
    /// saturates at zero) using `random`, any uniformly distributed `u64`.
    pub fn sample(&self, random: u64) -> Duration {
        let delay = self.delay.as_nanos().min(u64::MAX as u128) as u64;
        let jitter = self.jitter.as_nanos().min(u64::MAX as u128 / 4) as u64;
        if jitter == 0 {
            return self.delay;
        }
        let span = jitter.saturating_mul(2).saturating_add(1);
        let offset = random % span; // in [0, 2*jitter]
        let nanos = delay.saturating_add(offset).saturating_sub(jitter);
        Duration::from_nanos(nanos)
    }
}

/// The faults applied to one direction of every connection through a proxy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionFault {
    /// Each chunk is held back by this much before it is forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<Latency>,
    /// Forwarding rate limit in bytes per second (token bucket with a burst
    /// of 1/20 s worth of bytes). `Some(0)` stalls the direction entirely.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    /// Forward nothing: bytes stay queued (in the proxy and in the kernel's
    /// socket buffers, exactly as TCP would keep retransmitting them through a
    /// network partition) and flow again once the black hole is lifted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blackhole: bool,
}

impl DirectionFault {
    /// True when no byte may pass at all in this direction.
    pub fn is_stalled(&self) -> bool {
        self.blackhole || self.bandwidth == Some(0)
    }

    /// True when this direction forwards at full speed.
    pub fn is_healthy(&self) -> bool {
        self.latency.is_none() && self.bandwidth.is_none() && !self.blackhole
    }

    fn merge(&mut self, other: &DirectionFault) {
        if other.latency.is_some() {
            self.latency = other.latency;
        }
        if other.bandwidth.is_some() {
            self.bandwidth = other.bandwidth;
        }
        self.blackhole |= other.blackhole;
    }
}

/// Everything that is currently wrong with a link (one proxy).
///
/// The constructors each build one fault in both directions; narrow it with
/// [`LinkFault::only`] and combine several with [`LinkFault::and`]:
///
/// ```
/// use std::time::Duration;
/// use gregor_deploy::proxy::{Direction, LinkFault};
///
/// let slow_replies = LinkFault::latency(Duration::from_millis(100), Duration::from_millis(10))
///     .only(Direction::ToClient)
///     .and(LinkFault::bandwidth(1_000_000));
/// assert!(slow_replies.get(Direction::ToUpstream).latency.is_none());
/// assert_eq!(slow_replies.get(Direction::ToUpstream).bandwidth, Some(1_000_000));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkFault {
    #[serde(default)]
    pub to_upstream: DirectionFault,
    #[serde(default)]
    pub to_client: DirectionFault,
    /// Reset (TCP RST) every current connection, and every new one for as
    /// long as this is set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset: bool,
}

impl LinkFault {
    /// No fault: the proxy forwards at full speed.
    pub fn healthy() -> Self {
        Self::default()
    }

    /// Every chunk in each direction is delayed by `delay ± jitter`, so a
    /// request/response round trip grows by about `2 * delay`.
    pub fn latency(delay: Duration, jitter: Duration) -> Self {
        Self::each_direction(DirectionFault {
            latency: Some(Latency { delay, jitter }),
            ..DirectionFault::default()
        })
    }

    /// Each direction is limited to `bytes_per_second`.
    pub fn bandwidth(bytes_per_second: u64) -> Self {
        Self::each_direction(DirectionFault {
            bandwidth: Some(bytes_per_second),
            ..DirectionFault::default()
        })
    }

    /// Nothing is forwarded; connections are accepted and kept but stay silent.
    pub fn blackhole() -> Self {
        Self::each_direction(DirectionFault {
            blackhole: true,
            ..DirectionFault::default()
        })
    }

    /// Reset all connections, current and new, while set.
    pub fn reset() -> Self {
        LinkFault {
            reset: true,
            ..Self::default()
        }
    }

    fn each_direction(fault: DirectionFault) -> Self {
        LinkFault {
            to_upstream: fault.clone(),
            to_client: fault,
            reset: false,
        }
    }

    /// Keeps the faults of `direction` and clears those of the other one
    /// (a reset concerns whole connections and is kept).
    pub fn only(mut self, direction: Direction) -> Self {
        match direction {
            Direction::ToUpstream => self.to_client = DirectionFault::default(),
            Direction::ToClient => self.to_upstream = DirectionFault::default(),
        }
        self
    }

    /// Both sets of faults at once; where both set a latency or a bandwidth,
    /// `other` wins.
    pub fn and(mut self, other: LinkFault) -> Self {
        self.to_upstream.merge(&other.to_upstream);
        self.to_client.merge(&other.to_client);
        self.reset |= other.reset;
        self
    }

    /// The faults of one direction.
    pub fn get(&self, direction: Direction) -> &DirectionFault {
        match direction {
            Direction::ToUpstream => &self.to_upstream,
            Direction::ToClient => &self.to_client,
        }
    }

    /// True when nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        !self.reset && self.to_upstream.is_healthy() && self.to_client.is_healthy()
    }
}

impl fmt::Display for LinkFault {
    /// A short human description, e.g. `latency 200ms±20ms both ways; reset`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let scope = |up: bool, down: bool| match (up, down) {
            (true, true) => " both ways",
            (true, false) => " to upstream",
            (false, true) => " to client",
            (false, false) => "",
        };
        let (up, down) = (&self.to_upstream, &self.to_client);
        if up.latency.is_some() || down.latency.is_some() {
            if up.latency == down.latency || down.latency.is_none() || up.latency.is_none() {
                if let Some(l) = up.latency.or(down.latency) {
                    parts.push(format!(
                        "latency {:?}±{:?}{}",
                        l.delay,
                        l.jitter,
                        scope(up.latency.is_some(), down.latency.is_some())
                    ));
                }
            } else {
                for d in Direction::BOTH {
                    if let Some(l) = self.get(d).latency {
                        parts.push(format!("latency {:?}±{:?} {}", l.delay, l.jitter, d.name()));
                    }
                }
            }
        }
        if up.bandwidth.is_some() || down.bandwidth.is_some() {
            if up.bandwidth == down.bandwidth || down.bandwidth.is_none() || up.bandwidth.is_none()
            {
                if let Some(b) = up.bandwidth.or(down.bandwidth) {
                    parts.push(format!(
                        "bandwidth {b} B/s{}",
                        scope(up.bandwidth.is_some(), down.bandwidth.is_some())
                    ));
                }
            } else {
                for d in Direction::BOTH {
                    if let Some(b) = self.get(d).bandwidth {
                        parts.push(format!("bandwidth {b} B/s {}", d.name()));
                    }
                }
            }
        }
        if up.blackhole || down.blackhole {
            parts.push(format!("blackhole{}", scope(up.blackhole, down.blackhole)));
        }
        if self.reset {
            parts.push("reset".to_string());
        }
        if parts.is_empty() {
            f.write_str("healthy")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_samples_stay_within_delay_plus_or_minus_jitter() {
        let l = Latency {
            delay: Duration::from_millis(200),
            jitter: Duration::from_millis(20),
        };
        let mut seen_low = false;
        let mut seen_high = false;
        for i in 0..10_000u64 {
            let d = l.sample(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert!(d >= Duration::from_millis(180) && d <= Duration::from_millis(220));
            seen_low |= d < Duration::from_millis(190);
            seen_high |= d > Duration::from_millis(210);
        }
        assert!(
            seen_low && seen_high,
            "jitter should spread delays both ways"
        );
    }

    #[test]
    fn jitter_larger_than_delay_never_goes_negative() {
        let l = Latency {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(50),
        };
        for r in [0, 1, u64::MAX, 12345] {
            assert!(l.sample(r) <= Duration::from_millis(55));
        }
    }

    #[test]
    fn only_keeps_one_direction_and_and_combines() {
        let f = LinkFault::blackhole()
            .only(Direction::ToClient)
            .and(LinkFault::reset());
        assert!(!f.to_upstream.blackhole);
        assert!(f.to_client.blackhole);
        assert!(f.reset);
        assert_eq!(f.to_string(), "blackhole to client; reset");
        assert_eq!(LinkFault::healthy().to_string(), "healthy");
        assert!(LinkFault::healthy().is_healthy());
    }

    #[test]
    fn display_names_latency_and_bandwidth_scope() {
        let f = LinkFault::latency(Duration::from_millis(200), Duration::from_millis(20))
            .and(LinkFault::bandwidth(50_000).only(Direction::ToUpstream));
        assert_eq!(
            f.to_string(),
            "latency 200ms±20ms both ways; bandwidth 50000 B/s to upstream"
        );
    }

    #[test]
    fn faults_round_trip_through_json() {
        let f =
            LinkFault::latency(Duration::from_millis(7), Duration::ZERO).and(LinkFault::reset());
        let json = serde_json::to_string(&f).expect("serialize");
        let back: LinkFault = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, f);
    }
}
