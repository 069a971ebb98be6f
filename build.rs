//! Generates `include/apiserver_storage.h` from `src/ffi` with cbindgen, and
//! compiles the Kubernetes `.proto` files under `proto/` into a descriptor set
//! for the protobuf codec. The header is committed; CI checks that a build
//! leaves it unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use prost_types::FileDescriptorSet;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    header(&dir);
    descriptors(&dir);
}

fn header(dir: &Path) {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let mut config =
        cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let version =
        |part: &str| std::env::var(format!("CARGO_PKG_VERSION_{part}")).expect("cargo sets it");
    config.after_includes = Some(format!(
        "\n/** The version of this header; `storage_version()` gives the library's. */\n\
         #define APISERVER_STORAGE_VERSION_MAJOR {}\n\
         #define APISERVER_STORAGE_VERSION_MINOR {}\n\
         #define APISERVER_STORAGE_VERSION_PATCH {}\n\
         #define APISERVER_STORAGE_VERSION \"{}\"",
        version("MAJOR"),
        version("MINOR"),
        version("PATCH"),
        std::env::var("CARGO_PKG_VERSION").expect("cargo sets it"),
    ));
    // The installed shared library carries a versioned soname (see Makefile).
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,-soname,libapiserver_storage.so.{}",
        version("MAJOR")
    );
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse src/ffi")
        // Writes only when the content changes, so the file's mtime stays put.
        .write_to_file(dir.join("include/apiserver_storage.h"));
}

/// Compiles every file under `proto/` into `$OUT_DIR/kubernetes.pb`, and
/// joins the `fields.tsv` beside them into `$OUT_DIR/fields.tsv`, each message
/// named by its full protobuf name.
fn descriptors(dir: &Path) {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    let root = dir.join("proto");
    let mut files = Vec::new();
    collect_protos(&root, &root, &mut files);
    files.sort();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let descriptor_set = out_dir.join("kubernetes.pb");
    let protoc = std::env::var("PROTOC").unwrap_or_else(|_| "protoc".into());
    let output = Command::new(&protoc)
        .arg(format!("--proto_path={}", root.display()))
        .arg(format!("--descriptor_set_out={}", descriptor_set.display()))
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {protoc} (install protobuf-compiler): {e}"));
    // protoc warns about every unused import the generated files carry; only failures matter.
    assert!(
        output.status.success(),
        "protoc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&descriptor_set).expect("protoc wrote the descriptor set");
    let set = FileDescriptorSet::decode(bytes.as_slice()).expect("protoc writes valid sets");
    let mut fields = String::new();
    for file in &set.file {
        let tsv = root.join(file.name()).with_file_name("fields.tsv");
        let Ok(table) = std::fs::read_to_string(&tsv) else {
            continue;
        };
        for line in table.lines() {
            fields += &format!("{}.{line}\n", file.package());
        }
    }
    std::fs::write(out_dir.join("fields.tsv"), fields).expect("OUT_DIR is writable");
}

fn collect_protos(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("proto/ is readable") {
        let path = entry.expect("proto/ is readable").path();
        if path.is_dir() {
            collect_protos(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "proto") {
            let relative = path.strip_prefix(root).expect("under proto/");
            files.push(relative.to_string_lossy().into_owned());
        }
    }
}
