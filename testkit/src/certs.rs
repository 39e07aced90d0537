//! Throwaway TLS certificates for tests, made by `scripts/certs.sh` (openssl) at test time
//! into a fresh temporary directory: nothing private is committed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory holding `ca.pem`, `server.pem`/`.key`, `client.pem`/`.key`, `wrong-ca.pem`
/// and `wrong-client.pem`/`.key` (see `scripts/certs.sh`).
#[derive(Debug)]
pub struct TestCerts {
    dir: PathBuf,
}

impl TestCerts {
    /// The path of `name` in the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The bytes of `name`.
    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// The certificates of this test process, made once. Panics (the test fails) when openssl or
/// the script is missing: a TLS test without certificates proves nothing.
pub fn test_certs() -> &'static TestCerts {
    static CERTS: OnceLock<TestCerts> = OnceLock::new();
    CERTS.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/certs.sh");
        let dir = std::env::temp_dir().join(format!("switchboard-certs-{}-{}", std::process::id(), fastrand::u64(..)));
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(out.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
        log::debug!("test certificates in {}", dir.display());
        TestCerts { dir }
    })
}
