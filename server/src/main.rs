//! `xdhcpd`: the daemon binary.

fn main() {
    println!("xdhcpd");
}
