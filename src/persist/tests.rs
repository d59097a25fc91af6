use std::fs;
use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;

use super::record::{self, crc32, key_name, parse_key, unwrap, wrap};
use super::*;
use crate::proto::{Properties, PubResp, Publish, QoS};

// ---------------------------------------------------------------------------------------
// Store behaviour shared by MemoryStore and FileStore
// ---------------------------------------------------------------------------------------

fn is_closed<T: std::fmt::Debug>(r: Result<T>) -> bool {
    matches!(r, Err(PersistError::Closed))
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The Paho persistence contract, for any store; `own_spaces`: each client id and server
/// URI has its own key space (all but [`OneSpaceMemoryStore`], which has one for all).
fn exercise_store(store: &mut dyn Store, own_spaces: bool) {
    // Closed: everything but open fails with Closed.
    assert!(is_closed(store.put("s-1", &[b"x"])));
    assert!(is_closed(store.get("s-1")));
    assert!(is_closed(store.remove("s-1")));
    assert!(is_closed(store.keys()));
    assert!(is_closed(store.clear()));
    assert!(is_closed(store.contains_key("s-1")));
    assert!(is_closed(store.close()));

    store.open("dev1", "tcp://localhost:1883").unwrap();
    store.open("dev1", "tcp://localhost:1883").unwrap(); // already open: no-op
    assert_eq!(store.keys().unwrap(), Vec::<String>::new());
    assert_eq!(store.get("s-1").unwrap(), None);
    assert!(!store.contains_key("s-1").unwrap());

    // put concatenates the buffers (Paho's bufcount/buffers/buflens).
    store.put("s-1", &[b"hea", b"", b"der+", b"body"]).unwrap();
    assert_eq!(
        store.get("s-1").unwrap().as_deref(),
        Some(&b"header+body"[..])
    );
    assert!(store.contains_key("s-1").unwrap());
    store.put("sc-2", &[b"rel"]).unwrap();
    store.put("r5-3", &[]).unwrap();
    assert_eq!(store.get("r5-3").unwrap(), Some(vec![]));
    assert_eq!(sorted(store.keys().unwrap()), ["r5-3", "s-1", "sc-2"]);

    // Replacing a key.
    store.put("s-1", &[b"new"]).unwrap();
    assert_eq!(store.get("s-1").unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(store.keys().unwrap().len(), 3);

    // remove: present and missing are both Ok.
    store.remove("sc-2").unwrap();
    store.remove("sc-2").unwrap();
    store.remove("never-there").unwrap();
    assert!(!store.contains_key("sc-2").unwrap());
    assert_eq!(sorted(store.keys().unwrap()), ["r5-3", "s-1"]);

    // Invalid keys.
    for bad in ["", "a/b", "..", "a..b", "nul\0", "back\\slash"] {
        assert!(
            matches!(store.put(bad, &[b"x"]), Err(PersistError::InvalidKey(_))),
            "{bad:?}"
        );
        assert!(matches!(store.get(bad), Err(PersistError::InvalidKey(_))));
        assert!(matches!(
            store.remove(bad),
            Err(PersistError::InvalidKey(_))
        ));
        assert!(matches!(
            store.contains_key(bad),
            Err(PersistError::InvalidKey(_))
        ));
    }

    // Data survives close/open of the same client.
    store.close().unwrap();
    assert!(is_closed(store.keys()));
    store.open("dev1", "tcp://localhost:1883").unwrap();
    assert_eq!(sorted(store.keys().unwrap()), ["r5-3", "s-1"]);

    // Another client/server pair has its own key space (or, with one space, the same).
    store.close().unwrap();
    store.open("dev2", "tcp://localhost:1883").unwrap();
    assert_eq!(store.keys().unwrap().is_empty(), own_spaces);
    store.close().unwrap();
    store.open("dev1", "tcp://localhost:1883").unwrap();

    // clear
    store.clear().unwrap();
    assert!(store.keys().unwrap().is_empty());
    assert_eq!(store.get("s-1").unwrap(), None);
    store.close().unwrap();
}

#[test]
fn one_space_memory_store_contract() {
    let mut s = OneSpaceMemoryStore::default();
    exercise_store(&mut s, false);
}

#[test]
fn one_space_memory_store_keeps_its_records_across_close_and_open_and_refuses_use_while_closed() {
    let mut s = OneSpaceMemoryStore::default();
    assert!(matches!(s.put("s-1", &[b"x"]), Err(PersistError::Closed)));
    s.open("c", "tcp://h:1").unwrap();
    s.put("s-1", &[b"ab", b"c"]).unwrap();
    s.put("r-2", &[b"d"]).unwrap();
    assert!(s.put("bad/key", &[b"e"]).is_err(), "keys are validated");
    s.close().unwrap();
    assert!(matches!(s.close(), Err(PersistError::Closed)));
    assert!(matches!(s.get("s-1"), Err(PersistError::Closed)));
    // The next client of the same handle finds them.
    s.open("c", "tcp://h:1").unwrap();
    assert_eq!(s.get("s-1").unwrap(), Some(b"abc".to_vec()));
    assert_eq!(s.keys().unwrap(), ["r-2", "s-1"]);
    s.remove("r-2").unwrap();
    assert!(!s.contains_key("r-2").unwrap());
    s.clear().unwrap();
    assert!(s.keys().unwrap().is_empty());
    assert!(!s.is_durable());
}

#[test]
fn memory_store_contract() {
    let mut s = MemoryStore::new();
    exercise_store(&mut s, true);
    assert!(!s.is_open());
}

#[test]
fn file_store_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStore::new(tmp.path());
    exercise_store(&mut s, true);
    // Everything was cleared, so close removed the client directory.
    assert!(!tmp.path().join("dev1-localhost-1883").exists());
    assert!(!tmp.path().join("dev2-localhost-1883").exists());
}

#[test]
fn file_store_contract_without_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStore::new(tmp.path()).with_sync(false);
    exercise_store(&mut s, true);
}

// ---------------------------------------------------------------------------------------
// FileStore layout (Paho MQTTPersistenceDefault.c)
// ---------------------------------------------------------------------------------------

#[test]
fn client_dir_names_follow_paho() {
    // MQTTClient_create strips the scheme; pstopen replaces every ':' with '-'.
    assert_eq!(
        client_dir_name("dev1", "tcp://localhost:1883"),
        "dev1-localhost-1883"
    );
    assert_eq!(client_dir_name("c", "ssl://host:8883"), "c-host-8883");
    assert_eq!(client_dir_name("c", "mqtts://host:8883"), "c-host-8883");
    assert_eq!(client_dir_name("c", "wss://host:443"), "c-host-443");
    // '/' is kept: the websocket path becomes a sub-directory, as in Paho.
    assert_eq!(client_dir_name("c", "ws://h:80/mqtt"), "c-h-80/mqtt");
    // Already stripped URIs (what Paho's persistence layer itself receives) are unchanged.
    assert_eq!(
        client_dir_name("dev1", "localhost:1883"),
        "dev1-localhost-1883"
    );
    // IPv6 literal: every ':' replaced.
    assert_eq!(client_dir_name("c", "tcp://[::1]:1883"), "c-[--1]-1883");
    // Unknown scheme: not stripped (Paho refuses it at create).
    assert_eq!(client_dir_name("c", "foo://h:1"), "c-foo-//h-1");
}

fn umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Umask:"))?;
    u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).ok()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn file_store_creates_nested_dirs_and_key_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("a/b"); // intermediate dirs of the root are created too
    let mut s = FileStore::new(&root);
    s.open("dev1", "tcp://localhost:1883").unwrap();
    let dir = root.join("dev1-localhost-1883");
    assert_eq!(s.client_dir(), Some(dir.as_path()));
    assert!(dir.is_dir());
    #[cfg(unix)]
    if let Some(mask) = umask() {
        assert_eq!(mode(&dir), 0o740 & !mask);
    }

    s.put("s-7", &[b"ab", b"cd"]).unwrap();
    assert_eq!(fs::read(dir.join("s-7.msg")).unwrap(), b"abcd");
    // No temporary file is left behind by a successful put.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["s-7.msg"]);

    // A non-empty directory survives close; data is there after reopen.
    s.close().unwrap();
    assert!(dir.join("s-7.msg").is_file());
    let mut s2 = FileStore::new(&root);
    s2.open("dev1", "tcp://localhost:1883").unwrap();
    assert_eq!(s2.get("s-7").unwrap().as_deref(), Some(&b"abcd"[..]));
    s2.remove("s-7").unwrap();
    s2.close().unwrap();
    assert!(!dir.exists(), "close removes the empty client directory");
    assert!(root.is_dir(), "but not the root");
}

#[test]
fn file_store_websocket_path_is_a_subdirectory() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStore::new(tmp.path());
    s.open("c", "ws://h:80/mqtt").unwrap();
    s.put("s-1", &[b"x"]).unwrap();
    assert!(tmp
        .path()
        .join("c-h-80")
        .join("mqtt")
        .join("s-1.msg")
        .is_file());
    s.clear().unwrap();
    s.close().unwrap();
    // As Paho: only the leaf directory is removed.
    assert!(!tmp.path().join("c-h-80/mqtt").exists());
    assert!(tmp.path().join("c-h-80").is_dir());
}

#[test]
fn file_store_leftover_tmp_is_not_a_key_and_is_removed_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dev1-localhost-1883");
    fs::create_dir_all(&dir).unwrap();
    // A crash after writing the temporary but before the rename: the old record stands.
    fs::write(dir.join("s-1.msg"), b"old").unwrap();
    fs::write(dir.join("s-1.msg.tmp"), b"new-but-torn").unwrap();
    fs::write(dir.join("s-2.msg.tmp"), b"never-renamed").unwrap();

    let mut s = FileStore::new(tmp.path());
    s.open("dev1", "tcp://localhost:1883").unwrap();
    assert!(!dir.join("s-1.msg.tmp").exists());
    assert!(!dir.join("s-2.msg.tmp").exists());
    assert_eq!(s.keys().unwrap(), ["s-1"]);
    assert_eq!(s.get("s-1").unwrap().as_deref(), Some(&b"old"[..]));
    assert!(!s.contains_key("s-2").unwrap());

    // A temporary appearing while open (a concurrent torn write) is not a key either.
    fs::write(dir.join("s-3.msg.tmp"), b"x").unwrap();
    assert_eq!(s.keys().unwrap(), ["s-1"]);
    // clear removes it along with the records.
    s.clear().unwrap();
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    s.close().unwrap();
    assert!(!dir.exists());
}

#[test]
fn file_store_keys_ignore_other_files_and_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = FileStore::new(tmp.path());
    s.open("dev1", "localhost:1883").unwrap();
    let dir = s.client_dir().unwrap().to_owned();
    fs::write(dir.join("README"), b"x").unwrap();
    fs::write(dir.join(".msg"), b"x").unwrap();
    fs::create_dir(dir.join("sub.msg")).unwrap();
    s.put("q-1", &[b"q"]).unwrap();
    assert_eq!(s.keys().unwrap(), ["q-1"]);
    s.clear().unwrap();
    // clear only removes our files.
    assert!(dir.join("README").exists());
    s.close().unwrap();
    assert!(dir.exists(), "non-empty directory is kept");
}

#[test]
fn file_store_open_fails_cleanly_when_root_is_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("file");
    fs::write(&root, b"x").unwrap();
    let mut s = FileStore::new(&root);
    match s.open("c", "tcp://h:1") {
        Err(PersistError::Io { path, .. }) => assert!(path.starts_with(&root)),
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(is_closed(s.keys()));
}

// ---------------------------------------------------------------------------------------
// Key names
// ---------------------------------------------------------------------------------------

#[test]
fn key_names_are_pahos() {
    assert_eq!(key_name(PersistKey::SentPublish(1), false), "s-1");
    assert_eq!(key_name(PersistKey::SentPubRel(65535), false), "sc-65535");
    assert_eq!(key_name(PersistKey::ReceivedQos2(42), false), "r-42");
    assert_eq!(key_name(PersistKey::SentPublish(1), true), "s5-1");
    assert_eq!(key_name(PersistKey::SentPubRel(2), true), "sc5-2");
    assert_eq!(key_name(PersistKey::ReceivedQos2(3), true), "r5-3");
}

#[test]
fn parse_key_rejects_other_and_non_canonical_names() {
    assert_eq!(
        parse_key("sc5-10"),
        Some((PersistKey::SentPubRel(10), true))
    );
    for name in [
        "q-1", "q5-1", "c-1", "c5-1", "s-", "s-0", "s-01", "s-65536", "s-999999", "s-+1", "s--1",
        "s-1a", "s-1.msg", "S-1", "s1", "x-1", "", "sc-", "r5-",
    ] {
        assert_eq!(parse_key(name), None, "{name:?}");
    }
}

fn any_key() -> impl Strategy<Value = PersistKey> {
    (0u8..3, 1u16..=u16::MAX).prop_map(|(k, id)| match k {
        0 => PersistKey::SentPublish(id),
        1 => PersistKey::SentPubRel(id),
        _ => PersistKey::ReceivedQos2(id),
    })
}

proptest! {
    #[test]
    fn key_name_round_trips(key in any_key(), v5 in any::<bool>()) {
        let name = key_name(key, v5);
        prop_assert!(validate_key(&name).is_ok());
        prop_assert_eq!(parse_key(&name), Some((key, v5)));
    }

    #[test]
    fn parse_key_never_panics(name in ".{0,12}") {
        if let Some((key, v5)) = parse_key(&name) {
            prop_assert_eq!(key_name(key, v5), name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Record framing (no codec needed)
// ---------------------------------------------------------------------------------------

#[test]
fn crc32_check_value() {
    // The standard CRC-32/ISO-HDLC check value.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b""), 0);
}

/// The bitwise definition the record format was written with (reflected polynomial
/// 0xEDB88320): the fast implementation must agree on every length, or records written by
/// earlier versions would read as corrupt.
#[test]
fn crc32_matches_the_bitwise_definition() {
    fn reference(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let data: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for len in [0, 1, 3, 7, 8, 15, 16, 63, 64, 65, 255, 1024, 4096, 4999] {
        assert_eq!(crc32(&data[..len]), reference(&data[..len]), "length {len}");
    }
}

fn assert_corrupt<T: std::fmt::Debug>(r: Result<T>) {
    match r {
        Err(PersistError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn wrap_unwrap_round_trip() {
    let rec = wrap(0x0102_0304_0506_0708, b"\x30\x03\x00\x01a");
    assert_eq!(&rec[..5], b"MQSP\x01");
    assert_eq!(rec.len(), record::HEADER_LEN + 5);
    let (seq, body) = unwrap(&rec).unwrap();
    assert_eq!(seq, 0x0102_0304_0506_0708);
    assert_eq!(body, b"\x30\x03\x00\x01a");
    assert_eq!(unwrap(&wrap(0, b"")).unwrap(), (0, &b""[..]));
}

#[test]
fn torn_record_is_corrupt() {
    let rec = wrap(9, b"\x32\x08\x00\x01t\x00\x05pay");
    for len in 0..rec.len() {
        assert_corrupt(unwrap(&rec[..len]));
        assert_corrupt(record::decode_record(&rec[..len], ProtocolVersion::V311));
    }
    let mut longer = rec.clone();
    longer.push(0);
    assert_corrupt(unwrap(&longer));
}

/// A write cut short leaves a prefix: torn, whatever its length; a whole record, bytes that
/// are not a record of ours, another format version and a record read back through a
/// transform that does not undo the write's are not.
#[test]
fn only_a_record_cut_short_is_torn() {
    for rec in [
        wrap(9, b"\x32\x08\x00\x01t\x00\x05pay"),
        record::wrap_replacing(9, "o-12", b"\x32\x08\x00\x01t\x00\x05pay"),
    ] {
        for len in 0..rec.len() {
            assert!(record::is_torn(&rec[..len]), "prefix of {len} bytes");
        }
        assert!(!record::is_torn(&rec));
        let mut damaged = rec.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(record::is_torn(&damaged), "damaged after the header");
        let scrambled: Vec<u8> = rec.iter().map(|b| b ^ 0x5a).collect();
        assert!(!record::is_torn(&scrambled), "another transform's bytes");
        let mut other_version = rec.clone();
        other_version[4] = 3;
        assert!(!record::is_torn(&other_version));
    }
    assert!(!record::is_torn(b"\x00garbage, not a record"));
    assert!(!record::is_torn(b"MQ-not"));
}

#[test]
fn every_single_bit_flip_is_detected() {
    let rec = wrap(77, b"\x32\x08\x00\x01t\x00\x05pay");
    for i in 0..rec.len() {
        for bit in 0..8 {
            let mut bad = rec.clone();
            bad[i] ^= 1 << bit;
            assert_corrupt(unwrap(&bad));
        }
    }
}

#[test]
fn unknown_format_version_is_corrupt() {
    let mut rec = wrap(1, b"x");
    rec[4] = 3;
    match unwrap(&rec) {
        Err(PersistError::Corrupt { reason, .. }) => {
            assert_eq!(reason, "unknown record format version")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn record_must_match_its_key() {
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t".into(),
        pkid: 5,
        payload: Bytes::from_static(b"p"),
        properties: Properties::default(),
    });
    let pubrel = Packet::PubRel(PubResp {
        pkid: 5,
        reason: 0,
        properties: Properties::default(),
    });
    record::check_matches_key(PersistKey::SentPublish(5), &publish).unwrap();
    record::check_matches_key(PersistKey::ReceivedQos2(5), &publish).unwrap();
    let pubrec = Packet::PubRec(PubResp::new(5));
    record::check_matches_key(PersistKey::ReceivedQos2(5), &pubrec).unwrap();
    assert_corrupt(record::check_matches_key(
        PersistKey::ReceivedQos2(6),
        &pubrec,
    ));
    assert_corrupt(record::check_matches_key(
        PersistKey::SentPubRel(5),
        &pubrec,
    ));
    record::check_matches_key(PersistKey::SentPubRel(5), &pubrel).unwrap();
    assert_corrupt(record::check_matches_key(
        PersistKey::SentPublish(6),
        &publish,
    ));
    assert_corrupt(record::check_matches_key(
        PersistKey::SentPubRel(5),
        &publish,
    ));
    assert_corrupt(record::check_matches_key(
        PersistKey::SentPublish(5),
        &pubrel,
    ));
    assert_corrupt(record::check_matches_key(
        PersistKey::SentPublish(5),
        &Packet::PingReq,
    ));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        // Random bytes essentially never carry a valid header + CRC, so this runs without
        // the codec; a valid header around a random body is covered below (needs codec).
        let _ = unwrap(&bytes);
        let _ = record::decode_record(&bytes, ProtocolVersion::V311);
        let _ = record::decode_record(&bytes, ProtocolVersion::V5);
        let mut mem = MemoryStore::new();
        mem.open("c", "h:1").unwrap();
        mem.put("s-1", &[&bytes]).unwrap();
        let (good, bad) = load_all(&mut mem, ProtocolVersion::V311);
        prop_assert!(good.is_empty());
        prop_assert_eq!(bad.len(), 1);
    }

    #[test]
    fn single_byte_corruption_is_detected(
        body in proptest::collection::vec(any::<u8>(), 0..64),
        seq in any::<u64>(),
        pos in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut rec = wrap(seq, &body);
        let i = pos.index(rec.len());
        rec[i] ^= xor;
        let detected = matches!(unwrap(&rec), Err(PersistError::Corrupt { .. }));
        prop_assert!(detected, "undetected corruption at {}", i);
    }
}

// ---------------------------------------------------------------------------------------
// load_all without the codec: corrupt records, key filtering
// ---------------------------------------------------------------------------------------

#[test]
fn load_all_reports_corrupt_and_ignores_foreign_keys() {
    let mut mem = MemoryStore::new();
    mem.open("c", "tcp://h:1883").unwrap();
    mem.put("s-1", &[b"garbage"]).unwrap();
    let mut torn = wrap(3, b"\x62\x02\x00\x01");
    torn.truncate(torn.len() - 1);
    mem.put("sc-2", &[&torn]).unwrap();
    // Not ours or not this version family: never read, never reported.
    mem.put("s5-1", &[b"garbage"]).unwrap();
    mem.put("q-1", &[b"garbage"]).unwrap();
    mem.put("c-1", &[b"garbage"]).unwrap();
    mem.put("s-01", &[b"garbage"]).unwrap();

    let (good, bad) = load_all(&mut mem, ProtocolVersion::V311);
    assert!(good.is_empty());
    let names: Vec<_> = bad.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["s-1", "sc-2"]);
    for (name, e) in &bad {
        match e {
            PersistError::Corrupt { key, .. } => assert_eq!(key, name),
            other => panic!("{other:?}"),
        }
    }
    // Corrupt records are left for the caller to decide.
    assert!(mem.contains_key("s-1").unwrap());

    let (good, bad) = load_all(&mut mem, ProtocolVersion::V5);
    assert!(good.is_empty());
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, "s5-1");
}

#[test]
fn load_all_on_closed_store_reports_the_error() {
    let mut mem = MemoryStore::new();
    let (good, bad) = load_all(&mut mem, ProtocolVersion::V311);
    assert!(good.is_empty());
    assert!(matches!(bad.as_slice(), [(k, PersistError::Closed)] if k.is_empty()));
}

#[test]
fn persister_open_numbers_after_existing_records() {
    // Only headers are read at open, so this needs no codec.
    let mut mem = MemoryStore::new();
    mem.open("c", "h:1").unwrap();
    mem.put("s-1", &[&wrap(41, b"x")]).unwrap();
    mem.put("s-2", &[&wrap(7, b"x")]).unwrap();
    mem.put("s-4", &[b"torn"]).unwrap(); // unreadable: ignored
    mem.close().unwrap();
    let mut p = Persister::new(Box::new(mem), ProtocolVersion::V311);
    p.open("c", "h:1").unwrap();
    assert_eq!(p.next_seq, 42);
    assert_eq!(p.seqs.get(&PersistKey::SentPublish(2)), Some(&7));
    assert_eq!(p.seqs.len(), 2);
}

#[test]
fn persister_open_refuses_records_of_the_other_protocol_family() {
    for (key, version) in [
        ("s5-3", ProtocolVersion::V311),
        ("sc-3", ProtocolVersion::V5),
    ] {
        let mut mem = MemoryStore::new();
        mem.open("c", "h:1").unwrap();
        mem.put(key, &[&wrap(1, b"x")]).unwrap();
        mem.close().unwrap();
        let mut p = Persister::new(Box::new(mem), version);
        match p.open("c", "h:1") {
            Err(PersistError::OtherVersion { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key} for {version:?}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// With the codec
// ---------------------------------------------------------------------------------------

fn publish(pkid: u16, qos: QoS, topic: &str, payload: &'static [u8]) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        pkid,
        payload: Bytes::from_static(payload),
        properties: Properties::default(),
    })
}

fn pubrel(pkid: u16) -> Packet {
    Packet::PubRel(PubResp {
        pkid,
        reason: 0,
        properties: Properties::default(),
    })
}

#[test]
fn record_round_trip() {
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        for p in [
            publish(1, QoS::AtLeastOnce, "a/b", b"hello"),
            publish(65535, QoS::ExactlyOnce, "t", b""),
            pubrel(9),
        ] {
            let rec = record::encode_record_seq(&p, version, 12).unwrap();
            assert_eq!(
                record::decode_record_seq(&rec, version).unwrap(),
                (12, p.clone())
            );
            assert_eq!(record::decode_record(&rec, version).unwrap(), p);
        }
    }
}

#[test]
fn record_with_trailing_or_malformed_body_is_corrupt() {
    let mut body = Vec::new();
    crate::proto::codec::encode(&pubrel(3), ProtocolVersion::V311, &mut body).unwrap();
    let mut trailing = body.clone();
    trailing.push(0);
    assert_corrupt(record::decode_record(
        &wrap(1, &trailing),
        ProtocolVersion::V311,
    ));
    assert_corrupt(record::decode_record(
        &wrap(1, &body[..body.len() - 1]),
        ProtocolVersion::V311,
    ));
    // Valid CRC, invalid packet type 0.
    assert_corrupt(record::decode_record(
        &wrap(1, b"\x00\x00"),
        ProtocolVersion::V311,
    ));
}

proptest! {
    #[test]
    fn random_body_behind_valid_header_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = record::decode_record(&wrap(1, &body), ProtocolVersion::V311);
        let _ = record::decode_record(&wrap(1, &body), ProtocolVersion::V5);
    }
}

#[test]
fn load_all_orders_by_insertion_not_packet_id() {
    // Packet ids wrapped around: 65535 was sent before 1.
    let mut p = Persister::new(Box::new(MemoryStore::new()), ProtocolVersion::V311);
    p.open("c", "tcp://h:1883").unwrap();
    p.put(
        PersistKey::SentPublish(65534),
        &publish(65534, QoS::ExactlyOnce, "t", b"a"),
    )
    .unwrap();
    p.put(
        PersistKey::SentPublish(65535),
        &publish(65535, QoS::AtLeastOnce, "t", b"b"),
    )
    .unwrap();
    p.put(
        PersistKey::ReceivedQos2(7),
        &publish(7, QoS::ExactlyOnce, "in", b"r"),
    )
    .unwrap();
    p.put(
        PersistKey::SentPublish(1),
        &publish(1, QoS::AtLeastOnce, "t", b"c"),
    )
    .unwrap();
    // PUBREC for 65534: its PUBLISH record becomes a PUBREL record (new key, new place).
    p.apply(&PersistOp::Remove(PersistKey::SentPublish(65534)))
        .unwrap();
    p.apply(&PersistOp::Put(
        PersistKey::SentPubRel(65534),
        pubrel(65534),
    ))
    .unwrap();
    // Re-storing 65535 with DUP keeps its place.
    let mut dup = publish(65535, QoS::AtLeastOnce, "t", b"b");
    if let Packet::Publish(ref mut x) = dup {
        x.dup = true;
    }
    p.put(PersistKey::SentPublish(65535), &dup).unwrap();
    p.close().unwrap();

    // "Restart": a new persister over the same store.
    let mut p2 = Persister::new(p.into_store(), ProtocolVersion::V311);
    p2.open("c", "tcp://h:1883").unwrap();
    let (good, bad) = p2.load();
    assert!(bad.is_empty(), "{bad:?}");
    let keys: Vec<_> = good.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            PersistKey::SentPublish(65535),
            PersistKey::ReceivedQos2(7),
            PersistKey::SentPublish(1),
            PersistKey::SentPubRel(65534),
        ]
    );
    assert_eq!(good[0].1, dup);
    assert_eq!(good[3].1, pubrel(65534));
    // New records go after the reloaded ones.
    p2.put(
        PersistKey::SentPublish(2),
        &publish(2, QoS::AtLeastOnce, "t", b"d"),
    )
    .unwrap();
    let (good, _) = load_all(p2.store_mut(), ProtocolVersion::V311);
    assert_eq!(good.last().map(|g| g.0), Some(PersistKey::SentPublish(2)));
    // v5 family sees none of it.
    let (good, bad) = load_all(p2.store_mut(), ProtocolVersion::V5);
    assert!(good.is_empty() && bad.is_empty());
}

/// The marker of a received QoS 2 message exactly as the session stores it on
/// acknowledgement (a PUBREC), through a file store and a new persister.
#[test]
fn received_qos2_marker_as_the_session_stores_it_loads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = Persister::new(Box::new(FileStore::new(tmp.path())), ProtocolVersion::V311);
    p.open("c", "tcp://h:1883").unwrap();
    // What `Session::ack` emits for a QoS 2 message.
    p.apply(&PersistOp::Put(
        PersistKey::ReceivedQos2(9),
        Packet::PubRec(PubResp::new(9)),
    ))
    .unwrap();
    p.close().unwrap();
    let mut p2 = Persister::new(Box::new(FileStore::new(tmp.path())), ProtocolVersion::V311);
    p2.open("c", "tcp://h:1883").unwrap();
    let (good, bad) = p2.load();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        good,
        [(PersistKey::ReceivedQos2(9), Packet::PubRec(PubResp::new(9)))]
    );
    // And the session takes it back.
    let mut fresh = crate::proto::session::Session::new(crate::proto::session::SessionConfig {
        version: ProtocolVersion::V311,
        keep_alive: std::time::Duration::from_secs(60),
        ping_timeout: None,
        max_inflight: 10,
        max_incoming_packet_size: 1 << 20,
        persist_events: true,
    });
    let (key, packet) = good.into_iter().next().unwrap();
    fresh.restore(key, packet).unwrap();
}

/// The server record: written before the first marker of each server, read back on open,
/// removed on close when no marker is left; markers of a store without it have no server.
#[test]
fn server_record_goes_with_the_received_qos2_markers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = || Box::new(FileStore::new(tmp.path()));
    let marker = |id| {
        PersistOp::Put(
            PersistKey::ReceivedQos2(id),
            Packet::PubRec(PubResp::new(id)),
        )
    };
    let mut p = Persister::new(store(), ProtocolVersion::V311);
    p.open("c", "tcp://a:1883").unwrap();
    assert_eq!(p.server(), None);
    // Sent messages do not need it.
    p.apply_from(
        &PersistOp::Put(
            PersistKey::SentPublish(1),
            publish(1, QoS::AtLeastOnce, "t", b"x"),
        ),
        Some("tcp://b:1883"),
    )
    .unwrap();
    assert_eq!(p.server(), None);
    assert!(!p.store_mut().contains_key(SERVER_KEY).unwrap());
    p.apply_from(&marker(4), Some("tcp://b:1883")).unwrap();
    p.apply_from(&marker(5), Some("tcp://b:1883")).unwrap();
    assert_eq!(p.server(), Some("tcp://b:1883"));
    p.close().unwrap();

    let mut p = Persister::new(store(), ProtocolVersion::V311);
    p.open("c", "tcp://a:1883").unwrap();
    assert_eq!(p.server(), Some("tcp://b:1883"), "read back on open");
    // Another server: the record changes with its first marker.
    p.apply(&PersistOp::Remove(PersistKey::ReceivedQos2(4)))
        .unwrap();
    p.apply(&PersistOp::Remove(PersistKey::ReceivedQos2(5)))
        .unwrap();
    p.apply_from(&marker(1), Some("tcp://a:1883")).unwrap();
    assert_eq!(p.server(), Some("tcp://a:1883"));
    p.close().unwrap();
    let mut p = Persister::new(store(), ProtocolVersion::V311);
    p.open("c", "tcp://a:1883").unwrap();
    assert_eq!(p.server(), Some("tcp://a:1883"));
    // No marker left at close: the record goes, and the store with it.
    p.apply(&PersistOp::Remove(PersistKey::ReceivedQos2(1)))
        .unwrap();
    p.apply(&PersistOp::Remove(PersistKey::SentPublish(1)))
        .unwrap();
    p.close().unwrap();
    assert_eq!(
        fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "empty store removed"
    );

    // An unreadable record names no server.
    let mut p = Persister::new(store(), ProtocolVersion::V311);
    p.open("c", "tcp://a:1883").unwrap();
    p.apply_from(&marker(2), Some("tcp://a:1883")).unwrap();
    p.store_mut().put(SERVER_KEY, &[b"torn"]).unwrap();
    p.close().unwrap();
    let mut p = Persister::new(store(), ProtocolVersion::V311);
    p.open("c", "tcp://a:1883").unwrap();
    assert_eq!(p.server(), None);
    let (good, bad) = p.load();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(good.len(), 1, "the marker itself is fine");
}

#[test]
fn file_store_records_survive_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let mut p = Persister::new(Box::new(FileStore::new(tmp.path())), ProtocolVersion::V5);
    p.open("dev1", "tcp://localhost:1883").unwrap();
    p.put(
        PersistKey::SentPublish(3),
        &publish(3, QoS::AtLeastOnce, "x", b"y"),
    )
    .unwrap();
    p.close().unwrap();
    assert!(tmp.path().join("dev1-localhost-1883/s5-3.msg").is_file());
    let mut p = Persister::new(Box::new(FileStore::new(tmp.path())), ProtocolVersion::V5);
    p.open("dev1", "tcp://localhost:1883").unwrap();
    let (good, bad) = p.load();
    assert!(bad.is_empty());
    assert_eq!(
        good,
        [(
            PersistKey::SentPublish(3),
            publish(3, QoS::AtLeastOnce, "x", b"y")
        )]
    );
    // A record whose packet id does not match its key is corrupt.
    let rec = record::encode_record(
        &publish(4, QoS::AtLeastOnce, "x", b"y"),
        ProtocolVersion::V5,
    )
    .unwrap();
    p.store_mut().put("s5-5", &[&rec]).unwrap();
    let (_, bad) = p.load();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, "s5-5");
}

/// A message record (MQTTAsync's buffered publishes) reads back as the message, at every
/// QoS; a record of another packet is corrupt.
#[test]
fn message_record_round_trips() {
    for (v, qos) in [ProtocolVersion::V311, ProtocolVersion::V5]
        .into_iter()
        .flat_map(|v| [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce].map(|q| (v, q)))
    {
        let m = crate::Message::new("a/b", "payload").qos(qos).retain(true);
        let bytes = encode_message_record(&m, v, 7).unwrap();
        assert_eq!(unwrap(&bytes).unwrap().0, 7);
        let back = decode_message_record(&bytes, v).unwrap();
        assert_eq!(
            (
                back.topic.as_str(),
                &back.payload[..],
                back.qos,
                back.retain
            ),
            ("a/b", &b"payload"[..], qos, true)
        );
    }
    let pubrel = record::encode_record_seq(&pubrel(3), ProtocolVersion::V311, 1).unwrap();
    assert_corrupt(decode_message_record(&pubrel, ProtocolVersion::V311).map(|_| ()));
}

/// A record that names the record it replaced (format version 2): read back as any other
/// by the loader (same packet, same order), its name found by `replaced_keys` in either
/// protocol family, and every cut or flipped byte of it refused, never a panic.
#[test]
fn a_record_names_the_record_it_replaced() {
    let packet = publish(7, QoS::ExactlyOnce, "t/x", b"payload");
    let bytes = record::encode_record_replacing(&packet, ProtocolVersion::V311, 3, "o-12").unwrap();
    assert_eq!(bytes[4], record::FORMAT_REPLACING);
    assert_eq!(record::replaced_key(&bytes), Some("o-12"));
    assert_eq!(
        record::decode_record_seq(&bytes, ProtocolVersion::V311).unwrap(),
        (3, packet.clone())
    );
    let plain = record::encode_record_seq(&packet, ProtocolVersion::V311, 3).unwrap();
    assert_eq!(record::replaced_key(&plain), None);
    for cut in 0..bytes.len() {
        assert!(record::decode_record_seq(&bytes[..cut], ProtocolVersion::V311).is_err());
        assert_eq!(record::replaced_key(&bytes[..cut]), None);
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x40;
        assert!(record::decode_record_seq(&b, ProtocolVersion::V311).is_err());
    }

    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut p = Persister::new(Box::new(MemoryStore::new()), version);
        p.open("c", "tcp://h:1883").unwrap();
        p.put(
            PersistKey::SentPublish(1),
            &publish(1, QoS::AtLeastOnce, "a", b"1"),
        )
        .unwrap();
        p.put_replacing(
            PersistKey::SentPublish(2),
            &packet_with_id(&packet, 2),
            Some("o-5"),
        )
        .unwrap();
        p.put(PersistKey::SentPubRel(3), &pubrel(3)).unwrap();
        p.store_mut().put("o-5", &[b"the buffered record"]).unwrap();
        assert_eq!(
            replaced_keys(p.store_mut())
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["o-5"]
        );
        let (good, bad) = p.load();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            good.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [
                PersistKey::SentPublish(1),
                PersistKey::SentPublish(2),
                PersistKey::SentPubRel(3)
            ]
        );
        assert_eq!(good[1].1, packet_with_id(&packet, 2));
    }
}

fn packet_with_id(p: &Packet, pkid: u16) -> Packet {
    let Packet::Publish(p) = p else {
        unreachable!()
    };
    Packet::Publish(Publish { pkid, ..p.clone() })
}
