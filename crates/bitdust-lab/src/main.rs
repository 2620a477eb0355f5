//! `bitdust-lab`: the tools that measure bitdust rather than use it, kept out of the user's binary.
//!
//! - `bitdust-lab bench`: end-to-end throughput, degraded restore and healing time over a devnet of `bitdust`
//!   daemons (the `bitdust` beside this program);
//! - `bitdust-lab messages`: private message latency and throughput, file MB/s and offline delivery time between
//!   two devnet daemons;
//! - `bitdust-lab groups`: group message latency with N members in one process;
//! - `bitdust-lab sim`: N full nodes in one process over libp2p's memory transport: DHT lookup hops and latency,
//!   memory per idle node, time to hire;
//! - `bitdust-lab durability`: the yearly probability of losing a block per erasure layout, from a Markov chain of
//!   failures, correlated failures and repairs;
//! - `lab-delay` (its own binary): the NAT lab's user-space latency emulator.

mod bench;
mod churn;
mod durability;
mod groups;
mod messages;
mod sim;

use std::path::PathBuf;

use anyhow::{bail, Result};
use bitdust::out;
use clap::{Parser, Subcommand};

/// bitdust-lab: benchmarks and simulations of bitdust.
#[derive(Parser)]
#[command(name = "bitdust-lab", version, about)]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// End-to-end benchmark: upload and restore a random file over a devnet, with customer peak memory.
    Bench {
        /// File size, e.g. 1G.
        #[arg(long, default_value = "1G", value_parser = parse_size)]
        size: u64,
        /// Number of suppliers.
        #[arg(long, default_value_t = 4)]
        suppliers: u16,
        /// Where to put the temp folder (default the system temp folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seconds a supplier may be silent before it is replaced (the devnet's 15; `--quick` suites use 5).
        #[arg(long, default_value_t = 15)]
        fire_after_secs: u64,
    },
    /// Private messages between two devnet daemons through their APIs: latency p50/p99, messages per second, a
    /// file's MB/s, offline delivery time after the recipient starts.
    Messages {
        /// Messages per measurement.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Size of the file sent, in MiB.
        #[arg(long, default_value_t = 256)]
        file_mib: u64,
        /// Clients sending at once on each side in the throughput measurement (messages in flight per side).
        #[arg(long, default_value_t = 16)]
        senders: usize,
    },
    /// Group message latency: N members in one process over libp2p's memory transport; time for the group to form
    /// (adds one at a time), then the time until every member has a message (median, p99).
    Groups {
        /// Group sizes (members, the admin included), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [10usize, 100])]
        members: Vec<usize>,
        /// Messages sent per size, each by a random member.
        #[arg(long, default_value_t = 200)]
        messages: usize,
        /// Where the nodes' homes go (default /dev/shm, else the system temp folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Scale simulation: N full nodes in one process over libp2p's memory transport; DHT lookup hops and latency,
    /// memory per idle node, time to hire n suppliers (one child process per size).
    Sim {
        /// Network sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [100usize, 300, 1000])]
        nodes: Vec<usize>,
        /// Identity lookups and nickname lookups per size (random pairs).
        #[arg(long, default_value_t = 200)]
        lookups: usize,
        /// Supplier counts a new customer hires, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [4u16, 13, 64])]
        hire: Vec<u16>,
        /// Where the nodes' homes go (default /dev/shm, else the system temp folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Seconds an unused connection stays open (120 on a real node), and over which the idle network's CPU
        /// is measured.
        #[arg(long, default_value_t = 5)]
        idle_secs: u64,
        /// Keyword searches of public shares to time (0: none; otherwise 3 customers publish a share each and 10 new
        /// nodes search for them).
        #[arg(long, default_value_t = 0)]
        search: usize,
        /// Customers that each lose one supplier for good (devnet maintenance timings): time to its replacement and
        /// to full redundancy, beside what `churn` predicts for the same timings and the hiring time measured here.
        #[arg(long, default_value_t = 0)]
        repair: usize,
        /// Run one size in this process (used by the parent).
        #[arg(long, hide = true)]
        child: bool,
    },
    /// The durability study's event-driven tier: a population of nodes with sessions, departures, disk losses
    /// and correlated departures; customers keep their data whole with the real maintenance state. Per layout and
    /// fire-after: position losses, time to full redundancy, false firings, repair traffic, losses counted, and the
    /// chain's yearly loss from the measured rates. With --json: a line with the scenario, then a line per row as it
    /// ends.
    Churn {
        /// Scenario: storj (always-on nodes, 1% leave a month), whitepaper (10% a month), home (10% a month, half
        /// of the nodes desktops), home-picky (home, customers hiring only always-on nodes).
        #[arg(long, default_value = "storj")]
        scenario: String,
        /// Nodes in the population.
        #[arg(long, default_value_t = 100_000)]
        nodes: usize,
        /// Customers simulated (each stores on n of the nodes).
        #[arg(long, default_value_t = 2_000)]
        customers: usize,
        /// Simulated years.
        #[arg(long, default_value_t = 1.0)]
        years: f64,
        /// Layouts as k/n, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = ["2/4".to_string(), "4/8".into(), "3/10".into(), "8/16".into(), "12/24".into(), "8/20".into(), "16/32".into()])]
        layouts: Vec<String>,
        /// Fire-after values in hours, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [24.0])]
        fire_after_h: Vec<f64>,
        /// Audit interval, hours.
        #[arg(long, default_value_t = 1.0)]
        audit_interval_h: f64,
        /// Plain data per customer, GiB.
        #[arg(long, default_value_t = 10.0)]
        data_gib: f64,
        /// Departures per node per year instead of the scenario's.
        #[arg(long)]
        departures: Option<f64>,
        /// Correlated departures per year, and the share of nodes each takes ("0.5,0.1").
        #[arg(long)]
        shock: Option<String>,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Yearly probability of losing a block, per layout: a Markov chain of permanent failures (λ per position per
    /// year), correlated failures (a share of positions at once) and repairs (mean time to repair: fire-after, hiring
    /// and rebuilding), with every position repaired at once, one at a time, and never.
    Durability {
        /// Layouts as k/n, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = ["2/4".to_string(), "4/8".into(), "3/10".into(), "8/16".into(), "16/32".into()])]
        layouts: Vec<String>,
        /// Permanent failures per position per year (1.2: the Storj v3 whitepaper's 10% a month assumption).
        #[arg(long, default_value_t = 1.2)]
        lambda: f64,
        /// Mean hours to repair a position: fire-after (24 h by default) plus hiring and rebuilding.
        #[arg(long, default_value_t = 26.4)]
        repair_hours: f64,
        /// Correlated failures per year.
        #[arg(long, default_value_t = 0.0)]
        shock_rate: f64,
        /// Share of positions one correlated failure takes.
        #[arg(long, default_value_t = 0.1)]
        shock_share: f64,
    },
}

fn parse_layout(s: &str) -> Result<(u16, u16)> {
    let (k, n) = s.split_once('/').ok_or_else(|| anyhow::anyhow!("layout {s:?}: expected k/n"))?;
    let (k, n): (u16, u16) = (k.trim().parse()?, n.trim().parse()?);
    if k == 0 || k >= n || n > 256 {
        bail!("layout {s:?}: need 1 <= k < n <= 256");
    }
    Ok((k, n))
}

fn parse_size(s: &str) -> Result<u64, String> {
    bitdust_core::parse_size(s)
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    bitdust::main_with("warn,bitdust=info,bitdust_lab=info", json, || run(cli));
}

fn run(cli: Cli) -> Result<()> {
    let j = cli.json;
    match cli.command {
        Cmd::Bench { size, suppliers, dir, fire_after_secs } => {
            let report = bench::run(size, suppliers, fire_after_secs, dir.as_deref(), j)?;
            if j {
                out!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
        Cmd::Messages { count, file_mib, senders } => {
            let report = messages::run(count, file_mib, senders, j)?;
            if j {
                out!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
        Cmd::Groups { members, messages, dir } => groups::run(&members, messages, dir.as_deref(), j),
        Cmd::Durability { layouts, lambda, repair_hours, shock_rate, shock_share } => {
            let layouts = layouts.iter().map(|l| parse_layout(l)).collect::<Result<Vec<_>>>()?;
            if !(lambda >= 0.0 && repair_hours > 0.0 && shock_rate >= 0.0 && (0.0..=1.0).contains(&shock_share)) {
                bail!("need lambda >= 0, repair-hours > 0, shock-rate >= 0 and 0 <= shock-share <= 1");
            }
            let r = durability::report(&layouts, lambda, repair_hours, (shock_rate, shock_share));
            if j {
                out!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                out!(
                    "λ = {lambda}/yr per position, E[R] = {repair_hours} h, correlated failures {shock_rate}/yr taking \
                     {:.0}% of positions",
                    shock_share * 100.0
                );
                out!(
                    "{:<11} {:>9} {:>14} {:>14} {:>14}",
                    "layout",
                    "overhead",
                    "loss/yr",
                    "serial repair",
                    "no repair"
                );
                for row in &r.rows {
                    out!(
                        "{:<11} {:>8.2}x {:>14.3e} {:>14.3e} {:>14.3e}",
                        row.layout,
                        row.overhead,
                        row.loss_per_year,
                        row.loss_per_year_serial,
                        row.loss_per_year_no_repair
                    );
                }
            }
            Ok(())
        }
        Cmd::Churn {
            scenario,
            nodes,
            customers,
            years,
            layouts,
            fire_after_h,
            audit_interval_h,
            data_gib,
            departures,
            shock,
            seed,
        } => {
            let mut sc = churn::Scenario::named(&scenario)?;
            if let Some(d) = departures {
                sc.departures_per_year = d;
            }
            if let Some(s) = shock {
                let (rate, share) = s.split_once(',').ok_or_else(|| anyhow::anyhow!("--shock RATE,SHARE"))?;
                (sc.shocks_per_year, sc.shock_share) = (rate.trim().parse()?, share.trim().parse()?);
            }
            let ok = |x: f64| x.is_finite() && x >= 0.0;
            if !(ok(sc.departures_per_year) && ok(sc.shocks_per_year) && (0.0..=1.0).contains(&sc.shock_share))
                || !(years > 0.0 && years <= 100.0 && data_gib > 0.0 && nodes <= 10_000_000 && customers <= nodes)
            {
                bail!(
                    "need rates >= 0, a shock share in [0, 1], 0 < years <= 100, data > 0, customers <= nodes <= 1e7"
                );
            }
            if j {
                out!("{}", serde_json::to_string(&serde_json::json!({ "scenario": sc }))?);
            }
            for layout in &layouts {
                let (k, n) = parse_layout(layout)?;
                for &fire in &fire_after_h {
                    let o = churn::Options {
                        nodes,
                        customers,
                        years,
                        k,
                        n,
                        data_bytes: (data_gib * f64::from(1u32 << 30)) as u64,
                        units: 16,
                        fire_after_h: fire,
                        audit_interval_h,
                        seed,
                        policy: None,
                        scripted_departure_ms: None,
                    };
                    let r = churn::run(&o, &sc)?;
                    if j {
                        out!("{}", serde_json::to_string(&r)?);
                    } else {
                        out!(
                            "{:<11} fire {:>5.1} h: {:>5.2}x  λ {:.3}/yr (false firings {:.3})  E[R] {:.1} h (p99 {:.1})  \
                             repair {:.0} MB/day  losses {} in {:.0} customer-years (loss/yr {:.2e})  chain loss/yr \
                             {:.2e}  [{:.0} s]",
                            r.layout,
                            r.fire_after_h,
                            r.overhead,
                            r.position_losses_per_year,
                            r.false_firings_per_year,
                            r.repair_mean_h,
                            r.repair_p99_h,
                            r.repair_mb_per_day,
                            r.losses,
                            r.customer_years,
                            r.measured_loss_per_year,
                            r.chain_loss_per_year,
                            r.wall_secs
                        );
                    }
                }
            }
            Ok(())
        }
        Cmd::Sim { nodes, lookups, hire, dir, idle_secs, search, repair, child } => {
            let options = sim::SimOptions { lookups, hire, idle_secs, dir, search, repair };
            match (child, nodes.as_slice()) {
                (true, [n]) => sim::run_child(*n, &options),
                (true, _) => bail!("a simulation child runs exactly one size"),
                (false, _) => sim::run(&nodes, &options, j),
            }
        }
    }
}
