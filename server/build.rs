//! Builds the coach app (`app/`, a Vite project) and embeds its files in the server,
//! so that `coachsync serve` is one file that serves the app at `/`.
//!
//! - `COACHSYNC_APP_DIST=DIR`: embed an app built elsewhere instead of building it.
//! - Otherwise, with `app/package.json` and npm on the PATH: `npm ci` (when
//!   `node_modules` is missing or older than the lock file), then `npm run build`
//!   into this build's own output directory.
//! - Without npm, or when the build fails, the server is built without the app (it
//!   serves a page that says so) and cargo prints a warning; with
//!   `COACHSYNC_REQUIRE_APP=1` (set by the test command) that is an error instead.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let app = manifest.join("..").join("app");
    println!("cargo:rerun-if-env-changed=COACHSYNC_APP_DIST");
    println!("cargo:rerun-if-env-changed=COACHSYNC_REQUIRE_APP");
    watch(&app, &manifest);
    let required = std::env::var("COACHSYNC_REQUIRE_APP").is_ok_and(|v| v == "1");
    let dist = match std::env::var("COACHSYNC_APP_DIST") {
        Ok(dir) => Ok(PathBuf::from(dir)),
        Err(_) => build(&app, &out.join("app")),
    };
    let files = match dist.and_then(|dir| list(&dir).map(|files| (dir, files))) {
        Ok((dir, files)) if files.iter().any(|f| f == "index.html") => Some((dir, files)),
        Ok((dir, _)) => {
            fail(required, &format!("{} has no index.html", dir.display()));
            None
        }
        Err(why) => {
            fail(required, &why);
            None
        }
    };
    let mut code = String::from("/// The app's files: path (no leading `/`) and contents.\n");
    code.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    if let Some((dir, files)) = files {
        for file in files {
            let path = dir.join(&file);
            println!("cargo:rerun-if-changed={}", path.display());
            let _ = writeln!(
                code,
                "    ({file:?}, include_bytes!({:?})),",
                path.display().to_string()
            );
        }
    }
    code.push_str("];\n");
    std::fs::write(out.join("app_files.rs"), code).expect("writing the embedded file table");
}

/// Rebuild when any of the app's sources changes: every entry of `app/` but its
/// installed packages and build output (watching a path that does not exist would
/// rerun this script on every build, so a missing `app/` watches this crate's
/// manifest instead).
fn watch(app: &Path, manifest: &Path) {
    let Ok(entries) = std::fs::read_dir(app) else {
        println!(
            "cargo:rerun-if-changed={}",
            manifest.join("Cargo.toml").display()
        );
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !matches!(name.to_str(), Some("node_modules" | "dist" | ".vite")) {
            println!("cargo:rerun-if-changed={}", entry.path().display());
        }
    }
}

fn fail(required: bool, why: &str) {
    if required {
        panic!("the coach app could not be built into the server: {why}");
    }
    println!("cargo:warning=the server is built without the coach app: {why}");
}

/// Build the app into `dest`; the directory to embed, or why not.
fn build(app: &Path, dest: &Path) -> Result<PathBuf, String> {
    if !app.join("package.json").exists() {
        return Err(format!("{} has no package.json", app.display()));
    }
    let stale = |installed: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (
            modified(installed),
            modified(&app.join("package-lock.json")),
        ) {
            (Some(installed), Some(lock)) => installed < lock,
            _ => true,
        }
    };
    if stale(&app.join("node_modules").join(".package-lock.json")) {
        run(app, &["ci", "--no-audit", "--no-fund"])?;
    }
    let dest_arg = dest.display().to_string();
    run(
        app,
        &["run", "build", "--", "--outDir", &dest_arg, "--emptyOutDir"],
    )?;
    Ok(dest.to_owned())
}

fn run(dir: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new("npm")
        .args(args)
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run npm ({e})"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("npm {} failed ({status})", args.join(" ")))
    }
}

/// Every file under `dir`, as `/`-separated paths relative to it, sorted.
fn list(dir: &Path) -> Result<Vec<String>, String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(rel) = path.strip_prefix(root) {
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    files.sort();
    Ok(files)
}
