//! Registry credentials and the challenge flows: anonymous, basic and bearer tokens.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gantry_core::DOCKER_HUB;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A username and a secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    secret: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: secret.into(),
        }
    }

    /// Parses `USER:PASSWORD` as given on the command line.
    pub fn parse(text: &str) -> Result<Credentials> {
        match text.split_once(':') {
            Some((user, secret)) if !user.is_empty() => Ok(Credentials::new(user, secret)),
            _ => Err(Error::Credentials(
                "expected USER:PASSWORD (the user must not be empty)".to_owned(),
            )),
        }
    }

    /// The value of an `Authorization: Basic` header.
    pub(crate) fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.username, self.secret))
        )
    }

    #[cfg(test)]
    pub(crate) fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Where credentials come from when none are given on the command line, in the order
/// skopeo and docker use: `$REGISTRY_AUTH_FILE`, then containers' `auth.json`, then
/// docker's `config.json` (`$DOCKER_CONFIG` or `~/.docker`), each with `credHelpers`
/// and `credsStore` honoured.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    files: Vec<PathBuf>,
    /// Where to find `docker-credential-*` helpers; `None` means `$PATH`.
    helper_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

impl CredentialSources {
    /// The standard places, read from the environment.
    pub fn from_environment() -> CredentialSources {
        let mut files = Vec::new();
        if let Some(path) = std::env::var_os("REGISTRY_AUTH_FILE") {
            files.push(PathBuf::from(path));
        }
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
            files.push(Path::new(&runtime).join("containers/auth.json"));
        }
        if let Some(config) = std::env::var_os("XDG_CONFIG_HOME") {
            files.push(Path::new(&config).join("containers/auth.json"));
        }
        if let Some(docker) = std::env::var_os("DOCKER_CONFIG") {
            files.push(Path::new(&docker).join("config.json"));
        } else if let Some(home) = std::env::var_os("HOME") {
            files.push(Path::new(&home).join(".docker/config.json"));
        }
        CredentialSources {
            files,
            helper_dir: None,
        }
    }

    /// Only these files, e.g. for tests.
    pub fn from_files(files: Vec<PathBuf>) -> CredentialSources {
        CredentialSources {
            files,
            helper_dir: None,
        }
    }

    /// Looks for credential helpers in `dir` instead of `$PATH`.
    #[must_use]
    pub fn with_helper_dir(mut self, dir: PathBuf) -> CredentialSources {
        self.helper_dir = Some(dir);
        self
    }

    /// Credentials for `registry` (`host[:port]`, Docker Hub as `docker.io`), or `None`
    /// for anonymous access. A file that exists but cannot be read is an error: silently
    /// going anonymous would turn a typo into a confusing 401 later.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
        let keys = auth_keys(registry);
        for path in &self.files {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::Credentials(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
            };
            let file: AuthFile = serde_json::from_str(&text).map_err(|e| {
                Error::Credentials(format!("{} is not a valid auth file: {e}", path.display()))
            })?;
            for key in &keys {
                if let Some(helper) = file.cred_helpers.get(key.as_str()) {
                    return self.run_helper(helper, key).map(Some);
                }
            }
            for (key, entry) in &file.auths {
                if keys.iter().any(|k| k == &normalize_auth_key(key)) {
                    if let Some(credentials) = entry_credentials(entry, path)? {
                        return Ok(Some(credentials));
                    }
                }
            }
            if let Some(store) = &file.creds_store {
                if let Some(credentials) = self.run_helper_optional(store, &keys[0])? {
                    return Ok(Some(credentials));
                }
            }
        }
        Ok(None)
    }
}

impl CredentialSources {
    fn run_helper(&self, helper: &str, server: &str) -> Result<Credentials> {
        self.run_helper_optional(helper, server)?.ok_or_else(|| {
            Error::Credentials(format!(
                "docker-credential-{helper} has no credentials for {server}"
            ))
        })
    }

    /// Runs `docker-credential-<helper> get` with the server on stdin. A helper that says
    /// it has nothing for this server means anonymous; a helper that cannot run is an error.
    fn run_helper_optional(&self, helper: &str, server: &str) -> Result<Option<Credentials>> {
        let program = format!("docker-credential-{helper}");
        let path = self
            .helper_dir
            .as_ref()
            .map_or_else(|| PathBuf::from(&program), |dir| dir.join(&program));
        let mut child = Command::new(path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Credentials(format!("cannot run {program}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(server.as_bytes())
                .map_err(|e| Error::Credentials(format!("cannot write to {program}: {e}")))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| Error::Credentials(format!("{program} failed: {e}")))?;
        if !output.status.success() {
            let message = String::from_utf8_lossy(&output.stdout);
            if message.contains("credentials not found") {
                return Ok(None);
            }
            return Err(Error::Credentials(format!(
                "{program} get exited with {}",
                output.status
            )));
        }
        let answer: HelperAnswer = serde_json::from_slice(&output.stdout).map_err(|e| {
            Error::Credentials(format!(
                "{program} answered something that is not credentials JSON: {e}"
            ))
        })?;
        Ok(Some(Credentials::new(answer.username, answer.secret)))
    }
}

/// The keys an auth file may use for a registry. Docker Hub has its historical URL.
fn auth_keys(registry: &str) -> Vec<String> {
    if registry == DOCKER_HUB {
        vec![
            "https://index.docker.io/v1/".to_owned(),
            "docker.io".to_owned(),
            "index.docker.io".to_owned(),
        ]
    } else {
        vec![registry.to_owned()]
    }
}

/// `https://host/v1/` → `host`, so keys written as URLs match plain host names.
fn normalize_auth_key(key: &str) -> String {
    if key == "https://index.docker.io/v1/" {
        return key.to_owned();
    }
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_owned()
}

fn entry_credentials(entry: &AuthEntry, path: &Path) -> Result<Option<Credentials>> {
    if let Some(token) = &entry.identitytoken {
        if !token.is_empty() {
            return Ok(Some(Credentials::new("<token>", token.clone())));
        }
    }
    if let Some(auth) = &entry.auth {
        if auth.is_empty() {
            return Ok(None);
        }
        let decoded = BASE64
            .decode(auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                Error::Credentials(format!(
                    "{}: an \"auth\" entry is not base64 of user:password",
                    path.display()
                ))
            })?;
        return Credentials::parse(&decoded).map(Some).map_err(|_| {
            Error::Credentials(format!(
                "{}: an \"auth\" entry does not decode to user:password",
                path.display()
            ))
        });
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) => Ok(Some(Credentials::new(user.clone(), password.clone()))),
        _ => Ok(None),
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses the first challenge Gantry understands; `None` for anything else.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

/// `key="value",key2=value2` with quoted values that may contain commas.
fn parse_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    params
}

/// A token endpoint's answer; registries use either field name.
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(parse_challenge("Basic realm=\"x\""), Some(Challenge::Basic));
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".to_owned(),
                service: Some("registry.example".to_owned())
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn credentials_never_print_their_secret() {
        let credentials = Credentials::parse("ci:hunter2").unwrap();
        assert!(!format!("{credentials:?}").contains("hunter2"));
        assert!(Credentials::parse("nouser").is_err());
        assert!(Credentials::parse(":pw").is_err());
    }

    #[test]
    fn reads_auth_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {"https://reg.example:5000/v1/": {"auth": "dXNlcjpwYXNz"},
                          "https://index.docker.io/v1/": {"username": "hub", "password": "pw"},
                          "empty.example": {}}}"#,
        )
        .unwrap();
        let sources = CredentialSources::from_files(vec![path]);
        let found = sources.lookup("reg.example:5000").unwrap().unwrap();
        assert_eq!((found.username.as_str(), found.secret()), ("user", "pass"));
        let hub = sources.lookup("docker.io").unwrap().unwrap();
        assert_eq!(hub.username, "hub");
        assert_eq!(sources.lookup("empty.example").unwrap(), None);
        assert_eq!(sources.lookup("other.example").unwrap(), None);
    }

    #[test]
    fn broken_auth_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.json");
        std::fs::write(&path, "{not json").unwrap();
        let error = CredentialSources::from_files(vec![path])
            .lookup("x.io")
            .unwrap_err();
        assert!(
            error.to_string().contains("is not a valid auth file"),
            "{error}"
        );
    }

    #[test]
    fn credential_helpers_are_run() {
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-testhelper");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\n[ \"$server\" = reg.example ] || { echo 'credentials not found in native keychain'; exit 1; }\necho '{\"ServerURL\":\"reg.example\",\"Username\":\"helped\",\"Secret\":\"s\"}'\n",
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&helper)
            .status()
            .unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, r#"{"credsStore": "testhelper"}"#).unwrap();
        let sources =
            CredentialSources::from_files(vec![config]).with_helper_dir(dir.path().to_owned());
        assert_eq!(
            sources.lookup("reg.example").unwrap().unwrap().username,
            "helped"
        );
        assert_eq!(sources.lookup("other.example").unwrap(), None);
    }
}
