//! Loading and attaching the XDP program (`server-ebpf`), with fallback to pure userspace.
//!
//! The program is attached in native (driver) mode and, when the driver refuses, in generic mode
//! with a log line. When loading fails altogether (no privilege, old kernel, an object built with
//! `AYA_BUILD_SKIP`), the daemon serves everything from userspace and says why, once.
//! The attachment lives in [`XdpAttachment`]: dropping it detaches, and because XDP links end
//! when their file descriptor closes, a `kill -9` leaves no program attached either.

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
        match program.attach(interface, XdpMode::Driver) {
            Ok(_) => attached.push((interface.clone(), AttachMode::Native)),
            Err(native_error) => {
                log::info!(
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
