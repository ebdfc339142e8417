//! The module's build identity: a digest of everything that shapes its
//! behaviour (its sources, its manifest and the workspace's locked
//! dependencies). The verdict cache puts it in its shared-data keys: old and
//! new modules share one Envoy process during an update, and a module must
//! never read an entry another build wrote in a layout it does not know.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let mut files = Vec::new();
    collect(&manifest.join("src"), &mut files);
    files.sort();
    files.push(manifest.join("Cargo.toml"));
    files.push(manifest.join("../Cargo.lock"));
    let mut digest = Sha256::new();
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file.strip_prefix(&manifest).unwrap_or(file);
        digest.update(name.to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update(fs::read(file).unwrap_or_default());
        digest.update([0]);
    }
    println!("cargo:rerun-if-changed={}", manifest.join("src").display());
    let id: String = digest.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=LICENSE_GATE_BUILD_ID={id}");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}
