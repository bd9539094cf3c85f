//! Who yields to whom when the cores are busy. The render thread is the program's clock: a
//! tick it starts late is a frame dropped for every viewer, so it keeps the default
//! priority while the media plane's other threads (the encoder and the threads x264 starts
//! from it, each input's decoder, the preview's JPEG encoder) run a little "nicer". They
//! have queues or mailboxes that absorb a late turn; the clock has none. Raising a thread's
//! nice value needs no privilege, and on Linux threads started from it inherit the value.

/// How much each kind of thread yields to the render thread (a Linux nice increment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Yield {
    /// The program's encoder (its queue holds a few frames).
    Encoder = 2,
    /// A live input's receive, decode and convert (a late frame repeats the previous one).
    Input = 4,
    /// The preview's JPEG encoder (a late preview is only late).
    Preview = 10,
    /// An asset loader decoding an upload in its sandbox (an upload waits a little longer).
    Loader = 12,
}

/// Lowers the calling thread's priority by `to`'s nice increment (a no-op where threads
/// have no nice value of their own). Call it first thing on the thread, before it starts
/// helpers of its own, so they inherit it.
pub fn yield_to_the_clock(to: Yield) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread, no pointers.
        let tid = unsafe { libc::gettid() };
        let who = libc::id_t::try_from(tid).unwrap_or(0);
        // SAFETY: as above.
        let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, who) };
        let nice = (now + to as i32).min(19);
        // SAFETY: as above; failure (a sandbox refusing it) only leaves the priority as is.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, who, nice) } != 0 {
            tracing::debug!(?to, "could not lower this thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = to;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: a plain syscall on the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[test]
    fn a_thread_and_the_threads_it_starts_yield_and_the_caller_does_not() {
        let before = nice_of_this_thread();
        let (mine, child) = std::thread::spawn(|| {
            yield_to_the_clock(Yield::Input);
            let child = std::thread::spawn(nice_of_this_thread).join().unwrap();
            (nice_of_this_thread(), child)
        })
        .join()
        .unwrap();
        assert_eq!(mine, (before + 4).min(19));
        assert_eq!(child, mine, "a thread started after the call inherits it");
        assert_eq!(nice_of_this_thread(), before, "other threads keep theirs");
    }
}
