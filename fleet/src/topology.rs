//! The bookstore's services and their identities: what each one is called, what it runs on, which
//! instrumentation libraries report for it (OTLP instrumentation scopes), and the OTLP `Resource`
//! that describes one running instance.

use std::fmt;
use std::str::FromStr;

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::otlp::{kv_i64, kv_str};
use crate::rng::Rng;

/// OpenTelemetry semantic-conventions schema the simulated services declare.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.37.0";

/// Kubernetes namespace (and `service.namespace`) of the bookstore.
pub const NAMESPACE: &str = "bookstore";

/// One of the bookstore's microservices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// The public HTTP API: routes requests, orchestrates checkout, owns the business metrics.
    Gateway,
    /// Users, carts and orders; publishes order events.
    Account,
    /// The catalogue and inventory; consumes order events to schedule shipments.
    Warehouse,
    /// Charges customers through an external payment provider.
    Payment,
    /// Authentication: logins and session tokens.
    Security,
}

/// How many services the fleet runs.
pub const SERVICE_COUNT: usize = 5;

impl Service {
    /// Every service, in a fixed order (the order of resources in each export).
    pub const ALL: [Service; SERVICE_COUNT] = [
        Service::Gateway,
        Service::Account,
        Service::Warehouse,
        Service::Payment,
        Service::Security,
    ];

    /// `service.name`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => "gateway",
            Service::Account => "account",
            Service::Warehouse => "warehouse",
            Service::Payment => "payment",
            Service::Security => "security",
        }
    }

    /// Position in [`Service::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// `service.version`.
    pub fn version(self) -> &'static str {
        match self {
            Service::Gateway => "2.14.1",
            Service::Account => "1.9.0",
            Service::Warehouse => "3.2.4",
            Service::Payment => "1.22.3",
            Service::Security => "0.18.7",
        }
    }

    /// Which language runtime the service is written for.
    pub(crate) fn runtime(self) -> Runtime {
        match self {
            Service::Gateway | Service::Payment | Service::Security => Runtime::Go,
            Service::Account | Service::Warehouse => Runtime::Jvm,
        }
    }

    /// In-cluster DNS name, as clients see it in `server.address`.
    pub(crate) fn host(self) -> &'static str {
        match self {
            Service::Gateway => "gateway.bookstore.svc.cluster.local",
            Service::Account => "account.bookstore.svc.cluster.local",
            Service::Warehouse => "warehouse.bookstore.svc.cluster.local",
            Service::Payment => "payment.bookstore.svc.cluster.local",
            Service::Security => "security.bookstore.svc.cluster.local",
        }
    }

    /// The pod's IP address, as peers see it in `client.address` / `network.peer.address`.
    pub(crate) fn pod_ip(self) -> &'static str {
        match self {
            Service::Gateway => "10.0.1.23",
            Service::Account => "10.0.2.41",
            Service::Warehouse => "10.0.2.57",
            Service::Payment => "10.0.3.12",
            Service::Security => "10.0.3.88",
        }
    }

    /// Listening port (`server.port`).
    pub(crate) fn port(self) -> i64 {
        match self {
            Service::Gateway => 8080,
            Service::Account | Service::Warehouse => 8080,
            Service::Payment | Service::Security => 50051,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Service {
    type Err = String;

    fn from_str(s: &str) -> Result<Service, String> {
        Service::ALL
            .into_iter()
            .find(|svc| svc.name() == s)
            .ok_or_else(|| format!("unknown service {s:?}; expected one of gateway, account, warehouse, payment, security"))
    }
}

/// The runtime a service is built on; decides its runtime metrics and library names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Runtime {
    Go,
    Jvm,
}

/// Which instrumentation library produced an item; each is one OTLP instrumentation scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ScopeKind {
    /// HTTP server and client instrumentation.
    Http,
    /// gRPC instrumentation.
    Rpc,
    /// The PostgreSQL driver.
    Db,
    /// The Redis client.
    Cache,
    /// The Kafka client.
    Messaging,
    /// Process and runtime metrics.
    Runtime,
    /// The application's own spans, metrics and logger.
    App,
}

/// How many scope kinds there are.
pub(crate) const SCOPE_COUNT: usize = 7;

impl ScopeKind {
    /// Every scope kind, in export order.
    pub(crate) const ALL: [ScopeKind; SCOPE_COUNT] = [
        ScopeKind::Http,
        ScopeKind::Rpc,
        ScopeKind::Db,
        ScopeKind::Cache,
        ScopeKind::Messaging,
        ScopeKind::Runtime,
        ScopeKind::App,
    ];

    /// Position in [`ScopeKind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The instrumentation library's name and version for a service.
    fn library(self, service: Service) -> (&'static str, &'static str) {
        match (service.runtime(), self) {
            (Runtime::Go, ScopeKind::Http) => (
                "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
                "0.63.0",
            ),
            (Runtime::Go, ScopeKind::Rpc) => (
                "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc",
                "0.63.0",
            ),
            (Runtime::Go, ScopeKind::Db) => ("github.com/exaring/otelpgx", "0.9.3"),
            (Runtime::Go, ScopeKind::Cache) => {
                ("github.com/redis/go-redis/extra/redisotel", "9.7.0")
            }
            (Runtime::Go, ScopeKind::Messaging) => {
                ("github.com/twmb/franz-go/plugin/kotel", "1.6.0")
            }
            (Runtime::Go, ScopeKind::Runtime) => (
                "go.opentelemetry.io/contrib/instrumentation/runtime",
                "0.63.0",
            ),
            (Runtime::Jvm, ScopeKind::Http) => ("io.opentelemetry.tomcat-10.0", "2.20.1-alpha"),
            (Runtime::Jvm, ScopeKind::Rpc) => ("io.opentelemetry.grpc-1.6", "2.20.1-alpha"),
            (Runtime::Jvm, ScopeKind::Db) => ("io.opentelemetry.jdbc", "2.20.1-alpha"),
            (Runtime::Jvm, ScopeKind::Cache) => ("io.opentelemetry.lettuce-5.1", "2.20.1-alpha"),
            (Runtime::Jvm, ScopeKind::Messaging) => {
                ("io.opentelemetry.kafka-clients-2.6", "2.20.1-alpha")
            }
            (Runtime::Jvm, ScopeKind::Runtime) => {
                ("io.opentelemetry.runtime-telemetry-java17", "2.20.1-alpha")
            }
            (_, ScopeKind::App) => match service {
                Service::Gateway => ("bookstore/gateway", "2.14.1"),
                Service::Account => ("com.bookstore.account", "1.9.0"),
                Service::Warehouse => ("com.bookstore.warehouse", "3.2.4"),
                Service::Payment => ("bookstore/payment", "1.22.3"),
                Service::Security => ("bookstore/security", "0.18.7"),
            },
        }
    }
}

/// The fixed identity of one running instance of each service: its resource and its scopes, built
/// once so every export shares them.
#[derive(Clone, Debug)]
pub(crate) struct Instances {
    resources: Vec<Resource>,
    scopes: Vec<InstrumentationScope>,
}

impl Instances {
    /// Draws instance ids, pod names and pids from `rng`.
    pub(crate) fn new(rng: &mut Rng, environment: &str) -> Instances {
        let mut resources = Vec::with_capacity(SERVICE_COUNT);
        let mut scopes = Vec::with_capacity(SERVICE_COUNT * SCOPE_COUNT);
        for service in Service::ALL {
            resources.push(resource(rng, service, environment));
            for kind in ScopeKind::ALL {
                let (name, version) = kind.library(service);
                scopes.push(InstrumentationScope {
                    name: name.to_string(),
                    version: version.to_string(),
                    ..Default::default()
                });
            }
        }
        Instances { resources, scopes }
    }

    /// The resource of `service`'s instance.
    pub(crate) fn resource(&self, service: Service) -> &Resource {
        &self.resources[service.index()]
    }

    /// The instrumentation scope of `kind` in `service`.
    pub(crate) fn scope(&self, service: Service, kind: ScopeKind) -> &InstrumentationScope {
        &self.scopes[service.index() * SCOPE_COUNT + kind.index()]
    }
}

fn uuid_v4(rng: &mut Rng) -> String {
    let mut b: [u8; 16] = rng.id_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn pod_suffix(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..len).map(|_| char::from(*rng.pick(ALPHABET))).collect()
}

fn resource(rng: &mut Rng, service: Service, environment: &str) -> Resource {
    let pod = format!(
        "{}-{}-{}",
        service.name(),
        pod_suffix(rng, 10),
        pod_suffix(rng, 5)
    );
    let node = format!(
        "ip-10-0-{}-{}.eu-west-1.compute.internal",
        rng.between(1, 3) * 16,
        rng.between(10, 250)
    );
    let mut attributes = vec![
        kv_str("service.name", service.name()),
        kv_str("service.namespace", NAMESPACE),
        kv_str("service.version", service.version()),
        kv_str("service.instance.id", uuid_v4(rng)),
        kv_str("deployment.environment.name", environment),
        kv_str("host.name", pod.clone()),
        kv_str("host.arch", "amd64"),
        kv_str("os.type", "linux"),
        kv_str("k8s.namespace.name", NAMESPACE),
        kv_str("k8s.deployment.name", service.name()),
        kv_str("k8s.pod.name", pod),
        kv_str("k8s.node.name", node),
        kv_str("cloud.provider", "aws"),
        kv_str("cloud.region", "eu-west-1"),
        kv_i64("process.pid", 1),
    ];
    match service.runtime() {
        Runtime::Go => attributes.extend([
            kv_str("process.runtime.name", "go"),
            kv_str("process.runtime.version", "go1.25.1"),
            kv_str("process.executable.name", service.name()),
            kv_str("telemetry.sdk.name", "opentelemetry"),
            kv_str("telemetry.sdk.language", "go"),
            kv_str("telemetry.sdk.version", "1.38.0"),
        ]),
        Runtime::Jvm => attributes.extend([
            kv_str("process.runtime.name", "OpenJDK Runtime Environment"),
            kv_str("process.runtime.version", "21.0.8+9-LTS"),
            kv_str("process.executable.name", "java"),
            kv_str("telemetry.sdk.name", "opentelemetry"),
            kv_str("telemetry.sdk.language", "java"),
            kv_str("telemetry.sdk.version", "1.54.1"),
            kv_str(
                "telemetry.distro.name",
                "opentelemetry-java-instrumentation",
            ),
            kv_str("telemetry.distro.version", "2.20.1"),
        ]),
    }
    Resource {
        attributes,
        ..Default::default()
    }
}
