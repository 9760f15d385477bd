//! The OpenAPI document against the router it describes.
//!
//! The router and the document are built from one list
//! (`crewd::api::rest_routes` and `crewd::stream::ws::routes`), so they
//! agree by construction as long as every route goes through that list.
//! These tests make sure of it, in both directions:
//!
//! - every path the routers register is a path of the document, and the
//!   reverse (the routers' own path tables, read from their debug form);
//! - on a real daemon, every documented (path, method) reaches a handler,
//!   never the router's "no such route" 404 or 405, and every method the
//!   document does not list for a path is refused with 405;
//! - the served document is well-formed OpenAPI 3.1: every `$ref`
//!   resolves, operation ids are unique, every path parameter is declared.

mod common;

use reqwest::Method;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const ADMIN: &str = "openapi-admin-token-0123456789";
const READER: &str = "openapi-reader-token-0123456789";

/// A daemon with an admin and a read-only token.
async fn daemon() -> common::TestDaemon {
    let d = common::TestDaemon::start("http://127.0.0.1:9/", |c| {
        c.token = Some(ADMIN.to_string());
        c.tokens = vec![crewd::config::NamedToken {
            name: "reader".into(),
            scope: crew_core::wire::TokenScope::ReadOnly,
            secret: READER.into(),
        }];
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while d
        .http
        .get(format!("{}/healthz", d.url))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the daemon did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d
}

/// The document as the daemon serves it.
async fn served(d: &common::TestDaemon) -> Value {
    let r = d
        .http
        .get(d.api("/openapi.json"))
        .bearer_auth(READER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    r.json().await.unwrap()
}

/// Every (path, method) the document lists.
fn operations(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut ops = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let methods = item
            .as_object()
            .expect("path item")
            .keys()
            .filter(|k| HTTP_METHODS.contains(&k.as_str()))
            .cloned()
            .collect();
        ops.insert(path.clone(), methods);
    }
    ops
}

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `path` with every `{param}` replaced by a sample value.
fn sample_path(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("closing brace") + open;
        out.push_str(&rest[..open]);
        out.push_str("sample-");
        out.push_str(&rest[open + 1..close]);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The paths a router's table holds, read from its debug form (axum lists
/// each route's path there). The fallback router's entries are left out.
fn router_paths(debug: &str) -> BTreeSet<String> {
    const MARK: &str = "RouteId(";
    let mut paths = BTreeSet::new();
    let start = debug.find("path_router:").unwrap_or(0);
    let end = debug.find("fallback_router:").unwrap_or(debug.len());
    let mut rest = &debug[start..end];
    while let Some(i) = rest.find(MARK) {
        rest = &rest[i + MARK.len()..];
        let Some(after) = rest.find(')').map(|j| &rest[j + 1..]) else {
            break;
        };
        if let Some(quoted) = after.strip_prefix(": \"") {
            if let Some(end) = quoted.find('"') {
                let p = &quoted[..end];
                if p.starts_with('/') && !p.contains("__private__axum") {
                    paths.insert(p.to_string());
                }
            }
        }
    }
    paths
}

#[test]
fn routers_register_exactly_the_documented_paths() {
    let doc = serde_json::to_value(crewd::api::document()).unwrap();
    let documented: BTreeSet<String> = operations(&doc).into_keys().collect();

    let (rest, _) = crewd::api::rest_routes().split_for_parts();
    let (stream, _) = crewd::stream::ws::routes().split_for_parts();
    let mut registered = router_paths(&format!("{rest:?}"));
    let stream_paths = router_paths(&format!("{stream:?}"));
    // Guards the reading itself: if axum's debug form changed, say so
    // instead of comparing empty sets.
    assert!(
        registered.contains("/healthz") && stream_paths.contains("/api/v1/events"),
        "cannot read the routers' path tables from their debug form: {rest:?}"
    );
    registered.extend(stream_paths);

    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes served but missing from the OpenAPI document (register them with \
         routes!(...) and a #[utoipa::path] annotation): {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented paths the routers do not serve: {unserved:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let d = daemon().await;
    let doc = served(&d).await;
    let ops = operations(&doc);
    assert!(ops.len() >= 25, "only {} paths documented", ops.len());
    let probes = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
    ];
    for (path, methods) in &ops {
        let url = format!("{}{}", d.url, sample_path(path));
        for method in &probes {
            let documented = methods.contains(&method.as_str().to_ascii_lowercase());
            let r = d
                .http
                .request(method.clone(), &url)
                .bearer_auth(ADMIN)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let message = body["error"].as_str().unwrap_or("");
            if documented {
                assert!(
                    status != 405 && !(status == 404 && message.starts_with("no such route")),
                    "{method} {path} is documented but the router has no handler: {status} {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is not documented but the router answered {status} {body}"
                );
            }
        }
    }
    d.stop().await;
}

#[tokio::test]
async fn served_document_is_well_formed_openapi_3_1() {
    let d = daemon().await;

    // The same auth as every other read.
    let r = d.http.get(d.api("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let doc = served(&d).await;
    assert_eq!(
        doc,
        serde_json::to_value(crewd::api::document()).unwrap(),
        "the served document is the generated one"
    );

    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1."), "openapi {version:?}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // Every $ref points at a component that exists.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in &refs {
        let Some(pointer) = r.strip_prefix('#') else {
            panic!("external $ref {r:?}");
        };
        assert!(
            pointer.starts_with("/components/") && doc.pointer(pointer).is_some(),
            "$ref {r:?} does not resolve"
        );
    }

    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let declared_in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            if !HTTP_METHODS.contains(&method.as_str()) {
                continue;
            }
            let where_ = format!("{method} {path}");
            let id = op["operationId"].as_str().unwrap_or("");
            assert!(!id.is_empty(), "{where_} has no operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(op["summary"].is_string(), "{where_} has no summary");
            let responses = op["responses"].as_object().expect("responses");
            assert!(!responses.is_empty(), "{where_} has no responses");
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            assert_eq!(params, declared_in_path, "{where_}: path parameters");
            // Every route but the probes needs the token when auth is on.
            let public = op["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|o| o.is_empty()))
            });
            let probe = path == "/healthz" || path == "/livez";
            assert_eq!(public, probe || path.contains("/stream/"), "{where_}");
            if !probe {
                assert!(responses.contains_key("401"), "{where_} lacks its 401");
            }
        }
    }
    d.stop().await;
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}
