//! Fuzzes the server-role sync engine with sequences of frames on three connections,
//! its store answered in process by a `MemoryStore` (so automerge sync messages are
//! really applied and stored), with store failures, reconnects and timers mixed in
//! (the input format is in `src/lib.rs`).
//!
//! It checks that the engine never panics out to its driver, never sends to a
//! connection that is not connected, sends only messages that survive the codec, and
//! announces only heads its store holds.

#![no_main]

use coachsync_fuzz::Harness;
use libfuzzer_sys::fuzz_target;

/// libFuzzer's panic hook aborts on every panic, even one that is caught. The engine
/// catches panics inside automerge on purpose (it quarantines or unloads the
/// document and refuses the peer), so those must unwind to the engine; any other
/// panic still aborts at once, with its stack intact for the crash report. A panic in
/// automerge that the engine fails to catch ends in libFuzzer's own `catch_unwind`,
/// which aborts too.
fn let_automerge_panics_unwind() {
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_automerge = info
            .location()
            .is_some_and(|l| l.file().contains("automerge-"));
        if in_automerge {
            eprintln!("automerge panicked (the engine must catch this): {info}");
        } else {
            abort_hook(info);
        }
    }));
}

fuzz_target!(init: let_automerge_panics_unwind(), |data: &[u8]| {
    Harness::run(data);
});
