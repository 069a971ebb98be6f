//! Read throughput of each provider: `cargo bench --bench transformers`.
//!
//! Each case decrypts one stored value over and over for about 0.7 s through
//! the same prefix transformer a store builds from its config.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiserver_storage::value::config::TransformerConfig;
use apiserver_storage::value::{from_config, Transformer};

const K32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const RUN_FOR: Duration = Duration::from_millis(700);

/// A one-provider, one-key config, as a store would be given.
fn transformer(provider: &str) -> Arc<dyn Transformer> {
    let body = if provider == "identity" {
        serde_json::json!({})
    } else {
        serde_json::json!({ "keys": [{ "name": "key1", "secret": K32 }] })
    };
    let cfg: TransformerConfig =
        serde_json::from_value(serde_json::json!({ "providers": [{ provider: body }] })).unwrap();
    from_config(Some(&cfg)).unwrap()
}

fn main() {
    let aad = b"/registry/secrets/default/benchmark";
    for provider in ["identity", "aescbc", "aesgcm", "secretbox"] {
        let t = transformer(provider);
        for (label, size) in [("1 KiB", 1024), ("1 MiB", 1024 * 1024)] {
            let plain: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let stored = t.transform_to_storage(&plain, aad).unwrap();
            assert_eq!(
                t.transform_from_storage(&stored, aad).unwrap().0.as_ref(),
                plain
            );

            let start = Instant::now();
            let mut iterations = 0u64;
            while start.elapsed() < RUN_FOR {
                let (out, _) = t.transform_from_storage(black_box(&stored), aad).unwrap();
                black_box(out);
                iterations += 1;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let mb_per_s = (size as f64 * iterations as f64) / elapsed / 1e6;
            println!(
                "transform_from_storage {provider:<9} {label}: {mb_per_s:>10.1} MB/s \
                 ({iterations} iterations, {:.2} µs each)",
                elapsed * 1e6 / iterations as f64
            );
        }
    }
}
