//! The 401 → token → retry flow against a small fake registry of our own on 127.0.0.1, inside a
//! network namespace the test creates (the test binary re-runs itself there): it answers `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, issues a
//! token for good basic credentials and checks it on every request. Also schema-1 refusal and
//! `drover image login`. Root is needed because the pull unpacks with owners.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use common::{Tar, skip_unless_root};
use drover_image::pull::{PullOptions, pull};
use drover_image::{Digest, Store};

const TOKEN: &str = "drover-test-token-1";
const BASIC_OK: &str = "Basic YWxpY2U6c2VjcmV0"; // alice:secret

struct Fake {
    port: u16,
    blobs: HashMap<String, (Vec<u8>, String)>,
    token_requests: AtomicUsize,
    unauthorized: AtomicUsize,
}

fn resp(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Full::new(Bytes::from(body))).unwrap()
}

async fn handle(
    f: Arc<Fake>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if path == "/token" {
        f.token_requests.fetch_add(1, Ordering::SeqCst);
        let q = req.uri().query().unwrap_or("");
        if auth == BASIC_OK && q.contains("service=drover-fake") && q.contains("scope=repository") {
            return Ok(resp(
                StatusCode::OK,
                &[],
                format!(r#"{{"token":"{TOKEN}"}}"#).into_bytes(),
            ));
        }
        return Ok(resp(StatusCode::UNAUTHORIZED, &[], b"{}".to_vec()));
    }
    let repo = path
        .trim_start_matches("/v2/")
        .split("/manifests/")
        .next()
        .unwrap_or("")
        .split("/blobs/")
        .next()
        .unwrap_or("");
    let challenge = format!(
        r#"Bearer realm="http://127.0.0.1:{}/token",service="drover-fake",scope="repository:{repo}:pull""#,
        f.port
    );
    // `denied/*` is never readable, even with a token.
    if auth != format!("Bearer {TOKEN}") || repo.starts_with("denied") {
        f.unauthorized.fetch_add(1, Ordering::SeqCst);
        return Ok(resp(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", challenge)],
            b"{\"errors\":[]}".to_vec(),
        ));
    }
    if path == "/v2/" {
        return Ok(resp(StatusCode::OK, &[], b"{}".to_vec()));
    }
    let key = path.rsplit('/').next().unwrap_or("");
    match f.blobs.get(key) {
        Some((b, ct)) => Ok(resp(
            StatusCode::OK,
            &[("content-type", ct.clone())],
            b.clone(),
        )),
        None => Ok(resp(StatusCode::NOT_FOUND, &[], b"{}".to_vec())),
    }
}

/// Starts the fake on 127.0.0.1 with an image `app:v1` (tag and blobs) and a schema-1 `old:v1`.
async fn start(layout: &std::path::Path, manifest: &Digest) -> Arc<Fake> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut blobs = HashMap::new();
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let name = format!("sha256:{}", e.file_name().to_string_lossy());
        blobs.insert(
            name,
            (
                std::fs::read(e.path()).unwrap(),
                "application/octet-stream".to_owned(),
            ),
        );
    }
    let mbytes = blobs[manifest.as_str()].0.clone();
    let mt = drover_image::oci::MT_OCI_MANIFEST.to_owned();
    blobs.insert("v1".into(), (mbytes.clone(), mt.clone()));
    blobs.insert(manifest.to_string(), (mbytes, mt));
    let schema1 =
        br#"{"schemaVersion":1,"name":"old","tag":"v1","fsLayers":[],"history":[]}"#.to_vec();
    blobs.insert(
        "s1".into(),
        (
            schema1,
            "application/vnd.docker.distribution.manifest.v1+prettyjws".into(),
        ),
    );
    let f = Arc::new(Fake {
        port,
        blobs,
        token_requests: AtomicUsize::new(0),
        unauthorized: AtomicUsize::new(0),
    });
    let f2 = f.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let f3 = f2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(f3.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    f
}

fn docker_config(dir: &std::path::Path, user: &str, pass: &str) -> std::path::PathBuf {
    use base64::Engine as _;
    let p = dir.join(format!("config-{user}.json"));
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(
        &p,
        format!(r#"{{"auths":{{"127.0.0.1":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_flow_pulls_and_refusals_name_the_registry_and_reason() {
    if skip_unless_root("token auth") || common::skip_without("token auth", "ip") {
        return;
    }
    const INSIDE: &str = "DROVER_TEST_INSIDE_NETNS";
    if std::env::var_os(INSIDE).is_none() {
        // Re-run just this test inside a fresh namespace with only `lo`; the namespace is
        // deleted when `ns` drops, also if the assertion fails.
        let ns = drover_testing::NetNs::create("auth").unwrap();
        let test = "bearer_token_flow_pulls_and_refusals_name_the_registry_and_reason";
        let st = tokio::task::block_in_place(|| {
            ns.command(std::env::current_exe().unwrap())
                .args(["--exact", test, "--nocapture", "--test-threads=1"])
                .env(INSIDE, "1")
                .status()
                .unwrap()
        });
        assert!(st.success(), "the test failed inside netns {}", ns.name());
        return;
    }
    let w = tempfile::Builder::new()
        .prefix("drover-test-auth-")
        .tempdir()
        .unwrap();
    let layout = w.path().join("layout");
    let mut t = Tar::default();
    t.file("hello", 0o644, 0, 0, b"hi", &[]);
    let md = common::write_layout(&layout, "app:v1", &[t.finish()], "gzip", &["/hello"]);
    let fake = start(&layout, &md).await;
    let host = format!("127.0.0.1:{}", fake.port);
    let store = Store::open(w.path().join("store")).unwrap();
    let mut opts = PullOptions {
        docker_config: Some(w.path().join("none.json")),
        ..PullOptions::default()
    };

    // Config files key credentials by host:port; write the right key.
    let write_cfg = |user: &str, pass: &str| {
        let p = docker_config(w.path(), user, pass);
        let s = std::fs::read_to_string(&p)
            .unwrap()
            .replace("\"127.0.0.1\"", &format!("\"{host}\""));
        std::fs::write(&p, s).unwrap();
        p
    };

    // Anonymous: the token server refuses; the error names the registry and the reason.
    let e = pull(&store, &format!("{host}/app:v1"), &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&host) && e.contains("401") && e.contains("anonymously"),
        "{e}"
    );
    // Wrong password.
    opts.docker_config = Some(write_cfg("alice", "wrong"));
    let e = pull(&store, &format!("{host}/app:v1"), &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&host) && e.contains("for user \"alice\""), "{e}");
    assert!(store.images().unwrap().is_empty());

    // Good credentials: 401 → token → retry.
    opts.docker_config = Some(write_cfg("alice", "secret"));
    let before = fake.token_requests.load(Ordering::SeqCst);
    let id = store.pull(&format!("{host}/app:v1"), &opts).await.unwrap();
    let rec = store.resolve(&format!("{host}/app:v1")).unwrap();
    assert_eq!(rec.target.digest, md);
    assert_eq!(rec.config, id, "pull returns the image ID");
    assert!(
        fake.token_requests.load(Ordering::SeqCst) > before,
        "a token was fetched"
    );
    assert!(store.check().unwrap().is_empty());

    // Credentials from registries.yaml `configs.<host>.auth` work the same way.
    let store2 = Store::open(w.path().join("store2")).unwrap();
    let yaml = format!(
        "configs:\n  \"{host}\":\n    auth:\n      username: alice\n      password: secret\n"
    );
    let opts2 = PullOptions {
        registries: drover_image::mirrors::RegistriesConfig::parse(&yaml).unwrap(),
        docker_config: None,
        ..PullOptions::default()
    };
    store2
        .pull(&format!("{host}/app:v1"), &opts2)
        .await
        .unwrap();

    // A token that still gets 401: a clear error, not a loop.
    let e = pull(&store, &format!("{host}/denied/app:v1"), &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&host) && e.contains("still 401"), "{e}");

    // Schema 1 is refused by name.
    let e = pull(&store, &format!("{host}/old:s1"), &opts)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("schema-1"), "{e}");

    // `drover image login` checks the credentials before saving them.
    let home = w.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let login = |pass: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drover-image"))
            .args(["login", &host, "-u", "alice", "-p", pass, "--data-dir"])
            .arg(w.path().join("data"))
            .env("HOME", &home)
            .env_remove("DOCKER_CONFIG")
            .output()
            .unwrap()
    };
    // The fake registry runs on this runtime: block only this worker thread.
    let bad = tokio::task::block_in_place(|| login("nope"));
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains(&host));
    assert!(
        !home.join(".docker/config.json").exists(),
        "bad credentials are not saved"
    );
    let good = tokio::task::block_in_place(|| login("secret"));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let saved = drover_image::auth::lookup(&home.join(".docker/config.json"), &host)
        .unwrap()
        .unwrap();
    assert_eq!(saved.username, "alice");
}
