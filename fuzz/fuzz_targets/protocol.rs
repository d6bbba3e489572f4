//! A connection's bytes -> the daemon's request decoding: frames read with
//! `read_frame` under `MAX_REQUEST`, each body decoded as an `Envelope` the
//! way `daemon::server::connection` does (on failure, the `v` it would
//! quote in its error). A request it accepts encodes back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scintigan::daemon::protocol::{
    Envelope, FrameError, MAX_REQUEST, PROTOCOL_VERSION, encode, read_frame,
};

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    // The server serves requests on one connection until one fails.
    loop {
        let body = match read_frame(&mut reader, MAX_REQUEST) {
            Ok(body) => body,
            Err(FrameError::TooLarge { len, limit }) => {
                assert!(len > limit);
                return;
            }
            Err(_) => return,
        };
        assert!(body.len() <= MAX_REQUEST);
        let envelope: Envelope = match serde_json::from_slice(&body) {
            Ok(e) => e,
            Err(e) => {
                let _version = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("v").and_then(serde_json::Value::as_u64));
                let _ = e.to_string();
                return;
            }
        };
        if envelope.v != PROTOCOL_VERSION {
            return;
        }
        let frame = encode(&envelope).expect("an accepted request encodes");
        let back = read_frame(&mut frame.as_slice(), usize::MAX).expect("its own frame reads");
        let again: Envelope = serde_json::from_slice(&back).expect("an encoded request decodes");
        assert_eq!(again.v, envelope.v);
        assert_eq!(again.request, envelope.request);
    }
});
