//! `sotto-chat`: with no arguments, a scripted chat between three client
//! processes over a relay on loopback TCP, one client killed with SIGKILL
//! and restarted mid-conversation. `sotto-chat relay --listen ADDR` and
//! `sotto-chat client --relay ADDR --db FILE --user NAME` run the same
//! pieces interactively, in separate terminals.

mod client;
mod relay;
mod script;
mod wire;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  sotto-chat                                          the scripted demo
  sotto-chat relay --listen 127.0.0.1:PORT            a relay
  sotto-chat client --relay ADDR --db FILE --user NAME
      then type: /msg USER TEXT   /group NAME USER,USER   /g NAME TEXT   /quit";

/// The value after `--name` in `args`.
fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => script::run(),
        Some("relay") => {
            let listen = flag(&args, "--listen").unwrap_or_else(|| "127.0.0.1:7400".into());
            TcpListener::bind(&listen).and_then(|listener| {
                // The scripted demo reads the port from this line.
                println!("relay listening on {}", listener.local_addr()?);
                relay::serve(listener)
            })
        }
        Some("client") => match (
            flag(&args, "--relay"),
            flag(&args, "--db"),
            flag(&args, "--user"),
        ) {
            (Some(relay), Some(db), Some(user)) => {
                client::Client::start(&relay, &PathBuf::from(db), &user)
                    .and_then(client::Client::run)
            }
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        },
        Some(_) => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sotto-chat: {e}");
            ExitCode::FAILURE
        }
    }
}
