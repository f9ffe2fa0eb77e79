//! How client commands find the server: flags, then `GANTRY_URL`/`GANTRY_TOKEN`, then
//! the client config file (`GANTRY_CONFIG`, default `~/.config/gantry/config.yaml`).

use std::path::PathBuf;

use clap::Args;
use gantry_api::client::Client;

use crate::commands::UsageError;

const DEFAULT_SERVER: &str = "http://127.0.0.1:8420";

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Gantry server's URL [default: from the config file, else port 8420 on 127.0.0.1].
    #[arg(long, value_name = "URL", env = "GANTRY_URL", global = true)]
    pub server: Option<String>,
    /// An API token (`gantry serve` prints the admin token on its first start).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GANTRY_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
}

/// The client config file: `server`, and `token` or `token_file`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientFile {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<String>,
}

fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GANTRY_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("gantry/config.yaml"))
}

fn read_config() -> Result<ClientFile, UsageError> {
    let Some(path) = config_path() else {
        return Ok(ClientFile::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && std::env::var_os("GANTRY_CONFIG").is_none() =>
        {
            return Ok(ClientFile::default());
        }
        Err(e) => return Err(UsageError(format!("{}: {e}", path.display()))),
    };
    let mut file: ClientFile =
        gantry_engine::project_file::parse_settings(&path.display().to_string(), &text)
            .map_err(|e| UsageError(e.to_string()))?;
    if let Some(token_file) = file.token_file.take() {
        let token_path = path
            .parent()
            .map_or_else(|| PathBuf::from(&token_file), |dir| dir.join(&token_file));
        let token = std::fs::read_to_string(&token_path).map_err(|e| {
            UsageError(format!(
                "{}: token_file {}: {e}",
                path.display(),
                token_path.display()
            ))
        })?;
        file.token = Some(token.trim().to_owned());
    }
    Ok(file)
}

impl ServerArgs {
    pub fn client(&self) -> Result<Client, UsageError> {
        let file = if self.server.is_some() && self.token.is_some() {
            ClientFile::default()
        } else {
            read_config()?
        };
        let server = self
            .server
            .clone()
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(UsageError(format!(
                "--server {server:?}: expected an http:// or https:// URL"
            )));
        }
        Ok(Client::new(&server, self.token.clone().or(file.token)))
    }
}
