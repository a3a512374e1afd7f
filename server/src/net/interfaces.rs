//! The host's IPv4 interfaces (getifaddrs), to pick the ones to serve and their addresses.

use std::ffi::CStr;
use std::net::Ipv4Addr;

/// One interface with its first IPv4 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub address: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub is_loopback: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum InterfaceError {
    #[error("getifaddrs failed: {0}")]
    List(std::io::Error),
    #[error("interface {name} does not exist or has no IPv4 address")]
    NoAddress { name: String },
}

/// Every interface that is up and has an IPv4 address (the first one of each).
pub fn list() -> Result<Vec<Interface>, InterfaceError> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head that we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(InterfaceError::List(std::io::Error::last_os_error()));
    }
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: cursor walks the list returned by getifaddrs, which stays valid until freed.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_addr.is_null() || entry.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it declares.
        let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
        if family != libc::AF_INET || entry.ifa_flags & libc::IFF_UP as u32 == 0 {
            continue;
        }
        // SAFETY: AF_INET addresses are sockaddr_in; ifa_name is a NUL-terminated string.
        let (address, netmask, name) = unsafe {
            let address = &*(entry.ifa_addr as *const libc::sockaddr_in);
            let netmask = if entry.ifa_netmask.is_null() {
                0
            } else {
                (*(entry.ifa_netmask as *const libc::sockaddr_in))
                    .sin_addr
                    .s_addr
            };
            (
                Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr)),
                Ipv4Addr::from(u32::from_be(netmask)),
                CStr::from_ptr(entry.ifa_name)
                    .to_string_lossy()
                    .into_owned(),
            )
        };
        if interfaces.iter().any(|known| known.name == name) {
            continue;
        }
        let index = index_of(&name).unwrap_or(0);
        interfaces.push(Interface {
            is_loopback: entry.ifa_flags & libc::IFF_LOOPBACK as u32 != 0,
            name,
            index,
            address,
            netmask,
        });
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(interfaces)
}

/// The kernel index of an interface, `None` when it does not exist.
pub fn index_of(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: name is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (index != 0).then_some(index)
}

/// The named interface with its IPv4 address.
pub fn find(name: &str) -> Result<Interface, InterfaceError> {
    list()?
        .into_iter()
        .find(|interface| interface.name == name)
        .ok_or_else(|| InterfaceError::NoAddress { name: name.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed() {
        let interfaces = list().unwrap();
        let lo = interfaces.iter().find(|i| i.name == "lo").unwrap();
        assert!(lo.is_loopback);
        assert_eq!(lo.address, Ipv4Addr::LOCALHOST);
        assert_eq!(index_of("lo"), Some(lo.index));
    }
}
