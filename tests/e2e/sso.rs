//! Single sign-on (issue 20) through a real OpenID provider (`oidc-provider`, started
//! here), with a browser-less user agent following the redirects: a first sign-in makes
//! the user, later ones find them by the issuer's `sub`, a member already there is
//! linked by the address the issuer verified; tokens from another issuer, for another
//! client, or of another sign-in (its nonce), and a callback used twice, sign nobody in.

use expensewise_infra::on_database;
use expensewise_tests::oidc::{
    callback, key_file, oidc_client, sign_in, sso_environment, OidcProvider, CLIENT_SECRET,
    PUBLIC_URL,
};
use expensewise_tests::{
    expect_problem, expect_status, on_both_backends, Backend, TestApp, User, PASSWORD,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn call(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn settings(issuer: &str, password_sign_in: bool) -> Value {
    json!({
        "issuer": issuer,
        "client_id": "expensewise",
        "client_secret": CLIENT_SECRET,
        "allowed_domains": ["Acme.test"],
        "default_role": "employee",
        "password_sign_in": password_sign_in,
    })
}

async fn people_sign_in_through_their_organizations_openid_provider(backend: Backend) {
    let accounts = json!({
        "eve-7f3a": {"email": "eve@acme.test", "email_verified": true, "name": "Eve Example"},
        "bob-51c2": {"email": "bob@acme.test", "email_verified": true, "name": "Bob"},
        "carol-0d9e": {"email": "carol@acme.test", "email_verified": true},
        "mallory-66aa": {"email": "mallory@elsewhere.test", "email_verified": true},
        "una-12bc": {"email": "una@acme.test", "email_verified": false},
    });
    let key = key_file();
    let provider = OidcProvider::start(
        json!([
            oidc_client("expensewise", &callback()),
            oidc_client("other-app", "http://127.0.0.1:9/back")
        ]),
        accounts.clone(),
        &key,
    );
    // Another issuer signing with the same key, as tenants of one provider do.
    let elsewhere = OidcProvider::start(
        json!([oidc_client("expensewise", &callback())]),
        accounts,
        &key,
    );
    let app = TestApp::builder(backend)
        .env(sso_environment())
        .start()
        .await;
    let admin = app.register("Acme", "ada@acme.test").await;
    let bob = app.add_user(&admin, "bob@acme.test", "approver").await;
    let organization = admin.organization_id.clone();

    // Not set up yet; then set up by the admin, and only by an admin.
    let start = format!("/v1/auth/sso/start?organization={organization}");
    let problem = expect_problem(
        app.request(Method::GET, &start, None).send().await.unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(problem.detail.contains("no single sign-on"), "{problem:?}");
    let put = |user: &User, body: Value| {
        app.request(Method::PUT, "/v1/sso", Some(&user.token))
            .json(&body)
            .send()
    };
    expect_status(
        put(&bob, settings(&provider.issuer(), true)).await.unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
    let problem = expect_problem(
        put(&admin, settings("http://127.0.0.1:9", true))
            .await
            .unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem.errors[0].field, "issuer", "{problem:?}");
    let set = expect_status(
        put(&admin, settings(&provider.issuer(), true))
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(set["allowed_domains"], json!(["acme.test"]));
    assert_eq!(set["has_client_secret"], true);
    assert_eq!(set["redirect_uri"], callback().as_str());

    // A first sign-in makes the user, in the default role, with what the issuer says.
    let (status, eve, used) = sign_in(&app.base, &organization, "eve-7f3a").await;
    assert_eq!(status, StatusCode::OK, "{eve}");
    assert_eq!(eve["role"], "employee");
    assert_eq!(eve["organization_id"], organization.as_str());
    let me = expect_status(
        app.get("/v1/me", eve["token"].as_str().unwrap()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&me["email"], &me["name"]),
        (&json!("eve@acme.test"), &json!("Eve Example"))
    );
    // The same answer again signs nobody in.
    let (status, replayed) = call(&used).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{replayed}");
    // Later sign-ins find the same user.
    let (status, again, _) = sign_in(&app.base, &organization, "eve-7f3a").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["user_id"], eve["user_id"]);
    // A member already there is linked by the address the issuer verified.
    let (status, linked, _) = sign_in(&app.base, &organization, "bob-51c2").await;
    assert_eq!(status, StatusCode::OK, "{linked}");
    assert_eq!(
        (linked["user_id"].as_str(), &linked["role"]),
        (Some(bob.user_id.as_str()), &json!("approver"))
    );

    // Two first sign-ins of one account at once make one user.
    let (first, second) = tokio::join!(
        sign_in(&app.base, &organization, "carol-0d9e"),
        sign_in(&app.base, &organization, "carol-0d9e")
    );
    assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(first.1["user_id"], second.1["user_id"]);

    // Who the organization does not let in.
    for (login, why) in [
        ("mallory-66aa", "not of a domain"),
        ("una-12bc", "no verified e-mail"),
    ] {
        let (status, refused, _) = sign_in(&app.base, &organization, login).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{login}: {refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains(why),
            "{refused}"
        );
    }

    // Real ID tokens that must not sign anyone in, brought to the code exchange.
    let foreign = [
        (
            provider
                .id_token("other-app", "http://127.0.0.1:9/back", "eve-7f3a", "n1")
                .await,
            "for another client",
        ),
        (
            elsewhere
                .id_token("expensewise", &callback(), "eve-7f3a", "n2")
                .await,
            "from another issuer",
        ),
        (
            // Right issuer and client: an earlier sign-in's token, replayed.
            provider
                .id_token("expensewise", &callback(), "eve-7f3a", "n3")
                .await,
            "nonce",
        ),
    ];
    for (token, why) in foreign {
        provider.substitute(&token).await;
        let (status, refused, _) = sign_in(&app.base, &organization, "eve-7f3a").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {refused}");
        assert!(
            refused["detail"].as_str().unwrap().contains(why),
            "{why}: {refused}"
        );
    }

    // Password sign-in off: the right password is refused, the issuer still lets in;
    // the secret stays when not sent again.
    let mut off = settings(&provider.issuer(), false);
    off.as_object_mut().unwrap().remove("client_secret");
    let set = expect_status(put(&admin, off).await.unwrap(), StatusCode::OK).await;
    assert_eq!(set["has_client_secret"], true);
    let problem = expect_problem(
        app.post(
            "/v1/auth/login",
            None,
            json!({"email": "bob@acme.test", "password": PASSWORD}),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(problem.detail.contains("single sign-on"), "{problem:?}");
    let (status, _, _) = sign_in(&app.base, &organization, "bob-51c2").await;
    assert_eq!(status, StatusCode::OK);

    // The history says who was linked to which account, and when settings changed (the
    // audit log lists an event once every earlier transaction has ended: asked again).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let history = app
            .send_ok(
                Method::GET,
                "/v1/audit/events?aggregate_type=organization&limit=1000",
                &admin,
                Value::Null,
            )
            .await;
        let types: Vec<&str> = history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        let count = |t: &str| types.iter().filter(|x| **x == t).count();
        let counts = (count("SingleSignOnConfigured"), count("IdentityLinked"));
        if counts == (2, 3) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{counts:?} in {types:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // The issuer's ids of people are sealed in the log, like their addresses.
    let db = app.database.connect().await;
    let stored = on_database!(&db, |pool| {
        sqlx::query_scalar::<_, String>("SELECT CAST(payload AS text) FROM events")
            .fetch_all(pool)
            .await
            .unwrap()
    })
    .join("\n");
    for subject in ["eve-7f3a", "bob-51c2", "carol-0d9e"] {
        assert!(!stored.contains(subject), "the log holds {subject}");
    }

    // Without SSO_ALLOW_PRIVATE, an issuer at an internal address is not asked.
    let app = app
        .restart_with(vec![("PUBLIC_URL", PUBLIC_URL.into())])
        .await;
    let problem = expect_problem(
        app.request(Method::GET, &start, None).send().await.unwrap(),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    assert!(problem.detail.contains("SSO_ALLOW_PRIVATE"), "{problem:?}");
    app.finish().await;
}

on_both_backends!(people_sign_in_through_their_organizations_openid_provider);
