//! Layer 1 over real HTTPS: a test CA and leaf made with rcgen (and openssl
//! for RSA and EC keys in their traditional PEM forms), clients that verify
//! them, and refused starts with their exact errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::perimeter::{agent_dir, serve};
use crate::util::{PASSWORD, USER};

pub(crate) struct Pki {
    dir: tempfile::TempDir,
    pub ca_pem: String,
}

impl Pki {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A CA and a leaf for 127.0.0.1/localhost signed by it: `chain.pem` (leaf
/// then CA), `leaf.key` (PKCS#8), and `other.key`, which matches nothing.
fn pki() -> Pki {
    pki_for(&["127.0.0.1", "localhost"])
}

/// [`pki`] with a leaf for `names`.
pub(crate) fn pki_for(names: &[&str]) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "swagent test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
    std::fs::write(
        dir.path().join("chain.pem"),
        format!("{}{}", leaf.pem(), ca.pem()),
    )
    .unwrap();
    std::fs::write(dir.path().join("leaf.key"), leaf_key.serialize_pem()).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("other.key"), other.serialize_pem()).unwrap();
    Pki {
        dir,
        ca_pem: ca.pem(),
    }
}

fn tls_client(ca_pem: &str) -> Client {
    Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .https_only(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn https_end_to_end_with_a_verified_certificate() {
    if !crate::util::installed(
        "https_end_to_end_with_a_verified_certificate",
        "openssl",
        "openssl",
    ) {
        return;
    }
    let dir = agent_dir();
    let pki = pki();
    let server = serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            pki.path("chain.pem").as_os_str(),
            "--tls-key".as_ref(),
            pki.path("leaf.key").as_os_str(),
        ])
        .env("SWML_DOMAIN", "agent.example.com")
        .start();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let client = tls_client(&pki.ca_pem);
    let resp = client
        .post(format!("{}/", server.url))
        .basic_auth(USER, Some(PASSWORD))
        .json(&json!({"call_id": "call-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let swml: Value = resp.json().unwrap();
    // Webhook URLs use https and SWML_DOMAIN.
    assert_eq!(
        swml["sections"]["main"][1]["ai"]["SWAIG"]["defaults"]["web_hook_url"],
        format!("https://{USER}:{PASSWORD}@agent.example.com:{port}/swaig/")
    );
    // A client that does not trust the CA is refused: the certificate is verified.
    let untrusting = Client::builder()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let refused = untrusting
        .get(format!("{}/health", server.url))
        .send()
        .expect_err("a client without the CA was answered");
    assert!(
        format!("{refused:?}").contains("UnknownIssuer"),
        "{refused:?}"
    );
    // TLS 1.2 and 1.3 only: the server refuses a TLS 1.1 handshake that the
    // client is willing to make (security level 0 lets OpenSSL offer it).
    let addr = server.url.trim_start_matches("https://").to_owned();
    let s_client = |version: &str| {
        let out = std::process::Command::new("timeout")
            .args(["10", "openssl", "s_client", "-connect", &addr, version])
            .args(["-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = s_client("-tls1_1");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("alert handshake failure"), "{text}");
    let (code, text) = s_client("-tls1_2");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Protocol  : TLSv1.2"), "{text}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = crate::util::client()
        .get(format!("{}/health", server.url.replace("https:", "http:")))
        .send();
    assert!(plain.is_err(), "{plain:?}");
}

#[test]
fn https_from_the_environment_with_hsts_off() {
    let dir = agent_dir();
    let pki = pki();
    let server = serve(dir.path())
        .env("SWML_SSL_ENABLED", "true")
        .env(
            "SWML_SSL_CERT_PATH",
            pki.path("chain.pem").to_str().unwrap(),
        )
        .env("SWML_SSL_KEY_PATH", pki.path("leaf.key").to_str().unwrap())
        .env("SWML_USE_HSTS", "false")
        .start();
    let resp = tls_client(&pki.ca_pem)
        .get(format!("{}/health", server.url))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("strict-transport-security").is_none());
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
}

#[test]
fn rsa_and_ec_keys_in_their_traditional_pem_forms_work() {
    if !crate::util::installed(
        "rsa_and_ec_keys_in_their_traditional_pem_forms_work",
        "openssl",
        "openssl",
    ) {
        return;
    }
    let dir = agent_dir();
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_owned();
    let sh = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&["genrsa", "-traditional", "-out", &p("rsa.key"), "2048"]);
    sh(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &p("ec.key"),
    ]);
    for (key, header) in [
        ("rsa", "BEGIN RSA PRIVATE KEY"),
        ("ec", "BEGIN EC PRIVATE KEY"),
    ] {
        let key_path = p(&format!("{key}.key"));
        assert!(std::fs::read_to_string(&key_path).unwrap().contains(header));
        let cert = p(&format!("{key}.pem"));
        sh(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &key_path,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ]);
        let server = serve(dir.path())
            .args(["--tls-cert", &cert, "--tls-key", &key_path])
            .start();
        let ca = std::fs::read_to_string(&cert).unwrap();
        let status = tls_client(&ca)
            .get(format!("{}/health", server.url))
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 200, "{key}");
    }
}

#[test]
fn bad_tls_configuration_refuses_to_start() {
    let dir = agent_dir();
    let pki = pki();
    let chain = pki.path("chain.pem");
    let missing = pki.path("missing.key");
    let garbage = pki.path("garbage.key");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let d = |p: &Path| p.display().to_string();
    serve(dir.path())
        .env("SWML_SSL_ENABLED", "true")
        .env("SWML_SSL_CERT_PATH", &d(&chain))
        .env("SWML_SSL_KEY_PATH", &d(&missing))
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "error: `SWML_SSL_KEY_PATH` (`{}`): cannot read: No such file or directory (os error 2)\n",
            d(&missing)
        ));
    serve(dir.path())
        .env("SWML_SSL_ENABLED", "yes")
        .env("SWML_SSL_KEY_PATH", &d(&missing))
        .run()
        .code(2)
        .stderr_is("error: `SWML_SSL_ENABLED` is true but `SWML_SSL_CERT_PATH` is not set\n");
    serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            chain.as_os_str(),
            "--tls-key".as_ref(),
            pki.path("other.key").as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_is(&format!(
            "error: `--tls-key` (`{}`) does not match the certificate in `--tls-cert` (`{}`)\n",
            d(&pki.path("other.key")),
            d(&chain)
        ));
    serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            chain.as_os_str(),
            "--tls-key".as_ref(),
            garbage.as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_is(&format!(
            "error: `--tls-key` (`{}`): no PEM private key (PKCS#8, RSA or EC) found\n",
            d(&garbage)
        ));
    serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            garbage.as_os_str(),
            "--tls-key".as_ref(),
            pki.path("leaf.key").as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_is(&format!(
            "error: `--tls-cert` (`{}`): no PEM certificate found\n",
            d(&garbage)
        ));
}

#[test]
fn an_encrypted_key_is_named_and_a_key_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt as _;
    if !crate::util::installed(
        "an_encrypted_key_is_named_and_a_key_others_can_read_is_warned_about",
        "openssl",
        "openssl",
    ) {
        return;
    }
    let dir = agent_dir();
    let pki = pki();
    let d = |p: &Path| p.display().to_string();
    let (chain, leaf, encrypted) = (
        pki.path("chain.pem"),
        pki.path("leaf.key"),
        pki.path("enc.key"),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:x",
        ])
        .arg("-in")
        .arg(&leaf)
        .arg("-out")
        .arg(&encrypted)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serve(dir.path())
        .args(["--tls-cert", &d(&chain), "--tls-key", &d(&encrypted)])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "error: `--tls-key` (`{}`): the private key is encrypted; swagent cannot ask for its passphrase (`openssl pkey -in KEY -out PLAIN` decrypts it; keep that file mode 0600)\n",
            d(&encrypted)
        ));
    std::fs::set_permissions(&leaf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = serve(dir.path())
        .args(["--tls-cert", &d(&chain), "--tls-key", &d(&leaf)])
        .start();
    let warning = format!(
        "swagent: WARNING: `--tls-key` (`{}`): the private key has mode 0644: others on this host can read it (`chmod 600` it)",
        d(&leaf)
    );
    assert!(server.log_with(&warning).contains(&warning));
}
