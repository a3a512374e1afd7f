//! The command line: ISC dhcpd(8)'s flags, so that an existing init script or systemd unit works
//! after swapping the binary, plus modern long options.
//!
//! ISC uses single-dash multi-letter flags (`-cf`, `-lf`, `-pf`, `-tf`, `-user`, `-group`,
//! `-chroot`, `-play`); clap would read `-cf` as `-c -f`, so [`translate_isc_arguments`] rewrites
//! them to long options before clap parses.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// Where Debian's isc-dhcp-server keeps its files (docs/spec/dhcpd-conf.md §4, §10).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/dhcp/dhcpd.conf";
pub const DEFAULT_LEASES_PATH: &str = "/var/lib/dhcp/dhcpd.leases";
pub const DEFAULT_PID_PATH: &str = "/var/run/dhcpd.pid";

/// xdhcpd command line.
#[derive(Debug, Clone, Parser, PartialEq, Eq)]
#[command(
    name = "xdhcpd",
    version,
    about = "DHCPv4 server, drop-in replacement for ISC dhcpd 4.4, with an XDP fast path",
    after_help = "ISC-style flags are accepted as well: -cf FILE, -lf FILE, -pf FILE, -f, -d, -q, \
                  -t, -T, -4, -p PORT, and interface names."
)]
pub struct Cli {
    /// Configuration file (ISC: -cf).
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Lease file (ISC: -lf); defaults to the config's lease-file-name, then
    /// /var/lib/dhcp/dhcpd.leases.
    #[arg(long = "leases", value_name = "FILE")]
    pub leases: Option<PathBuf>,

    /// PID file (ISC: -pf); defaults to the config's pid-file-name, then /var/run/dhcpd.pid.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Stay in the foreground (ISC: -f).
    #[arg(short = 'f', long = "foreground")]
    pub foreground: bool,

    /// Log to standard error; implies --foreground (ISC: -d).
    #[arg(short = 'd', long = "log-stderr")]
    pub log_to_stderr: bool,

    /// Quiet start: no banner (ISC: -q).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Check the configuration file and exit 0 when it is valid, 1 otherwise (ISC: -t).
    #[arg(short = 't', long = "test-config")]
    pub test_config: bool,

    /// Check the lease file and exit 0 when it is valid, 1 otherwise (ISC: -T).
    #[arg(short = 'T', long = "test-leases")]
    pub test_leases: bool,

    /// DHCPv4 (the only protocol xdhcpd serves; accepted for compatibility, ISC: -4).
    #[arg(short = '4')]
    pub ipv4: bool,

    /// UDP port to listen on instead of 67; clients are answered on PORT+1 (ISC: -p).
    #[arg(short = 'p', long = "port", value_name = "PORT")]
    pub port: Option<u16>,

    /// Interface to serve (repeatable); the trailing interface names do the same.
    #[arg(long = "interface", value_name = "IFACE")]
    pub interface: Vec<String>,

    /// Do not load the XDP program: serve everything from userspace.
    #[arg(long = "no-xdp")]
    pub no_xdp: bool,

    /// Serve Prometheus metrics over HTTP on this address, e.g. 127.0.0.1:9167.
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// The PostgreSQL database of the leases (a libpq connection string or postgresql://
    /// URL); overrides the config's xdhcpd.lease-database.
    #[arg(long = "lease-database", value_name = "URL")]
    pub lease_database: Option<String>,

    /// The PostgreSQL database of the lease history; overrides the config's
    /// xdhcpd.history-database (default: the lease database, if any).
    #[arg(long = "history-database", value_name = "URL")]
    pub history_database: Option<String>,

    /// This server's name in the lease and history databases (default: the host name); each
    /// server on one database needs its own.
    #[arg(long = "server-name", value_name = "NAME")]
    pub server_name: Option<String>,

    /// Apply the database schema migrations (lease and history databases) and exit.
    #[arg(long = "db-init")]
    pub db_init: bool,

    /// Worker threads (sockets per interface); defaults to the number of cores.
    #[arg(long = "threads", value_name = "N")]
    pub threads: Option<usize>,

    /// Group commit: the shortest time, in microseconds, between the starts of two lease
    /// file syncs. Records that arrive meanwhile share the next sync, so under load one
    /// `fdatasync` covers many ACKs; a client arriving after a quiet spell never waits. 0
    /// syncs as soon as a record is pending.
    #[arg(
        long = "commit-interval-us",
        value_name = "USEC",
        default_value_t = 4000
    )]
    pub commit_interval_us: u64,

    /// Receive coalescing, in microseconds: a worker whose last receive was a small batch that
    /// came soon after the one before waits this long before receiving again, so that one
    /// wake-up takes several requests (the software form of a NIC's interrupt moderation).
    /// Sparse traffic is never delayed; 0 turns it off.
    #[arg(
        long = "receive-coalesce-us",
        value_name = "USEC",
        default_value_t = 500
    )]
    pub receive_coalesce_us: u64,

    /// Shadow mode: beside a running ISC dhcpd, follow its lease file, watch its replies on the
    /// interfaces, compute xdhcpd's own and compare them; send nothing, write no lease file.
    #[arg(long = "shadow", conflicts_with_all = ["test_config", "test_leases", "shadow_report"])]
    pub shadow: bool,

    /// Print the summary of what shadow mode found so far (its state file) and exit.
    #[arg(long = "shadow-report")]
    pub shadow_report: bool,

    /// Shadow mode's state file; defaults to xdhcpd-shadow.state beside the lease file.
    #[arg(long = "shadow-state", value_name = "FILE")]
    pub shadow_state: Option<PathBuf>,

    /// ISC's -user/-group/-chroot/-tf/-play: accepted and ignored with a warning.
    #[arg(long = "isc-ignored", hide = true, value_name = "FLAG=VALUE")]
    pub isc_ignored: Vec<String>,

    /// Interfaces to serve (ISC: trailing interface names).
    #[arg(value_name = "IFACE")]
    pub interfaces: Vec<String>,
}

impl Cli {
    /// Parses the process arguments, ISC forms included.
    pub fn from_env() -> Self {
        Self::parse_from(translate_isc_arguments(std::env::args()))
    }

    /// Every interface named, from `--interface` and the trailing names.
    pub fn all_interfaces(&self) -> Vec<String> {
        self.interface
            .iter()
            .chain(self.interfaces.iter())
            .cloned()
            .collect()
    }

    pub fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
    }

    pub fn foreground(&self) -> bool {
        self.foreground
            || self.log_to_stderr
            || self.test_config
            || self.test_leases
            || self.shadow_report
            || self.db_init
    }

    /// `--server-name`, else the host name.
    pub fn server_name(&self) -> String {
        self.server_name
            .clone()
            .unwrap_or_else(crate::history::writer::server_name)
    }

    /// Where the lease history goes: `--history-database`, the config's
    /// `xdhcpd.history-database`, else the lease database (`--lease-database`, the config's
    /// `xdhcpd.lease-database`); `None` keeps no history.
    pub fn history_settings(
        &self,
        config: &crate::config::model::Config,
    ) -> Option<crate::history::HistorySettings> {
        let database = self
            .history_database
            .clone()
            .or_else(|| config.history_database.clone())
            .or_else(|| self.lease_database.clone())
            .or_else(|| config.lease_database.clone())?;
        Some(crate::history::HistorySettings {
            database,
            retention_days: config
                .history_retention_days
                .unwrap_or(crate::history::DEFAULT_RETENTION_DAYS),
        })
    }
}

/// Rewrites ISC's single-dash multi-letter flags into long options (the first item is the
/// program name and is kept).
pub fn translate_isc_arguments(arguments: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut translated = Vec::new();
    let mut arguments = arguments.into_iter();
    if let Some(program) = arguments.next() {
        translated.push(program);
    }
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "-cf" => translated.push("--config".into()),
            "-lf" => translated.push("--leases".into()),
            "-pf" => translated.push("--pid-file".into()),
            // Flags with a value that xdhcpd does not act on.
            "-user" | "-group" | "-chroot" | "-tf" | "-play" => {
                let value = arguments.next().unwrap_or_default();
                translated.push(format!("--isc-ignored={}={value}", &argument[1..]));
            }
            // dhcpd's DHCPv6 and debugging switches without a value.
            "-6" | "-s" | "-n" => translated.push(format!("--isc-ignored={}", &argument[1..])),
            _ => translated.push(argument),
        }
    }
    translated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Cli {
        Cli::parse_from(translate_isc_arguments(
            line.split_whitespace().map(String::from),
        ))
    }

    #[test]
    fn debian_init_script_command_line() {
        let cli = parse("dhcpd -4 -q -cf /etc/dhcp/dhcpd.conf eth0 eth1");
        assert!(cli.ipv4 && cli.quiet);
        assert_eq!(cli.config_path(), PathBuf::from("/etc/dhcp/dhcpd.conf"));
        assert_eq!(cli.all_interfaces(), vec!["eth0", "eth1"]);
        assert!(!cli.foreground());
    }

    #[test]
    fn isc_flags_with_values() {
        let cli = parse("xdhcpd -f -d -cf a.conf -lf b.leases -pf c.pid -p 6767 -user dhcpd veth0");
        assert_eq!(cli.leases, Some(PathBuf::from("b.leases")));
        assert_eq!(cli.pid_file, Some(PathBuf::from("c.pid")));
        assert_eq!(cli.port, Some(6767));
        assert!(cli.foreground());
        assert_eq!(cli.isc_ignored, vec!["user=dhcpd"]);
        assert_eq!(cli.all_interfaces(), vec!["veth0"]);
    }

    #[test]
    fn check_modes() {
        assert!(parse("xdhcpd -t -cf x.conf").test_config);
        assert!(parse("xdhcpd -T -lf x.leases").test_leases);
    }

    #[test]
    fn modern_long_options() {
        let cli = parse(
            "xdhcpd --config a --leases b --interface eth0 --no-xdp --metrics-listen 127.0.0.1:9167",
        );
        assert!(cli.no_xdp);
        assert_eq!(cli.all_interfaces(), vec!["eth0"]);
        assert_eq!(cli.metrics_listen, Some("127.0.0.1:9167".parse().unwrap()));
        let cli = parse("xdhcpd --db-init --history-database postgresql://h/db -cf a");
        assert!(cli.db_init && cli.foreground());
        let config = crate::config::model::Config::default();
        assert_eq!(
            cli.history_settings(&config)
                .map(|settings| settings.database),
            Some("postgresql://h/db".into())
        );
        assert_eq!(parse("xdhcpd").history_settings(&config), None);
    }

    #[test]
    fn shadow_mode_with_isc_arguments() {
        let cli =
            parse("xdhcpd --shadow -cf /etc/dhcp/dhcpd.conf -lf /var/lib/dhcp/dhcpd.leases eth0");
        assert!(cli.shadow && !cli.shadow_report);
        assert_eq!(cli.all_interfaces(), vec!["eth0"]);
        let report = parse("xdhcpd --shadow-report --shadow-state /tmp/s");
        assert!(report.shadow_report && report.foreground());
        assert_eq!(report.shadow_state, Some(PathBuf::from("/tmp/s")));
        assert!(Cli::try_parse_from(["xdhcpd", "--shadow", "-t"]).is_err());
    }
}
