//! Which IP addresses the tool may connect to.
//!
//! Only globally routable unicast addresses are allowed. Everything that reaches the machine
//! itself, its network, or a cloud control plane is refused: loopback (the Lambda runtime API
//! listens on 127.0.0.1), link-local (169.254.169.254 is the instance metadata service),
//! private, unique-local, CGNAT, unspecified, multicast, broadcast, documentation,
//! benchmarking and reserved ranges. IPv6 addresses that embed an IPv4 address (IPv4-mapped,
//! NAT64, 6to4) are judged by the IPv4 address they carry.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// The kind of non-public address an IP belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockedRange {
    /// `0.0.0.0`, `::`.
    Unspecified,
    /// `0.0.0.0/8` ("this network").
    ThisNetwork,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT.
    SharedAddressSpace,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`.
    UniqueLocal,
    /// `fec0::/10`, deprecated site-local.
    SiteLocal,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`.
    Benchmarking,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Any other special-purpose or unallocated range (`240.0.0.0/4`, `192.0.0.0/24`,
    /// IPv6 outside `2000::/3`, IETF protocol assignments, discard-only, ...).
    Reserved,
}

impl fmt::Display for BlockedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "an unspecified address",
            Self::ThisNetwork => "a 'this network' address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::SharedAddressSpace => "a carrier-grade NAT (shared) address",
            Self::LinkLocal => "a link-local address",
            Self::UniqueLocal => "a unique-local address",
            Self::SiteLocal => "a site-local address",
            Self::Documentation => "a documentation address",
            Self::Benchmarking => "a benchmarking address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "a broadcast address",
            Self::Reserved => "a reserved address",
        })
    }
}

/// The range `ip` belongs to when it is not a public unicast address, `None` when it is.
pub fn blocked_range(ip: IpAddr) -> Option<BlockedRange> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn blocked_v4(ip: Ipv4Addr) -> Option<BlockedRange> {
    use BlockedRange::*;
    const RANGES: &[([u8; 4], u32, BlockedRange)] = &[
        ([0, 0, 0, 0], 32, Unspecified),
        ([0, 0, 0, 0], 8, ThisNetwork),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([100, 64, 0, 0], 10, SharedAddressSpace),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([192, 88, 99, 0], 24, Reserved),
        ([224, 0, 0, 0], 4, Multicast),
        ([255, 255, 255, 255], 32, Broadcast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    RANGES
        .iter()
        .find(|(network, prefix, _)| in_v4(ip, *network, *prefix))
        .map(|(_, _, range)| *range)
}

fn blocked_v6(ip: Ipv6Addr) -> Option<BlockedRange> {
    use BlockedRange::*;
    let bits = u128::from(ip);
    let seg = ip.segments();
    let in_v6 = |network: u128, prefix: u32| {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits & mask == network & mask
    };
    // The low 32 bits, as an IPv4 address, for the forms that embed one there.
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if ip.is_unspecified() {
        Some(Unspecified)
    } else if ip.is_loopback() {
        Some(Loopback)
    } else if in_v6(0xffff_0000_0000, 96) {
        // IPv4-mapped ::ffff:a.b.c.d: the socket would reach a.b.c.d.
        blocked_v4(low_v4)
    } else if in_v6(0x64_ff9b << 96, 96) {
        // NAT64 well-known prefix 64:ff9b::/96: the translator reaches a.b.c.d.
        blocked_v4(low_v4)
    } else if seg[0] == 0x2002 {
        // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
        let [a, b] = seg[1].to_be_bytes();
        let [c, d] = seg[2].to_be_bytes();
        blocked_v4(Ipv4Addr::new(a, b, c, d))
    } else if in_v6(0xfc00 << 112, 7) {
        Some(UniqueLocal)
    } else if in_v6(0xfe80 << 112, 10) {
        Some(LinkLocal)
    } else if in_v6(0xfec0 << 112, 10) {
        Some(SiteLocal)
    } else if in_v6(0xff00 << 112, 8) {
        Some(Multicast)
    } else if in_v6(0x2001_0db8 << 96, 32) || in_v6(0x3fff << 112, 20) {
        Some(Documentation)
    } else if in_v6(0x2001 << 112, 23) {
        // IETF protocol assignments, including Teredo 2001::/32 and benchmarking 2001:2::/48.
        Some(Reserved)
    } else if !in_v6(0x2000 << 112, 3) {
        // Not global unicast: IPv4-compatible ::/96, 64:ff9b:1::/48, 100::/64, unallocated.
        Some(Reserved)
    } else {
        None
    }
}

/// What the tool may connect to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpPolicy {
    /// Also allow loopback addresses. For the tool's own tests only: never set in production.
    pub allow_loopback: bool,
}

impl IpPolicy {
    /// Whether `ip` may be connected to, or the range that forbids it.
    pub fn check(&self, ip: IpAddr) -> Result<(), BlockedRange> {
        match blocked_range(ip) {
            None => Ok(()),
            Some(BlockedRange::Loopback) if self.allow_loopback => Ok(()),
            Some(range) => Err(range),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{BlockedRange::*, *};

    fn range_of(ip: &str) -> Option<BlockedRange> {
        blocked_range(
            ip.parse()
                .unwrap_or_else(|_| panic!("bad test address {ip}")),
        )
    }

    #[test]
    fn every_non_public_range_is_classified() {
        let table: &[(&str, BlockedRange)] = &[
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("0.1.2.3", ThisNetwork),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("::1", Loopback),
            ("10.0.0.5", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("fec0::1", SiteLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Documentation),
            ("198.51.100.7", Documentation),
            ("203.0.113.9", Documentation),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("198.18.0.1", Benchmarking),
            ("198.19.255.255", Benchmarking),
            ("240.0.0.1", Reserved),
            ("192.0.0.170", Reserved),
            ("192.88.99.1", Reserved),
            ("2001::1", Reserved),
            ("2001:2::1", Reserved),
            ("::127.0.0.1", Reserved),
            ("64:ff9b:1::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
        ];
        for (ip, expected) in table {
            assert_eq!(range_of(ip), Some(*expected), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_judged_by_the_embedded_address() {
        let table: &[(&str, Option<BlockedRange>)] = &[
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:7f00:1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:10.0.0.5", Some(Private)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:808:808::1", None),
        ];
        for (ip, expected) in table {
            assert_eq!(range_of(ip), *expected, "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.169.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::200e",
        ] {
            assert_eq!(range_of(ip), None, "{ip}");
            assert_eq!(
                IpPolicy::default().check(ip.parse().unwrap()),
                Ok(()),
                "{ip}"
            );
        }
    }

    #[test]
    fn the_test_setting_allows_loopback_and_nothing_else() {
        let policy = IpPolicy {
            allow_loopback: true,
        };
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(policy.check(ip.parse().unwrap()), Ok(()), "{ip}");
            assert_eq!(
                IpPolicy::default().check(ip.parse().unwrap()),
                Err(Loopback),
                "{ip}"
            );
        }
        for ip in ["169.254.169.254", "10.0.0.5", "0.0.0.0", "fe80::1"] {
            assert!(policy.check(ip.parse().unwrap()).is_err(), "{ip}");
        }
    }

    #[test]
    fn refusal_text_names_the_range() {
        assert_eq!(
            format!("{} is {}", "10.0.0.5", Private),
            "10.0.0.5 is a private address"
        );
    }
}
