//! The API server's configuration (typed; the CLI maps flags onto it).

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// An IPv4 CIDR such as `10.43.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (expected e.g. 10.43.0.0/16)"))?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} in {s:?} is not an IPv4 address"))?;
        let prefix: u8 =
            p.parse().ok().filter(|p| *p <= 30).ok_or_else(|| {
                format!("prefix length {p:?} in {s:?} must be a number from 0 to 30")
            })?;
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// The n-th address of the range (0 = network address).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr).wrapping_add(n))
    }
    /// Number of addresses.
    pub fn size(&self) -> u32 {
        if self.prefix == 0 {
            u32::MAX
        } else {
            1u32 << (32 - self.prefix)
        }
    }
    /// True when `ip` lies inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        };
        u32::from(ip) & mask == u32::from(self.addr)
    }
}

/// Everything `drover server` needs to run the API server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the database, keys and kubeconfig live.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub bind_address: IpAddr,
    /// HTTPS port.
    pub https_port: u16,
    /// Extra subject alternative names for the serving certificate.
    pub tls_sans: Vec<String>,
    /// Service ClusterIP range.
    pub service_cidr: Cidr,
    /// Pod address range.
    pub cluster_cidr: Cidr,
    /// Shared secret that encrypts the cluster identity; generated into the data dir if absent.
    pub token: Option<String>,
    /// True when no local node agent runs (no effect yet).
    pub disable_agent: bool,
    /// How long Events live.
    pub event_ttl: Duration,
    /// Requests served at once before answering 429.
    pub max_in_flight: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// Datastore history kept for watches to resume (at least this long).
    pub history_retention: Duration,
    /// Most revisions of history kept, whatever their age (bounds the database size).
    pub max_history: u64,
    /// The datastore, when not the SQLite file `<data-dir>/db/state.db`.
    pub datastore: Option<Datastore>,
}

/// Where the API server keeps its state (`--datastore-endpoint`).
#[derive(Clone, Debug)]
pub enum Datastore {
    /// A SQLite file; servers on one host may share it.
    Sqlite(PathBuf),
    /// An etcd cluster. `retention` and `max_history` are taken from [`Config`] at start.
    Etcd(Box<drover_store::EtcdConfig>),
}

/// Parses `--datastore-endpoint`: `sqlite://PATH` or a plain path to a SQLite file, or etcd
/// members `etcd://[user:password@]host:port[,host:port…]` (also `http://` and `https://`, as
/// k3s accepts).
pub fn parse_datastore_endpoint(s: &str) -> Result<Datastore, String> {
    if let Some(path) = s.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(
                "sqlite:// needs a file path, e.g. sqlite:///var/lib/drover/db/state.db".into(),
            );
        }
        return Ok(Datastore::Sqlite(PathBuf::from(path)));
    }
    if ["etcd://", "http://", "https://"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        return drover_store::EtcdConfig::parse_endpoint(s).map(|c| Datastore::Etcd(Box::new(c)));
    }
    if s.contains("://") {
        return Err(format!(
            "{s:?}: unknown datastore; use sqlite://PATH or etcd://host:2379[,host2:2379]"
        ));
    }
    Ok(Datastore::Sqlite(PathBuf::from(s)))
}

impl Config {
    /// Defaults like k3s's.
    pub fn new(data_dir: PathBuf) -> Config {
        Config {
            data_dir,
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            https_port: 6443,
            tls_sans: Vec::new(),
            service_cidr: "10.43.0.0/16".parse().expect("valid"),
            cluster_cidr: "10.42.0.0/16".parse().expect("valid"),
            token: None,
            disable_agent: false,
            event_ttl: Duration::from_secs(3600),
            max_in_flight: 400,
            shutdown_grace: Duration::from_secs(10),
            history_retention: Duration::from_secs(300),
            max_history: 100_000,
            datastore: None,
        }
    }

    /// The first service IP (the `kubernetes` Service).
    pub fn first_service_ip(&self) -> Ipv4Addr {
        self.service_cidr.nth(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_endpoints_parse_sqlite_and_etcd_and_reject_unknown_schemes() {
        assert!(matches!(
            parse_datastore_endpoint("sqlite:///var/lib/drover/db/state.db"),
            Ok(Datastore::Sqlite(p)) if p == std::path::Path::new("/var/lib/drover/db/state.db")
        ));
        assert!(matches!(
            parse_datastore_endpoint("/tmp/x.db"),
            Ok(Datastore::Sqlite(_))
        ));
        match parse_datastore_endpoint("etcd://u:p@10.0.0.1:2379,https://10.0.0.2:2379") {
            Ok(Datastore::Etcd(c)) => {
                assert_eq!(
                    c.endpoints,
                    ["etcd://10.0.0.1:2379", "https://10.0.0.2:2379"]
                );
                assert_eq!(c.user, Some(("u".into(), "p".into())));
            }
            other => panic!("etcd endpoint: {other:?}"),
        }
        assert!(matches!(
            parse_datastore_endpoint("http://127.0.0.1:2379"),
            Ok(Datastore::Etcd(_))
        ));
        let err = parse_datastore_endpoint("mysql://db").unwrap_err();
        assert!(
            err.contains("unknown datastore") && err.contains("etcd://"),
            "{err}"
        );
        let err = parse_datastore_endpoint("etcd://host").unwrap_err();
        assert!(err.contains("no port"), "{err}");
    }

    #[test]
    fn cidrs_parse_and_reject_clearly() {
        let c: Cidr = "10.43.7.9/16".parse().expect("ok");
        assert_eq!(c.to_string(), "10.43.0.0/16");
        assert_eq!(c.nth(1), Ipv4Addr::new(10, 43, 0, 1));
        assert!(
            c.contains(Ipv4Addr::new(10, 43, 255, 1)) && !c.contains(Ipv4Addr::new(10, 44, 0, 1))
        );
        assert!(
            "10.43.0.0"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("not a CIDR")
        );
        assert!(
            "10.43.0.0/33"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("0 to 30")
        );
    }
}
