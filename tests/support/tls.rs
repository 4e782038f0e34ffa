//! A throwaway certificate authority and a leaf for `localhost`/`127.0.0.1`, made with rcgen.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One test CA and the server configuration of a leaf it signed.
pub struct TestCa {
    /// The CA certificate, as `Config::upstream_ca` takes it.
    pub ca_der: CertificateDer<'static>,
    /// The CA certificate as a PEM file would hold it.
    pub ca_pem: String,
    /// A rustls server configuration presenting the leaf (ALPN: http/1.1 only; the HTTP/2 mock
    /// offers `h2` instead).
    pub server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("leaf params");
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("leaf certificate");

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
            .expect("server certificate");
        // `MockBuilder::tls` speaks HTTP/1: ALPN must not offer h2 (`MockBuilder::h2` offers it).
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        TestCa {
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            server: Arc::new(server),
        }
    }
}
