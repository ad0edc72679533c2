//! The few operating-system calls the sandbox needs that `std` lacks: the calling thread's CPU
//! time (what the time limit counts) and resource limits the kernel enforces on the sandbox
//! process (CPU time, address space, core dumps).

use std::time::Duration;

/// CPU time the calling thread has used, or `None` if the clock cannot be read.
pub(crate) fn thread_cpu_time() -> Option<Duration> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the duration of the call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return None;
    }
    let seconds = u64::try_from(now.tv_sec).ok()?;
    let nanos = u32::try_from(now.tv_nsec).ok()?;
    Some(Duration::new(seconds, nanos))
}

/// Sets the soft and hard limit of `resource` for this process (and what it runs).
macro_rules! set_limit {
    ($resource:expr, $soft:expr, $hard:expr) => {{
        let limit = libc::rlimit {
            rlim_cur: $soft,
            rlim_max: $hard,
        };
        // SAFETY: `limit` is a valid rlimit that outlives the call.
        let status = unsafe { libc::setrlimit($resource, &limit) };
        if status == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }};
}

/// Has the kernel stop this process once it has used `cpu` of CPU time, rounded up to whole
/// seconds: `SIGXCPU` at that point, `SIGKILL` a second later. A backstop that needs no
/// cooperation from the engine (native code that never polls the interrupt handler).
pub(crate) fn limit_cpu_time(cpu: Duration) -> std::io::Result<()> {
    let soft = cpu.as_secs() + u64::from(cpu.subsec_nanos() > 0);
    set_limit!(libc::RLIMIT_CPU, soft, soft.saturating_add(1))
}

/// Caps this process's address space at `bytes`: past it, allocations fail.
pub(crate) fn limit_address_space(bytes: u64) -> std::io::Result<()> {
    set_limit!(libc::RLIMIT_AS, bytes, bytes)
}

/// No core file when a signal kills this process (a script's memory is nobody's business).
pub(crate) fn no_core_dumps() -> std::io::Result<()> {
    set_limit!(libc::RLIMIT_CORE, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_grows_with_work_done() {
        let before = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = thread_cpu_time();
        assert!(
            before.is_some() && after > before,
            "{before:?} then {after:?}"
        );
    }
}
