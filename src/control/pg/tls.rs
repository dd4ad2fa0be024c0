//! TLS to PostgreSQL (`control_ca_file`): rustls, with the operator's certificate
//! authority as the only root, so a node talks to the database it was told of and to no
//! one else on the way. Without a CA file connections are plain (a private network):
//! a TLS connection whose server cannot be verified would protect nothing, so a URL
//! asking for `sslmode=require` without the CA file is refused.

use std::path::Path;

use tokio_postgres::config::SslMode;

use crate::control::ControlError;

pub type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// The connector for `config`; with `ca_file`, TLS is required of every connection.
pub fn connector(
    ca_file: Option<&Path>,
    config: &mut tokio_postgres::Config,
) -> Result<Tls, ControlError> {
    let tls = if let Some(path) = ca_file {
        config.ssl_mode(SslMode::Require);
        crate::http::tls::client_config(path)
            .map_err(|e| ControlError::Postgres(format!("control_ca_file {e}")))?
    } else if config.get_ssl_mode() == SslMode::Require {
        return Err(ControlError::Postgres(
            "sslmode=require needs control_ca_file: the authority that signed the database's certificate".into(),
        ));
    } else {
        // Never used: every connection is plain.
        config.ssl_mode(SslMode::Disable);
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ControlError::Postgres(format!("TLS: {e}")))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(tls))
}
