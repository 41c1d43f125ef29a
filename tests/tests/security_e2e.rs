//! Access control against the real `coachsync` binary run as for real (tokens
//! required): who may connect, who may read and write which document, grants and
//! revokes through the API, the audit log, and hostile peers.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use automerge::sync::SyncDoc as _;
use coachsync_core::{Device, DeviceConfig, DocumentId, Message, PeerId, SyncEnvelope};
use coachsync_tests::admin;
use coachsync_tests::site::{
    Site, WAIT, eventually, never_receives, relationship, synced, work_plan,
};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A raw WebSocket to `/sync` with `?token=`, joined as `peer`.
type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn joined(site: &Site, user: &str, peer: &str) -> Result<Socket> {
    let url = format!("{}?token={}", site.server().sync_url(), site.token(user));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
    let join = Message::Join {
        sender_id: PeerId::new(peer)?,
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    };
    ws.send(WsMessage::Binary(join.encode().into())).await?;
    match next_message(&mut ws).await? {
        Message::Peer { .. } => Ok(ws),
        other => bail!("expected peer, got {}", other.kind()),
    }
}

async fn next_message(ws: &mut Socket) -> Result<Message> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .context("no answer")?
            .context("closed")??;
        if let WsMessage::Binary(bytes) = frame {
            return Ok(Message::decode(&bytes)?);
        }
    }
}

/// Ask for a document as a peer that holds nothing; every message until
/// `doc-unavailable` or a sync with content, as (kind, sync data).
async fn ask(ws: &mut Socket, peer: &str, document: &DocumentId) -> Result<Vec<(String, Vec<u8>)>> {
    let mut state = automerge::sync::State::new();
    let request = automerge::Automerge::new()
        .generate_sync_message(&mut state)
        .context("a first sync message")?;
    let message = Message::Request(SyncEnvelope {
        sender_id: PeerId::new(peer)?,
        target_id: PeerId::new("server")?,
        document_id: document.clone(),
        data: request.encode(),
    });
    ws.send(WsMessage::Binary(message.encode().into())).await?;
    let mut seen = Vec::new();
    loop {
        match next_message(ws).await? {
            Message::DocUnavailable { document_id, .. } if &document_id == document => {
                seen.push(("doc-unavailable".to_owned(), Vec::new()));
                return Ok(seen);
            }
            Message::Sync(env) if &env.document_id == document => {
                let decoded = automerge::sync::Message::decode(&env.data)?;
                let has_content = !decoded.heads.is_empty();
                seen.push(("sync".to_owned(), env.data));
                if has_content {
                    return Ok(seen);
                }
            }
            _ => {}
        }
    }
}

fn actions(audit: &[Value], action: &str) -> Vec<String> {
    audit
        .iter()
        .filter(|e| e["action"] == action)
        .map(|e| e["who"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn no_token_or_a_wrong_token_is_refused_before_any_message() -> Result<()> {
    let site = Site::start(&[("root", "admin"), ("ana", "coach")], &[])?;
    let url = site.server().sync_url();
    for attempt in [url.clone(), format!("{url}?token=cs_not-a-token")] {
        match tokio_tungstenite::connect_async(&attempt).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{attempt}");
            }
            other => bail!("{attempt} was not refused: {:?}", other.map(|_| ())),
        }
    }
    // A bearer header works as well as `?token=`.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(&url)?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", site.token("ana")).parse()?,
    );
    let (ws, response) = tokio_tungstenite::connect_async(request).await?;
    assert_eq!(response.status(), 101);
    drop(ws);
    // A revoked token stops working.
    admin(
        site.server().data_dir(),
        &["token", "revoke", "--user", "ana"],
    )?;
    let revoked = format!("{url}?token={}", site.token("ana"));
    assert!(tokio_tungstenite::connect_async(&revoked).await.is_err());
    let audit = site
        .audit_until("root", |a| actions(a, "login-refused").len() >= 3)
        .await?;
    assert_eq!(actions(&audit, "login"), ["ana"]);
    Ok(())
}

#[tokio::test]
async fn a_private_document_is_unavailable_to_other_coaches_evaluators_and_admins_as_if_missing()
-> Result<()> {
    let site = Site::start(
        &[
            ("coach-a", "coach"),
            ("coach-b", "coach"),
            ("supervisor", "evaluator"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach-a").await?;
    let doc = coach
        .create(json!({"note": "the principal seemed stretched thin"}))
        .await?;
    synced(&coach).await?;
    let missing = DocumentId::from_random([9; 16]);
    for user in ["coach-b", "supervisor", "root"] {
        let peer = format!("peer-of-{user}");
        let mut ws = joined(&site, user, &peer).await?;
        let private = ask(&mut ws, &peer, &doc).await?;
        let absent = ask(&mut ws, &peer, &missing).await?;
        assert_eq!(
            private, absent,
            "{user}: the same answer as for a missing document"
        );
        assert_eq!(
            private.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["sync", "doc-unavailable"]
        );
        // Through a device, too: the document is simply not there.
        let other_dir = tempfile::tempdir()?;
        let device = site.device(other_dir.path(), user).await?;
        let fetched = tokio::time::timeout(WAIT, device.fetch(&doc)).await?;
        assert!(fetched.is_err(), "{user} fetched a private document");
        device.close().await?;
    }
    let refused = |audit: &[Value]| {
        let mut refused = actions(audit, "refused-read");
        refused.sort();
        refused.dedup();
        refused
    };
    let audit = site
        .audit_until("root", |a| refused(a) == ["coach-b", "root", "supervisor"])
        .await?;
    assert!(
        audit.iter().all(|e| !e.to_string().contains("stretched")),
        "the audit log never holds content"
    );
    coach.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_read_grant_syncs_to_the_client_its_edits_stay_local_and_a_revoke_stops_updates()
-> Result<()> {
    let site = Site::start(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let coach = site.device(dirs[0].path(), "coach").await?;
    let client = site.device(dirs[1].path(), "principal").await?;
    let doc = coach.create(json!({"goal": "weekly walkthroughs"})).await?;
    synced(&coach).await?;
    // Not there for the client until it is shared; then the same device gets it.
    let before = tokio::time::timeout(WAIT, client.fetch(&doc)).await?;
    assert!(before.is_err(), "fetched before the grant");
    let (status, body) = site
        .grants(
            "POST",
            "coach",
            &doc,
            json!({"user": "principal", "access": "read"}),
        )
        .await?;
    assert_eq!((status, &body["access"]), (200, &json!("read")), "{body}");
    tokio::time::timeout(WAIT, client.fetch(&doc)).await??;
    assert_eq!(client.value(&doc).await?["goal"], "weekly walkthroughs");

    // The reader's edit is kept on its device and reaches nobody.
    client
        .set(&doc, &"byClient".parse()?, json!("not allowed"))
        .await?;
    client.sync_now();
    coach
        .set(&doc, &"goal".parse()?, json!("walkthroughs twice a week"))
        .await?;
    synced(&coach).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.value(&doc).await?["goal"] != "walkthroughs twice a week" {
        if tokio::time::Instant::now() > deadline {
            bail!("the reader never got the coach's edit");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh_dir = tempfile::tempdir()?;
    let fresh = site.device(fresh_dir.path(), "coach").await?;
    tokio::time::timeout(WAIT, fresh.fetch(&doc)).await??;
    assert_eq!(fresh.value(&doc).await?.get("byClient"), None);
    assert_eq!(coach.value(&doc).await?.get("byClient"), None);
    fresh.close().await?;

    // Revoked: the coach's next edit never reaches the client.
    let (status, _) = site
        .grants("DELETE", "coach", &doc, json!({"user": "principal"}))
        .await?;
    assert_eq!(status, 200);
    coach.set(&doc, &"after".parse()?, json!("revoke")).await?;
    synced(&coach).await?;
    client.sync_now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(client.value(&doc).await?.get("after"), None);
    site.audit_until("root", |a| {
        actions(a, "grant") == ["coach"] && actions(a, "revoke") == ["coach"]
    })
    .await?;
    coach.close().await?;
    client.close().await?;
    let _ = &dirs[2];
    Ok(())
}

#[tokio::test]
async fn coaching_content_reaches_an_evaluator_only_when_its_client_shares_it() -> Result<()> {
    let site = Site::start(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("supervisor", "evaluator"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach").await?;
    let plan = coachsync_core::domain::example("work-plan").context("an example work plan")?;
    let doc = coach.create(plan).await?;
    synced(&coach).await?;
    let evaluator = json!({"user": "supervisor", "access": "read"});
    let (status, body) = site
        .grants("POST", "coach", &doc, evaluator.clone())
        .await?;
    assert_eq!(
        status, 403,
        "the coach alone cannot share with an evaluator: {body}"
    );
    // An admin cannot grant themselves coaching content, nor learn it exists.
    let (status, _) = site
        .grants(
            "POST",
            "root",
            &doc,
            json!({"user": "root", "access": "read"}),
        )
        .await?;
    assert_eq!(status, 404);
    let (status, _) = site
        .grants(
            "POST",
            "coach",
            &doc,
            json!({"user": "principal", "access": "write"}),
        )
        .await?;
    assert_eq!(status, 200);
    let (status, body) = site.grants("POST", "principal", &doc, evaluator).await?;
    assert_eq!(status, 200, "{body}");
    let eval_dir = tempfile::tempdir()?;
    let supervisor = site.device(eval_dir.path(), "supervisor").await?;
    tokio::time::timeout(WAIT, supervisor.fetch(&doc)).await??;
    assert_eq!(supervisor.value(&doc).await?["schema"], "work-plan");
    // Bad requests get clear errors.
    let (status, body) = site
        .grants(
            "POST",
            "principal",
            &doc,
            json!({"user": "nobody", "access": "read"}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    let (status, body) = site
        .grants(
            "POST",
            "principal",
            &doc,
            json!({"user": "supervisor", "access": "all"}),
        )
        .await?;
    assert_eq!(status, 400, "{body}");
    site.audit_until("root", |a| {
        let refused = actions(a, "refused-grant");
        refused.contains(&"coach".to_owned()) && refused.contains(&"root".to_owned())
    })
    .await?;
    coach.close().await?;
    supervisor.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_flood_of_garbage_from_one_user_does_not_stop_another_users_sync() -> Result<()> {
    let site = Site::start(
        &[("flooder", "coach"), ("coach", "coach"), ("root", "admin")],
        &[],
    )?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach").await?;
    let before = coach.create(json!({"kept": "safe"})).await?;
    synced(&coach).await?;

    let url = format!(
        "{}?token={}",
        site.server().sync_url(),
        site.token("flooder")
    );
    let flood = tokio::spawn(async move {
        let mut closed_with_error = 0;
        // Bounded: 40 connections of up to 200 frames each.
        for round in 0..40u32 {
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
                continue;
            };
            let garbage: Vec<u8> = match round % 4 {
                // A CBOR map claiming 2^64-1 entries.
                0 => vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                // Truncated CBOR.
                1 => vec![0xa2, 0x64, 0x74, 0x79],
                // A byte string claiming 4 GiB.
                2 => vec![0x5a, 0xff, 0xff, 0xff, 0xff],
                _ => (0..1024).map(|i| (i * 31 + round) as u8).collect(),
            };
            for _ in 0..200 {
                if ws
                    .send(WsMessage::Binary(garbage.clone().into()))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            while let Some(Ok(frame)) = ws.next().await {
                if let WsMessage::Binary(bytes) = frame
                    && let Ok(Message::Error { .. }) = Message::decode(&bytes)
                {
                    closed_with_error += 1;
                }
            }
        }
        closed_with_error
    });
    // Meanwhile the coach keeps working.
    let during = coach.create(json!({"written": "during the flood"})).await?;
    synced(&coach).await?;
    let errors = flood.await?;
    assert!(
        errors >= 30,
        "each garbage connection is told why it is closed: {errors}"
    );
    let (status, _) = site.server().http_get("/healthz").await?;
    assert_eq!(status, 200);
    let check_dir = tempfile::tempdir()?;
    let check = site.device(check_dir.path(), "coach").await?;
    for (doc, key, value) in [
        (&before, "kept", "safe"),
        (&during, "written", "during the flood"),
    ] {
        tokio::time::timeout(WAIT, check.fetch(doc)).await??;
        assert_eq!(check.value(doc).await?[key], value);
    }
    check.close().await?;
    coach.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_user_over_the_document_limit_is_refused_and_audited() -> Result<()> {
    let site = Site::start(
        &[("coach", "coach"), ("root", "admin")],
        &["--max-documents-per-user", "2"],
    )?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach").await?;
    for i in 0..2 {
        coach.create(json!({"n": i})).await?;
    }
    synced(&coach).await?;
    coach.create(json!({"n": 3})).await?;
    coach.sync_now();
    site.audit_until("root", |a| actions(a, "refused-create") == ["coach"])
        .await?;
    coach.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_jwt_from_the_configured_identity_provider_signs_in_an_existing_user() -> Result<()> {
    use base64::Engine as _;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let point = pair.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let keys_dir = tempfile::tempdir()?;
    let jwks = keys_dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "district-1", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65])}]})
        .to_string(),
    )?;
    let jwks = jwks.to_str().context("a UTF-8 path")?;
    let site = Site::start(
        &[("ana", "coach"), ("root", "admin")],
        &[
            "--jwt-issuer",
            "https://sso.district.example",
            "--jwt-audience",
            "coachsync",
            "--jwt-jwks",
            jwks,
        ],
    )?;
    let signer = jsonwebtoken::EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes())?;
    let jwt = |sub: &str| -> Result<String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("district-1".into());
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            + 600;
        Ok(jsonwebtoken::encode(
            &header,
            &json!({"iss": "https://sso.district.example", "aud": "coachsync", "sub": sub, "exp": exp}),
            &signer,
        )?)
    };
    let dir = tempfile::tempdir()?;
    let mut config = DeviceConfig::new(dir.path()).with_server(site.server().sync_url());
    config.token = Some(jwt("ana")?);
    let device = Device::open(config).await?;
    let doc = device
        .create(json!({"signed in": "through the district"}))
        .await?;
    synced(&device).await?;
    // It is ana's, as with her coachsync token.
    let other_dir = tempfile::tempdir()?;
    let with_token = site.device(other_dir.path(), "ana").await?;
    tokio::time::timeout(WAIT, with_token.fetch(&doc)).await??;
    // Someone the district knows but coachsync does not is refused.
    let url = format!("{}?token={}", site.server().sync_url(), jwt("stranger")?);
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
    site.audit_until("root", |a| {
        a.iter().any(|e| {
            e["action"] == "login-refused"
                && e["detail"].as_str().is_some_and(|d| d.contains("stranger"))
        })
    })
    .await?;
    device.close().await?;
    with_token.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_user_whose_documents_hold_too_many_bytes_is_refused_more() -> Result<()> {
    let site = Site::start(
        &[("coach", "coach"), ("root", "admin")],
        &["--max-bytes-per-user", "20000"],
    )?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach").await?;
    let small = coach.create(json!({"note": "short"})).await?;
    synced(&coach).await?;
    // 80 KB of notes (random, so that automerge's compression leaves 40 KB) is more
    // than this user may store.
    let big: String = (0..40_000)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    coach.set(&small, &"notes".parse()?, json!(big)).await?;
    coach.sync_now();
    // Refused on every reconnect the device makes, each time audited.
    site.audit_until("root", |a| {
        actions(a, "refused-write").contains(&"coach".to_owned())
    })
    .await?;
    // The server kept what it had.
    let check_dir = tempfile::tempdir()?;
    let check = site.device(check_dir.path(), "coach").await?;
    tokio::time::timeout(WAIT, check.fetch(&small)).await??;
    assert_eq!(check.value(&small).await?, json!({"note": "short"}));
    check.close().await?;
    coach.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_relationships_client_reads_and_edits_its_work_plan_without_a_grant_and_sees_who_opened_it()
-> Result<()> {
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
    assert!(rel.starts_with("rel-"), "{rel}");
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let coach = site.device(dirs[0].path(), "coach").await?;
    let principal = site.device(dirs[1].path(), "principal").await?;
    let supervisor = site.device(dirs[2].path(), "supervisor").await?;
    let doc = coach.create(work_plan(&rel)?).await?;
    synced(&coach).await?;

    tokio::time::timeout(WAIT, principal.fetch(&doc)).await??;
    principal
        .set(
            &doc,
            &"theoryOfAction".parse()?,
            json!("If we observe weekly, then…"),
        )
        .await?;
    synced(&principal).await?;
    eventually("the client's edit at the coach", async || {
        Ok(coach.value(&doc).await?["theoryOfAction"] == "If we observe weekly, then…")
    })
    .await?;
    let refused = tokio::time::timeout(WAIT, supervisor.fetch(&doc)).await?;
    assert!(refused.is_err(), "the supervisor fetched coaching content");

    // The relationship's own document: the client signs its agreement.
    let mut together = coachsync_core::domain::example("coaching-relationship")
        .context("an example coaching relationship")?;
    together["relationship"] = json!(rel);
    together["agreement"]["agreedBy"] = json!([{"user": "coach", "at": 1_787_860_800_000_i64}]);
    let agreement = coach.create(together).await?;
    synced(&coach).await?;
    tokio::time::timeout(WAIT, principal.fetch(&agreement)).await??;
    principal
        .push(
            &agreement,
            &"agreement.agreedBy".parse()?,
            json!({"user": "principal", "at": 1_787_864_400_000_i64}),
        )
        .await?;
    synced(&principal).await?;
    eventually("the client's agreement at the coach", async || {
        Ok(coach.value(&agreement).await?["agreement"]["agreedBy"]
            .as_array()
            .is_some_and(|a| a.len() == 2))
    })
    .await?;

    // The access log, for the relationship's members only.
    let path = format!("/api/docs/{doc}/access-log");
    let (status, _) = site
        .server()
        .http("GET", &path, Some(site.token("supervisor")), None)
        .await?;
    assert_eq!(status, 404);
    let log = {
        let mut log = Vec::new();
        eventually(
            "the access log to show both members and the refusal",
            async || {
                let (status, body) = site
                    .server()
                    .http("GET", &path, Some(site.token("principal")), None)
                    .await?;
                assert_eq!(status, 200, "{body}");
                log = serde_json::from_str::<Vec<Value>>(&body)?;
                let has = |who: &str, action: &str| {
                    log.iter().any(|e| e["who"] == who && e["action"] == action)
                };
                Ok(has("coach", "open")
                    && has("principal", "open")
                    && has("supervisor", "refused-read"))
            },
        )
        .await?;
        log
    };
    assert!(
        log.iter().all(|e| !e.to_string().contains("weekly")),
        "no content in the log"
    );

    // A member removed stops receiving it.
    admin(
        site.server().data_dir(),
        &["relationship", "remove-member", &rel, "--user", "principal"],
    )?;
    coach
        .set(&doc, &"theoryOfAction".parse()?, json!("after removal"))
        .await?;
    synced(&coach).await?;
    never_receives(&principal, &doc, "theoryOfAction", "after removal").await?;
    for d in [coach, principal, supervisor] {
        d.close().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_principal_is_a_client_in_her_coaching_and_sees_a_teachers_only_when_the_teacher_shares()
-> Result<()> {
    let site = Site::start(
        &[
            ("leadership-coach", "coach"),
            ("principal", "client"),
            ("instructional-coach", "coach"),
            ("teacher", "client"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let hers = relationship(&site, &["leadership-coach"], &["principal"])?;
    let teachers = relationship(&site, &["instructional-coach"], &["teacher"])?;
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let leadership = site.device(dirs[0].path(), "leadership-coach").await?;
    let instructional = site.device(dirs[1].path(), "instructional-coach").await?;
    let principal = site.device(dirs[2].path(), "principal").await?;
    let her_plan = leadership.create(work_plan(&hers)?).await?;
    let teacher_plan = instructional.create(work_plan(&teachers)?).await?;
    synced(&leadership).await?;
    synced(&instructional).await?;
    // As a client: her own coaching.
    tokio::time::timeout(WAIT, principal.fetch(&her_plan)).await??;
    // As the teacher's supervisor: nothing, and the coach cannot share it with her.
    assert!(
        tokio::time::timeout(WAIT, principal.fetch(&teacher_plan))
            .await?
            .is_err()
    );
    let share = json!({"user": "principal", "access": "read"});
    let (status, body) = site
        .grants("POST", "instructional-coach", &teacher_plan, share.clone())
        .await?;
    assert_eq!(status, 403, "{body}");
    // The teacher, the relationship's client, can.
    let (status, body) = site.grants("POST", "teacher", &teacher_plan, share).await?;
    assert_eq!(status, 200, "{body}");
    tokio::time::timeout(WAIT, principal.fetch(&teacher_plan)).await??;
    for d in [leadership, instructional, principal] {
        d.close().await?;
    }
    Ok(())
}

#[tokio::test]
async fn offboarding_a_coach_hands_over_their_work_but_not_their_private_notes() -> Result<()> {
    let site = Site::start(
        &[
            ("leaving-coach", "coach"),
            ("new-coach", "coach"),
            ("principal", "client"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let rel = relationship(&site, &["leaving-coach"], &["principal"])?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let leaving = site.device(dirs[0].path(), "leaving-coach").await?;
    let plan = leaving.create(work_plan(&rel)?).await?;
    let plain = leaving.create(json!({"note": "meeting agenda"})).await?;
    let mut notes = coachsync_core::domain::example("observation-private-notes")
        .context("an example of private notes")?;
    notes["relationship"] = json!(rel);
    let private = leaving.create(notes).await?;
    synced(&leaving).await?;
    leaving.close().await?;

    let summary = admin(
        site.server().data_dir(),
        &[
            "user",
            "offboard",
            "leaving-coach",
            "--transfer-to",
            "new-coach",
        ],
    )?;
    assert!(
        summary.contains("2 documents and 1 relationships"),
        "{summary}"
    );
    // The departing coach signs in no more.
    let url = format!(
        "{}?token={}",
        site.server().sync_url(),
        site.token("leaving-coach")
    );
    assert!(tokio_tungstenite::connect_async(&url).await.is_err());
    // The new coach has the work plan and the plain document; nobody has the notes.
    let successor = site.device(dirs[1].path(), "new-coach").await?;
    for doc in [&plan, &plain] {
        tokio::time::timeout(WAIT, successor.fetch(doc)).await??;
    }
    assert!(
        tokio::time::timeout(WAIT, successor.fetch(&private))
            .await?
            .is_err()
    );
    let listed = admin(site.server().data_dir(), &["relationship", "list"])?;
    assert!(listed.contains("coaches: new-coach"), "{listed}");
    // Another device of the new coach: the relationship's documents by membership too.
    let (status, body) = site
        .grants(
            "POST",
            "new-coach",
            &plan,
            json!({"user": "root", "access": "read"}),
        )
        .await?;
    assert_eq!(
        status, 403,
        "still only the client shares it outside: {body}"
    );
    successor.close().await?;
    Ok(())
}

#[tokio::test]
async fn owners_grants_and_relationships_survive_a_restart() -> Result<()> {
    let mut site = Site::start(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("other", "coach"),
        ],
        &[],
    )?;
    let rel = relationship(&site, &["coach"], &["principal"])?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach").await?;
    let shared = coach.create(json!({"note": "shared by a grant"})).await?;
    let plan = coach.create(work_plan(&rel)?).await?;
    synced(&coach).await?;
    coach.close().await?;
    let (status, _) = site
        .grants(
            "POST",
            "coach",
            &shared,
            json!({"user": "principal", "access": "read"}),
        )
        .await?;
    assert_eq!(status, 200);
    // SIGKILL, then a new server on the same data directory.
    site.restart()?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let principal = site.device(dirs[0].path(), "principal").await?;
    for doc in [&shared, &plan] {
        tokio::time::timeout(WAIT, principal.fetch(doc)).await??;
    }
    let other = site.device(dirs[1].path(), "other").await?;
    for doc in [&shared, &plan] {
        assert!(tokio::time::timeout(WAIT, other.fetch(doc)).await?.is_err());
    }
    principal.close().await?;
    other.close().await?;
    Ok(())
}

#[tokio::test]
async fn when_a_relationship_ends_its_client_reads_for_the_grace_period_and_then_gets_nothing()
-> Result<()> {
    let site = Site::start(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let rel = relationship(&site, &["coach"], &["principal"])?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let coach = site.device(dirs[0].path(), "coach").await?;
    let principal = site.device(dirs[1].path(), "principal").await?;
    let doc = coach.create(work_plan(&rel)?).await?;
    synced(&coach).await?;
    tokio::time::timeout(WAIT, principal.fetch(&doc)).await??;

    // Ended with a grace period: the client still reads, but her edits stay hers.
    admin(
        site.server().data_dir(),
        &["relationship", "end", &rel, "--read-days", "30"],
    )?;
    coach
        .set(
            &doc,
            &"theoryOfAction".parse()?,
            json!("read after the end"),
        )
        .await?;
    synced(&coach).await?;
    eventually("the coach's edit at the client", async || {
        Ok(principal.value(&doc).await?["theoryOfAction"] == "read after the end")
    })
    .await?;
    principal
        .set(&doc, &"title".parse()?, json!("written after the end"))
        .await?;
    never_receives(&coach, &doc, "title", "written after the end").await?;

    // The grace period set to nothing: updates stop.
    let second = relationship(&site, &["coach"], &["principal"])?;
    let other = coach.create(work_plan(&second)?).await?;
    synced(&coach).await?;
    tokio::time::timeout(WAIT, principal.fetch(&other)).await??;
    admin(
        site.server().data_dir(),
        &["relationship", "end", &second, "--read-days", "0"],
    )?;
    coach
        .set(&other, &"theoryOfAction".parse()?, json!("after the end"))
        .await?;
    synced(&coach).await?;
    never_receives(&principal, &other, "theoryOfAction", "after the end").await?;
    let fresh = tempfile::tempdir()?;
    let again = site.device(fresh.path(), "principal").await?;
    assert!(
        tokio::time::timeout(WAIT, again.fetch(&other))
            .await?
            .is_err()
    );
    for d in [coach, principal, again] {
        d.close().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_team_that_is_a_client_reads_and_writes_through_its_group_membership() -> Result<()> {
    let site = Site::start(
        &[
            ("coach", "coach"),
            ("teacher-a", "team-member"),
            ("teacher-b", "team-member"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let data_dir = site.server().data_dir().to_owned();
    admin(
        &data_dir,
        &["group", "add", "--group", "grade-3", "--user", "teacher-a"],
    )?;
    let rel = admin(
        &data_dir,
        &[
            "relationship",
            "add",
            "--coach",
            "coach",
            "--client-group",
            "grade-3",
            "--school",
            "north-elementary",
        ],
    )?;
    let listed = admin(&data_dir, &["relationship", "list"])?;
    assert!(listed.contains("clients: grade-3"), "{listed}");
    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let coach = site.device(dirs[0].path(), "coach").await?;
    let plan = coach.create(work_plan(&rel)?).await?;
    synced(&coach).await?;

    let teacher_a = site.device(dirs[1].path(), "teacher-a").await?;
    tokio::time::timeout(WAIT, teacher_a.fetch(&plan)).await??;
    teacher_a
        .set(
            &plan,
            &"theoryOfAction".parse()?,
            json!("If we plan together, then…"),
        )
        .await?;
    synced(&teacher_a).await?;
    eventually("the team member's edit at the coach", async || {
        Ok(coach.value(&plan).await?["theoryOfAction"] == "If we plan together, then…")
    })
    .await?;
    let teacher_b = site.device(dirs[2].path(), "teacher-b").await?;
    assert!(
        tokio::time::timeout(WAIT, teacher_b.fetch(&plan))
            .await?
            .is_err()
    );
    teacher_b.close().await?;

    // Membership moves: out of the group, out of the coaching; into it, in.
    admin(
        &data_dir,
        &[
            "group",
            "remove",
            "--group",
            "grade-3",
            "--user",
            "teacher-a",
        ],
    )?;
    admin(
        &data_dir,
        &["group", "add", "--group", "grade-3", "--user", "teacher-b"],
    )?;
    coach
        .set(&plan, &"title".parse()?, json!("after the move"))
        .await?;
    synced(&coach).await?;
    let teacher_b = site.device(dirs[2].path(), "teacher-b").await?;
    tokio::time::timeout(WAIT, teacher_b.fetch(&plan)).await??;
    eventually("the new team member reads it", async || {
        Ok(teacher_b.value(&plan).await?["title"] == "after the move")
    })
    .await?;
    never_receives(&teacher_a, &plan, "title", "after the move").await?;
    for d in [coach, teacher_a, teacher_b] {
        d.close().await?;
    }
    Ok(())
}
