//! Test certificates, made at test time: a CA, and leaves it signed for `localhost`,
//! `127.0.0.1` and `::1` (a good one, an expired one, one for another name, a client's), each
//! as PEM in memory and in files of a directory removed on drop. No key that matters is ever
//! committed.

use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData,
};
use sha2::Digest;

/// A certificate and its key, as PEM, and where they were written.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate's file.
    pub cert_file: PathBuf,
    /// The key's file.
    pub key_file: PathBuf,
    /// base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (Chromium's
    /// `--ignore-certificate-errors-spki-list` takes it).
    pub spki_sha256: String,
}

/// A test CA and the leaves it signed, in a directory of their own.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    /// The CA (its certificate is what clients trust).
    pub ca: Pair,
    /// A server leaf for `localhost`, `127.0.0.1` and `::1`, valid now.
    pub server: Pair,
    /// The same names, expired.
    pub expired: Pair,
    /// A server leaf for `other.example` only.
    pub wrong_name: Pair,
    /// A client certificate (extended key usage clientAuth).
    pub client: Pair,
    /// A second CA, which signed nothing above (a client certificate from another CA).
    pub other_ca: Pair,
    /// A client certificate signed by `other_ca`.
    pub foreign_client: Pair,
}

impl TestPki {
    /// Makes the CA and leaves and writes them to a fresh directory.
    ///
    /// # Panics
    /// When generating or writing fails.
    pub fn new() -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("wsharp-pki-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let (ca, ca_issuer) = authority(&dir, "ca", "wsharp test CA");
        let (other_ca, other_issuer) = authority(&dir, "other-ca", "another test CA");
        let names = || vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        let server = leaf(&dir, "server", names(), Usage::Server, &ca_issuer, false);
        let expired = leaf(&dir, "expired", names(), Usage::Server, &ca_issuer, true);
        let wrong_name = leaf(
            &dir,
            "wrong-name",
            vec!["other.example".into()],
            Usage::Server,
            &ca_issuer,
            false,
        );
        let client = leaf(
            &dir,
            "client",
            vec!["wsharp-client".into()],
            Usage::Client,
            &ca_issuer,
            false,
        );
        let foreign_client = leaf(
            &dir,
            "foreign-client",
            vec!["stranger".into()],
            Usage::Client,
            &other_issuer,
            false,
        );
        Self {
            dir,
            ca,
            server,
            expired,
            wrong_name,
            client,
            other_ca,
            foreign_client,
        }
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

enum Usage {
    Server,
    Client,
}

fn authority(dir: &Path, name: &str, common_name: &str) -> (Pair, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("a key");
    let cert = params.self_signed(&key).expect("a CA certificate");
    let pair = write(dir, name, cert.pem(), &key);
    (pair, Issuer::new(params, key))
}

fn leaf(
    dir: &Path,
    name: &str,
    names: Vec<String>,
    usage: Usage,
    issuer: &Issuer<'static, KeyPair>,
    expired: bool,
) -> Pair {
    let mut params = CertificateParams::new(names.clone()).expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].clone());
    params.is_ca = IsCa::ExplicitNoCa;
    // Python 3.13's strict verification wants the authority key identifier.
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![match usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().expect("a key");
    let cert = params.signed_by(&key, issuer).expect("a leaf certificate");
    write(dir, name, cert.pem(), &key)
}

fn write(dir: &Path, name: &str, cert_pem: String, key: &KeyPair) -> Pair {
    let key_pem = key.serialize_pem();
    let cert_file = dir.join(format!("{name}.pem"));
    let key_file = dir.join(format!("{name}.key"));
    std::fs::write(&cert_file, &cert_pem).expect("write a certificate");
    std::fs::write(&key_file, &key_pem).expect("write a key");
    let spki_sha256 = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(key.subject_public_key_info()));
    Pair {
        cert_pem,
        key_pem,
        cert_file,
        key_file,
        spki_sha256,
    }
}
