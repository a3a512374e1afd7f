//! Loading and attaching the XDP program (`server-ebpf`), with fallback to pure userspace.
//!
//! The program is attached in native (driver) mode and, when the driver refuses, in generic mode
//! with a log line. When loading fails altogether (no privilege, old kernel, an object built with
//! `AYA_BUILD_SKIP`), the daemon serves everything from userspace and says why, once.
//! The attachment lives in [`XdpAttachment`]: dropping it detaches, and because XDP links end
//! when their file descriptor closes, a `kill -9` leaves no program attached either.
//!
//! Modules: [`maps`] (the kernel maps behind a trait, with an in-memory fake), [`sync`]
//! (templates from the engine's ACKs, publication), [`runtime`] (the fast-path thread: durable
//! publications, kernel renewals to the lease log and to failover), [`bounds`] (failover: a
//! failover pool's lease is renewed in the kernel only up to min(durable horizon, tsfp + MCLT),
//! only after a full grant, and not at all while its relationship does not serve (a
//! per-relationship slot in the kernel's `RELATIONSHIPS` map that each lease names); the
//! fast-path thread raises held-back horizons once a second after BNDACKs raise tsfp, and
//! writes a changed service state within one of its rounds, ≤ 20 ms when idle).

pub mod bounds;
pub mod maps;
pub mod runtime;
pub mod sync;

use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::Ebpf;
use server_common::XdpStat;

/// The XDP object built by `server/build.rs`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/server"));

/// Name of the `#[xdp]` function in `server-ebpf`.
const PROGRAM_NAME: &str = "xdhcpd";

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("the XDP object is empty (built with AYA_BUILD_SKIP)")]
    EmptyObject,
    #[error("loading the XDP object failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("the XDP object has no program `{PROGRAM_NAME}`")]
    MissingProgram,
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
}

/// How the program ended up attached to one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Native,
    Generic,
}

/// The loaded program and its attachments; drop to detach.
pub struct XdpAttachment {
    ebpf: Ebpf,
    pub interfaces: Vec<(String, AttachMode)>,
}

impl std::fmt::Debug for XdpAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpAttachment")
            .field("interfaces", &self.interfaces)
            .finish()
    }
}

/// Loads the object and the program into the kernel without attaching it (tests and
/// benchmarks run it through `BPF_PROG_TEST_RUN`).
pub fn load() -> Result<Ebpf, XdpError> {
    if OBJECT.is_empty() {
        return Err(XdpError::EmptyObject);
    }
    let mut ebpf = Ebpf::load(OBJECT)?;
    let program: &mut Xdp = ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or(XdpError::MissingProgram)?
        .try_into()?;
    program.load()?;
    Ok(ebpf)
}

/// The loaded program of `ebpf` (from [`load`]).
pub fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    Ok(ebpf
        .program_mut(PROGRAM_NAME)
        .ok_or(XdpError::MissingProgram)?
        .try_into()?)
}

/// Loads the program and attaches it to every interface in `interfaces`.
pub fn attach(interfaces: &[String]) -> Result<XdpAttachment, XdpError> {
    let mut ebpf = load()?;
    let program = program(&mut ebpf)?;
    let mut attached = Vec::new();
    for interface in interfaces {
        // A veth delivers a native XDP_TX to its peer only when the peer runs XDP (or has GRO
        // on): otherwise renewals answered in the kernel would vanish. Generic mode transmits
        // through the stack and always reaches the peer.
        if driver_name(interface).as_deref() == Some("veth") {
            tracing::info!(
                "XDP: {interface} is a veth, whose native XDP_TX needs XDP on the peer; using \
                 generic mode"
            );
            program.attach(interface, XdpMode::Skb)?;
            attached.push((interface.clone(), AttachMode::Generic));
            continue;
        }
        match program.attach(interface, XdpMode::Driver) {
            Ok(_) => attached.push((interface.clone(), AttachMode::Native)),
            Err(native_error) => {
                tracing::info!(
                    "XDP: native mode refused on {interface} ({native_error}); using generic mode"
                );
                program.attach(interface, XdpMode::Skb)?;
                attached.push((interface.clone(), AttachMode::Generic));
            }
        }
    }
    Ok(XdpAttachment {
        ebpf,
        interfaces: attached,
    })
}

/// The kernel driver of an interface (`ETHTOOL_GDRVINFO`), e.g. "veth".
fn driver_name(interface: &str) -> Option<String> {
    /// `struct ethtool_drvinfo` (linux/ethtool.h).
    #[repr(C)]
    struct DriverInfo {
        cmd: u32,
        driver: [u8; 32],
        version: [u8; 32],
        firmware_version: [u8; 32],
        bus_info: [u8; 32],
        expansion_rom_version: [u8; 32],
        reserved: [u8; 12],
        counts: [u32; 5],
    }
    /// `struct ifreq` with the `ifr_data` member.
    #[repr(C)]
    struct InterfaceRequest {
        name: [u8; libc::IFNAMSIZ],
        data: *mut DriverInfo,
        padding: [u8; 16],
    }
    const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    let mut info = DriverInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        firmware_version: [0; 32],
        bus_info: [0; 32],
        expansion_rom_version: [0; 32],
        reserved: [0; 12],
        counts: [0; 5],
    };
    let mut request = InterfaceRequest {
        name: [0; libc::IFNAMSIZ],
        data: &mut info,
        padding: [0; 16],
    };
    let name = interface.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    request.name[..name.len()].copy_from_slice(name);
    // SAFETY: a plain datagram socket for the ioctl, closed below.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    if socket < 0 {
        return None;
    }
    // SAFETY: `request` and `info` are valid for the duration of the call.
    let result = unsafe { libc::ioctl(socket, SIOCETHTOOL, &mut request) };
    // SAFETY: the socket opened above.
    unsafe { libc::close(socket) };
    if result != 0 {
        return None;
    }
    let end = info.driver.iter().position(|byte| *byte == 0).unwrap_or(32);
    String::from_utf8(info.driver[..end].to_vec()).ok()
}

impl XdpAttachment {
    /// The loaded object, to take maps from.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Sum over CPUs of one statistics slot.
    pub fn stat(&self, stat: XdpStat) -> u64 {
        let Some(map) = self.ebpf.map("STATS") else {
            return 0;
        };
        let Ok(array) = aya::maps::PerCpuArray::<_, u64>::try_from(map) else {
            return 0;
        };
        array
            .get(&(stat as u32), 0)
            .map(|values| values.iter().sum())
            .unwrap_or(0)
    }
}
