//! Fits a server's connection limit to the process's file descriptor limit.
//!
//! Each connection is a descriptor. With `RLIMIT_NOFILE` below the connection limit a burst
//! makes `accept` fail with EMFILE (which the serve loop survives, but every other `open` and
//! `socket` of the process fails too while it lasts). So at start the soft limit is raised as
//! far as needed (up to the hard limit) and, when even that is too low, the connection limit
//! is lowered to what fits.

/// Descriptors kept for everything but client connections: broker and gRPC sockets, epoll
/// and event descriptors, log files.
pub const FD_RESERVE: u64 = 128;

/// The connection limit to use instead of `wanted`, after raising `RLIMIT_NOFILE`'s soft
/// limit to `wanted` + [`FD_RESERVE`] where the hard limit allows. Logs what it changed.
pub fn fit_connections(server: &str, wanted: usize) -> usize {
    let need = wanted as u64 + FD_RESERVE;
    let (soft, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok(limits) => limits,
        Err(e) => {
            log::warn!("{server}: cannot read RLIMIT_NOFILE ({e}); keeping {wanted} connections");
            return wanted;
        }
    };
    if soft >= need {
        return wanted;
    }
    let mut available = soft;
    let target = need.min(hard);
    if target > soft {
        match rlimit::setrlimit(rlimit::Resource::NOFILE, target, hard) {
            Ok(()) => {
                log::info!("{server}: raised the RLIMIT_NOFILE soft limit from {soft} to {target}");
                available = target;
            }
            Err(e) => log::warn!("{server}: cannot raise RLIMIT_NOFILE from {soft} to {target}: {e}"),
        }
    }
    if available >= need {
        return wanted;
    }
    let fits = available.saturating_sub(FD_RESERVE).max(available / 2).max(1) as usize;
    log::warn!(
        "{server}: RLIMIT_NOFILE is {available} (hard {hard}): serving {fits} connections at once instead of \
         {wanted} (raise LimitNOFILE / ulimit -n to {need})"
    );
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_that_fits_is_kept() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let small = (soft.saturating_sub(FD_RESERVE) / 2).max(1) as usize;
        assert_eq!(fit_connections("test", small), small);
    }

    #[test]
    fn a_limit_past_the_hard_limit_is_clamped_below_it() {
        let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        if hard == rlimit::INFINITY {
            return; // nothing to clamp against on this machine
        }
        let fits = fit_connections("test", hard as usize * 2);
        assert!(fits as u64 + FD_RESERVE.min(hard / 2) <= hard, "{fits} of {hard}");
        assert!(fits >= 1);
    }
}
