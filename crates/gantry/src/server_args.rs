//! How client commands find the server: flags, then `GANTRY_URL`/`GANTRY_TOKEN`.

use clap::Args;
use gantry_api::client::Client;

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The Gantry server's URL.
    #[arg(
        long,
        value_name = "URL",
        env = "GANTRY_URL",
        default_value = "http://127.0.0.1:8420",
        global = true
    )]
    pub server: String,
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

impl ServerArgs {
    pub fn client(&self) -> Client {
        Client::new(&self.server, self.token.clone())
    }
}
