//! `xdhcpd`: the daemon binary. Parses the ISC-compatible command line, runs the `-t`/`-T` checks,
//! daemonizes unless told to stay in the foreground, and runs the server.

use std::process::ExitCode;

use xdhcpd::cli::Cli;
use xdhcpd::{config, daemon, lease, logging};

fn main() -> ExitCode {
    // `xdhcpd history …` is a command of its own (a trailing name is otherwise an interface).
    if std::env::args().nth(1).as_deref() == Some("history") {
        return history(std::env::args().skip(1));
    }
    let cli = Cli::from_env();
    if cli.test_config || cli.test_leases {
        return check(&cli);
    }
    if cli.shadow_report {
        return match xdhcpd::shadow::report_text(&cli) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("xdhcpd: {error}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.db_init {
        return db_init(&cli);
    }
    // Read the config once before forking so that errors reach the terminal.
    let config = match config::load_file(&cli.config_path()) {
        Ok(config) => config,
        Err(errors) => return config_errors(&errors),
    };
    if !cli.foreground() {
        // ISC discovers its interfaces before it forks: a config that serves none fails the
        // command itself, with its messages on the terminal.
        match daemon::select_interfaces(&cli, &config) {
            Ok(selection) if selection.chosen.is_empty() => {
                for message in &selection.ignored {
                    eprintln!("{message}");
                }
                eprintln!("{}", daemon::DaemonError::NoInterfaces);
                return ExitCode::FAILURE;
            }
            // ISC's fatal checks of `interface NAME;` statements.
            Err(error @ daemon::DaemonError::Interface(_)) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
            _ => {}
        }
        // ISC binds its fallback socket to `local-address` before it forks too (shadow mode
        // binds nothing).
        if let Some(address) = xdhcpd::net::local_address::of(&config).filter(|_| !cli.shadow) {
            if let Err(error) = xdhcpd::net::local_address::check(address) {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        }
        if let Err(error) = daemonize() {
            eprintln!("xdhcpd: cannot go to the background: {error}");
            return ExitCode::FAILURE;
        }
    }
    logging::init(cli.foreground(), config.log_facility.as_deref());
    for ignored in &cli.isc_ignored {
        tracing::warn!("ignoring ISC flag -{ignored}");
    }
    if !cli.quiet {
        tracing::info!(
            "xdhcpd {} (ISC dhcpd 4.4 compatible)",
            env!("CARGO_PKG_VERSION")
        );
    }
    // Shadow mode writes no PID file unless given one: the default is ISC's own.
    let pid_file = if cli.shadow && cli.pid_file.is_none() {
        None
    } else {
        daemon::write_pid_file(&cli, config.pid_file_name.as_deref())
    };
    let result = if cli.shadow {
        xdhcpd::shadow::run(&cli)
    } else {
        daemon::run(&cli)
    };
    if let Some(path) = pid_file {
        let _ = std::fs::remove_file(path);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One log line per line, as ISC logs its multi-line complaints.
            for line in error.to_string().lines() {
                tracing::error!("{line}");
            }
            if !cli.foreground() {
                eprintln!("xdhcpd: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// `-t` and `-T`: exit 0 when the files are usable, 1 otherwise, like `dhcpd -t` / `dhcpd -T`.
fn check(cli: &Cli) -> ExitCode {
    let config = match config::load_file(&cli.config_path()) {
        Ok(config) => config,
        Err(errors) => return config_errors(&errors),
    };
    for warning in &config.warnings {
        eprintln!("{}: warning: {}", warning.location, warning.message);
    }
    if cli.test_leases {
        // Load exactly as the daemon does (into the real store), so that `-T` also measures
        // start-up time and memory; then report every statement that had to be skipped.
        let path = daemon::leases_path(cli, &config);
        let mut store = lease::store::LeaseStore::new(&config);
        let file = match store.load_path(&path) {
            Ok(file) => file,
            Err(error) => {
                eprintln!("{}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        };
        for error in &file.errors {
            eprintln!(
                "{}:{}:{}: {} (statement skipped)",
                path.display(),
                error.line,
                error.column,
                error.message
            );
        }
        if !cli.quiet {
            eprintln!("{}: {} leases", path.display(), store.len());
        }
        // ISC's `dhcpd -T` also exits 0 after skipping corrupt statements ("Corrupt lease file
        // - possible data loss!", then "Lease file test successful"); the daemon loads the
        // same file the same way. Only an unreadable file fails.
    }
    ExitCode::SUCCESS
}

/// A runtime for the one-shot database commands.
fn command_runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Some(runtime),
        Err(error) => {
            eprintln!("xdhcpd: {error}");
            None
        }
    }
}

/// `xdhcpd --db-init`: applies the schema migrations and creates the history's partitions,
/// then exits (0 when the database is ready).
fn db_init(cli: &Cli) -> ExitCode {
    let config = match config::load_file(&cli.config_path()) {
        Ok(config) => config,
        Err(errors) => return config_errors(&errors),
    };
    let Some(settings) = cli.history_settings(&config) else {
        eprintln!(
            "xdhcpd --db-init: no database configured (option xdhcpd.history-database, \
             xdhcpd.lease-database, --history-database or --lease-database)"
        );
        return ExitCode::FAILURE;
    };
    let Some(runtime) = command_runtime() else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(async {
        let mut client = xdhcpd::history::writer::connect(&settings.database).await?;
        let applied = xdhcpd::history::schema::migrate(&mut client)
            .await
            .map_err(|error| format!("migrations: {error}"))?;
        let today = xdhcpd::history::schema::day_of_micros(xdhcpd::history::writer::now_micros());
        xdhcpd::history::schema::maintain(&mut client, today, settings.retention_days)
            .await
            .map_err(|error| format!("partitions: {error}"))?;
        Ok::<_, String>(applied)
    });
    match result {
        Ok(applied) if applied.is_empty() => {
            eprintln!("xdhcpd --db-init: the schema is up to date");
            ExitCode::SUCCESS
        }
        Ok(applied) => {
            eprintln!("xdhcpd --db-init: applied migrations {applied:?}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xdhcpd --db-init: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `xdhcpd history --address A --at TIME | --hardware MAC`.
fn history(arguments: impl Iterator<Item = String>) -> ExitCode {
    use clap::Parser as _;
    let cli = xdhcpd::history::query::HistoryCli::parse_from(arguments);
    let database = match cli.database.clone() {
        Some(database) => database,
        None => {
            let path = cli
                .config
                .clone()
                .unwrap_or_else(|| std::path::PathBuf::from(xdhcpd::cli::DEFAULT_CONFIG_PATH));
            let config = match config::load_file(&path) {
                Ok(config) => config,
                Err(errors) => return config_errors(&errors),
            };
            match config.history_database.or(config.lease_database) {
                Some(database) => database,
                None => {
                    eprintln!(
                        "xdhcpd history: {} names no history database; say --database URL",
                        path.display()
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let Some(runtime) = command_runtime() else {
        return ExitCode::FAILURE;
    };
    match runtime.block_on(xdhcpd::history::query::run(&cli, &database)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xdhcpd history: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A configuration that cannot be used: every error, then ISC's closing lines. ISC's
/// `log_fatal` ends with a blank line and `exiting.`, which scripts and test harnesses wait for.
fn config_errors(errors: &config::ConfigErrors) -> ExitCode {
    eprintln!("{errors}");
    eprintln!("Configuration file errors encountered -- exiting");
    eprintln!();
    eprintln!("exiting.");
    ExitCode::FAILURE
}

/// Forks into the background as ISC dhcpd does without `-f`: the parent exits, the child starts
/// a new session and detaches from the terminal.
fn daemonize() -> std::io::Result<()> {
    // SAFETY: called before any thread is started, so fork duplicates only this thread.
    match unsafe { libc::fork() } {
        -1 => return Err(std::io::Error::last_os_error()),
        0 => {}
        _ => std::process::exit(0),
    }
    // SAFETY: plain syscalls on our own process; /dev/null is opened read-write.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}
