//! The scripted demo: a relay and three clients as child processes of this
//! binary, each client with its own SQLite store, driven through their
//! stdin like a person at three terminals; one is killed with SIGKILL and
//! restarted mid-conversation, and nothing is lost.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};

/// How long one expected line may take.
const WAIT: Duration = Duration::from_secs(30);

struct Demo {
    exe: PathBuf,
    dir: PathBuf,
    relay_addr: String,
    clients: HashMap<&'static str, (Child, ChildStdin)>,
    lines_tx: Sender<(&'static str, String)>,
    lines: Receiver<(&'static str, String)>,
    /// Every line every client printed, in arrival order, and how many of
    /// them `expect` has looked at.
    seen: Vec<(&'static str, String)>,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn step(text: &str) {
    println!("\n== {text}");
}

impl Demo {
    fn spawn(&mut self, who: &'static str) -> io::Result<()> {
        let mut child = Command::new(&self.exe)
            .args(["client", "--relay", &self.relay_addr, "--db"])
            .arg(self.dir.join(format!("{who}.db")))
            .args(["--user", who])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| other("no stdin"))?;
        let stdout = child.stdout.take().ok_or_else(|| other("no stdout"))?;
        let tx = self.lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("   {line}");
                if tx.send((who, line)).is_err() {
                    break;
                }
            }
        });
        self.clients.insert(who, (child, stdin));
        Ok(())
    }

    fn say(&mut self, who: &str, line: &str) -> io::Result<()> {
        let (_, stdin) = self
            .clients
            .get_mut(who)
            .ok_or_else(|| other(format!("{who} is not running")))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Waits until `who` printed a line containing `needle`.
    fn expect(&mut self, who: &str, needle: &str) -> io::Result<()> {
        let found =
            |seen: &[(&str, String)]| seen.iter().any(|(w, l)| *w == who && l.contains(needle));
        let deadline = Instant::now() + WAIT;
        while !found(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => return Err(other(format!("{who} never printed {needle:?}"))),
            }
        }
        Ok(())
    }

    /// `who` shows `text` from `from` once or more, and at most once other
    /// than again from its inbox after a restart.
    fn shown_once(&self, who: &str, from: &str, text: &str) -> io::Result<()> {
        let needle = format!("] {from}: {text}");
        let lines: Vec<&String> = self
            .seen
            .iter()
            .filter(|(w, l)| *w == who && l.contains(&needle))
            .map(|(_, l)| l)
            .collect();
        let fresh = lines
            .iter()
            .filter(|l| !l.ends_with("(from the inbox)"))
            .count();
        if lines.is_empty() || fresh > 1 {
            return Err(other(format!(
                "{who} showed {needle:?} {} times",
                lines.len()
            )));
        }
        Ok(())
    }

    fn kill(&mut self, who: &str) -> io::Result<()> {
        let (mut child, _) = self
            .clients
            .remove(who)
            .ok_or_else(|| other(format!("{who} is not running")))?;
        // Child::kill is SIGKILL: no destructor, no flush, no goodbye.
        child.kill()?;
        child.wait()?;
        Ok(())
    }

    fn quit(&mut self) -> io::Result<()> {
        for (_, (mut child, mut stdin)) in self.clients.drain() {
            writeln!(stdin, "/quit")?;
            drop(stdin);
            let status = child.wait()?;
            if !status.success() {
                return Err(other(format!("a client exited with {status}")));
            }
        }
        Ok(())
    }
}

/// Runs the scripted demo in a fresh directory under the temp directory.
///
/// # Errors
///
/// The first step that did not happen in time, or I/O errors.
pub(crate) fn run() -> io::Result<()> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("sotto-chat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let exe = std::env::current_exe()?;
    let mut relay = Command::new(&exe)
        .args(["relay", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        let mut first = String::new();
        let stdout = relay
            .stdout
            .take()
            .ok_or_else(|| other("no relay stdout"))?;
        BufReader::new(stdout).read_line(&mut first)?;
        let relay_addr = first
            .trim()
            .rsplit(' ')
            .next()
            .ok_or_else(|| other("relay did not start"))?
            .to_owned();
        let (lines_tx, lines) = mpsc::channel();
        let mut demo = Demo {
            exe: exe.clone(),
            dir: dir.clone(),
            relay_addr,
            clients: HashMap::new(),
            lines_tx,
            lines,
            seen: Vec::new(),
        };
        script(&mut demo, &dir)
    })();
    let _ = relay.kill();
    let _ = relay.wait();
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!(
        "\n== done in {:.1}s: every message arrived, none twice, across a SIGKILL",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn script(demo: &mut Demo, dir: &Path) -> io::Result<()> {
    step(&format!(
        "1. a relay on {} (prekey directory + mailbox) and three clients, each with its own \
         SQLite store in {}: each makes its device and uploads its prekeys",
        demo.relay_addr,
        dir.display()
    ));
    for who in ["alice", "bob", "carol"] {
        demo.spawn(who)?;
        demo.expect(who, "ready")?;
    }

    step(
        "2. pairwise: Alice fetches Bob's bundle (its one-time prekeys handed out once), runs PQXDH and writes; each message is committed to the store before it is sent or shown",
    );
    demo.say("alice", "/msg bob Hi Bob, it's Alice")?;
    demo.expect("bob", "alice: Hi Bob, it's Alice")?;
    demo.say("bob", "/msg alice Hi Alice!")?;
    demo.expect("alice", "bob: Hi Alice!")?;
    demo.say("carol", "/msg alice Hello Alice, Carol here")?;
    demo.expect("alice", "carol: Hello Alice, Carol here")?;

    step(
        "3. a group: Alice invites Bob and Carol to #friends; each member's sender key goes to every member device over the pairwise sessions (Bob and Carol start one), then one group message reaches everyone",
    );
    demo.say("alice", "/group friends bob,carol")?;
    demo.expect("bob", "joined #friends")?;
    demo.expect("carol", "joined #friends")?;
    demo.say("alice", "/g friends Dinner at eight?")?;
    demo.expect("bob", "#friends alice: Dinner at eight?")?;
    demo.expect("carol", "#friends alice: Dinner at eight?")?;
    demo.say("bob", "/g friends I'll bring dessert")?;
    demo.expect("alice", "#friends bob: I'll bring dessert")?;
    demo.expect("carol", "#friends bob: I'll bring dessert")?;

    step("4. Bob's process is killed with SIGKILL while Alice is writing to him");
    demo.say("alice", "/msg bob one")?;
    demo.expect("bob", "alice: one")?;
    demo.say("alice", "/msg bob two")?;
    demo.say("alice", "/msg bob three")?;
    demo.kill("bob")?;
    println!("   (bob killed)");
    demo.expect("alice", "-> bob: three")?;
    demo.say("alice", "/msg bob four, while you are away")?;
    demo.expect("alice", "-> bob: four")?;
    demo.say("carol", "/g friends Where is Bob?")?;
    demo.expect("alice", "#friends carol: Where is Bob?")?;

    step(
        "5. Bob restarts on the same database: his store shows what it had committed, the relay sends again what he never acknowledged, duplicates are refused by the ratchet",
    );
    demo.spawn("bob")?;
    demo.expect("bob", "ready")?;
    for text in ["two", "three", "four, while you are away"] {
        demo.expect("bob", &format!("alice: {text}"))?;
    }
    demo.expect("bob", "#friends carol: Where is Bob?")?;
    demo.say("bob", "/msg alice Back, and nothing is missing")?;
    demo.expect("alice", "bob: Back, and nothing is missing")?;

    step("6. checks");
    for text in ["one", "two", "three", "four, while you are away"] {
        demo.shown_once("bob", "alice", text)?;
    }
    demo.shown_once("bob", "#friends carol", "Where is Bob?")?;
    println!("   bob saw each of alice's four messages and carol's group message exactly once");
    demo.quit()
}
