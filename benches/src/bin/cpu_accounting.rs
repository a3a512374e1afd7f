//! How well this machine's CPU accounting sees short bursts of work: `cpu_accounting RATE
//! WORK_US SECONDS` wakes RATE times a second (a sleep between bursts), spins WORK_US
//! microseconds each time, and prints the process's own CPU time (getrusage: the scheduler's
//! exact runtime) beside the whole box's figures from /proc/stat over the same window — the
//! tick-sampled busy fields (user, nice, system, irq, softirq), and the wall time of every CPU
//! less idle and steal. A server answering DHCP at a few thousand exchanges a second has
//! exactly this shape; the benches' "box busy" must see it.

use std::time::Duration;

#[expect(clippy::disallowed_methods, reason = "driver owns the clock")]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// user+nice+system+irq+softirq, idle+iowait, steal: seconds (USER_HZ = 100).
fn box_times() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|field| field.parse().ok())
        .collect();
    let field = |index: usize| ticks.get(index).copied().unwrap_or(0) as f64 / 100.0;
    (
        field(0) + field(1) + field(2) + field(5) + field(6),
        field(3) + field(4),
        field(7),
    )
}

fn process_cpu() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn main() {
    let arguments: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|argument| argument.parse().ok())
        .collect();
    let [rate, work_us, seconds] = arguments[..] else {
        eprintln!("usage: cpu_accounting RATE WORK_US SECONDS");
        std::process::exit(2);
    };
    let cpus = std::thread::available_parallelism().map_or(1, |count| count.get()) as f64;
    let gap = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let work = Duration::from_secs_f64(work_us / 1e6);
    let (busy_before, idle_before, steal_before) = box_times();
    let cpu_before = process_cpu();
    let began = now();
    let mut bursts = 0u64;
    while began.elapsed().as_secs_f64() < seconds {
        std::thread::sleep(gap);
        let burst = now();
        while burst.elapsed() < work {
            std::hint::spin_loop();
        }
        bursts += 1;
    }
    let wall = began.elapsed().as_secs_f64();
    let cpu = process_cpu() - cpu_before;
    let (busy, idle, steal) = box_times();
    let (busy, idle, steal) = (busy - busy_before, idle - idle_before, steal - steal_before);
    println!(
        "{bursts} bursts of {work_us} µs in {wall:.2} s: process CPU {cpu:.2} s; /proc/stat: \
         sampled busy {busy:.2} s, {cpus} CPUs × wall − idle − steal {:.2} s (idle {idle:.2}, \
         steal {steal:.2})",
        wall * cpus - idle - steal
    );
}
