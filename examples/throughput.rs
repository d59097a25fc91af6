//! Rough publish throughput probe: cargo run --release --example throughput -- URI N QOS WINDOW
use mqttsync::{Client, ConnectOptions, Message, QoS};
use std::time::Instant;
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let uri = a.get(1).cloned().unwrap_or("tcp://127.0.0.1:1883".into());
    let n: usize = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let qos = QoS::from_u8(a.get(3).and_then(|s| s.parse().ok()).unwrap_or(0)).unwrap();
    let win: u16 = a.get(4).and_then(|s| s.parse().ok()).unwrap_or(100);
    let c = Client::connect(ConnectOptions::new(&uri).client_id("tp").max_inflight(win)).unwrap();
    let payload = bytes::Bytes::from(vec![b'x'; 64]);
    let t = Instant::now();
    let mut last = None;
    for _ in 0..n {
        last = Some(
            c.publish(Message::new("bench/t", payload.clone()).qos(qos))
                .unwrap(),
        );
    }
    let fence = c
        .publish_wait(Message::new("bench/t", "fence").qos(QoS::AtLeastOnce))
        .unwrap();
    let _ = (last, fence);
    let el = t.elapsed();
    println!(
        "{n} msgs qos {qos:?} win {win}: {:.0} msg/s",
        n as f64 / el.as_secs_f64()
    );
}
