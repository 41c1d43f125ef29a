//! What `coachsync serve` does for the coach app, against the real binary: the app's
//! files at `/` with their caching and security headers, one-time sign-in links
//! (`coachsync admin user invite` and `POST /api/invites/{code}`) and `GET /api/me`.
//! The app itself is tested in a browser (tests/browser/).

use anyhow::{Context, Result};
use coachsync_tests::site::Site;
use coachsync_tests::{ServerProcess, admin};
use serde_json::Value;

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn an_invite_link_signs_in_once_and_the_token_it_gives_says_who_and_where() -> Result<()> {
    let site = Site::start(
        &[("ana", "coach"), ("lee", "client"), ("root", "admin")],
        &[],
    )?;
    let data_dir = site.server().data_dir().to_owned();
    let rel = admin(
        &data_dir,
        &[
            "relationship",
            "add",
            "--coach",
            "ana",
            "--client",
            "lee",
            "--school",
            "north",
        ],
    )?;
    let link = admin(&data_dir, &["user", "invite", "--name", "ana"])?;
    let prefix = format!("http://{}/#/invite/", site.server().addr());
    let code = link
        .strip_prefix(&prefix)
        .with_context(|| format!("the link {link} points at the running server"))?;

    let path = format!("/api/invites/{code}");
    let (status, body) = site.server().http("POST", &path, None, None).await?;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body)?;
    assert_eq!(answer["user"]["name"], "ana");
    let token = answer["token"].as_str().context("a token")?;

    let (status, body) = site
        .server()
        .http("GET", "/api/me", Some(token), None)
        .await?;
    assert_eq!(status, 200, "{body}");
    let me: Value = serde_json::from_str(&body)?;
    assert_eq!(me["name"], "ana");
    assert_eq!(me["role"], "coach");
    assert_eq!(me["relationships"][0]["id"], rel);
    assert_eq!(me["relationships"].as_array().map(Vec::len), Some(1));
    let (status, _) = site
        .server()
        .http("GET", "/api/me", Some("cs_wrong"), None)
        .await?;
    assert_eq!(status, 401);

    // Used once; a second device with the same link is told so; a made-up code too.
    let (status, body) = site.server().http("POST", &path, None, None).await?;
    assert_eq!(status, 410, "{body}");
    assert!(body.contains("already used"), "{body}");
    let (status, body) = site
        .server()
        .http("POST", "/api/invites/ci_madeup", None, None)
        .await?;
    assert_eq!(status, 404, "{body}");
    let audit = site
        .audit_until("root", |a| {
            a.iter().any(|e| e["action"] == "invite-redeemed")
        })
        .await?;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "invite" && e["subject"] == "ana")
    );
    // The link names the public URL when one is given.
    let elsewhere = admin(
        &data_dir,
        &[
            "user",
            "invite",
            "--name",
            "lee",
            "--public-url",
            "https://coach.example.org/",
        ],
    )?;
    assert!(
        elsewhere.starts_with("https://coach.example.org/#/invite/ci_"),
        "{elsewhere}"
    );
    assert!(admin(&data_dir, &["user", "invite", "--name", "nobody"]).is_err());
    Ok(())
}

#[tokio::test]
async fn the_app_is_served_at_the_root_with_its_caching_and_security_headers() -> Result<()> {
    let app = tempfile::tempdir()?;
    std::fs::create_dir(app.path().join("assets"))?;
    std::fs::write(
        app.path().join("index.html"),
        "<!doctype html><title>coach</title>",
    )?;
    std::fs::write(app.path().join("assets/main-4f3a.js"), "export {}")?;
    std::fs::write(
        app.path().join("sw.js"),
        "self.addEventListener('fetch', () => {})",
    )?;
    let data = tempfile::tempdir()?;
    let app_dir = app.path().to_str().context("a UTF-8 path")?;
    let server = ServerProcess::start_secure(data.path(), &["--app-dir", app_dir])?;

    let (status, headers, body) = server.http_with_headers("GET", "/", None, None).await?;
    assert_eq!(status, 200);
    assert!(body.contains("<title>coach</title>"));
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    let csp = header(&headers, "content-security-policy").context("a CSP")?;
    assert!(
        csp.contains("default-src 'self'") && csp.contains("'wasm-unsafe-eval'"),
        "{csp}"
    );
    let (_, headers, _) = server
        .http_with_headers("GET", "/assets/main-4f3a.js", None, None)
        .await?;
    assert!(header(&headers, "cache-control").is_some_and(|c| c.contains("immutable")));
    assert!(header(&headers, "content-type").is_some_and(|c| c.starts_with("text/javascript")));
    let (_, headers, _) = server
        .http_with_headers("GET", "/sw.js", None, None)
        .await?;
    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
    let (status, _) = server.http_get("/assets/missing.js").await?;
    assert_eq!(status, 404);
    // The API and the probes are not shadowed by the app.
    assert_eq!(server.http_get("/healthz").await?.0, 200);
    assert_eq!(server.http("GET", "/api/me", None, None).await?.0, 401);
    Ok(())
}

#[tokio::test]
async fn each_user_lists_exactly_the_documents_they_may_read_with_their_access() -> Result<()> {
    use coachsync_tests::site::{relationship, synced, work_plan};
    let site = Site::start(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("supervisor", "evaluator"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let rel = relationship(&site, &["coach"], &["principal"])?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach").await?;
    let plan = coach.create(work_plan(&rel)?).await?;
    let mut notes = coachsync_core::domain::example("observation-private-notes")
        .context("an example of private notes")?;
    notes["relationship"] = serde_json::json!(rel);
    let private = coach.create(notes).await?;
    synced(&coach).await?;
    coach.close().await?;

    let listed = |user: &'static str| {
        let site = &site;
        async move {
            let (status, body) = site
                .server()
                .http("GET", "/api/docs", Some(site.token(user)), None)
                .await?;
            assert_eq!(status, 200, "{body}");
            let docs: Vec<Value> = serde_json::from_str(&body)?;
            Ok::<_, anyhow::Error>(
                docs.into_iter()
                    .map(|d| {
                        (
                            d["id"].as_str().unwrap_or_default().to_owned(),
                            d["access"].as_str().unwrap_or_default().to_owned(),
                            d["kind"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        }
    };
    let mut coach_sees = listed("coach").await?;
    coach_sees.sort();
    let mut expected = vec![
        (plan.to_string(), "write".to_owned(), "work-plan".to_owned()),
        (
            private.to_string(),
            "write".to_owned(),
            "observation-private-notes".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(coach_sees, expected);
    assert_eq!(
        listed("principal").await?,
        [(plan.to_string(), "write".to_owned(), "work-plan".to_owned())],
        "the relationship's client lists its work plan, never the coach's private notes"
    );
    assert!(listed("supervisor").await?.is_empty());
    assert!(
        listed("root").await?.is_empty(),
        "admins get nothing by office"
    );

    // Shared by the client: the supervisor lists it, to read only.
    let (status, body) = site
        .grants(
            "POST",
            "principal",
            &plan,
            serde_json::json!({"user": "supervisor", "access": "read"}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        listed("supervisor").await?,
        [(plan.to_string(), "read".to_owned(), "work-plan".to_owned())]
    );
    let (status, _) = site.server().http("GET", "/api/docs", None, None).await?;
    assert_eq!(status, 401);
    Ok(())
}
