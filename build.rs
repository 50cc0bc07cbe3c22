//! Compiles logban's own configuration tree (`defaults/`) into the binary:
//! writes `$OUT_DIR/defaults.rs`, a `&[(relative path, include_str!(file))]`
//! table that `config::embedded` includes.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Every file under `dir`, relative to `base`, in any order.
fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        if path.is_dir() {
            walk(base, &path, out);
        } else {
            out.push(path.strip_prefix(base).unwrap().to_path_buf());
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("defaults");
    // A directory makes Cargo look at every file below it.
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut table = String::from("&[\n");
    for rel in &files {
        let rel_text = rel
            .to_str()
            .unwrap_or_else(|| panic!("defaults/{}: the name is not UTF-8", rel.display()));
        let full = root.join(rel);
        let full_text = full.to_str().expect("the checkout path is UTF-8");
        writeln!(table, "    ({rel_text:?}, include_str!({full_text:?})),").unwrap();
    }
    table.push_str("]\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("defaults.rs");
    fs::write(&out, table).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
