use std::fmt;

/// Why a benchmark could not run (failed requests are counted, not errors).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The target address does not parse or resolve.
    Target(String),
    /// Starting a server, a chain or a subscription failed.
    Setup(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Target(why) => write!(f, "bad target: {why}"),
            Error::Setup(why) => write!(f, "setup failed: {why}"),
        }
    }
}

impl std::error::Error for Error {}
