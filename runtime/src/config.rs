//! The runtime's settings, derived from the provider options.

use std::path::Path;
use std::time::Duration;
use trireme_config::{Options, Pinning, TransportChoice};
use trireme_gcache::GCacheConfig;

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    pub shards: u32,
    pub transport: TransportChoice,
    pub pinning: Pinning,
    pub spin_budget: Duration,
    /// Largest batch of writesets in one replication message.
    pub batch_max_bytes: u64,
    /// One protocol tick.
    pub tick: Duration,
    pub election_timeout: Duration,
    pub suspect_timeout: Duration,
    pub gcache: GCacheConfig,
    pub cert_optimistic_pa: bool,
    /// Where peers connect (`gmcast.listen_addr`).
    pub listen: String,
    /// The host peers are told to dial (`base_host`, from `wsrep_node_address`).
    pub advertised_host: String,
    /// Where a joiner receives the state stream (`ist.recv_addr`) and what it binds
    /// (`ist.recv_bind`, else the same).
    pub ist_recv: Option<String>,
    pub ist_bind: Option<String>,
    /// How long `connect` waits for a joiner's admission (`pc.wait_prim_timeout`).
    pub join_timeout: Duration,
    /// Where `gvwstate.dat` lives, and whether to use it (`pc.recovery`).
    pub state_dir: std::path::PathBuf,
    pub pc_recovery: bool,
}

impl RuntimeConfig {
    pub fn from_options(options: &Options, _data_dir: &Path) -> RuntimeConfig {
        let mut gcache = GCacheConfig::new(options.gcache_dir());
        gcache.name = options.gcache_name().to_string();
        gcache.size_bytes = options.gcache_size_bytes();
        gcache.page_size_bytes = options.gcache_page_size_bytes();
        gcache.recover = options.gcache_recover();
        gcache.slice_count = 1;
        // The profile fills in what the user left alone (trireme.profile; explicit options win).
        let tuned = trireme_tuning::resolve(options).unwrap_or_else(|e| {
            log::warn!("{e}; using the options as given");
            trireme_tuning::Effective {
                profile: "default",
                shards: (options.shards(), trireme_tuning::Source::Option),
                pinning: (options.pinning(), trireme_tuning::Source::Option),
                spin_budget_us: (options.spin_budget_us(), trireme_tuning::Source::Option),
                batch_max_bytes: (options.batch_max_bytes(), trireme_tuning::Source::Option),
                fc_limit: (options.fc_limit(), trireme_tuning::Source::Option),
                fc_factor: (options.fc_factor(), trireme_tuning::Source::Option),
            }
        });
        log::info!(
            "Tuning profile {}: {} shard(s), pinning {}, spin {} us, batches up to {} bytes",
            tuned.profile,
            tuned.shards.0,
            tuned.pinning.0,
            tuned.spin_budget_us.0,
            tuned.batch_max_bytes.0
        );
        RuntimeConfig {
            shards: tuned.shards.0,
            transport: options.transport(),
            pinning: tuned.pinning.0,
            spin_budget: Duration::from_micros(u64::from(tuned.spin_budget_us.0)),
            batch_max_bytes: tuned.batch_max_bytes.0,
            tick: Duration::from_millis(10),
            election_timeout: options.election_timeout(),
            suspect_timeout: options.suspect_timeout(),
            gcache,
            cert_optimistic_pa: true,
            listen: {
                let l = options.listen_addr();
                format!("{}:{}", bracket(&l.host), l.port)
            },
            advertised_host: options.base_host().unwrap_or("127.0.0.1").to_string(),
            ist_recv: options
                .ist_recv_addr()
                .map(|a| format!("{}:{}", bracket(&a.host), a.port)),
            ist_bind: options
                .ist_recv_bind()
                .map(|a| format!("{}:{}", bracket(&a.host), a.port)),
            join_timeout: options.pc_wait_prim_timeout(),
            state_dir: options.base_dir(),
            pc_recovery: options.pc_recovery(),
        }
    }

    /// The address peers dial: the advertised host and the port actually bound.
    pub fn advertised_address(&self, port: u16) -> String {
        format!("{}:{port}", bracket(&self.advertised_host))
    }

    pub fn net_choice(&self) -> trireme_net::TransportChoice {
        match self.transport {
            TransportChoice::Portable => trireme_net::TransportChoice::Portable,
            TransportChoice::IoUring => trireme_net::TransportChoice::IoUring,
            _ => trireme_net::TransportChoice::Auto,
        }
    }

    /// The core a shard is pinned to, if pinning is on.
    pub fn pin_core(&self, shard: u32) -> Option<usize> {
        match &self.pinning {
            Pinning::None => None,
            Pinning::Auto => {
                let cores = core_affinity::get_core_ids()?;
                if cores.is_empty() {
                    return None;
                }
                // Leave the first cores to mariadbd: pin shards to the last ones.
                let index = cores.len() - 1 - (shard as usize % cores.len());
                Some(cores[index].id)
            }
            Pinning::Cores(list) => list
                .get(shard as usize % list.len().max(1))
                .map(|c| *c as usize),
        }
    }
}

/// IPv6 literals need brackets in `host:port`.
fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
