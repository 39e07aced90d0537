//! The chain's integration tests, one target so the whole chain links once: each module is
//! one area. Those named `real_*` need Kafka and RabbitMQ and are ignored unless asked for
//! (`make test-real`, which runs them by module: `cargo test --test integration -- --include-ignored real_chain::`).
//! `edge_limits` is a target of its own: it lowers the process's file-descriptor limit.

mod budgets;
mod chain;
mod dead_letters;
mod dead_letters_support;
mod edge_errors;
mod edges_support;
mod hello;
mod idempotency;
mod job_events_fuzz;
mod jobs;
mod loops;
mod otlp;
mod real_chain;
mod real_dead_letters;
mod real_edges;
mod real_loops;
mod real_outage;
mod resilience;
mod sigterm;
