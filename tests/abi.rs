//! ABI proof: one probe (tests/c/abi_probe.c) compiled against Eclipse Paho C's real
//! `MQTTClient.h` and `MQTTAsync.h` and against mqttsync's must print the same sizes, alignments, offsets,
//! constants and initializer bytes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::*;

const PAHO_HEADER: &str = "/usr/include/MQTTClient.h";

fn probe(include: &Path, dir: &Path, name: &str, strict: bool) -> String {
    let exe = dir.join(name);
    let mut cmd = Command::new("cc");
    cmd.arg("-std=c99");
    if strict {
        cmd.args(["-Wall", "-Wextra", "-Werror", "-pedantic"]);
    }
    cmd.arg("-I")
        .arg(include)
        .arg(c_dir().join("abi_probe.c"))
        .arg("-o")
        .arg(&exe);
    run(&mut cmd);
    String::from_utf8(run(&mut Command::new(&exe)).stdout).expect("probe output is UTF-8")
}

#[test]
fn layout_constants_and_initializers_match_paho() {
    assert!(
        Path::new(PAHO_HEADER).exists(),
        "{PAHO_HEADER} is missing: the ABI test needs Paho's real headers; install \
         libpaho-mqtt-dev (apt-get install libpaho-mqtt-dev)"
    );
    let dir = tempfile::tempdir().unwrap();
    // Paho's header is not -pedantic clean (anonymous struct in MQTTProperty).
    let paho = probe(Path::new("/usr/include"), dir.path(), "probe_paho", false);
    let ours = probe(&include_dir(), dir.path(), "probe_ours", true);
    assert!(
        paho.lines().count() > 700,
        "probe printed too little:\n{paho}"
    );
    if paho != ours {
        let diffs: Vec<String> = paho
            .lines()
            .zip(ours.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("paho: {a}\nours: {b}"))
            .collect();
        panic!(
            "ABI differs from Paho ({} lines differ; line counts {} vs {}):\n{}",
            diffs.len(),
            paho.lines().count(),
            ours.lines().count(),
            diffs.join("\n")
        );
    }
}

/// Every field that mqttsync.h declares in a struct must appear in the probe, so the probe
/// cannot silently skip a field (a missing one in our header changes sizes or offsets, which
/// the comparison above catches).
#[test]
fn probe_covers_every_field_of_the_header() {
    let header = std::fs::read_to_string(include_dir().join("mqttsync.h")).unwrap();
    let probe = std::fs::read_to_string(c_dir().join("abi_probe.c")).unwrap();
    // Nested anonymous structs of Paho are named types in our header.
    let nested = [
        (
            "MQTTClient_connectOptions_returned",
            "MQTTClient_connectOptions, returned.",
        ),
        (
            "MQTTClient_connectOptions_binarypwd",
            "MQTTClient_connectOptions, binarypwd.",
        ),
        (
            "MQTTClient_willOptions_payload",
            "MQTTClient_willOptions, payload.",
        ),
        (
            "MQTTAsync_willOptions_payload",
            "MQTTAsync_willOptions, payload.",
        ),
        (
            "MQTTAsync_connectOptions_binarypwd",
            "MQTTAsync_connectOptions, binarypwd.",
        ),
        (
            "MQTTAsync_connectData_binarypwd",
            "MQTTAsync_connectData, binarypwd.",
        ),
        (
            "MQTTAsync_successData_pub",
            "MQTTAsync_successData, alt.pub.",
        ),
        (
            "MQTTAsync_successData_connect",
            "MQTTAsync_successData, alt.connect.",
        ),
        (
            "MQTTAsync_successData5_codes",
            "MQTTAsync_successData5, alt.sub.",
        ),
    ];
    let mut missing = BTreeSet::new();
    let mut structs = 0;
    let mut lines = header.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("typedef struct ")
            .and_then(|r| r.strip_suffix(" {"))
        else {
            continue;
        };
        structs += 1;
        let prefix = nested
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|| format!("{name}, "));
        let mut stmt = String::new();
        for field_line in lines.by_ref() {
            let t = field_line.trim();
            if t.starts_with('}') {
                break;
            }
            if t.starts_with("/*") || t.starts_with('*') || t.is_empty() {
                continue;
            }
            // A declaration may span lines (function pointers with many parameters).
            stmt.push_str(t);
            stmt.push(' ');
            if !t.ends_with(';') || stmt.matches('(').count() != stmt.matches(')').count() {
                continue;
            }
            let decl = std::mem::take(&mut stmt);
            let field = if let Some(i) = decl.find("(*") {
                decl[i + 2..].split(')').next().unwrap().to_string()
            } else {
                let decl = decl.trim().trim_end_matches(';');
                let decl = decl.split('[').next().unwrap();
                decl.rsplit([' ', '*']).next().unwrap().to_string()
            };
            if !probe.contains(&format!("X({prefix}{field})")) {
                missing.insert(format!("{name}.{field}"));
            }
        }
    }
    // 14 generated structs; MQTTLenString and MQTTProperty are hand-written (and probed by hand).
    assert!(
        structs >= 14,
        "parsed only {structs} structs from mqttsync.h"
    );
    assert!(missing.is_empty(), "fields not probed: {missing:?}");
}
