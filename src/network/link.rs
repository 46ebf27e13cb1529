//! Links in the calling thread's network namespace: bringing one up (`lo`
//! in a fresh namespace, by ioctl) and deleting a bridge berth made (by
//! rtnetlink), without spawning `ip` for either.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

fn control_socket() -> io::Result<OwnedFd> {
    socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io::Error::from)
}

/// An `ifreq` naming `name`; refuses names the kernel could not hold.
#[allow(unsafe_code)]
fn request_for(name: &str) -> io::Result<libc::ifreq> {
    // SAFETY: `ifreq` is plain old data, for which all-zero bytes are valid.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.is_empty() || name.len() >= request.ifr_name.len() || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not an interface name"),
        ));
    }
    for (slot, byte) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    Ok(request)
}

fn ioctl_error(what: &str, name: &str) -> io::Error {
    let error = io::Error::last_os_error();
    io::Error::new(error.kind(), format!("{what} {name}: {error}"))
}

/// Sets the interface up.
#[allow(unsafe_code)]
pub fn set_up(name: &str) -> io::Result<()> {
    let sock = control_socket()?;
    let mut request = request_for(name)?;
    // SAFETY: both ioctls read/write the one `ifreq` we own, on a socket we
    // own; the flags field is the union member these requests use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) < 0 {
            return Err(ioctl_error("SIOCGIFFLAGS", name));
        }
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &request) < 0 {
            return Err(ioctl_error("SIOCSIFFLAGS", name));
        }
    }
    Ok(())
}

/// Fixes bridge `name`'s MAC address at its current value. Left to the
/// kernel, a bridge takes the lowest MAC among its ports, so one container
/// leaving or joining can change it, and the bridge plugin's CHECK of every
/// other container on it then fails ("Mac doesn't match"): berth would
/// replace working containers. An address set by hand stays.
#[allow(unsafe_code)]
pub fn pin_bridge_address(name: &str) -> io::Result<()> {
    let mut request = request_for(name)?;
    let assign_type = Path::new("/sys/class/net")
        .join(name)
        .join("addr_assign_type");
    // NET_ADDR_SET: pinned already (by us, or by whoever made the bridge).
    if fs::read_to_string(&assign_type)?.trim() == "3" {
        return Ok(());
    }
    let sock = control_socket()?;
    // SAFETY: both ioctls read/write the one `ifreq` we own, on a socket we
    // own; the hardware address is the union member these requests use.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut request) < 0 {
            return Err(ioctl_error("SIOCGIFHWADDR", name));
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFHWADDR, &request) < 0 {
            return Err(ioctl_error("SIOCSIFHWADDR", name));
        }
    }
    Ok(())
}

/// Deletes the bridge `name` with an rtnetlink RTM_DELLINK (the old
/// SIOCBRDELBR ioctl fails with EINVAL on current kernels); false when there
/// is none. Refuses an interface that is not a bridge.
pub fn delete_bridge(name: &str) -> io::Result<bool> {
    request_for(name)?;
    let sys = Path::new("/sys/class/net").join(name);
    let index = match fs::read_to_string(sys.join("ifindex")) {
        Ok(index) => index.trim().parse::<i32>().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("ifindex of {name}: {e}"),
            )
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if !sys.join("bridge").exists() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is not a bridge; berth leaves it alone"),
        ));
    }
    match delete_link(index) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(io::Error::new(e.kind(), format!("RTM_DELLINK {name}: {e}"))),
    }
}

/// One RTM_DELLINK request by interface index, and its acknowledgement.
fn delete_link(index: i32) -> io::Result<()> {
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    // struct nlmsghdr (16 bytes) then struct ifinfomsg (16 bytes).
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    let mut message = Vec::with_capacity(32);
    message.extend(32u32.to_ne_bytes());
    message.extend(libc::RTM_DELLINK.to_ne_bytes());
    message.extend(flags.to_ne_bytes());
    message.extend(1u32.to_ne_bytes()); // sequence number
    message.extend(0u32.to_ne_bytes()); // port id: the kernel
    message.extend([libc::AF_UNSPEC as u8, 0]);
    message.extend(0u16.to_ne_bytes()); // device type
    message.extend(index.to_ne_bytes());
    message.extend(0u32.to_ne_bytes()); // flags
    message.extend(0u32.to_ne_bytes()); // change mask
    sendto(
        sock.as_raw_fd(),
        &message,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )?;
    let mut reply = [0u8; 1024];
    let len = recv(sock.as_raw_fd(), &mut reply, MsgFlags::empty())?;
    netlink_ack(&reply[..len])
}

/// The result an NLMSG_ERROR reply carries (0 is an acknowledgement).
fn netlink_ack(reply: &[u8]) -> io::Result<()> {
    let field = |at: usize, len: usize| reply.get(at..at + len);
    let kind = field(4, 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let code = field(16, 4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, code) {
        (Some(kind), Some(0)) if kind == libc::NLMSG_ERROR as u16 => Ok(()),
        (Some(kind), Some(code)) if kind == libc::NLMSG_ERROR as u16 => {
            Err(io::Error::from_raw_os_error(-code))
        }
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected rtnetlink reply",
        )),
    }
}

/// Every address on the host's interfaces (this namespace), with its
/// interface's name.
pub fn host_addresses() -> Vec<(String, std::net::IpAddr)> {
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addresses
        .filter_map(|entry| {
            let address = entry.address?;
            let ip = if let Some(v4) = address.as_sockaddr_in() {
                std::net::IpAddr::V4(v4.ip())
            } else {
                std::net::IpAddr::V6(address.as_sockaddr_in6()?.ip())
            };
            Some((entry.interface_name, ip))
        })
        .collect()
}

/// The host's IPv4 default gateways (`/proc/net/route`), with their
/// interfaces.
pub fn default_gateways() -> Vec<(String, std::net::IpAddr)> {
    fs::read_to_string("/proc/net/route")
        .map(|table| parse_default_gateways(&table))
        .unwrap_or_default()
}

/// `Iface Destination Gateway ...`, hex in host (little-endian) order.
fn parse_default_gateways(table: &str) -> Vec<(String, std::net::IpAddr)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (iface, destination, gateway) = (fields.first()?, fields.get(1)?, fields.get(2)?);
            if *destination != "00000000" {
                return None;
            }
            let raw = u32::from_str_radix(gateway, 16).ok()?;
            let ip = std::net::Ipv4Addr::from(raw.swap_bytes());
            Some((iface.to_string(), std::net::IpAddr::V4(ip)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gateways_are_read_from_the_route_table() {
        let table = "Iface\tDestination\tGateway\tFlags\n\
                     eth0\t00000000\t010200C0\t0003\n\
                     eth0\t000200C0\t00000000\t0001\n";
        assert_eq!(
            parse_default_gateways(table),
            [("eth0".to_string(), "192.0.2.1".parse().unwrap())]
        );
    }

    #[test]
    fn names_the_kernel_cannot_hold_are_refused() {
        assert!(request_for("").is_err());
        assert!(request_for("a-name-longer-than-15").is_err());
        assert!(request_for("nul\0").is_err());
        assert!(request_for("berth0").is_ok());
    }

    #[test]
    fn netlink_replies_map_to_results() {
        let reply = |kind: u16, code: i32| {
            let mut bytes = vec![0u8; 36];
            bytes[4..6].copy_from_slice(&kind.to_ne_bytes());
            bytes[16..20].copy_from_slice(&code.to_ne_bytes());
            bytes
        };
        let error = libc::NLMSG_ERROR as u16;
        assert!(netlink_ack(&reply(error, 0)).is_ok());
        let busy = netlink_ack(&reply(error, -libc::EBUSY)).unwrap_err();
        assert_eq!(busy.raw_os_error(), Some(libc::EBUSY));
        assert!(netlink_ack(&reply(16, 0)).is_err());
        assert!(netlink_ack(&[0; 8]).is_err());
    }

    #[test]
    fn bridges_are_deleted_and_other_links_refused() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        assert!(!delete_bridge("berthnone0").unwrap());
        let bridge = format!("blk{}", std::process::id() % 100_000);
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        assert!(ip(&["link", "add", &bridge, "type", "bridge"]));
        assert!(delete_bridge(&bridge).unwrap());
        assert!(!Path::new("/sys/class/net").join(&bridge).exists());
        assert!(delete_bridge("lo").is_err(), "lo is not a bridge");
    }
}
