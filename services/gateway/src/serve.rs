use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use async_std::net::TcpListener;
use futures_lite::FutureExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use log::{info, warn};
use switchboard_http_server::{fit_connections, serve_until, HttpLimits};
use switchboard_ports::{Error, Publisher, Subscriber};
use switchboard_resilience::BreakerPublisher;
use switchboard_telemetry::{ready_unless_open, watch_breaker, CheckStatus};

use crate::routes::{app, State};
use crate::{GatewayConfig, Pending};

/// A bound gateway, subscribed to its replies, ready to serve.
pub struct Gateway {
    listener: TcpListener,
    app: tide::Server<State>,
    pending: Arc<Pending>,
    replies: smol::Task<()>,
    sweeper: smol::Task<()>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("addr", &self.listener.local_addr().ok()).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Subscribes to the replies topic, then binds the listener: once this returns, a reply to
    /// any request accepted on the listener reaches this instance.
    pub async fn bind(
        mut config: GatewayConfig,
        publisher: Arc<dyn Publisher>,
        subscriber: Arc<dyn Subscriber>,
    ) -> Result<Self, Error> {
        config.max_connections = fit_connections("gateway", config.max_connections);
        // Only this instance's share of the replies, read without a consumer group.
        let partitions = subscriber.partition_count(&config.replies_topic).await?;
        let reply_partition = crate::reply_partition(&config.instance_id, partitions);
        let subscription = subscriber.assign(&config.replies_topic, &[reply_partition]).await?;
        info!(
            "gateway instance {:?} reads partition {reply_partition} of {} ({partitions} partitions)",
            config.instance_id, config.replies_topic
        );
        let pending = match config.second_chance_percent {
            0 => Pending::new(config.max_pending),
            percent => match subscriber.partition_count(&config.requests_topic).await {
                Ok(n) => Pending::with_second_chance(config.max_pending, crate::SecondChance::new(n, percent)),
                Err(e) => {
                    // The broker picks partitions then, and requests get no second chance.
                    warn!("requests topic {}: partition count unknown ({e}): no second chances", config.requests_topic);
                    Pending::new(config.max_pending)
                }
            },
        };
        let metrics = config.metrics.clone();
        let running = Arc::new(AtomicBool::new(true));
        let consume = crate::replies::consume(
            subscription,
            pending.clone(),
            metrics.clone(),
            config.tracer.clone(),
            running.clone(),
        );
        // Every task of the gateway runs on smol's executor, like the relay and the embedded
        // broker: in the all-in-one a request then crosses fewer threads.
        let replies = smol::spawn(consume);
        let sweeper = smol::spawn(pending.expire());
        let listener = TcpListener::bind(config.addr).await.map_err(|e| {
            Error::new(switchboard_ports::ErrorKind::Invalid, format!("cannot listen on {}: {e}", config.addr))
                .with_source(e)
        })?;
        let breaker = switchboard_resilience::CircuitBreaker::new(config.breaker.clone());
        watch_breaker(&metrics, "gateway_publish", &breaker);
        let publisher: Arc<dyn Publisher> = Arc::new(BreakerPublisher::new(publisher, breaker.clone()));
        let readiness = config.readiness.clone();
        ready_unless_open(&readiness, "broker", &breaker, "publish breaker open");
        readiness.add_sync_check("replies", move || CheckStatus::from(running.load(Ordering::Relaxed)));
        let state = State {
            config: Arc::new(config),
            reply_partition,
            publisher,
            pending: pending.clone(),
            breaker,
            metrics,
            readiness,
            draining: Arc::new(AtomicBool::new(false)),
        };
        Ok(Gateway { listener, app: app(state), pending, replies, sweeper })
    }

    /// Adds the jobs API (`POST /jobs`, `GET /jobs/:id`): declares `config.queue` on `queue`
    /// and listens for job events on `fanout`; once this returns, every job reported from now
    /// on shows up here, whichever gateway accepted it.
    pub async fn with_jobs(
        mut self,
        config: crate::JobsConfig,
        queue: Arc<dyn switchboard_ports::WorkQueue>,
        fanout: Arc<dyn switchboard_ports::Fanout>,
    ) -> Result<Self, Error> {
        let jobs = crate::jobs::Jobs::start(config, queue, fanout).await?;
        crate::jobs::routes(&mut self.app, jobs);
        Ok(self)
    }

    /// The bound address (with the real port when 0 was asked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The breaker guarding publishes to the broker.
    pub fn breaker(&self) -> switchboard_resilience::CircuitBreaker {
        self.app.state().breaker.clone()
    }

    /// Requests waiting for replies right now.
    pub fn pending(&self) -> Arc<Pending> {
        self.pending.clone()
    }

    /// Serves until `stop` completes, then drains: refuses new requests (503), waits up to the
    /// configured grace period for those in flight to get their replies, and stops.
    ///
    /// Returns an error, after draining, if the listener broke before `stop` (accept errors
    /// that pass, such as EMFILE, are only logged): the process should then exit non-zero.
    pub async fn serve(self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let scheme = if self.app.state().config.tls.is_some() { "https" } else { "http" };
        info!("gateway listening on {scheme}://{}", self.listener.local_addr()?);
        let app = self.app;
        let listener = self.listener;
        let config = &app.state().config;
        let limits = HttpLimits {
            max_connections: config.max_connections,
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            allow: crate::errors::allowed_on,
            tls: config.tls.clone(),
        };
        let endpoint = {
            let app = app.clone();
            move |req| {
                let app = app.clone();
                async move { app.respond(req).await }
            }
        };
        // Connections live on smol's executor: those open when `stop` comes finish their
        // requests while the gateway drains.
        let spawn = |conn| smol::spawn(conn).detach();
        let outcome = serve_until("gateway", &listener, &limits, spawn, endpoint, stop).await;
        drop(listener);
        let state = app.state();
        state.draining.store(true, Ordering::Relaxed);
        state.readiness.set_draining();
        let grace = state.config.grace;
        info!("gateway draining: {} requests in flight, grace {grace:?}", self.pending.len());
        let drained = async {
            while !self.pending.is_empty() {
                async_io::Timer::after(Duration::from_millis(10)).await;
            }
            true
        };
        let in_time = drained
            .or(async {
                async_io::Timer::after(grace).await;
                false
            })
            .await;
        if !in_time {
            warn!("gateway grace period over with {} requests still waiting", self.pending.len());
        }
        self.replies.cancel().await;
        self.sweeper.cancel().await;
        outcome
    }
}
