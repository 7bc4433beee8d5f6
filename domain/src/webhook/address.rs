//! Where a webhook may go. An endpoint's URL is the admin's, but the machine that sends
//! sits inside the deployment: without a check, a URL naming `127.0.0.1`, a private
//! network or a cloud's metadata service would make the product fetch from inside for
//! whoever can register an endpoint (server-side request forgery). The sender checks
//! every address a name resolves to, on every hop of a redirect, against these ranges.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An absolute `http` or `https` URL with a host and no credentials in it.
pub fn parse_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(url)
}

/// Whether `ip` is one the internet cannot reach: loopback, private, shared (CGNAT),
/// link-local (where cloud metadata services answer), multicast, documentation,
/// benchmarking and reserved ranges, and IPv6 addresses that embed such an IPv4 one.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return is_internal_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        // IPv4-compatible (deprecated) addresses, ::a.b.c.d.
        || (segments[..6] == [0, 0, 0, 0, 0, 0])
}

/// Internal addresses an operator lets webhooks reach after all: `WEBHOOK_ALLOW_PRIVATE`
/// is `true` (all of them: for tests and closed networks), `false`, or a comma-separated
/// list of addresses (`10.1.2.3`), networks (`10.1.0.0/16`) and sockets
/// (`127.0.0.1:9000`) — the least an in-cluster receiver needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Allowance {
    #[default]
    Nothing,
    Everything,
    Only(Vec<Allowed>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Network { base: IpAddr, prefix: u8 },
    Socket(SocketAddr),
}

impl Allowance {
    pub fn parse(text: &str) -> Result<Allowance, String> {
        match text.trim() {
            "" | "false" => return Ok(Allowance::Nothing),
            "true" => return Ok(Allowance::Everything),
            _ => {}
        }
        let mut allowed = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            allowed.push(Allowed::parse(item).ok_or_else(|| {
                format!(
                    "{item:?} is not an address, a network (a.b.c.d/n) or a socket (a.b.c.d:port)"
                )
            })?);
        }
        Ok(Allowance::Only(allowed))
    }

    /// Whether the sender may connect to `socket`.
    pub fn permits(&self, socket: SocketAddr) -> bool {
        if !is_internal(socket.ip()) {
            return true;
        }
        match self {
            Allowance::Nothing => false,
            Allowance::Everything => true,
            Allowance::Only(list) => list.iter().any(|a| a.contains(socket)),
        }
    }
}

impl Allowed {
    fn parse(item: &str) -> Option<Allowed> {
        if let Ok(socket) = item.parse::<SocketAddr>() {
            return Some(Allowed::Socket(socket));
        }
        let (base, prefix) = match item.split_once('/') {
            Some((base, prefix)) => (base.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?),
            None => {
                let ip = item.parse::<IpAddr>().ok()?;
                (ip, if ip.is_ipv4() { 32 } else { 128 })
            }
        };
        let bits = if base.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Allowed::Network { base, prefix })
    }

    fn contains(&self, socket: SocketAddr) -> bool {
        match *self {
            Allowed::Socket(allowed) => allowed == socket,
            Allowed::Network { base, prefix } => match (base, socket.ip()) {
                (IpAddr::V4(base), IpAddr::V4(ip)) => same_prefix(
                    u128::from(u32::from(base)),
                    u128::from(u32::from(ip)),
                    prefix,
                    32,
                ),
                (IpAddr::V6(base), IpAddr::V6(ip)) => {
                    same_prefix(u128::from(base), u128::from(ip), prefix, 128)
                }
                _ => false,
            },
        }
    }
}

fn same_prefix(a: u128, b: u128, prefix: u8, bits: u32) -> bool {
    let host_bits = bits - u32::from(prefix);
    // A /0 network holds everything (and a shift by the whole width would overflow).
    host_bits == bits || (a >> host_bits) == (b >> host_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(text: &str) -> bool {
        is_internal(text.parse().unwrap())
    }

    #[test]
    fn internal_ranges_are_recognised() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::10.0.0.1",
            "::127.0.0.1",
            "ff02::1",
        ] {
            assert!(internal(ip), "{ip} passed for public");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            assert!(!internal(ip), "{ip} passed for internal");
        }
    }

    #[test]
    fn an_allowance_lets_through_what_it_names_and_nothing_else() {
        let socket = |s: &str| s.parse::<SocketAddr>().unwrap();
        let nothing = Allowance::parse("false").unwrap();
        assert!(!nothing.permits(socket("127.0.0.1:80")));
        assert!(nothing.permits(socket("8.8.8.8:443")));
        assert!(Allowance::parse("true")
            .unwrap()
            .permits(socket("10.0.0.1:80")));
        let some = Allowance::parse("127.0.0.1:9000, 10.1.0.0/16, fd00::1").unwrap();
        assert!(some.permits(socket("127.0.0.1:9000")));
        assert!(!some.permits(socket("127.0.0.1:9001")));
        assert!(some.permits(socket("10.1.200.3:80")));
        assert!(!some.permits(socket("10.2.0.1:80")));
        assert!(some.permits(socket("[fd00::1]:8080")));
        assert!(!some.permits(socket("169.254.169.254:80")));
        assert!(Allowance::parse("10.0.0.0/33").is_err());
        assert!(Allowance::parse("localhost").is_err());
    }

    #[test]
    fn urls_must_be_plain_http() {
        assert!(parse_url("https://hooks.example.com/a?b=c").is_ok());
        assert!(parse_url("http://127.0.0.1:9000/in").is_ok());
        for bad in [
            "ftp://example.com",
            "https://user:pw@example.com",
            "https://example.com/#x",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
    }
}
