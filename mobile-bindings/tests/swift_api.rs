//! The Swift bindings, generated from the built library, have the API an iOS app uses.
//!
//! There is no Swift toolchain here, so nothing is compiled: this test generates the
//! Swift source, the C header and the module map the way `scripts/build-xcframework`
//! does (uniffi's library mode, `mobile-bindings/uniffi.toml` applied) and checks them
//! as text. Comments and whitespace are stripped first, so the checks read
//! declarations, not doc comments, and do not depend on how the generator lays out
//! its code. On top of the declarations, it checks that every FFI function the Swift
//! calls is declared in the header and that every function the header declares is in
//! the library, so a slice built from the same source links.

use std::collections::BTreeSet;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The generated files, read once for every test of this file.
struct Generated {
    /// Where they are.
    dir: PathBuf,
    /// `Coachsync.swift`, as written.
    swift_raw: String,
    /// `Coachsync.swift` without comments or string contents.
    swift_code: String,
    /// The same without whitespace.
    swift: String,
    /// `coachsyncFFI.h` without comments.
    header_code: String,
    /// The same without whitespace.
    header: String,
    /// `coachsyncFFI.modulemap`, without whitespace.
    modulemap: String,
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn library_name() -> String {
    format!("{DLL_PREFIX}coachsync_mobile{DLL_SUFFIX}")
}

/// Where the cdylib may be: beside this test's executable first (cargo compiles the
/// package's library, every crate type of it, into `<target>/<profile>/deps/` before
/// it builds the integration tests, so that copy is current; `cargo test` does not
/// refresh the one in `<target>/<profile>/`, which `cargo build` writes), then in
/// the profile directory, then in `CARGO_TARGET_DIR`, then in the workspace's
/// `target`.
fn library_candidates() -> Vec<PathBuf> {
    let name = library_name();
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        // <target>/<profile>/deps/swift_api-<hash>
        if let Some(deps) = exe.parent() {
            dirs.push(deps.to_path_buf());
            if let Some(profile) = deps.parent() {
                dirs.push(profile.to_path_buf());
            }
        }
    }
    let workspace_target = manifest_dir().join("..").join("target");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            // Cargo reads a relative CARGO_TARGET_DIR against the workspace.
            if t.is_relative() {
                manifest_dir().join("..").join(t)
            } else {
                t
            }
        })
        .unwrap_or(workspace_target.clone());
    dirs.push(target.join("debug"));
    dirs.push(workspace_target.join("debug"));
    dirs.into_iter().map(|d| d.join(&name)).collect()
}

/// The built cdylib; builds it with `cargo build -p coachsync-mobile` if it is
/// nowhere to be found.
fn library() -> PathBuf {
    if let Some(found) = library_candidates().into_iter().find(|p| p.is_file()) {
        return found;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "coachsync-mobile"])
        .current_dir(manifest_dir())
        .status()
        .expect("running cargo build -p coachsync-mobile");
    assert!(status.success(), "cargo build -p coachsync-mobile failed");
    library_candidates()
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no {} after cargo build -p coachsync-mobile; looked in {:?}",
                library_name(),
                library_candidates()
            )
        })
}

/// A fresh, empty directory under cargo's scratch space for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("swift_api")
        .join(format!("{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// Replace comments (`//`, nested `/* */`) with a space; with `blank_strings`, also
/// empty string literals (so braces in them cannot confuse [`block_after`]). Good
/// enough for generated Swift and C, which use neither raw strings nor string
/// interpolation in declarations.
fn without_comments(source: &str, blank_strings: bool) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            out.push(' ');
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                let len = if chars[i] == '\\' { 2 } else { 1 };
                if !blank_strings {
                    out.extend(chars[i..(i + len).min(chars.len())].iter());
                }
                i += len;
            }
            out.push('"');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Without whitespace: how the code and the needles are compared.
fn squash(code: &str) -> String {
    code.split_whitespace().collect()
}

/// The body of the first `{ … }` block after `start`, braces included.
fn block_after<'a>(code: &'a str, start: &str) -> &'a str {
    let start = squash(start);
    let at = code
        .find(&start)
        .unwrap_or_else(|| panic!("no `{start}` in the generated code"));
    let open = at + code[at..].find('{').expect("a block after the declaration");
    let mut depth = 0;
    for (offset, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &code[open..=open + offset];
                }
            }
            _ => {}
        }
    }
    panic!("the block after `{start}` does not close");
}

fn assert_has(haystack: &str, what: &str, needles: &[&str]) {
    let missing: Vec<&str> = needles
        .iter()
        .copied()
        .filter(|n| !haystack.contains(&squash(n)))
        .collect();
    assert!(
        missing.is_empty(),
        "{what} lacks:\n  {}",
        missing.join("\n  ")
    );
}

fn read(dir: &Path, file: &str) -> String {
    let path = dir.join(file);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Generate the Swift bindings with uniffi's library mode, in process, with the
/// crate's `uniffi.toml`, unformatted (this machine has no swift-format).
fn generate(library: &Path, out: &Path) {
    let config = manifest_dir().join("uniffi.toml");
    let components = uniffi::generate_bindings_library_mode(
        library.try_into().expect("a UTF-8 library path"),
        None,
        &uniffi::SwiftBindingGenerator,
        &uniffi::CargoMetadataConfigSupplier::default(),
        Some(config.as_path().try_into().expect("a UTF-8 config path")),
        out.try_into().expect("a UTF-8 output path"),
        false,
    )
    .expect("generating the Swift bindings");
    assert_eq!(
        components.len(),
        1,
        "one uniffi component in {}",
        library.display()
    );
}

fn generated() -> &'static Generated {
    static GENERATED: OnceLock<Generated> = OnceLock::new();
    GENERATED.get_or_init(|| {
        let library = library();
        let dir = scratch("library-mode");
        generate(&library, &dir);
        let swift_raw = read(&dir, "Coachsync.swift");
        let swift_code = without_comments(&swift_raw, true);
        let header_code = without_comments(&read(&dir, "coachsyncFFI.h"), false);
        Generated {
            swift: squash(&swift_code),
            swift_code,
            header: squash(&header_code),
            header_code,
            modulemap: squash(&read(&dir, "coachsyncFFI.modulemap")),
            swift_raw,
            dir,
        }
    })
}

/// Identifiers that start with one of the crate's FFI prefixes.
fn ffi_symbols(code: &str) -> BTreeSet<String> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| {
            word.starts_with("uniffi_coachsync_mobile_")
                || word.starts_with("ffi_coachsync_mobile_")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_swift_source_header_and_modulemap_are_generated() {
    let generated = generated();
    let mut files: Vec<String> = fs::read_dir(&generated.dir)
        .expect("listing the output")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "Coachsync.swift",
            "coachsyncFFI.h",
            "coachsyncFFI.modulemap"
        ],
        "the names come from uniffi.toml (module Coachsync, FFI module CoachsyncFFI)"
    );
    // The module map exposes the header as the C module the Swift file imports.
    assert_has(
        &generated.modulemap,
        "coachsyncFFI.modulemap",
        &[
            "module CoachsyncFFI {",
            "header \"coachsyncFFI.h\"",
            "export *",
        ],
    );
    assert_has(
        &generated.swift,
        "Coachsync.swift",
        &[
            "#if canImport(CoachsyncFFI) import CoachsyncFFI #endif",
            "import Foundation",
        ],
    );
    assert!(
        generated.swift_raw.len() > 10_000,
        "Coachsync.swift is suspiciously short"
    );
}

#[test]
fn device_has_the_whole_api() {
    let swift = &generated().swift;
    let device = block_after(swift, "open class Device: DeviceProtocol");
    // Blocking calls are plain `throws`; the two network waits are `async throws`.
    // Each needle ends with the `{` of the body, so `throws` is not `async throws`.
    assert_has(
        device,
        "class Device",
        &[
            "public convenience init(dataDir: String, serverUrl: String?) throws {",
            "open func setServer(url: String?) throws {",
            "open func setToken(token: String?) throws {",
            "open func create(kind: String?, json: String) throws -> String {",
            "open func get(url: String) throws -> String {",
            "open func set(url: String, path: String, json: String) throws {",
            "open func push(url: String, path: String, json: String) throws {",
            "open func delete(url: String) throws {",
            "open func list(kind: String?) throws -> [DocSummary] {",
            "open func status(url: String) throws -> DocStatus {",
            "open func pendingCount() throws -> UInt32 {",
            "open func syncNow(timeoutMs: UInt64) async throws -> SyncResult {",
            "open func fetch(url: String, timeoutMs: UInt64) async throws {",
            "open func grant(url: String, user: String, access: String) async throws {",
            "open func revoke(url: String, user: String) async throws {",
            "open func observe(url: String, listener: DocumentListener) throws -> Subscription {",
            "open func observeStatus(listener: StatusListener) throws -> Subscription {",
            "open func shutdown() throws {",
            // Swift frees the Rust object when the last reference goes.
            "deinit {",
        ],
    );
    // Mocks and test doubles implement the protocol.
    let protocol = block_after(swift, "public protocol DeviceProtocol: AnyObject");
    assert_has(
        protocol,
        "protocol DeviceProtocol",
        &[
            "func syncNow(timeoutMs: UInt64) async throws -> SyncResult",
            "func fetch(url: String, timeoutMs: UInt64) async throws",
            "func observeStatus(listener: StatusListener) throws -> Subscription",
        ],
    );
    let subscription = block_after(swift, "open class Subscription: SubscriptionProtocol");
    assert_has(
        subscription,
        "class Subscription",
        &["open func cancel() {"],
    );
}

#[test]
fn listeners_logger_and_free_functions_are_there() {
    let swift = &generated().swift;
    // Callbacks may throw: the library logs the error and carries on.
    let document = block_after(swift, "public protocol DocumentListener: AnyObject");
    assert_has(
        document,
        "protocol DocumentListener",
        &["func onChange(json: String) throws"],
    );
    let status = block_after(swift, "public protocol StatusListener: AnyObject");
    assert_has(
        status,
        "protocol StatusListener",
        &[
            "func onStatus(url: String, status: DocStatus) throws",
            "func onConnection(state: ConnectionState) throws",
        ],
    );
    let logger = block_after(swift, "public protocol Logger: AnyObject");
    assert_has(
        logger,
        "protocol Logger",
        &["func log(level: LogLevel, target: String, message: String) throws"],
    );
    assert_has(
        swift,
        "Coachsync.swift",
        &[
            "public func setLogger(logger: Logger, level: LogLevel) {",
            "public func stopCallbacks() {",
            "public func coreVersion() -> String {",
            "public func isValidDocumentUrl(url: String) -> Bool {",
        ],
    );
}

#[test]
fn the_error_has_its_five_cases() {
    let swift = &generated().swift;
    // A flat error: every case carries the message for people, and nothing else.
    let error = block_after(swift, "public enum CoachsyncError: Swift.Error");
    assert_has(
        error,
        "enum CoachsyncError",
        &[
            "case InvalidInput(message: String)",
            "case NotFound(message: String)",
            "case Storage(message: String)",
            "case Network(message: String)",
            "case Internal(message: String)",
        ],
    );
    assert_eq!(error.matches("case").count(), 5, "exactly five cases");
    assert_has(
        swift,
        "Coachsync.swift",
        &["extension CoachsyncError: Foundation.LocalizedError"],
    );
}

#[test]
fn the_records_and_enums_are_there() {
    let swift = &generated().swift;
    let checks: [(&str, &[&str]); 6] = [
        (
            "public enum SyncState",
            &["case localOnly", "case pending", "case safeOnServer"],
        ),
        (
            "public enum ConnectionState",
            &[
                "case offline",
                "case connecting",
                "case connected",
                "case waiting(error: String)",
            ],
        ),
        (
            "public enum LogLevel",
            &[
                "case error",
                "case warn",
                "case info",
                "case debug",
                "case trace",
            ],
        ),
        (
            "public struct DocStatus",
            &[
                "public var state: SyncState",
                "public var lastSyncMs: Int64?",
            ],
        ),
        (
            "public struct DocSummary",
            &[
                "public var url: String",
                "public var kind: String?",
                "public var title: String?",
                "public var status: DocStatus",
                "public var updatedMs: Int64?",
            ],
        ),
        (
            "public struct SyncResult",
            &["public var safe: UInt32", "public var notSafe: [String]"],
        ),
    ];
    for (declaration, members) in checks {
        assert_has(block_after(swift, declaration), declaration, members);
    }
    // Value types compare and hash, so SwiftUI can diff them.
    assert_has(
        swift,
        "Coachsync.swift",
        &[
            "extension DocStatus: Equatable, Hashable",
            "extension DocSummary: Equatable, Hashable",
            "extension SyncResult: Equatable, Hashable",
            "extension SyncState: Equatable, Hashable",
            "extension ConnectionState: Equatable, Hashable",
        ],
    );
}

#[test]
fn the_header_declares_what_the_swift_calls_and_the_library_has_it() {
    let generated = generated();
    let called = ffi_symbols(&generated.swift_code);
    let declared = ffi_symbols(&generated.header_code);
    for method in [
        "create",
        "delete",
        "fetch",
        "get",
        "grant",
        "list",
        "observe",
        "observe_status",
        "pending_count",
        "push",
        "revoke",
        "set",
        "set_server",
        "set_token",
        "shutdown",
        "status",
        "sync_now",
    ] {
        let symbol = format!("uniffi_coachsync_mobile_fn_method_device_{method}");
        assert!(declared.contains(&symbol), "the header lacks {symbol}");
        assert!(called.contains(&symbol), "the Swift never calls {symbol}");
    }
    for symbol in [
        "uniffi_coachsync_mobile_fn_constructor_device_new",
        "uniffi_coachsync_mobile_fn_method_subscription_cancel",
        "uniffi_coachsync_mobile_fn_func_set_logger",
        "uniffi_coachsync_mobile_fn_func_stop_callbacks",
        "uniffi_coachsync_mobile_fn_init_callback_vtable_documentlistener",
        "uniffi_coachsync_mobile_fn_init_callback_vtable_statuslistener",
        "uniffi_coachsync_mobile_fn_init_callback_vtable_logger",
        "ffi_coachsync_mobile_uniffi_contract_version",
    ] {
        assert!(declared.contains(symbol), "the header lacks {symbol}");
    }
    let undeclared: Vec<&String> = called.difference(&declared).collect();
    assert!(
        undeclared.is_empty(),
        "the Swift calls functions the header does not declare: {undeclared:?}"
    );
    // Every one is a declaration, `name(`, not only a mention.
    for symbol in &declared {
        assert!(
            generated.header.contains(&format!("{symbol}(")),
            "the header mentions {symbol} but does not declare it"
        );
    }
    // The library exports every function the header declares (its symbol names are
    // NUL-terminated strings in the library's string tables).
    let bytes = fs::read(library()).expect("reading the library");
    let in_library: BTreeSet<String> = bytes
        .split(|b| *b == 0)
        .filter(|s| {
            s.starts_with(b"uniffi_coachsync_mobile_") || s.starts_with(b"ffi_coachsync_mobile_")
        })
        .filter_map(|s| std::str::from_utf8(s).ok())
        .map(str::to_owned)
        .collect();
    let absent: Vec<&String> = declared.difference(&in_library).collect();
    assert!(
        absent.is_empty(),
        "the header declares functions the library lacks: {absent:?}"
    );
}

#[test]
fn the_uniffi_bindgen_binary_generates_the_same_files() {
    // What scripts/build-xcframework and scripts/bindings run: the package's own
    // generator, which finds uniffi.toml through cargo metadata.
    let generated = generated();
    let out = scratch("cli");
    let output = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .arg("generate")
        .arg("--library")
        .arg(library())
        .args(["--language", "swift", "--no-format", "--out-dir"])
        .arg(&out)
        .current_dir(manifest_dir())
        .output()
        .expect("running uniffi-bindgen");
    assert!(
        output.status.success(),
        "uniffi-bindgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "Coachsync.swift",
        "coachsyncFFI.h",
        "coachsyncFFI.modulemap",
    ] {
        assert!(
            read(&out, file) == read(&generated.dir, file),
            "uniffi-bindgen's {file} differs from the library-mode one"
        );
    }
}
