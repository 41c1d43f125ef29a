//! The bindings generator, built from the same uniffi version as the library so the
//! generated Kotlin, Swift and Python always match it:
//!
//! ```sh
//! cargo run -p coachsync-mobile --features bindgen --bin uniffi-bindgen -- generate \
//!     --library target/debug/libcoachsync_mobile.so --language python --out-dir out/
//! ```

fn main() {
    uniffi::uniffi_bindgen_main()
}
