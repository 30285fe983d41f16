//! The process's own CPU accounting, for benchmarks that put a cost beside a rate.

use std::time::Duration;

/// User plus system CPU time this process has used so far, over all its threads (the kernel's
/// `getrusage(RUSAGE_SELF)`, microsecond resolution). A difference of two readings is what the
/// process spent between them.
pub fn process_cpu_time() -> std::io::Result<Duration> {
    // SAFETY: `getrusage` writes one `rusage` into memory we own and reads nothing else.
    let usage = unsafe {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    Ok(time(usage.ru_utime) + time(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_on_this_thread_moves_the_process_clock() {
        let before = process_cpu_time().expect("getrusage");
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // However busy the machine, spinning long enough is counted; a clock that never moves
        // (a reading of zeros, say) fails after 20 s of wall time.
        while process_cpu_time().expect("getrusage") - before < Duration::from_millis(5) {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "20 s of spinning counted as no CPU"
            );
        }
    }
}
