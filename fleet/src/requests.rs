//! The storefront's requests, end to end: what the gateway does for each route, and what each
//! downstream service does to serve it. Every function here is business logic expressed with the
//! call primitives of [`crate::calls`].

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::breaker::Downstream;
use crate::calls::{CallOutcome, CallResult, DbOp, Outcome, Policy, Reply, Req, Target};
use crate::catalog::customer;
use crate::logs::Severity;
use crate::metrics::{Inst, i, s};
use crate::otlp::{kv_f64, kv_i64, kv_str};
use crate::scenario::Effects;
use crate::topology::{ScopeKind, Service};
use crate::traces::SpanRef;
use crate::world::World;

/// The payment provider's API host.
const PROVIDER_HOST: &str = "api.payments.example";
/// The order-events topic.
const ORDER_EVENTS: &str = "order-events";
/// The warehouse's consumer group on order events.
const FULFILMENT: &str = "warehouse-fulfilment";

const SELECT_SESSION: DbOp = DbOp {
    operation: "SELECT",
    collection: "sessions",
    summary: "SELECT sessions",
    query: "SELECT user_id, expires_at FROM sessions WHERE token_hash = $1",
    median_ms: 1.1,
};
const SELECT_USER: DbOp = DbOp {
    operation: "SELECT",
    collection: "users",
    summary: "SELECT users",
    query: "SELECT id, password_hash, locked FROM users WHERE email = $1",
    median_ms: 1.3,
};
const SEARCH_BOOKS: DbOp = DbOp {
    operation: "SELECT",
    collection: "books",
    summary: "SELECT books",
    query: "SELECT isbn, title, price_cents FROM books WHERE search_vector @@ plainto_tsquery($1) ORDER BY rank DESC LIMIT 24",
    median_ms: 9.0,
};
const SELECT_BOOK: DbOp = DbOp {
    operation: "SELECT",
    collection: "books",
    summary: "SELECT books",
    query: "SELECT isbn, title, author, price_cents, description FROM books WHERE isbn = $1",
    median_ms: 1.2,
};
const SELECT_STOCK: DbOp = DbOp {
    operation: "SELECT",
    collection: "inventory",
    summary: "SELECT inventory",
    query: "SELECT available FROM inventory WHERE isbn = $1",
    median_ms: 0.9,
};
const RESERVE_STOCK: DbOp = DbOp {
    operation: "UPDATE",
    collection: "inventory",
    summary: "UPDATE inventory",
    query: "UPDATE inventory SET available = available - $2 WHERE isbn = $1 AND available >= $2",
    median_ms: 2.4,
};
const RELEASE_STOCK: DbOp = DbOp {
    operation: "UPDATE",
    collection: "inventory",
    summary: "UPDATE inventory",
    query: "UPDATE inventory SET available = available + $2 WHERE isbn = $1",
    median_ms: 2.0,
};
const INSERT_VIEW: DbOp = DbOp {
    operation: "INSERT",
    collection: "view_history",
    summary: "INSERT view_history",
    query: "INSERT INTO view_history (user_id, isbn, viewed_at) VALUES ($1, $2, now())",
    median_ms: 1.4,
};
const SELECT_CART: DbOp = DbOp {
    operation: "SELECT",
    collection: "cart_items",
    summary: "SELECT cart_items",
    query: "SELECT c.isbn, c.quantity, b.price_cents FROM cart_items c JOIN books b USING (isbn) WHERE c.user_id = $1",
    median_ms: 1.8,
};
const INSERT_CART: DbOp = DbOp {
    operation: "INSERT",
    collection: "cart_items",
    summary: "INSERT cart_items",
    query: "INSERT INTO cart_items (user_id, isbn, quantity) VALUES ($1, $2, $3) ON CONFLICT (user_id, isbn) DO UPDATE SET quantity = cart_items.quantity + $3",
    median_ms: 2.1,
};
const DELETE_CART: DbOp = DbOp {
    operation: "DELETE",
    collection: "cart_items",
    summary: "DELETE cart_items",
    query: "DELETE FROM cart_items WHERE user_id = $1",
    median_ms: 1.6,
};
const SELECT_ORDERS: DbOp = DbOp {
    operation: "SELECT",
    collection: "orders",
    summary: "SELECT orders",
    query: "SELECT id, status, total_cents, created_at FROM orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20",
    median_ms: 4.5,
};
const INSERT_ORDER: DbOp = DbOp {
    operation: "INSERT",
    collection: "orders",
    summary: "INSERT orders",
    query: "INSERT INTO orders (id, user_id, status, total_cents, payment_method) VALUES ($1, $2, 'placed', $3, $4)",
    median_ms: 2.6,
};
const INSERT_CHARGE: DbOp = DbOp {
    operation: "INSERT",
    collection: "charges",
    summary: "INSERT charges",
    query: "INSERT INTO charges (id, order_ref, amount_cents, method, status) VALUES ($1, $2, $3, $4, 'pending')",
    median_ms: 2.0,
};
const UPDATE_CHARGE: DbOp = DbOp {
    operation: "UPDATE",
    collection: "charges",
    summary: "UPDATE charges",
    query: "UPDATE charges SET status = $2, provider_ref = $3 WHERE id = $1",
    median_ms: 1.7,
};
const INSERT_SHIPMENT: DbOp = DbOp {
    operation: "INSERT",
    collection: "shipments",
    summary: "INSERT shipments",
    query: "INSERT INTO shipments (order_id, location, status) VALUES ($1, $2, 'scheduled')",
    median_ms: 2.2,
};

const SEARCH_TERMS: [&str; 10] = [
    "mystery",
    "dragons",
    "rust programming",
    "history of rome",
    "cookbook",
    "poetry",
    "space",
    "detective",
    "gardening",
    "comics",
];
const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/139.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "BookstoreApp/4.12.0 (Android 15; Pixel 8)",
];

const WAREHOUSE_HTTP: Policy = Policy {
    timeout_ms: 1000.0,
    attempts: 2,
    breaker: Some(Downstream::GatewayToWarehouse),
};
const WAREHOUSE_RPC: Policy = Policy {
    timeout_ms: 800.0,
    attempts: 1,
    breaker: Some(Downstream::GatewayToWarehouse),
};
const ACCOUNT_READ: Policy = Policy {
    timeout_ms: 1000.0,
    attempts: 2,
    breaker: Some(Downstream::GatewayToAccount),
};
const ACCOUNT_WRITE: Policy = Policy {
    timeout_ms: 1500.0,
    attempts: 1,
    breaker: Some(Downstream::GatewayToAccount),
};
const PAYMENT_RPC: Policy = Policy {
    timeout_ms: 3000.0,
    attempts: 2,
    breaker: Some(Downstream::GatewayToPayment),
};
const AUTH_RPC: Policy = Policy {
    timeout_ms: 500.0,
    attempts: 1,
    breaker: None,
};

/// The storefront routes and their usual share of traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Browse,
    BookDetail,
    AddToCart,
    Checkout,
    Login,
    OrderHistory,
}

const ROUTES: [(Route, f64); 6] = [
    (Route::Browse, 38.0),
    (Route::BookDetail, 25.0),
    (Route::AddToCart, 14.0),
    (Route::Checkout, 10.0),
    (Route::Login, 8.0),
    (Route::OrderHistory, 5.0),
];

/// What the gateway answers and when.
#[derive(Clone, Copy, Debug)]
struct Answer {
    end: i64,
    status: i64,
}

/// Simulates one storefront request arriving at `t`: its whole trace, logs and measurements.
pub(crate) fn simulate(world: &mut World, fx: Effects, t: i64) {
    let weights = ROUTES.map(|(route, w)| {
        if route == Route::Checkout {
            w * fx.checkout_weight
        } else {
            w
        }
    });
    let route = ROUTES[world.rng.weighted(&weights)].0;
    let mut req = Req::new(world, fx);
    req.storefront(route, t);
    req.finish();
}

fn rpc(callee: Service, service: &'static str, method: &'static str) -> Target<'static> {
    Target::Rpc {
        callee,
        service,
        method,
    }
}

impl Req<'_> {
    fn storefront(&mut self, route: Route, t: i64) {
        let user = customer(&mut self.w.rng);
        let book = self.w.catalog.pick(&mut self.w.rng);
        let isbn = self.w.catalog.book(book).isbn.clone();
        let (method, template, path) = match route {
            Route::Browse => ("GET", "/api/books", "/api/books".to_string()),
            Route::BookDetail => ("GET", "/api/books/{isbn}", format!("/api/books/{isbn}")),
            Route::AddToCart => ("POST", "/api/cart/items", "/api/cart/items".to_string()),
            Route::Checkout => ("POST", "/api/orders", "/api/orders".to_string()),
            Route::Login => ("POST", "/api/login", "/api/login".to_string()),
            Route::OrderHistory => ("GET", "/api/orders", "/api/orders".to_string()),
        };
        let root = self.span(
            None,
            Service::Gateway,
            ScopeKind::Http,
            SpanKind::Server,
            format!("{method} {template}"),
            t,
        );
        let mut now = t + self.work(Service::Gateway, 0.15);
        now = self.cache(
            root,
            now,
            Service::Gateway,
            "INCR",
            &format!("ratelimit:{user}"),
        );

        let mut answer = if route == Route::Login {
            self.login(root, now, &user)
        } else {
            match self.authenticate(root, now, &user) {
                Err(refused) => refused,
                Ok(now) => match route {
                    Route::Browse => self.browse(root, now),
                    Route::BookDetail => self.book_detail(root, now, &user, book),
                    Route::AddToCart => self.add_to_cart(root, now, &user, book),
                    Route::Checkout => self.checkout(root, now, &user),
                    Route::OrderHistory => self.order_history(root, now, &user),
                    Route::Login => Answer {
                        end: now,
                        status: 200,
                    },
                },
            }
        };
        if answer.status < 500
            && self
                .w
                .rng
                .chance(self.fx.error_rate[Service::Gateway.index()])
        {
            let reply = self.fail(Service::Gateway, root, answer.end);
            answer = Answer {
                end: reply.end,
                status: 500,
            };
        }
        let end = answer.end + self.work(Service::Gateway, 0.3);
        let status = answer.status;
        self.trace.end(root, end);
        let client_ip = format!(
            "{}.{}.{}.{}",
            self.w.rng.between(23, 212),
            self.w.rng.below(256),
            self.w.rng.below(256),
            self.w.rng.between(1, 254)
        );
        let agent = *self.w.rng.pick(&USER_AGENTS);
        self.trace.attrs(
            root,
            [
                kv_str("http.request.method", method),
                kv_str("http.route", template),
                kv_str("url.path", path.clone()),
                kv_str("url.scheme", "https"),
                kv_str("server.address", "shop.bookstore.example"),
                kv_i64("server.port", 443),
                kv_str("network.protocol.version", "2"),
                kv_str("client.address", client_ip.clone()),
                kv_str("user_agent.original", agent),
                kv_str("user.id", user.clone()),
                kv_i64("http.response.status_code", status),
            ],
        );
        let mut attrs = vec![
            s("http.request.method", method),
            s("http.route", template),
            i("http.response.status_code", status),
            s("url.scheme", "https"),
        ];
        if status >= 500 {
            let text = crate::faults::http_status_text(status);
            self.trace.attr(root, kv_str("error.type", text));
            self.trace.set_error(root, format!("HTTP {status}"));
            attrs.push(s("error.type", text));
        }
        let exemplar = self.exemplar(root, end);
        self.w.meter(Service::Gateway).record(
            Inst::HttpServerDuration,
            &attrs,
            (end - t) as f64 / 1e9,
            exemplar,
        );
        self.w.processes[Service::Gateway.index()].requests += 1;

        let severity = match status {
            500.. => Severity::Error,
            400.. => Severity::Warn,
            _ => Severity::Info,
        };
        let ms = (end - t) as f64 / 1e6;
        self.log(
            Service::Gateway,
            Some(root),
            end,
            severity,
            format!("{method} {path} {status} {ms:.1}ms"),
            vec![
                kv_str("http.request.method", method),
                kv_str("url.path", path),
                kv_str("http.route", template),
                kv_i64("http.response.status_code", status),
                kv_f64("duration_ms", ms),
                kv_str("client.address", client_ip),
                kv_str("user.id", user),
            ],
        );
    }

    /// Maps a failed or refused downstream call to the gateway's answer, logging why.
    fn upstream_failed(&mut self, root: SpanRef, peer: Service, result: CallResult) -> Answer {
        let (status, severity, message) = match result.outcome {
            CallOutcome::Ok => {
                return Answer {
                    end: result.end,
                    status: 200,
                };
            }
            CallOutcome::Refused {
                http_status,
                reason,
                ..
            } => (
                http_status.max(400),
                Severity::Warn,
                format!("{peer} refused the request: {reason}"),
            ),
            CallOutcome::Timeout => (
                504,
                Severity::Error,
                format!("upstream {peer} failed: deadline exceeded"),
            ),
            CallOutcome::BreakerOpen => (
                503,
                Severity::Error,
                format!("upstream {peer} failed: circuit breaker open"),
            ),
            CallOutcome::Failed {
                http_status,
                grpc_code,
            } => {
                let code = if http_status > 0 {
                    http_status.to_string()
                } else {
                    crate::faults::grpc_code_name(grpc_code).to_string()
                };
                (
                    502,
                    Severity::Error,
                    format!("upstream {peer} failed: answered {code}"),
                )
            }
        };
        self.log(
            Service::Gateway,
            Some(root),
            result.end,
            severity,
            message,
            vec![
                kv_str("peer.service", peer.name()),
                kv_i64("http.response.status_code", status),
            ],
        );
        Answer {
            end: result.end,
            status,
        }
    }

    fn authenticate(&mut self, root: SpanRef, t: i64, user: &str) -> Result<i64, Answer> {
        let valid = !self.w.rng.chance(0.01);
        let target = rpc(
            Service::Security,
            "bookstore.security.v1.AuthService",
            "ValidateToken",
        );
        let result = self.call(
            root,
            t,
            Service::Gateway,
            target,
            AUTH_RPC,
            |r, server, start| r.validate_token(server, start, valid, user),
        );
        match result.outcome {
            CallOutcome::Ok => Ok(result.end),
            CallOutcome::Refused { .. } => Err(Answer {
                end: result.end,
                status: 401,
            }),
            _ => Err(self.upstream_failed(root, Service::Security, result)),
        }
    }

    fn validate_token(&mut self, server: SpanRef, t: i64, valid: bool, user: &str) -> Reply {
        let token = self.w.rng.next_u64();
        let mut now = t + self.work(Service::Security, 0.1);
        now = self.cache(
            server,
            now,
            Service::Security,
            "GET",
            &format!("session:{token:016x}"),
        );
        if self.w.rng.chance(0.1) {
            self.log(
                Service::Security,
                Some(server),
                now,
                Severity::Debug,
                "session cache miss; loading from database".to_string(),
                vec![kv_str("user.id", user)],
            );
            now = self.db(server, now, Service::Security, &SELECT_SESSION);
            now = self.cache(
                server,
                now,
                Service::Security,
                "SET",
                &format!("session:{token:016x}"),
            );
        }
        now += self.work(Service::Security, 0.1);
        if !valid {
            self.log(
                Service::Security,
                Some(server),
                now,
                Severity::Warn,
                "rejected expired session token".to_string(),
                vec![kv_str("user.id", user)],
            );
            return Reply {
                end: now,
                outcome: Outcome::Refused {
                    http_status: 401,
                    grpc_code: 16,
                    reason: "session expired",
                },
            };
        }
        Reply {
            end: now,
            outcome: Outcome::Ok,
        }
    }

    fn login(&mut self, root: SpanRef, t: i64, user: &str) -> Answer {
        let valid = !self.w.rng.chance(0.04);
        let target = rpc(
            Service::Security,
            "bookstore.security.v1.AuthService",
            "Login",
        );
        let policy = Policy {
            timeout_ms: 1500.0,
            ..AUTH_RPC
        };
        let result = self.call(
            root,
            t,
            Service::Gateway,
            target,
            policy,
            |r, server, start| {
                let mut now = start + r.work(Service::Security, 0.2);
                now = r.db(server, now, Service::Security, &SELECT_USER);
                let verify = r.span(
                    Some(server),
                    Service::Security,
                    ScopeKind::App,
                    SpanKind::Internal,
                    "bcrypt.CompareHashAndPassword",
                    now,
                );
                now += r.work(Service::Security, 55.0);
                r.trace.attr(verify, kv_i64("bcrypt.cost", 10));
                r.trace.end(verify, now);
                if !valid {
                    r.log(
                        Service::Security,
                        Some(server),
                        now,
                        Severity::Warn,
                        "login failed: invalid credentials".to_string(),
                        vec![kv_str("user.id", user)],
                    );
                    return Reply {
                        end: now,
                        outcome: Outcome::Refused {
                            http_status: 401,
                            grpc_code: 16,
                            reason: "invalid credentials",
                        },
                    };
                }
                let session = format!("session:{:016x}", r.w.rng.next_u64());
                now = r.cache(server, now, Service::Security, "SET", &session);
                r.log(
                    Service::Security,
                    Some(server),
                    now,
                    Severity::Info,
                    "user logged in".to_string(),
                    vec![kv_str("user.id", user)],
                );
                Reply {
                    end: now,
                    outcome: Outcome::Ok,
                }
            },
        );
        match result.outcome {
            CallOutcome::Ok => Answer {
                end: result.end,
                status: 200,
            },
            CallOutcome::Refused { .. } => Answer {
                end: result.end,
                status: 401,
            },
            _ => self.upstream_failed(root, Service::Security, result),
        }
    }

    fn browse(&mut self, root: SpanRef, t: i64) -> Answer {
        let term = *self.w.rng.pick(&SEARCH_TERMS);
        let target = Target::Http {
            callee: Service::Warehouse,
            method: "GET",
            route: "/v1/books",
            path: "/v1/books",
            ok_status: 200,
        };
        let result = self.call(
            root,
            t,
            Service::Gateway,
            target,
            WAREHOUSE_HTTP,
            |r, server, start| {
                let mut now = start + r.work(Service::Warehouse, 0.4);
                let key = format!("search:{}", term.replace(' ', "+"));
                now = r.cache(server, now, Service::Warehouse, "GET", &key);
                if r.w.rng.chance(0.4) {
                    r.log(
                        Service::Warehouse,
                        Some(server),
                        now,
                        Severity::Debug,
                        format!("catalog cache miss for {key}"),
                        vec![kv_str("bookstore.search.query", term)],
                    );
                    now = r.db(server, now, Service::Warehouse, &SEARCH_BOOKS);
                    now = r.cache(server, now, Service::Warehouse, "SET", &key);
                }
                Reply {
                    end: now + r.work(Service::Warehouse, 0.8),
                    outcome: Outcome::Ok,
                }
            },
        );
        match result.outcome {
            CallOutcome::Ok => Answer {
                end: result.end,
                status: 200,
            },
            _ => self.upstream_failed(root, Service::Warehouse, result),
        }
    }

    fn book_detail(&mut self, root: SpanRef, t: i64, user: &str, book: usize) -> Answer {
        let isbn = self.w.catalog.book(book).isbn.clone();
        let title = self.w.catalog.book(book).title.clone();
        let exists = !self.w.rng.chance(0.01);
        let path = format!("/v1/books/{isbn}");
        let target = Target::Http {
            callee: Service::Warehouse,
            method: "GET",
            route: "/v1/books/{isbn}",
            path: &path,
            ok_status: 200,
        };
        let result = self.call(
            root,
            t,
            Service::Gateway,
            target,
            WAREHOUSE_HTTP,
            |r, server, start| {
                let mut now = start + r.work(Service::Warehouse, 0.3);
                now = r.cache(
                    server,
                    now,
                    Service::Warehouse,
                    "GET",
                    &format!("book:{isbn}"),
                );
                if !exists || r.w.rng.chance(0.25) {
                    now = r.db(server, now, Service::Warehouse, &SELECT_BOOK);
                    if !exists {
                        return Reply {
                            end: now,
                            outcome: Outcome::Refused {
                                http_status: 404,
                                grpc_code: 5,
                                reason: "no such book",
                            },
                        };
                    }
                    r.log(
                        Service::Warehouse,
                        Some(server),
                        now,
                        Severity::Debug,
                        format!("book {isbn} ({title}) loaded from the database"),
                        vec![kv_str("book.isbn", isbn.clone())],
                    );
                    now = r.cache(
                        server,
                        now,
                        Service::Warehouse,
                        "SET",
                        &format!("book:{isbn}"),
                    );
                }
                Reply {
                    end: now + r.work(Service::Warehouse, 0.5),
                    outcome: Outcome::Ok,
                }
            },
        );
        if result.outcome != CallOutcome::Ok {
            return self.upstream_failed(root, Service::Warehouse, result);
        }
        let stock = self.call(
            root,
            result.end,
            Service::Gateway,
            rpc(
                Service::Warehouse,
                "bookstore.warehouse.v1.InventoryService",
                "GetStock",
            ),
            WAREHOUSE_RPC,
            |r, server, start| {
                let at = start + r.work(Service::Warehouse, 0.1);
                let now = r.db(server, at, Service::Warehouse, &SELECT_STOCK);
                Reply {
                    end: now,
                    outcome: Outcome::Ok,
                }
            },
        );
        if stock.outcome != CallOutcome::Ok {
            self.log(
                Service::Gateway,
                Some(root),
                stock.end,
                Severity::Warn,
                format!("stock unavailable for {isbn}; rendering without availability"),
                vec![kv_str("book.isbn", isbn.clone())],
            );
        }
        let path = format!("/v1/users/{user}/history");
        let target = Target::Http {
            callee: Service::Account,
            method: "POST",
            route: "/v1/users/{userId}/history",
            path: &path,
            ok_status: 204,
        };
        let history = self.call(
            root,
            stock.end,
            Service::Gateway,
            target,
            ACCOUNT_WRITE,
            |r, server, start| {
                let at = start + r.work(Service::Account, 0.2);
                let now = r.db(server, at, Service::Account, &INSERT_VIEW);
                Reply {
                    end: now + r.work(Service::Account, 0.1),
                    outcome: Outcome::Ok,
                }
            },
        );
        Answer {
            end: history.end,
            status: 200,
        }
    }

    fn add_to_cart(&mut self, root: SpanRef, t: i64, user: &str, book: usize) -> Answer {
        let quantity = 1 + i64::from(self.w.rng.chance(0.15));
        let check = self.call(
            root,
            t,
            Service::Gateway,
            rpc(
                Service::Warehouse,
                "bookstore.warehouse.v1.InventoryService",
                "CheckAvailability",
            ),
            WAREHOUSE_RPC,
            |r, server, start| {
                let at = start + r.work(Service::Warehouse, 0.1);
                let now = r.db(server, at, Service::Warehouse, &SELECT_STOCK);
                if r.w.catalog.stock(book) < quantity {
                    return Reply {
                        end: now,
                        outcome: Outcome::Refused {
                            http_status: 409,
                            grpc_code: 9,
                            reason: "out of stock",
                        },
                    };
                }
                Reply {
                    end: now,
                    outcome: Outcome::Ok,
                }
            },
        );
        if check.outcome != CallOutcome::Ok {
            return self.upstream_failed(root, Service::Warehouse, check);
        }
        let path = format!("/v1/carts/{user}/items");
        let target = Target::Http {
            callee: Service::Account,
            method: "POST",
            route: "/v1/carts/{userId}/items",
            path: &path,
            ok_status: 201,
        };
        let result = self.call(
            root,
            check.end,
            Service::Gateway,
            target,
            ACCOUNT_WRITE,
            |r, server, start| {
                let at = start + r.work(Service::Account, 0.3);
                let mut now = r.db(server, at, Service::Account, &SELECT_CART);
                now = r.db(server, now, Service::Account, &INSERT_CART);
                r.log(
                    Service::Account,
                    Some(server),
                    now,
                    Severity::Debug,
                    format!("cart updated: +{quantity}"),
                    vec![
                        kv_str("user.id", user),
                        kv_i64("bookstore.cart.quantity", quantity),
                    ],
                );
                Reply {
                    end: now + r.work(Service::Account, 0.2),
                    outcome: Outcome::Ok,
                }
            },
        );
        match result.outcome {
            CallOutcome::Ok => Answer {
                end: result.end,
                status: 201,
            },
            _ => self.upstream_failed(root, Service::Account, result),
        }
    }

    fn order_history(&mut self, root: SpanRef, t: i64, user: &str) -> Answer {
        let path = format!("/v1/users/{user}/orders");
        let target = Target::Http {
            callee: Service::Account,
            method: "GET",
            route: "/v1/users/{userId}/orders",
            path: &path,
            ok_status: 200,
        };
        let result = self.call(
            root,
            t,
            Service::Gateway,
            target,
            ACCOUNT_READ,
            |r, server, start| {
                let mut now = start + r.work(Service::Account, 0.3);
                let key = format!("orders:{user}");
                now = r.cache(server, now, Service::Account, "GET", &key);
                if r.w.rng.chance(0.5) {
                    now = r.db(server, now, Service::Account, &SELECT_ORDERS);
                    now = r.cache(server, now, Service::Account, "SET", &key);
                }
                Reply {
                    end: now + r.work(Service::Account, 0.4),
                    outcome: Outcome::Ok,
                }
            },
        );
        match result.outcome {
            CallOutcome::Ok => Answer {
                end: result.end,
                status: 200,
            },
            _ => self.upstream_failed(root, Service::Account, result),
        }
    }
}

/// Checkout is the longest flow and the one incidents hit.
mod checkout;
