//! The host's IPv4 interfaces (getifaddrs), to pick the ones to serve and their addresses.

use std::ffi::CStr;
use std::net::Ipv4Addr;

use crate::config::model::SharedNetworkId;

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
    /// ISC's `log_fatal` when an `interface NAME;` names no interface of the host.
    #[error("Failed to get interface index: No such device")]
    DeclaredMissing { name: String },
    /// ISC's `log_fatal` (server/dhcpd.c `dhcpd_interface_setup_hook`) when the interface an
    /// `interface NAME;` ties to one shared network has its address in a subnet of another.
    #[error("Interface {name} matches multiple shared networks")]
    DeclaredElsewhere { name: String },
    /// An `interface NAME;` whose interface has no address in any subnet of its network: ISC
    /// takes its packets as from that network, which xdhcpd, attributing packets by the
    /// interface's address, does not do.
    #[error(
        "interface {name}: unsupported: `interface {name};` for an interface whose IPv4 address \
         is in no subnet of that shared network"
    )]
    DeclaredWithoutSubnet { name: String },
}

/// Every interface that is up and has an IPv4 address (the first one of each).
pub fn list() -> Result<Vec<Interface>, InterfaceError> {
    Ok(candidates()?
        .into_iter()
        .filter(|candidate| candidate.up)
        .filter_map(|candidate| candidate.ipv4)
        .collect())
}

/// One interface as ISC's `discover_interfaces` (common/discover.c) sees it: its flags and its
/// first IPv4 address, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub up: bool,
    pub broadcast: bool,
    pub loopback: bool,
    pub point_to_point: bool,
    /// The interface with its first IPv4 address; `None` when it has none.
    pub ipv4: Option<Interface>,
}

/// Every interface the kernel lists, with or without an IPv4 address.
pub fn candidates() -> Result<Vec<Candidate>, InterfaceError> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head that we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(InterfaceError::List(std::io::Error::last_os_error()));
    }
    let mut found: Vec<Candidate> = Vec::new();
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: cursor walks the list returned by getifaddrs, which stays valid until freed.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let flags = entry.ifa_flags;
        let position = match found.iter().position(|known| known.name == name) {
            Some(position) => position,
            None => {
                found.push(Candidate {
                    name: name.clone(),
                    up: flags & libc::IFF_UP as u32 != 0,
                    broadcast: flags & libc::IFF_BROADCAST as u32 != 0,
                    loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
                    point_to_point: flags & libc::IFF_POINTOPOINT as u32 != 0,
                    ipv4: None,
                });
                found.len() - 1
            }
        };
        if found[position].ipv4.is_some() || entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it declares.
        if i32::from(unsafe { (*entry.ifa_addr).sa_family }) != libc::AF_INET {
            continue;
        }
        // SAFETY: AF_INET addresses (and their netmasks) are sockaddr_in.
        let (address, netmask) = unsafe {
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
            )
        };
        found[position].ipv4 = Some(Interface {
            index: index_of(&name).unwrap_or(0),
            name,
            address,
            netmask,
            is_loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
        });
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// The interfaces to serve and ISC's complaint about each one left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub chosen: Vec<Interface>,
    /// One multi-line message per interface skipped for want of a subnet declaration.
    pub ignored: Vec<String>,
}

/// ISC's message for an interface without a subnet declaration (common/discover.c,
/// `discover_interfaces`), word for word.
pub fn no_subnet_message(name: &str, address: Option<Ipv4Addr>) -> String {
    let address = address.map_or_else(|| "no IPv4 addresses".to_string(), |a| a.to_string());
    format!(
        "No subnet declaration for {name} ({address}).\n\
         ** Ignoring requests on {name}.  If this is not what\n   \
         you want, please write a subnet declaration\n   \
         in your dhcpd.conf file for the network segment\n   \
         to which interface {name} is attached. **"
    )
}

/// ISC's rule for the interfaces a server listens on (common/discover.c, `discover_interfaces`
/// with `DISCOVER_SERVER`):
/// - named on the command line: each one, whatever its kind (loopback included), but only when
///   it is up — a missing or down interface counts as one without IPv4 addresses;
/// - none named: every interface that is up, can broadcast, and is neither loopback nor
///   point-to-point;
/// - either way, an interface whose (first) IPv4 address lies in no declared subnet is skipped
///   with "No subnet declaration for IFACE (ADDR)". When none is left the caller stops with
///   "Not configured to listen on any interfaces!".
pub fn select(
    named: &[String],
    candidates: &[Candidate],
    has_subnet: impl Fn(Ipv4Addr) -> bool,
) -> Selection {
    let considered: Vec<(String, Option<&Interface>)> = if named.is_empty() {
        candidates
            .iter()
            .filter(|c| c.up && c.broadcast && !c.loopback && !c.point_to_point)
            .map(|c| (c.name.clone(), c.ipv4.as_ref()))
            .collect()
    } else {
        named
            .iter()
            .map(|name| {
                let ipv4 = candidates
                    .iter()
                    .find(|c| &c.name == name && c.up)
                    .and_then(|c| c.ipv4.as_ref());
                (name.clone(), ipv4)
            })
            .collect()
    };
    let mut selection = Selection::default();
    for (name, ipv4) in considered {
        match ipv4 {
            Some(interface) if has_subnet(interface.address) => {
                if !selection.chosen.iter().any(|known| known.name == name) {
                    selection.chosen.push(interface.clone());
                }
            }
            _ => selection
                .ignored
                .push(no_subnet_message(&name, ipv4.map(|i| i.address))),
        }
    }
    selection
}

/// The interfaces to consider, as ISC lists them before `discover_interfaces`: those that
/// `interface NAME;` statements name (server/mdb.c `new_shared_network_interface` adds each to
/// the requested list while the config is read), then the command line's, each once. Any name
/// there makes ISC listen only on the named interfaces.
pub fn requested(command_line: &[String], declared: &[(String, SharedNetworkId)]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in declared
        .iter()
        .map(|(name, _)| name)
        .chain(command_line.iter())
    {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// ISC's checks of the interfaces `interface NAME;` statements name (`declared`, with their
/// shared network): each must exist (else "Failed to get interface index: No such device"), and
/// its address must not be in a subnet of another shared network (else "Interface NAME
/// matches multiple shared networks"), both fatal in ISC. `network_of` gives the shared
/// network of an address's subnet.
pub fn check_declared(
    declared: &[(String, SharedNetworkId)],
    candidates: &[Candidate],
    network_of: impl Fn(Ipv4Addr) -> Option<SharedNetworkId>,
) -> Result<(), InterfaceError> {
    for (name, network) in declared {
        let Some(candidate) = candidates.iter().find(|candidate| &candidate.name == name) else {
            return Err(InterfaceError::DeclaredMissing { name: name.clone() });
        };
        let found = candidate
            .ipv4
            .as_ref()
            .and_then(|interface| network_of(interface.address));
        match found {
            Some(found) if found == *network => {}
            Some(_) => return Err(InterfaceError::DeclaredElsewhere { name: name.clone() }),
            None => return Err(InterfaceError::DeclaredWithoutSubnet { name: name.clone() }),
        }
    }
    Ok(())
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

    fn candidate(name: &str, address: Option<[u8; 4]>, loopback: bool) -> Candidate {
        Candidate {
            name: name.into(),
            up: true,
            broadcast: !loopback,
            loopback,
            point_to_point: false,
            ipv4: address.map(|octets| Interface {
                name: name.into(),
                index: 1,
                address: Ipv4Addr::from(octets),
                netmask: Ipv4Addr::new(255, 255, 255, 0),
                is_loopback: loopback,
            }),
        }
    }

    fn host() -> Vec<Candidate> {
        vec![
            candidate("lo", Some([127, 0, 0, 1]), true),
            candidate("va", Some([10, 9, 0, 1]), false),
            candidate("vb", None, false),
        ]
    }

    fn in_ten_nine(address: Ipv4Addr) -> bool {
        address.octets()[..3] == [10, 9, 0]
    }

    fn names(selection: &Selection) -> Vec<&str> {
        selection.chosen.iter().map(|i| i.name.as_str()).collect()
    }

    /// What ISC dhcpd 4.4.3 printed in a namespace with lo, va (10.9.0.1/24) and vb (no
    /// address), given an empty dhcpd.conf and no interface names.
    #[test]
    fn without_names_every_broadcast_interface_needs_a_subnet() {
        let selection = select(&[], &host(), |_| false);
        assert!(selection.chosen.is_empty());
        assert_eq!(
            selection.ignored,
            [
                no_subnet_message("va", Some(Ipv4Addr::new(10, 9, 0, 1))),
                no_subnet_message("vb", None)
            ]
        );
        assert!(selection.ignored[0].starts_with("No subnet declaration for va (10.9.0.1).\n"));
        assert!(
            selection.ignored[1].starts_with("No subnet declaration for vb (no IPv4 addresses).")
        );
        let selection = select(&[], &host(), in_ten_nine);
        assert_eq!(names(&selection), ["va"]);
        assert_eq!(selection.ignored.len(), 1, "vb still gets its message");
    }

    #[test]
    fn named_interfaces_may_be_loopback_but_still_need_a_subnet() {
        let named = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let selection = select(&named(&["lo"]), &host(), |_| false);
        assert!(selection.chosen.is_empty());
        assert_eq!(
            selection.ignored,
            [no_subnet_message("lo", Some(Ipv4Addr::LOCALHOST))]
        );
        let selection = select(&named(&["lo", "va"]), &host(), in_ten_nine);
        assert_eq!(names(&selection), ["va"]);
        let selection = select(&named(&["lo"]), &host(), |a| a.is_loopback());
        assert_eq!(names(&selection), ["lo"]);
        // A missing (or down) interface counts as one without addresses, as in ISC.
        let selection = select(&named(&["nosuch"]), &host(), |_| true);
        assert_eq!(selection.ignored, [no_subnet_message("nosuch", None)]);
        let mut down = host();
        down[1].up = false;
        let selection = select(&named(&["va"]), &down, |_| true);
        assert!(selection.chosen.is_empty());
    }

    #[test]
    fn loopback_is_listed() {
        let interfaces = list().unwrap();
        let lo = interfaces.iter().find(|i| i.name == "lo").unwrap();
        assert!(lo.is_loopback);
        assert_eq!(lo.address, Ipv4Addr::LOCALHOST);
        assert_eq!(index_of("lo"), Some(lo.index));
    }

    /// `interface NAME;` as ISC dhcpd 4.4.3 acted on it in a namespace with xs0 (10.218.0.1/24)
    /// and xs1 (10.218.1.1/24): the named interface joins the command line's, and without
    /// names on the command line it is the only one served.
    #[test]
    fn declared_interfaces_are_requested_as_isc_lists_them() {
        let declared = vec![("xs1".to_owned(), SharedNetworkId(1))];
        assert_eq!(requested(&[], &declared), ["xs1"]);
        assert_eq!(
            requested(&["xs0".to_owned(), "xs1".to_owned()], &declared),
            ["xs1", "xs0"]
        );
        let host = vec![
            candidate("xs0", Some([10, 218, 0, 1]), false),
            candidate("xs1", Some([10, 218, 1, 1]), false),
            candidate("bare", None, false),
        ];
        let selection = select(&requested(&[], &declared), &host, |_| true);
        assert_eq!(names(&selection), ["xs1"]);
        // Shared network 0 holds 10.218.0.0/24, 1 holds 10.218.1.0/24.
        let network_of = |address: Ipv4Addr| match address.octets() {
            [10, 218, third @ (0 | 1), _] => Some(SharedNetworkId(u32::from(third))),
            _ => None,
        };
        assert!(check_declared(&declared, &host, network_of).is_ok());
        let elsewhere = vec![("xs1".to_owned(), SharedNetworkId(0))];
        let error = check_declared(&elsewhere, &host, network_of).expect_err("fatal");
        assert_eq!(
            error.to_string(),
            "Interface xs1 matches multiple shared networks"
        );
        let missing = vec![("nosuch0".to_owned(), SharedNetworkId(1))];
        let error = check_declared(&missing, &host, network_of).expect_err("fatal");
        assert_eq!(
            error.to_string(),
            "Failed to get interface index: No such device"
        );
        let bare = vec![("bare".to_owned(), SharedNetworkId(1))];
        let error = check_declared(&bare, &host, network_of).expect_err("unsupported");
        assert!(error.to_string().contains("unsupported"), "{error}");
    }
}
