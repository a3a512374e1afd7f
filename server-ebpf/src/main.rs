//! The xdhcpd XDP program. For now it counts frames and passes every one of them to the kernel
//! stack; the renewal fast path and the load-balancing drop come with the XDP issue.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::xdp_action, macros::map, macros::xdp, maps::PerCpuArray, programs::XdpContext,
};
use server_common::XdpStat;

#[map]
static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(XdpStat::COUNT, 0);

#[inline(always)]
fn bump(stat: XdpStat) {
    if let Some(slot) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *slot += 1 };
    }
}

#[xdp]
pub fn xdhcpd(_ctx: XdpContext) -> u32 {
    bump(XdpStat::Seen);
    bump(XdpStat::Passed);
    xdp_action::XDP_PASS
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
