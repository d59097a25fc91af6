//! The C API: a drop-in replacement for Eclipse Paho C's synchronous `MQTTClient.h`
//! (source and ABI compatible with Paho C 1.3.11/1.3.12).
//!
//! - [`types`]: `#[repr(C)]` structures, typedefs and constants with Paho's layout;
//! - [`properties`]: `MQTTProperties_*`, `MQTTPropertyName`, `MQTTReasonCode_toString`;
//! - [`misc`]: `MQTTClient_strerror`, version info, global init, trace, free functions;
//! - [`convert`]: Rust <-> C conversions for the client functions;
//! - [`ffi`]: the panic boundary, structure checks and `malloc` helpers;
//! - [`trace`]: the process-wide trace sink.
//!
//! The C header `include/mqttsync.h` is generated from this module by `build.rs`
//! (cbindgen, configured by `cbindgen.toml`); `include/MQTTClient.h` and the other Paho
//! header names include it.
//!
//! # The rule: the C layer uses the public Rust API only
//!
//! Everything here reaches the library through what a Rust user can reach: the crate root's
//! re-exports (`crate::Client`, `crate::Error`, ...) and the public modules `crate::persist`,
//! `crate::properties`, `crate::reason` and `crate::topic`; never the private modules
//! (`client`, `error`, `proto`, `transport`, `ws`, `proxy`) nor `crate::internals`. So the
//! Rust API stays sufficient for a Paho-shaped client, the C quirks stay here, and the
//! internals can change without the C layer noticing. When the C layer needs something the
//! Rust API lacks, add it to the public API on its own merits. One exception, infrastructure
//! rather than client logic: the `client::threads` module, the pool the client's own I/O and
//! callback jobs run on, which MQTTAsync's command and callback jobs share (a thread of
//! their own cost a `clone` and a stack per connect). The test
//! `uses_the_public_rust_api_only` below checks every `crate::` path in this directory.

pub mod async_client;
pub mod async_types;
pub mod client;
pub mod connect_opts;
pub mod convert;
pub mod ffi;
pub mod handles;
pub mod misc;
pub mod persistence;
pub mod properties;
pub mod trace;
pub mod types;

pub use async_types::*;
pub use types::*;

#[cfg(test)]
mod rule {
    /// Paths of private modules.
    const PRIVATE: [&str; 8] = [
        "client",
        "error",
        "proto",
        "transport",
        "ws",
        "proxy",
        "internals",
        "persist::record",
    ];

    /// The `crate::` paths in `text` that go through a private module (groups such as
    /// `crate::{a, b::c}` count name by name, across lines).
    fn private_paths(text: &str) -> Vec<String> {
        let mut bad = Vec::new();
        let mut rest = text;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split([',', '{'])
                    .map(str::trim)
                    .collect(),
                None => vec![rest],
            };
            for name in names {
                if name.starts_with("client::threads::") {
                    // The shared thread pool (see the module documentation).
                    continue;
                }
                let private = PRIVATE.iter().any(|p| {
                    name.strip_prefix(p)
                        .is_some_and(|after| after.is_empty() || after.starts_with("::"))
                });
                if private {
                    bad.push(name.lines().next().unwrap_or("").to_string());
                }
            }
        }
        bad
    }

    #[test]
    fn the_check_finds_private_paths() {
        let text = "use crate::proto::X;\nuse crate::{\n    Client,\n    client::Io,\n};\n\
                    use crate::{persist::record::f, persist::Store};\nlet e = crate::Error::Closed;";
        assert_eq!(
            private_paths(text),
            ["proto::X;", "client::Io", "persist::record::f"]
        );
    }

    /// Every `crate::` path in `src/capi/` starts with a public name (see the module
    /// documentation).
    #[test]
    fn uses_the_public_rust_api_only() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/capi");
        let mut bad = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            // This file names the private modules in its check.
            let text = text.split("#[cfg(test)]\nmod rule").next().unwrap_or("");
            for p in private_paths(text) {
                bad.push(format!("{}: crate::{p}", path.display()));
            }
        }
        assert!(
            bad.is_empty(),
            "the C layer uses private paths:\n{}",
            bad.join("\n")
        );
    }
}
