//! The simulated trackers of the tests, as one program, for the README's
//! walk-through: a Jira Cloud on 127.0.0.1:9100 (API token `bot@example.com` /
//! `sim-token`; issues SEN-5 and APP-123; user Bob, `Bob@example.com`) and a
//! Discord on 127.0.0.1:9103 (bot token and channel of `discord_sim`). It prints
//! every request it receives and every Discord message as it is posted or edited.
//!
//! `cargo run -p trackbridge-e2e --bin simulators`

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use trackbridge_e2e::discord_sim::{BOT_TOKEN, CHANNEL_ID, DiscordSim};
use trackbridge_e2e::jira_sim::{JiraAuth, JiraSim};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let jira = JiraSim::start_on(
        SocketAddr::from(([127, 0, 0, 1], 9100)),
        JiraAuth::basic("bot@example.com", "sim-token"),
    )
    .await?;
    let discord = DiscordSim::start_on(SocketAddr::from(([127, 0, 0, 1], 9103))).await?;
    println!("simulated Jira Cloud: {}", jira.base_url());
    println!(
        "simulated Discord API: {} (bot token {BOT_TOKEN}, channel {CHANNEL_ID})",
        discord.api_base_url()
    );
    let (mut seen, mut messages) = (0, BTreeMap::new());
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let requests = jira.recorder().requests();
        for r in requests.iter().skip(seen) {
            println!("jira: {}", r.summary());
        }
        seen = requests.len();
        let now = discord.messages();
        for (id, content) in &now {
            if messages.get(id) != Some(content) {
                println!("discord message {id}:\n{content}\n");
            }
        }
        messages = now;
    }
}
