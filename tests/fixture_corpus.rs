//! The Kubernetes project's own serialization fixtures (the `testdata/`
//! directory of the `k8s.io/api` module: one object per kind and version with
//! every field filled, as `.pb` and `.json`, for HEAD and each release),
//! through the C ABI against a real etcd with `codec: "protobuf"`:
//! - read: the `.pb` stored raw reads as exactly its `.json` (resourceVersion
//!   aside);
//! - write: creating the `.json` stores exactly the `.pb` bytes, with
//!   `resourceVersion` and `selfLink` emptied as Go's versioner does.
//!
//! Where the current release reads an older fixture differently, the module
//! carries what it makes of it (`.after_roundtrip.json`, `.after_roundtrip.pb`):
//! that is the expected view. Prints the table per release, and each kind that
//! misses. The module comes from the Go module cache
//! (`scripts/install-deps.sh` downloads it).

mod common;

use std::collections::BTreeMap;
use std::ffi::{c_void, CString};
use std::path::Path;
use std::ptr;

use apiserver_storage::codec::Codec;
use apiserver_storage::config::CodecKind;
use common::capi::*;
use common::wire;
use serde_json::Value;

/// Kinds kube-apiserver never stores in etcd, with the reason: requests and
/// responses of one call, options, and objects computed when served.
const NEVER_STORED: &[(&str, &str)] = &[
    ("AdmissionReview", "a webhook's request and response"),
    ("APIGroup", "discovery, served from memory"),
    ("APIGroupDiscovery", "discovery, served from memory"),
    ("APIVersions", "discovery, served from memory"),
    ("Binding", "a subresource request that sets a pod's node"),
    ("ComponentStatus", "computed when served"),
    ("CreateOptions", "options of a call"),
    ("DeleteOptions", "options of a call"),
    ("DeploymentRollback", "a subresource request"),
    ("Eviction", "a subresource request"),
    ("GetOptions", "options of a call"),
    ("ImageReview", "a webhook's request and response"),
    ("ListOptions", "options of a call"),
    ("LocalSubjectAccessReview", "a request and its response"),
    ("NodeProxyOptions", "options of a call"),
    ("PatchOptions", "options of a call"),
    ("PodAttachOptions", "options of a call"),
    ("PodExecOptions", "options of a call"),
    ("PodLogOptions", "options of a call"),
    ("PodPortForwardOptions", "options of a call"),
    ("PodProxyOptions", "options of a call"),
    ("Scale", "a subresource view of another object"),
    ("SelfSubjectAccessReview", "a request and its response"),
    ("SelfSubjectReview", "a request and its response"),
    ("SelfSubjectRulesReview", "a request and its response"),
    (
        "SerializedReference",
        "an annotation's content, not an object",
    ),
    ("ServiceProxyOptions", "options of a call"),
    ("Status", "a call's result"),
    ("SubjectAccessReview", "a request and its response"),
    ("TokenRequest", "a subresource request"),
    ("TokenReview", "a request and its response"),
    ("UpdateOptions", "options of a call"),
    ("WatchEvent", "a watch's frame"),
];

/// Kinds that versions the 1.37 module still carries no longer hold (fixture
/// names): kube-apiserver 1.37 cannot decode such objects either, and the
/// library refuses them alike, naming the kind.
const DROPPED_KINDS: &[&str] = &[
    "certificates.k8s.io.v1alpha1.PodCertificateRequest",
    "resource.k8s.io.v1alpha3.DeviceClass",
    "resource.k8s.io.v1alpha3.ResourceClaim",
    "resource.k8s.io.v1alpha3.ResourceClaimTemplate",
    "resource.k8s.io.v1alpha3.ResourceSlice",
];

/// A read of a dropped kind is UNSUPPORTED (102), a create INVALID_OBJ (4),
/// with Go's "no kind ... is registered" message; etcd gets nothing.
fn refused_as_1_37_does(
    etcd: &common::Etcd,
    store: &Store,
    key: &str,
    fixture: &Fixture,
    kind: &str,
) {
    let unregistered = format!("no kind \"{kind}\" is registered");
    etcd.put(&format!("/registry/read{key}"), &fixture.pb);
    let read = store.get(&format!("/read{key}")).unwrap_err();
    assert!(
        read.starts_with("code 102:") && read.contains(&unregistered),
        "{read}"
    );
    let mut object = fixture.json.clone();
    object["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    let written = store
        .create(
            &format!("/write{key}"),
            &serde_json::to_vec(&object).unwrap(),
        )
        .unwrap_err();
    assert!(
        written.starts_with("code 4:") && written.contains(&unregistered),
        "{written}"
    );
    assert_eq!(etcd.raw(&format!("/registry/write{key}")), None);
}

/// A store over the C ABI, as a C caller holds one.
struct Store(*mut c_void);

impl Store {
    fn new(config: &str) -> Store {
        let config = CString::new(config).unwrap();
        let mut s = ptr::null_mut();
        // SAFETY: valid arguments; errors are not requested.
        let rc = unsafe { storage_create(config.as_ptr(), &mut s, ptr::null_mut()) };
        assert_eq!(rc, 0, "storage_create");
        Store(s)
    }

    /// The C call's result: the bytes it wrote, or its code and message.
    fn call(
        &self,
        f: impl FnOnce(*const c_void, *mut Bytes, *mut *mut c_void) -> i32,
    ) -> Result<Vec<u8>, String> {
        let mut out = Bytes {
            data: ptr::null_mut(),
            len: 0,
        };
        let mut err = ptr::null_mut();
        let rc = f(self.0, &mut out, &mut err);
        // SAFETY: the library wrote `out` or `err` per its result code.
        unsafe {
            if rc == 0 {
                let bytes = std::slice::from_raw_parts(out.data, out.len).to_vec();
                storage_bytes_free(out);
                Ok(bytes)
            } else {
                let message = std::ffi::CStr::from_ptr(storage_error_message(err));
                let message = format!("code {rc}: {}", message.to_string_lossy());
                storage_error_free(err);
                Err(message)
            }
        }
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let key = CString::new(key).unwrap();
        // SAFETY: valid arguments for the duration of the call.
        self.call(|s, out, err| unsafe {
            storage_get(s, key.as_ptr(), ptr::null(), false, out, err)
        })
    }

    fn create(&self, key: &str, object: &[u8]) -> Result<Vec<u8>, String> {
        let key = CString::new(key).unwrap();
        // SAFETY: valid arguments for the duration of the call.
        self.call(|s, out, err| unsafe {
            storage_create_object(s, key.as_ptr(), object.as_ptr(), object.len(), 0, out, err)
        })
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: the handle came from storage_create and is freed once.
        unsafe { storage_destroy(self.0) }
    }
}

/// One fixture: the bytes an older or the current kube-apiserver stored,
/// and what the current release makes of them.
struct Fixture {
    pb: Vec<u8>,
    /// The `.json` as Go indented it.
    json_text: Vec<u8>,
    /// The object the current release serves.
    json: Value,
    /// What the current release stores for that object.
    stored: Vec<u8>,
}

impl Fixture {
    fn load(dir: &Path, name: &str) -> Fixture {
        let read = |suffix: &str| std::fs::read(dir.join(format!("{name}{suffix}")));
        let pb = read(".pb").unwrap();
        let json = read(".after_roundtrip.json")
            .or_else(|_| read(".json"))
            .unwrap();
        let stored = read(".after_roundtrip.pb").unwrap_or_else(|_| pb.clone());
        Fixture {
            pb,
            json: serde_json::from_slice(&json).unwrap(),
            json_text: json,
            stored,
        }
    }

    /// What Go's etcd3 store writes for the object: `resourceVersion` and
    /// `selfLink` (ObjectMeta fields 6 and 4; the object is the envelope's
    /// field 2, its metadata field 1) emptied.
    fn expected_write(&self) -> Vec<u8> {
        let body = wire::replace(&self.stored[4..], &[2, 1, 4], b"");
        let body = wire::replace(&body, &[2, 1, 6], b"");
        [&self.stored[..4], &body].concat()
    }

    /// What kube-apiserver's JSON serializer stores for the object: Go's
    /// compact marshalling (the fixture is that, indented), with the
    /// metadata's `selfLink` and `resourceVersion` emptied and so left out
    /// (`omitempty`), and the encoder's newline.
    fn expected_json_write(&self) -> Vec<u8> {
        let mut text = String::from_utf8(compact(&self.json_text)).unwrap();
        for member in [
            r#""selfLink":"selfLinkValue","#,
            r#""resourceVersion":"resourceVersionValue","#,
        ] {
            // The first occurrence is the object's own metadata.
            text = text.replacen(member, "", 1);
        }
        text.push('\n');
        text.into_bytes()
    }
}

/// `json.Compact`: the insignificant whitespace of indented JSON removed.
fn compact(json: &[u8]) -> Vec<u8> {
    let (mut out, mut in_string, mut escaped) = (Vec::new(), false, false);
    for &b in json {
        if in_string {
            in_string = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else if b == b'"' {
            in_string = true;
        } else if b.is_ascii_whitespace() {
            continue;
        }
        out.push(b);
    }
    out
}

/// Reads the fixture stored raw at `key` through the C ABI.
fn reads_exactly(
    etcd: &common::Etcd,
    store: &Store,
    key: &str,
    fixture: &Fixture,
) -> Result<(), String> {
    let revision = etcd.put(&format!("/registry{key}"), &fixture.pb);
    let got: Value = serde_json::from_slice(&store.get(key)?).unwrap();
    let mut want = fixture.json.clone();
    want["metadata"]["resourceVersion"] = Value::String(revision.to_string());
    if got == want {
        return Ok(());
    }
    // The codec says what it left out.
    let (_, unknown) = Codec::new(CodecKind::Protobuf)
        .decode_reporting_unknown(&fixture.pb, revision)
        .map_err(|e| e.to_string())?;
    if unknown.is_empty() {
        Err(first_difference("", &got, &want))
    } else {
        Err(format!("unknown to the schema: {}", unknown.join(", ")))
    }
}

/// Creates the fixture's object through the C ABI at `key` and compares the
/// bytes in etcd with what kube-apiserver stores: its protobuf, or with
/// `json`, its JSON.
fn writes_exactly(
    etcd: &common::Etcd,
    store: &Store,
    key: &str,
    fixture: &Fixture,
    json: bool,
) -> Result<(), String> {
    let mut object = fixture.json.clone();
    // Go's Create refuses a resourceVersion; kube-apiserver clears it first.
    object["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    store.create(key, &serde_json::to_vec(&object).unwrap())?;
    let got = etcd.raw(&format!("/registry{key}")).expect("created");
    let want = if json {
        fixture.expected_json_write()
    } else {
        fixture.expected_write()
    };
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    let near = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(30)..(at + 30).min(b.len())]).into_owned()
    };
    Err(format!(
        "{} bytes written, {} expected; first difference at byte {at}{}",
        got.len(),
        want.len(),
        if json {
            format!(": {:?} where Go writes {:?}", near(&got), near(&want))
        } else {
            String::new()
        }
    ))
}

/// The path of the first place two JSON values differ.
fn first_difference(at: &str, got: &Value, want: &Value) -> String {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                match g.get(k) {
                    None => return format!("{at}.{k} missing"),
                    Some(gv) if gv != wv => return first_difference(&format!("{at}.{k}"), gv, wv),
                    _ => {}
                }
            }
            let extra = g.keys().find(|k| !w.contains_key(*k));
            format!("{at}.{} unexpected", extra.map_or("?", |k| k.as_str()))
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => {
            let i = (0..g.len()).find(|&i| g[i] != w[i]).unwrap_or(0);
            first_difference(&format!("{at}[{i}]"), &g[i], &w[i])
        }
        _ => format!("{at} differs"),
    }
}

#[test]
fn kubernetes_fixtures_read_and_write_exactly() {
    let root = common::k8s_api_testdata();
    let etcd = common::Etcd::start();
    let store = Store::new(&etcd.config(r#""codec":"protobuf","prefix":"/registry""#));
    let json_store = Store::new(&etcd.config(r#""codec":"json","prefix":"/registry""#));
    let mut releases: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    releases.sort();
    let mut table = String::from(
        "| fixtures | stored kinds | read exactly | protobuf written byte for byte \
         | JSON written byte for byte | refused as 1.37 does |\n|---|---|---|---|---|---|\n",
    );
    let mut results = BTreeMap::new();
    for release in &releases {
        let dir = root.join(release);
        // Objects with a `.json` to compare with (`*.after_roundtrip.pb` of
        // options has none).
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".pb")
                    .filter(|n| !n.ends_with(".after_roundtrip"))
                    .map(str::to_owned)
            })
            .filter(|name| dir.join(format!("{name}.json")).exists())
            .collect();
        names.sort();
        let (mut read, mut written, mut json_written, mut stored, mut dropped, mut failures) =
            (0, 0, 0, 0, 0, Vec::new());
        for name in names {
            let kind = name.rsplit('.').next().unwrap();
            if NEVER_STORED.iter().any(|(k, _)| *k == kind) {
                continue;
            }
            stored += 1;
            let fixture = Fixture::load(&dir, &name);
            if DROPPED_KINDS.contains(&name.as_str()) {
                refused_as_1_37_does(&etcd, &store, &format!("/{release}/{name}"), &fixture, kind);
                dropped += 1;
                continue;
            }
            match reads_exactly(&etcd, &store, &format!("/read/{release}/{name}"), &fixture) {
                Ok(()) => read += 1,
                Err(why) => failures.push(format!("{name}: read: {why}")),
            }
            match writes_exactly(
                &etcd,
                &store,
                &format!("/write/{release}/{name}"),
                &fixture,
                false,
            ) {
                Ok(()) => written += 1,
                Err(why) => failures.push(format!("{name}: write: {why}")),
            }
            let key = format!("/json/{release}/{name}");
            match writes_exactly(&etcd, &json_store, &key, &fixture, true) {
                Ok(()) => json_written += 1,
                Err(why) => failures.push(format!("{name}: JSON write: {why}")),
            }
        }
        let label = if release == "HEAD" {
            "HEAD (1.37)"
        } else {
            release
        };
        table.push_str(&format!(
            "| {label} | {stored} | {read} | {written} | {json_written} | {dropped} |\n"
        ));
        eprintln!(
            "{release}: of {stored} stored kinds, {read} read and {written} (protobuf), \
             {json_written} (JSON) written exactly, {dropped} refused as 1.37 does"
        );
        for f in &failures {
            eprintln!("  {f}");
        }
        results.insert(
            release.clone(),
            (
                read + dropped,
                written + dropped,
                json_written + dropped,
                stored,
            ),
        );
    }
    eprintln!("\n{table}");
    // Every stored kind of every release reads and writes as kube-apiserver
    // 1.37 does.
    for (release, (read, written, json_written, stored)) in &results {
        assert!(
            *read == *stored && *written == *stored && *json_written == *stored,
            "{release}: of {stored}, {read} read, {written} written as protobuf and \
             {json_written} as JSON as 1.37 does"
        );
    }
}
