//! The runtime seams every protocol in this workspace is written against.
//!
//! Protocol code is a sans-IO [`Actor`]: it never reads a clock, opens a socket, spawns a thread or
//! asks the OS for randomness. Instead a backend calls the actor with input (`on_start`,
//! `on_datagram`, `on_timer`) and hands it an [`Env`] through which it reads time, sends
//! datagrams, sets timers, draws random numbers, touches durable storage and records [`Probe`]s.
//!
//! Two backends implement [`Env`]: the deterministic simulator (`simulator` crate), where all of it
//! is virtual and seeded, and the production one (`runtime-tokio`), where it is tokio, real UDP
//! sockets bound IPv6-only, real files and OS randomness. Because the actor cannot tell them apart,
//! what the simulator proves about an actor holds for the same code on real sockets.

mod actor;
pub mod durable;
mod entropy;
pub mod host;
mod http;
mod mem_storage;
mod net;
mod probe;
mod recording;
mod storage;
pub mod testing;
mod time;
pub mod units;

pub use actor::{Actor, Clock, Datagrams, Env, Probes, TimerToken, Timers};
pub use entropy::{shuffle, DetRng, Entropy};
pub use http::{HttpRequest, HttpResponse, HttpService, Pending};
pub use mem_storage::MemStorage;
pub use net::{AddressFamily, SendError, MAX_DATAGRAM_BYTES};
pub use probe::Probe;
pub use recording::RecordingEnv;
pub use storage::{validate_file_name, Storage, StorageError, FILE_NAME_BYTES_MAX};
pub use time::{Instant, WallTime};

/// Durations are plain values; only clocks are behind the seam.
pub use core::time::Duration;
