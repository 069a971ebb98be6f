//! Generates `include/apiserver_storage.h` from `src/ffi` with cbindgen.
//! The header is committed; CI checks that a build leaves it unchanged.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(Path::new(&dir).join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let header = Path::new(&dir).join("include/apiserver_storage.h");
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse src/ffi")
        // Writes only when the content changes, so the file's mtime stays put.
        .write_to_file(header);
}
