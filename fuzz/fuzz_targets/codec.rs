//! Fuzzes the wire codec: `Message::decode` must never panic on any frame, and a
//! frame that decodes must survive a round trip: its encoding decodes to an equal
//! message, and encoding that again gives the same bytes (one canonical frame per
//! message, so what the server relays is what it read).

#![no_main]

use coachsync_core::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    let frame = message.encode();
    let again = Message::decode(&frame)
        .unwrap_or_else(|e| panic!("{message:?} encodes to a frame that does not decode: {e}"));
    assert_eq!(
        again, message,
        "a message changes through encode and decode"
    );
    assert_eq!(again.encode(), frame, "encoding is not canonical");
});
