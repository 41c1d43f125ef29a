//! Tokens from an external identity provider: JWTs signed by a key in its JWKS, for
//! districts that sign their staff in elsewhere. The token's `sub` names a coachsync
//! user, who must exist: the role, organisation and groups that decide access stay in
//! coachsync, in one place.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Verifies JWTs against one issuer, audience and key set.
#[derive(Clone, Debug)]
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    keys: JwkSet,
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    jti: Option<String>,
}

/// What a verified token says.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// The user's name (`sub`).
    pub user: String,
    /// An id for the session: `jwt:` and the token's `jti` (or `sub`).
    pub id: String,
}

impl JwtVerifier {
    /// Read the key set from a JWKS file (`{"keys": [...]}`).
    pub fn load(issuer: &str, audience: &str, jwks: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(jwks).map_err(|e| {
            Error::Config(format!("cannot read the JWKS file {}: {e}", jwks.display()))
        })?;
        let keys: JwkSet = serde_json::from_str(&text).map_err(|e| {
            Error::Config(format!(
                "the JWKS file {} is not a key set: {e}",
                jwks.display()
            ))
        })?;
        if keys.keys.is_empty() {
            return Err(Error::Config(format!(
                "the JWKS file {} has no keys",
                jwks.display()
            )));
        }
        Ok(Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            keys,
        })
    }

    /// Check a token's signature, issuer, audience and expiry; the reason when it
    /// fails, for the audit log.
    pub fn verify(&self, token: &str) -> std::result::Result<Verified, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        let jwk = match &header.kid {
            Some(kid) => self.keys.find(kid),
            None if self.keys.keys.len() == 1 => self.keys.keys.first(),
            None => None,
        }
        .ok_or("no key in the JWKS matches the token's kid")?;
        // The key decides the algorithm, never the token: a token cannot pick HMAC
        // with a public key as its secret, or "none".
        let allowed: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => &[Algorithm::ES256],
                EllipticCurve::P384 => &[Algorithm::ES384],
                _ => &[],
            },
            AlgorithmParameters::RSA(_) => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::OctetKeyPair(_) => &[Algorithm::EdDSA],
            _ => &[],
        };
        if !allowed.contains(&header.alg) {
            return Err(format!("algorithm {:?} does not fit the key", header.alg));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key: {e}"))?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = allowed.to_vec();
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| format!("rejected JWT: {e}"))?;
        let id = format!(
            "jwt:{}",
            data.claims.jti.as_deref().unwrap_or(&data.claims.sub)
        );
        Ok(Verified {
            user: data.claims.sub,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    /// A P-256 key pair: its JWKS (kid `k1`) and a signer.
    fn keys() -> (serde_json::Value, EncodingKey) {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwks = json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        }]});
        let signer = EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap();
        (jwks, signer)
    }

    fn verifier(jwks: &serde_json::Value) -> JwtVerifier {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        JwtVerifier::load("https://idp.example", "coachsync", &path).unwrap()
    }

    fn token(signer: &EncodingKey, claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        jsonwebtoken::encode(&header, &claims, signer).unwrap()
    }

    fn claims(exp_offset: i64) -> serde_json::Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        json!({"iss": "https://idp.example", "aud": "coachsync", "sub": "ana", "exp": now + exp_offset})
    }

    #[test]
    fn a_token_signed_by_the_providers_key_names_its_user() {
        let (jwks, signer) = keys();
        let v = verifier(&jwks);
        let verified = v.verify(&token(&signer, claims(600))).unwrap();
        assert_eq!(verified.user, "ana");
    }

    #[test]
    fn wrong_issuer_audience_expiry_key_or_algorithm_is_refused() {
        let (jwks, signer) = keys();
        let v = verifier(&jwks);
        let mut wrong_iss = claims(600);
        wrong_iss["iss"] = json!("https://other.example");
        let mut wrong_aud = claims(600);
        wrong_aud["aud"] = json!("someone-else");
        let mut no_sub = claims(600);
        no_sub.as_object_mut().unwrap().remove("sub");
        for (what, claims) in [
            ("issuer", wrong_iss),
            ("audience", wrong_aud),
            ("expired", claims(-600)),
            ("no sub", no_sub),
        ] {
            assert!(v.verify(&token(&signer, claims)).is_err(), "{what}");
        }
        // Signed by another key with the same kid.
        let (_, other) = keys();
        assert!(v.verify(&token(&other, claims(600))).is_err());
        // HMAC or "none", whatever the token says.
        let hs = jsonwebtoken::encode(
            &Header {
                kid: Some("k1".into()),
                ..Header::new(Algorithm::HS256)
            },
            &claims(600),
            &EncodingKey::from_secret(b"guess"),
        )
        .unwrap();
        assert!(v.verify(&hs).unwrap_err().contains("does not fit"));
        assert!(v.verify("not.a.jwt").is_err());
    }
}
