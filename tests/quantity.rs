//! `codec::quantity::canonical` against Go's own `resource.ParseQuantity` and
//! `Quantity.String` (the program in `tests/kube/quantity`, built from the Go
//! module cache): hand-picked edge cases, every string in the Kubernetes
//! serialization fixtures, and seeded random mutations of both must come out
//! byte for byte the same, errors included. Then the same as JSON values
//! through the protobuf codec, against Go's JSON and protobuf round trip.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use apiserver_storage::codec::quantity::canonical;
use apiserver_storage::codec::{Codec, CodecError};
use apiserver_storage::config::CodecKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const NUMBERS: &[&str] = &[
    "0",
    "00",
    "1",
    "5",
    "7",
    "8",
    "9",
    "01",
    "007",
    "10",
    "100",
    "1000",
    "1023",
    "1024",
    "1025",
    "2048",
    "1536",
    ".5",
    "5.",
    ".",
    "",
    "0.",
    ".0",
    "1.5",
    "0.1",
    "0.001",
    "0.0001",
    "1.000",
    "1.500",
    "1.0001",
    "4096.0001",
    "123456789",
    "999999999999999999",
    "100000000000000000",
    "999999999999999999.9",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "12345678901234567890",
    "1000000000000000000000",
    "1234567890123456789012",
    "0.000000001",
    "0.0000000001",
    "0.000000000000000000001",
    "1.00000000000000000000",
    "0.99999999999999999999",
    "3.14159265358979323846264338327950288",
    "9007199254740993",
    "8796093022208",
    "99999999999",
    "999999999999",
];

const SUFFIXES: &[&str] = &[
    "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e0",
    "e1", "e2", "e3", "e6", "e-1", "e-2", "e-3", "e-9", "e-10", "e-12", "e18", "e19", "e21", "e40",
    "e-40", "E3", "E-3", "E0", "e+3", "E+12", "e-0", "e03", "e+0", "K", "ki", "Kb", "i", "e", "E",
    "e+", "e-", "mi", "kk", "Mm", "EE", "eE3", "e3.5", "e3e3", " ",
];

/// Exponents near and past int32, on Go's int64 path (its other path would
/// work on numbers of billions of digits).
const FAST_HUGE: &[&str] = &[
    "1e2147483647",
    "1e2147483646",
    "123e2147483646",
    "-7e2147483647",
    "1e4294967296",
    "1e4294967297",
    "1e-4294967297",
    "1e4294967286",
    "0.5e-2147483648",
    "1.5e-2147483648",
    "5e-4294967296",
    "1e9223372036854775807",
    "-1e9223372036854775807",
    "1e-9223372036854775808",
    "1e9223372036854775808",
    "1e-9223372036854775809",
    "999999999999999999e2147483647",
    "999999999999999999e-4294967296",
];

const OTHERS: &[&str] = &[
    "",
    " ",
    "  1",
    "1 ",
    " 1 ",
    "\t1",
    "1.2.3",
    "1Kb",
    "--1",
    "-+1",
    "+-1",
    "++1",
    "1e",
    "0x10",
    "1,5",
    "1_000",
    "NaN",
    "Inf",
    "-Inf",
    "1e1e1",
    "e5",
    "e-10",
    ".e-10",
    "+.e-10",
    "-.5Ki",
    "+.5Ki",
    ".Ki",
    "+",
    "-",
    "+0",
    "-0",
    "-0.0",
    "0.0",
    "0e-10",
    "-0e-10",
    "1e-9",
    "1e-10",
    "0.1n",
    "1n",
    "10n",
    "0.5n",
    "1000n",
    "1000000u",
    "1µ",
    "1 Ki",
    "1K i",
    "١",
    "1\u{a0}",
    "1Ki1",
    "1k5",
    "1+5",
    "5-",
    "1.e3",
    ".e3",
    "1.Ki",
    "1.5.Ki",
    "8Ei",
    "7Ei",
    "7.99Ei",
    "8191Pi",
    "8192Pi",
    "0.9999999999Ki",
    "0.0000000001Ki",
    "1023.9999999999999Ki",
    "0.000000000000000000001Ei",
    "1024Ki",
    "1048576Ki",
    "1023Ki",
    "1024.0Ki",
    "1Mi",
    "0Ki",
    "-0Ki",
    "-1Ki",
    "-1024Mi",
    "-8Ei",
    "-1.5Gi",
    "12345678901234Ki",
    "123456789012345678901Ki",
    "99999999999Ki",
    "999999999999Ki",
    "99999999Mi",
    "999999999Mi",
    "99999Gi",
    "999999Gi",
    "99Ti",
    "999Ti",
    "1Pi",
    "1.Pi",
];

fn hand_picked() -> Vec<String> {
    let mut inputs = Vec::new();
    for sign in ["", "+", "-"] {
        for number in NUMBERS {
            for suffix in SUFFIXES {
                inputs.push(format!("{sign}{number}{suffix}"));
            }
        }
    }
    inputs.extend(FAST_HUGE.iter().chain(OTHERS).map(|s| s.to_string()));
    inputs
}

/// Every string in the `k8s.io/api` fixtures: their quantities, and
/// plenty of strings that are not.
fn fixture_strings(root: &Path) -> BTreeSet<String> {
    fn collect(value: &Value, found: &mut BTreeSet<String>) {
        match value {
            Value::String(s) => {
                found.insert(s.clone());
            }
            Value::Array(items) => items.iter().for_each(|v| collect(v, found)),
            Value::Object(members) => members.values().for_each(|v| collect(v, found)),
            _ => {}
        }
    }
    let mut found = BTreeSet::new();
    for release in std::fs::read_dir(root).unwrap() {
        let release = release.unwrap().path();
        if !release.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&release).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "json") {
                let value: Value = serde_json::from_slice(&std::fs::read(&file).unwrap())
                    .unwrap_or_else(|e| panic!("{file:?}: {e}"));
                collect(&value, &mut found);
            }
        }
    }
    found
}

fn mutate(rng: &mut StdRng, seed: &str) -> String {
    const ALPHABET: &[u8] = b"0123456789000.+-eEinumkKMGTP ";
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..rng.gen_range(1..=3) {
        let at = rng.gen_range(0..=bytes.len());
        let byte = ALPHABET[rng.gen_range(0..ALPHABET.len())];
        match rng.gen_range(0..5) {
            0 | 1 => bytes.insert(at, byte),
            2 if at < bytes.len() => bytes[at] = byte,
            3 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {
                let run: Vec<u8> =
                    std::iter::repeat_n(b'0' + rng.gen_range(0..10), rng.gen_range(1..25))
                        .collect();
                bytes.splice(at..at, run);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether Go answers in reasonable time: an exponent of more than four
/// digits can send it to numbers of that many digits.
fn bounded(input: &str) -> bool {
    let bytes = input.as_bytes();
    (0..bytes.len())
        .filter(|&i| matches!(bytes[i], b'e' | b'E'))
        .all(|i| {
            let mut digits = &bytes[i + 1..];
            if let [b'-' | b'+', rest @ ..] = digits {
                digits = rest;
            }
            digits.iter().take_while(|b| b.is_ascii_digit()).count() <= 4
        })
}

fn go_answers(inputs: &[String], json: bool) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("quantity");
    let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube");
    let build = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("./quantity")
        .current_dir(&module)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .output()
        .expect("this test needs Go (scripts/install-deps.sh installs it)");
    assert!(
        build.status.success(),
        "go build ./quantity failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let mut child = Command::new(&binary)
        .args(json.then_some("-json"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text: String = inputs.iter().map(|i| format!("{i}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "the Go program failed");
    let answers: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(answers.len(), inputs.len(), "one answer per input");
    answers
}

/// Hand-picked inputs, fixture strings and their mutations, as Go can
/// answer them in reasonable time.
fn inputs() -> Vec<String> {
    let mut inputs = hand_picked();
    let fixtures = fixture_strings(&common::k8s_api_testdata());
    let quantities: Vec<&String> = fixtures.iter().filter(|s| canonical(s).is_ok()).collect();
    // The fixtures' quantities are all "0"; their other strings are
    // inputs too.
    assert!(!quantities.is_empty(), "the fixtures hold quantities");
    let mut rng = StdRng::seed_from_u64(20_370_211);
    let seeds: Vec<String> = inputs
        .iter()
        .chain(quantities.iter().copied())
        .cloned()
        .collect();
    for _ in 0..4000 {
        let seed = &seeds[rng.gen_range(0..seeds.len())];
        inputs.push(mutate(&mut rng, seed));
    }
    inputs.extend(fixtures);
    let mut seen = BTreeSet::new();
    inputs.retain(|i| !i.contains('\n') && seen.insert(i.clone()));
    inputs.retain(|i| FAST_HUGE.contains(&i.as_str()) || bounded(i));
    inputs
}

fn assert_same(inputs: &[String], go: &[String], ours: impl Fn(&str) -> String) {
    let mut mismatches = Vec::new();
    for (input, go) in inputs.iter().zip(go) {
        let ours = ours(input);
        if &ours != go {
            mismatches.push(format!("{input:?}: Go {go:?}, ours {ours:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} inputs differ from Go:\n{}",
        mismatches.len(),
        inputs.len(),
        mismatches.join("\n")
    );
    let parsed = go.iter().filter(|a| a.starts_with("ok")).count();
    eprintln!(
        "{} inputs compared with Go, {parsed} of them valid",
        inputs.len()
    );
}

#[test]
fn canonical_matches_go() {
    let inputs = inputs();
    assert!(inputs.len() > 5000, "{} inputs", inputs.len());
    let answers = go_answers(&inputs, false);
    assert_same(&inputs, &answers, |input| match canonical(input) {
        Ok(s) => format!("ok\t{s}"),
        Err(CodecError::Corrupt(_)) => "err".to_string(),
        Err(other) => format!("unexpected {other:?}"),
    });
}

/// A quantity written as JSON and read back through the protobuf codec, as
/// Go's `UnmarshalJSON`, protobuf `Marshal` and `Unmarshal`, and `MarshalJSON`
/// take it: strings trimmed, escapes not undone, numbers by their text, null
/// as zero.
#[test]
fn json_round_trip_matches_go() {
    // Go's read parses the stored string again: it must answer that too.
    let rereadable = |stored: &str| {
        let mantissa = stored.split(['e', 'E']).next().unwrap_or_default();
        bounded(stored)
            || (mantissa.bytes().filter(u8::is_ascii_digit).count() <= 18 && !stored.contains("e-"))
    };
    let strings = inputs().into_iter().chain(
        [
            " \u{2003}1\u{3000}",
            "\u{85}1",
            "1\u{a0}",
            "\u{200b}1",
            "\"1\"",
            "1\\",
            "\u{7f}1",
        ]
        .map(String::from),
    );
    let mut values: Vec<String> = strings
        .filter(|s| canonical(s.trim()).map_or(true, |stored| rereadable(&stored)))
        .map(|s| serde_json::to_string(&s).unwrap())
        .collect();
    values.extend(
        r#"null true false {} [] [1] 0 -0 1 -1 5 0.5 -0.5 1.5 1.0 100.0 0.001 0.1 3.14159 123456789
           9223372036854775807 -9223372036854775808 18446744073709551615 1e21 1.5e-7 1e3 1E3 1e-3
           12345678901234567890123 "\t1" "1\/""#
            .split_whitespace()
            .map(String::from),
    );
    // Go reads a number by its text, the codec by its value: the spellings
    // a float does not print back as (`1e3`, more than 17 digits) differ.
    // So does a string with an escape JSON does not require (`"\u0031"`),
    // which Go keeps escaped and the codec reads.
    values.retain(|v| match serde_json::from_str::<Value>(v) {
        Ok(Value::Number(n)) => n.to_string() == *v,
        _ => true,
    });
    let answers = go_answers(&values, true);
    let codec = Codec::new(CodecKind::Protobuf);
    assert_same(&values, &answers, |value| {
        let object = format!(
            r#"{{"apiVersion":"v1","kind":"ResourceQuota","metadata":{{"name":"q"}},"spec":{{"hard":{{"cpu":{value}}}}}}}"#
        );
        let stored = match codec.encode(object.as_bytes()) {
            Ok(stored) => stored,
            Err(CodecError::Corrupt(_)) => return "err".into(),
            Err(other) => return format!("unexpected {other:?}"),
        };
        let served: Value = serde_json::from_slice(&codec.decode(&stored, 1).unwrap()).unwrap();
        format!("ok\t{}", served["spec"]["hard"]["cpu"].as_str().unwrap())
    });
}
