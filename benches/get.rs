//! The store's Get through the Rust API, without the C ABI, shaped like
//! bench/c/storage_bench.c (one runtime per store, callers blocking on it from
//! their own threads), to measure what the ABI itself costs.
//!
//!   cargo bench --bench get -- CONFIG KEY CLIENTS N

use std::sync::Arc;
use std::time::Instant;

use apiserver_storage::config::Config;
use apiserver_storage::factory;
use apiserver_storage::storage::GetOptions;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [config, key, clients, n] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench get -- CONFIG KEY CLIENTS N");
        std::process::exit(2);
    };
    let (clients, n): (usize, usize) = (clients.parse().unwrap(), n.parse().unwrap());
    let rt = Arc::new(
        // The runtime a C handle builds (src/ffi/handle.rs), so that only the ABI differs.
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    );
    let config = Config::from_json(config).unwrap();
    let (store, _destroy) = rt.block_on(factory::create(&config)).unwrap();
    let opts = GetOptions::default();
    rt.block_on(store.get(key, &opts))
        .unwrap()
        .expect("the key exists");

    let per = n / clients;
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                for _ in 0..per {
                    rt.block_on(store.get(key, &opts))
                        .unwrap()
                        .expect("the key exists");
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let ops = per * clients;
    println!(
        "{{\"peer\":\"apiserver-storage-rust\",\"mode\":\"get\",\"clients\":{clients},\"ops\":{ops},\"secs\":{secs:.4},\"ops_per_s\":{:.1},\"cpu_us_per_op\":{:.2}}}",
        ops as f64 / secs,
        (cpu_seconds() - cpu0) * 1e6 / ops as f64
    );
}
