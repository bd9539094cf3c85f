//! Times the loader's decode natively, for the sandbox-against-native benchmark
//! (`benches/loaders.py`): `decode_time FILE.svg [RUNS]` decodes the file RUNS times
//! (default 20) with the same code the component runs and prints the median.

use std::time::Instant;

use svg_loader::{Options, decode_svg};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: decode_time FILE.svg [RUNS]")?;
    let runs: usize = args
        .next()
        .map_or(Ok(20), |r| r.parse())
        .map_err(|e| format!("RUNS: {e}"))?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let options = Options {
        scale: None,
        width: None,
        height: None,
    };
    let mut times = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let (decoded, _) = decode_svg(&bytes, &options)?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(decoded);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{path}: median {:.3} ms of {} runs",
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
