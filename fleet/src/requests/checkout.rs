//! Checkout, end to end: load the cart, reserve stock, charge (through two circuit breakers and the
//! external provider), create the order and publish it; the warehouse consumes the event and
//! schedules the shipment. Failed payments release the stock. Business metrics are counted here.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::{
    ACCOUNT_READ, ACCOUNT_WRITE, Answer, DELETE_CART, FULFILMENT, INSERT_CHARGE, INSERT_ORDER,
    INSERT_SHIPMENT, ORDER_EVENTS, PAYMENT_RPC, PROVIDER_HOST, RELEASE_STOCK, RESERVE_STOCK,
    SELECT_CART, UPDATE_CHARGE, WAREHOUSE_RPC, rpc,
};
use crate::breaker::Downstream;
use crate::calls::{CallOutcome, Outcome, Reply, Req, Target};
use crate::catalog::{LOCATIONS, payment_method};
use crate::logs::Severity;
use crate::metrics::{Inst, s};
use crate::otlp::{kv_f64, kv_i64, kv_str};
use crate::topology::{ScopeKind, Service};
use crate::traces::SpanRef;

/// The items of one checkout: (book index, quantity).
type Items = Vec<(usize, i64)>;

impl Req<'_> {
    pub(super) fn checkout(&mut self, root: SpanRef, t: i64, user: &str) -> Answer {
        let method = payment_method(&mut self.w.rng);
        let lines = 1 + (self.w.rng.exponential(1.2) as usize).min(7);
        let items: Items = (0..lines)
            .map(|_| {
                (
                    self.w.catalog.pick(&mut self.w.rng),
                    1 + i64::from(self.w.rng.chance(0.1)),
                )
            })
            .collect();
        let units: i64 = items.iter().map(|(_, q)| q).sum();
        let cents: i64 = items
            .iter()
            .map(|(b, q)| self.w.catalog.book(*b).price_cents * q)
            .sum();
        self.w.meter(Service::Gateway).record(
            Inst::CartSize,
            &[s("payment.method", method)],
            units as f64,
            None,
        );

        let (answer, status) = self.place_order(root, t, user, method, &items, cents);
        self.w.meter(Service::Gateway).add(
            Inst::Orders,
            &[s("order.status", status), s("payment.method", method)],
            1.0,
        );
        if status == "placed" {
            self.w.meter(Service::Gateway).add(
                Inst::Revenue,
                &[s("payment.method", method), s("currency", "USD")],
                cents as f64 / 100.0,
            );
        }
        answer
    }

    fn place_order(
        &mut self,
        root: SpanRef,
        t: i64,
        user: &str,
        method: &'static str,
        items: &Items,
        cents: i64,
    ) -> (Answer, &'static str) {
        let path = format!("/v1/carts/{user}");
        let target = Target::Http {
            callee: Service::Account,
            method: "GET",
            route: "/v1/carts/{userId}",
            path: &path,
            ok_status: 200,
        };
        let cart = self.call(
            root,
            t,
            Service::Gateway,
            target,
            ACCOUNT_READ,
            |r, server, start| {
                let at = start + r.work(Service::Account, 0.2);
                let now = r.db(server, at, Service::Account, &SELECT_CART);
                Reply {
                    end: now + r.work(Service::Account, 0.3),
                    outcome: Outcome::Ok,
                }
            },
        );
        if cart.outcome != CallOutcome::Ok {
            return (self.upstream_failed(root, Service::Account, cart), "failed");
        }

        let reserve = self.call(
            root,
            cart.end,
            Service::Gateway,
            rpc(
                Service::Warehouse,
                "bookstore.warehouse.v1.InventoryService",
                "ReserveStock",
            ),
            WAREHOUSE_RPC,
            |r, server, start| r.reserve(server, start, items),
        );
        match reserve.outcome {
            CallOutcome::Ok => {}
            CallOutcome::Refused { .. } => {
                return (
                    self.upstream_failed(root, Service::Warehouse, reserve),
                    "out_of_stock",
                );
            }
            _ => {
                return (
                    self.upstream_failed(root, Service::Warehouse, reserve),
                    "failed",
                );
            }
        }

        let charge = self.call(
            root,
            reserve.end,
            Service::Gateway,
            rpc(
                Service::Payment,
                "bookstore.payment.v1.PaymentService",
                "Charge",
            ),
            PAYMENT_RPC,
            |r, server, start| r.charge(server, start, method, cents),
        );
        if charge.outcome != CallOutcome::Ok {
            let reason = match charge.outcome {
                CallOutcome::Refused { .. } => "declined",
                CallOutcome::Timeout => "timeout",
                CallOutcome::BreakerOpen => "circuit_open",
                _ => "provider_error",
            };
            self.w.meter(Service::Gateway).add(
                Inst::PaymentFailures,
                &[s("payment.method", method), s("failure.reason", reason)],
                1.0,
            );
            let answer = self.upstream_failed(root, Service::Payment, charge);
            let release = self.call(
                root,
                answer.end,
                Service::Gateway,
                rpc(
                    Service::Warehouse,
                    "bookstore.warehouse.v1.InventoryService",
                    "ReleaseStock",
                ),
                WAREHOUSE_RPC,
                |r, server, start| {
                    let at = start + r.work(Service::Warehouse, 0.1);
                    let now = r.db(server, at, Service::Warehouse, &RELEASE_STOCK);
                    for (book, quantity) in items {
                        r.w.catalog.release(*book, *quantity);
                    }
                    Reply {
                        end: now,
                        outcome: Outcome::Ok,
                    }
                },
            );
            let status = if matches!(charge.outcome, CallOutcome::Refused { .. }) {
                402
            } else {
                answer.status
            };
            return (
                Answer {
                    end: release.end,
                    status,
                },
                "payment_failed",
            );
        }

        self.w.order_seq += 1;
        let order_id = format!("ORD-{}", self.w.order_seq);
        let target = Target::Http {
            callee: Service::Account,
            method: "POST",
            route: "/v1/orders",
            path: "/v1/orders",
            ok_status: 201,
        };
        let created = self.call(
            root,
            charge.end,
            Service::Gateway,
            target,
            ACCOUNT_WRITE,
            |r, server, start| r.create_order(server, start, user, &order_id, method, items, cents),
        );
        if created.outcome != CallOutcome::Ok {
            self.log(
                Service::Gateway,
                Some(root),
                created.end,
                Severity::Error,
                format!("order {order_id} was charged but could not be saved; refund queued"),
                vec![kv_str("bookstore.order.id", order_id.clone())],
            );
            return (
                self.upstream_failed(root, Service::Account, created),
                "failed",
            );
        }
        (
            Answer {
                end: created.end,
                status: 201,
            },
            "placed",
        )
    }

    fn reserve(&mut self, server: SpanRef, t: i64, items: &Items) -> Reply {
        let mut now = t + self.work(Service::Warehouse, 0.2);
        now = self.db(server, now, Service::Warehouse, &RESERVE_STOCK);
        let mut taken: Items = Vec::with_capacity(items.len());
        for (book, quantity) in items {
            if self.w.catalog.reserve(*book, *quantity) {
                taken.push((*book, *quantity));
                let left = self.w.catalog.stock(*book);
                if left < 5 {
                    let isbn = self.w.catalog.book(*book).isbn.clone();
                    self.log(
                        Service::Warehouse,
                        Some(server),
                        now,
                        Severity::Warn,
                        format!("stock for {isbn} is low: {left} left"),
                        vec![
                            kv_str("book.isbn", isbn),
                            kv_i64("bookstore.stock.available", left),
                        ],
                    );
                }
            } else {
                for (b, q) in &taken {
                    self.w.catalog.release(*b, *q);
                }
                let isbn = self.w.catalog.book(*book).isbn.clone();
                self.log(
                    Service::Warehouse,
                    Some(server),
                    now,
                    Severity::Warn,
                    format!("cannot reserve {quantity} of {isbn}: out of stock"),
                    vec![kv_str("book.isbn", isbn)],
                );
                return Reply {
                    end: now,
                    outcome: Outcome::Refused {
                        http_status: 409,
                        grpc_code: 9,
                        reason: "out of stock",
                    },
                };
            }
        }
        Reply {
            end: now + self.work(Service::Warehouse, 0.2),
            outcome: Outcome::Ok,
        }
    }

    fn charge(&mut self, server: SpanRef, t: i64, method: &'static str, cents: i64) -> Reply {
        let mut now = t + self.work(Service::Payment, 0.5);
        now = self.db(server, now, Service::Payment, &INSERT_CHARGE);
        let (allowed, change) = self.w.breaker(Downstream::PaymentToProvider).admit(now);
        if let Some(c) = change {
            self.breaker_changed(Downstream::PaymentToProvider, c, server, now);
        }
        let amount = kv_f64("bookstore.payment.amount", cents as f64 / 100.0);
        if !allowed {
            let rejected = self.span(
                Some(server),
                Service::Payment,
                ScopeKind::App,
                SpanKind::Internal,
                "circuit_breaker payment-provider",
                now,
            );
            let end = now + self.w.rng.between(15_000, 60_000);
            self.trace.attrs(
                rejected,
                [
                    kv_str("peer.service", "payment-provider"),
                    kv_str("error.type", "circuit_breaker_open"),
                ],
            );
            self.trace.set_error(rejected, "circuit breaker is open");
            self.trace.end(rejected, end);
            self.w.meter(Service::Payment).add(
                Inst::BreakerCalls,
                &[
                    s("peer.service", "payment-provider"),
                    s("outcome", "rejected"),
                ],
                1.0,
            );
            self.w.meter(Service::Payment).add(
                Inst::Payments,
                &[s("payment.method", method), s("outcome", "error")],
                1.0,
            );
            self.log(
                Service::Payment,
                Some(server),
                end,
                Severity::Error,
                "charge not attempted: payment-provider circuit breaker is open".to_string(),
                vec![kv_str("payment.method", method), amount],
            );
            return Reply {
                end,
                outcome: Outcome::Failed {
                    http_status: 503,
                    grpc_code: 14,
                },
            };
        }

        let client = self.span(
            Some(server),
            Service::Payment,
            ScopeKind::Http,
            SpanKind::Client,
            "POST",
            now,
        );
        let roll = self.w.rng.f64();
        let failed = roll < self.fx.provider_failure;
        let declined = !failed && roll < self.fx.provider_failure + 0.035;
        let latency = self.latency(Service::Payment, if failed { 60.0 } else { 180.0 }, 0.45);
        let timeout = 5_000_000_000;
        let (end, status) = if latency > timeout {
            (now + timeout, None)
        } else {
            (
                now + latency,
                Some(if failed {
                    503
                } else if declined {
                    402
                } else {
                    200
                }),
            )
        };
        self.http_client_done(
            client,
            Service::Payment,
            "POST",
            PROVIDER_HOST,
            443,
            "https://api.payments.example/v1/charges".to_string(),
            0,
            now,
            end,
            status,
        );
        self.breaker_record(
            Downstream::PaymentToProvider,
            server,
            now,
            end,
            matches!(status, Some(200 | 402)),
        );
        now = end;
        match status {
            Some(200) | Some(402) => {
                now = self.db(server, now, Service::Payment, &UPDATE_CHARGE);
                now += self.work(Service::Payment, 0.2);
                if status == Some(200) {
                    self.w.meter(Service::Payment).add(
                        Inst::Payments,
                        &[s("payment.method", method), s("outcome", "approved")],
                        1.0,
                    );
                    self.log(
                        Service::Payment,
                        Some(server),
                        now,
                        Severity::Info,
                        format!(
                            "payment authorized: {:.2} USD by {method}",
                            cents as f64 / 100.0
                        ),
                        vec![kv_str("payment.method", method), amount],
                    );
                    Reply {
                        end: now,
                        outcome: Outcome::Ok,
                    }
                } else {
                    self.w.meter(Service::Payment).add(
                        Inst::Payments,
                        &[s("payment.method", method), s("outcome", "declined")],
                        1.0,
                    );
                    self.log(
                        Service::Payment,
                        Some(server),
                        now,
                        Severity::Warn,
                        "payment declined by provider: card_declined".to_string(),
                        vec![
                            kv_str("payment.method", method),
                            kv_str("payment.decline_code", "card_declined"),
                            amount,
                        ],
                    );
                    Reply {
                        end: now,
                        outcome: Outcome::Refused {
                            http_status: 402,
                            grpc_code: 9,
                            reason: "card declined",
                        },
                    }
                }
            }
            _ => {
                let what = if status.is_none() {
                    "timed out after 5 s"
                } else {
                    "answered 503 Service Unavailable"
                };
                let message = format!("payment provider {what}");
                self.trace
                    .exception(server, now, "*payment.ProviderError", &message, "");
                self.w.meter(Service::Payment).add(
                    Inst::Payments,
                    &[s("payment.method", method), s("outcome", "error")],
                    1.0,
                );
                self.log(
                    Service::Payment,
                    Some(server),
                    now,
                    Severity::Error,
                    message,
                    vec![
                        kv_str("payment.method", method),
                        kv_str("server.address", PROVIDER_HOST),
                        amount,
                    ],
                );
                Reply {
                    end: now + self.work(Service::Payment, 0.1),
                    outcome: Outcome::Failed {
                        http_status: 502,
                        grpc_code: 14,
                    },
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn create_order(
        &mut self,
        server: SpanRef,
        t: i64,
        user: &str,
        order_id: &str,
        method: &'static str,
        items: &Items,
        cents: i64,
    ) -> Reply {
        let at = t + self.work(Service::Account, 0.3);
        let mut now = self.db(server, at, Service::Account, &INSERT_ORDER);
        now = self.db(server, now, Service::Account, &DELETE_CART);
        let (producer, sent) = self.publish(server, now, Service::Account, ORDER_EVENTS, order_id);
        let units: i64 = items.iter().map(|(_, q)| q).sum();
        self.log_event(
            Service::Account,
            Some(server),
            sent,
            Severity::Info,
            Some("bookstore.order.placed"),
            format!(
                "order {order_id} placed: {units} items, {:.2} USD",
                cents as f64 / 100.0
            ),
            vec![
                kv_str("bookstore.order.id", order_id),
                kv_str("user.id", user),
                kv_str("payment.method", method),
                kv_i64("bookstore.order.items", units),
                kv_f64("bookstore.order.amount", cents as f64 / 100.0),
                kv_str("currency", "USD"),
            ],
        );

        // The warehouse picks the event up a little later, in the same trace.
        let lag = self.w.rng.latency_ns(12.0, 0.9);
        let consumer = self.consume(
            producer,
            sent + lag,
            Service::Warehouse,
            ORDER_EVENTS,
            FULFILMENT,
            order_id,
        );
        let mut c = sent + lag + self.work(Service::Warehouse, 0.3);
        c = self.db(consumer, c, Service::Warehouse, &INSERT_SHIPMENT);
        c += self.work(Service::Warehouse, 0.2);
        self.consumed(consumer, Service::Warehouse, ORDER_EVENTS, FULFILMENT, c);
        let location = items.first().map_or(LOCATIONS[0], |(b, _)| {
            LOCATIONS[self.w.catalog.book(*b).location % LOCATIONS.len()]
        });
        self.w.meter(Service::Warehouse).add(
            Inst::Shipments,
            &[s("warehouse.location", location)],
            1.0,
        );
        self.log(
            Service::Warehouse,
            Some(consumer),
            c,
            Severity::Info,
            format!("shipment scheduled for order {order_id} from {location}"),
            vec![
                kv_str("bookstore.order.id", order_id),
                kv_str("warehouse.location", location),
            ],
        );

        Reply {
            end: sent + self.work(Service::Account, 0.2),
            outcome: Outcome::Ok,
        }
    }
}
