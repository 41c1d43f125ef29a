//! The coach app's files, served at `/`: embedded in the binary when it was built
//! (see `server/build.rs`), or read from a directory given with `--app-dir` while the
//! app is being worked on.

use std::path::{Component, Path, PathBuf};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/app_files.rs"));
}

/// Where the app's files come from.
#[derive(Clone, Debug)]
pub enum AppFiles {
    /// Built into the binary.
    Embedded,
    /// A directory on disk.
    Dir(PathBuf),
}

/// What browsers may load and run on the app's pages: only the server's own files,
/// its WebSocket and API, and automerge's WebAssembly.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; \
     worker-src 'self'; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

impl AppFiles {
    /// Whether there is an app to serve.
    pub fn is_present(&self) -> bool {
        match self {
            AppFiles::Embedded => embedded::FILES.iter().any(|(p, _)| *p == "index.html"),
            AppFiles::Dir(dir) => dir.join("index.html").is_file(),
        }
    }

    fn read(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            AppFiles::Embedded => embedded::FILES
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, bytes)| bytes.to_vec()),
            AppFiles::Dir(dir) => {
                let relative = Path::new(path);
                // Only plain names below the directory: no `..`, no absolute paths.
                if !relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
                {
                    return None;
                }
                std::fs::read(dir.join(relative)).ok()
            }
        }
    }

    /// The response to `GET path`: the file, else (for a path that names no file
    /// type, a route of the app) the app's page; 404 otherwise.
    pub fn response(&self, path: &str) -> Response {
        let path = path.trim_start_matches('/');
        let path = if path.is_empty() { "index.html" } else { path };
        let (path, bytes) = match self.read(path) {
            Some(bytes) => (path, bytes),
            None if !path.rsplit('/').next().unwrap_or(path).contains('.') => {
                match self.read("index.html") {
                    Some(bytes) => ("index.html", bytes),
                    None => return missing_app(),
                }
            }
            None if path == "index.html" => return missing_app(),
            None => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
        };
        let mut response = bytes.into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        );
        // Hashed build output never changes under its name; everything else (the
        // page, the service worker, the manifest) must be checked on every load so
        // that a new version reaches phones.
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        response
    }
}

fn missing_app() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "This coachsync server was built without the coach app (npm was not available when \
         it was built). Build it with Node.js and npm installed, or run it with --app-dir.\n",
    )
        .into_response()
}

/// The media type of a file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_serves_its_files_routes_to_the_page_and_refuses_paths_outside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("assets")).unwrap();
        std::fs::write(dir.path().join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(dir.path().join("assets/app-1a2b.js"), "export {}").unwrap();
        std::fs::write(dir.path().join("sw.js"), "self").unwrap();
        let files = AppFiles::Dir(dir.path().to_owned());
        assert!(files.is_present());

        let page = files.response("/");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));

        let asset = files.response("/assets/app-1a2b.js");
        assert_eq!(
            asset.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        assert!(
            asset.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert_eq!(
            files.response("/sw.js").headers()[header::CACHE_CONTROL],
            "no-cache"
        );

        // A route of the app is its page; a missing file is 404, not the page.
        assert_eq!(files.response("/observations/new").status(), StatusCode::OK);
        assert_eq!(
            files.response("/assets/gone.js").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            files.response("/../Cargo.toml").status(),
            StatusCode::NOT_FOUND
        );

        let empty = tempfile::tempdir().unwrap();
        let none = AppFiles::Dir(empty.path().to_owned());
        assert!(!none.is_present());
        assert_eq!(none.response("/").status(), StatusCode::NOT_FOUND);
    }
}
