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

/// `scripts/certs.sh` of the checkout under test. Found from the package cargo is testing (its
/// `CARGO_MANIFEST_DIR` at run time) upwards, not from where testkit was compiled: clones at
/// other paths sharing one target dir (CI's) reuse testkit's build, and with it that path.
fn certs_script() -> std::path::PathBuf {
    let here = std::env::var_os("CARGO_MANIFEST_DIR").map(std::path::PathBuf::from);
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    here.iter()
        .chain(std::iter::once(&built))
        .flat_map(|dir| dir.ancestors())
        .map(|dir| dir.join("scripts/certs.sh"))
        .find(|script| script.is_file())
        .unwrap_or_else(|| built.join("../scripts/certs.sh"))
}

/// The certificates of this test process, made once. Panics (the test fails) when openssl or
/// the script is missing: a TLS test without certificates proves nothing.
pub fn test_certs() -> &'static TestCerts {
    static CERTS: OnceLock<TestCerts> = OnceLock::new();
    CERTS.get_or_init(|| {
        let script = certs_script();
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
