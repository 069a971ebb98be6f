//! Certificates for TLS tests: a CA with server and client certificates, and a
//! second, unrelated CA with a client certificate of its own.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tempfile::TempDir;

pub struct Certs {
    dir: TempDir,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn write_leaf(dir: &Path, name: &str, issuer: &CertifiedIssuer<'static, KeyPair>, sans: &[&str]) {
    let params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
}

impl Certs {
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let main = ca("test-ca");
        let other = ca("other-ca");
        std::fs::write(dir.path().join("ca.pem"), main.pem()).unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();
        write_leaf(dir.path(), "server", &main, &["127.0.0.1", "localhost"]);
        write_leaf(dir.path(), "client", &main, &["client"]);
        write_leaf(dir.path(), "other-client", &other, &["client"]);
        Certs { dir }
    }

    /// `ca.pem`, `other-ca.pem`, `server.pem`, `client.pem`, `other-client.pem`
    /// and their `-key.pem`s.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// etcd's flags for mutual TLS on its client port.
    pub fn server_args(&self) -> Vec<String> {
        let p = |n: &str| self.path(n).display().to_string();
        vec![
            "--cert-file".into(),
            p("server.pem"),
            "--key-file".into(),
            p("server-key.pem"),
            "--client-cert-auth".into(),
            "--trusted-ca-file".into(),
            p("ca.pem"),
        ]
    }
}
