//! The decode fuzz check, shared by `fuzz_targets/decode.rs` (cargo fuzz) and
//! `tests/codec_props.rs` (proptest, stable toolchain).

use bytes::BytesMut;
use mqttsync::internals::proto::codec::{decode, encode, encoded_len, Framer};
use mqttsync::internals::proto::ProtocolVersion;

/// Frames and decodes `data` as a stream for MQTT 3.1, 3.1.1 and 5.0. Nothing may panic;
/// every packet that decodes must encode again (with `encoded_len` equal to the bytes
/// written) and that encoding must decode to the same packet. Returns how many packets
/// decoded, over the three versions.
pub fn check_decode(data: &[u8]) -> usize {
    let mut decoded = 0;
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let framer = Framer::new(1 << 20);
        let mut buf = BytesMut::from(data);
        while let Ok(Some(frame)) = framer.next_frame(&mut buf) {
            let Ok(packet) = decode(frame, version) else {
                continue;
            };
            decoded += 1;
            let mut out = Vec::new();
            let written = match encode(&packet, version, &mut out) {
                Ok(n) => n,
                Err(e) => panic!("decoded {packet:?} ({version:?}) does not encode: {e}"),
            };
            assert_eq!(written, out.len());
            assert_eq!(encoded_len(&packet, version), Ok(written));
            let mut again = BytesMut::from(&out[..]);
            let frame = Framer::new(usize::MAX)
                .next_frame(&mut again)
                .expect("re-encoded frame")
                .expect("complete re-encoded frame");
            assert!(again.is_empty());
            assert_eq!(decode(frame, version), Ok(packet));
        }
    }
    decoded
}
