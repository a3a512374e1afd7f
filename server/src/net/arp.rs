//! Unicast to a client that has no address yet (RFC 2131 §4.1: "the server unicasts DHCPOFFER and
//! DHCPACK messages to the client's hardware address and yiaddr address"). A UDP socket cannot
//! address a hardware address, so we first install a complete ARP entry for (yiaddr → chaddr) on
//! the interface with `SIOCSARP`, as servers without raw sockets do; the kernel then delivers the
//! datagram straight to that MAC. When that fails the caller broadcasts instead.

use std::net::Ipv4Addr;

/// Installs `address → hardware` in the ARP table of `interface` through socket `fd`.
pub fn set_entry(
    fd: i32,
    interface: &str,
    address: Ipv4Addr,
    hardware: &[u8],
) -> std::io::Result<()> {
    if hardware.len() != 6 || interface.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: arpreq is a plain C struct; all-zero is valid and the fields are set below.
    let mut request: libc::arpreq = unsafe { std::mem::zeroed() };
    let protocol_address = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(address).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size on Linux.
    request.arp_pa =
        unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(protocol_address) };
    request.arp_ha.sa_family = libc::ARPHRD_ETHER;
    for (slot, byte) in request.arp_ha.sa_data.iter_mut().zip(hardware) {
        *slot = *byte as libc::c_char;
    }
    request.arp_flags = libc::ATF_COM;
    for (slot, byte) in request.arp_dev.iter_mut().zip(interface.bytes()) {
        *slot = byte as libc::c_char;
    }
    // SAFETY: valid fd and a fully initialised arpreq.
    let result = unsafe { libc::ioctl(fd, libc::SIOCSARP, &request) };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
