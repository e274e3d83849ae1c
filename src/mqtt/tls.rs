//! TLS for the broker connection: a rustls client configuration with the ring
//! provider, trusting the CA file from the settings or else the system roots, or, when
//! `mqtt.insecure` is set, any certificate.
//!
//! Not for: the MQTT session itself (`mod.rs`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::MqttError;
use crate::config::MqttSettings;

/// The rustls configuration for `settings` (which ask for TLS).
pub(super) fn client_config(settings: &MqttSettings) -> Result<ClientConfig, MqttError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Other users of rustls in the process (ureq) find the same provider; a second
    // install reports the first one, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| MqttError::Tls(e.to_string()))?;

    if settings.insecure {
        log::warn!(
            "mqtt.insecure is set: the certificate of broker '{}' is not verified",
            settings.host
        );
        let verifier = Arc::new(AcceptAnyCertificate { provider });
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth());
    }

    let roots = match &settings.ca_file {
        Some(path) => roots_from_ca_file(path)?,
        None => system_roots()?,
    };
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn roots_from_ca_file(path: &std::path::Path) -> Result<RootCertStore, MqttError> {
    let shown = path.display().to_string();
    let ca_error = |reason: String| MqttError::CaFile {
        path: shown.clone(),
        reason,
    };

    let mut roots = RootCertStore::empty();
    let certificates = CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?;
    for certificate in certificates {
        let certificate = certificate.map_err(|e| ca_error(e.to_string()))?;
        roots
            .add(certificate)
            .map_err(|e| ca_error(e.to_string()))?;
    }

    if roots.is_empty() {
        return Err(ca_error("no certificate in it".into()));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, MqttError> {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        log::warn!("skipping unreadable system certificate: {error}");
    }

    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        log::warn!("skipped {ignored} unusable system root certificates");
    }
    if added == 0 {
        return Err(MqttError::Tls(
            "no usable system root certificates: set mqtt.ca_file".into(),
        ));
    }
    Ok(roots)
}

/// Accepts any certificate (`mqtt.insecure`), but still checks that the handshake is
/// signed by the key of the certificate presented.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
