//! `rollouts create --wait` / `rollouts get --wait`: follow a rollout until it ends. On a
//! terminal, one progress bar per stage; otherwise one line each time the counts change.
//! Succeeded is exit 0; halted or cancelled exit 1 (a paused rollout is waited for).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::client::{Client, ClientError};
use super::output::stage_progress;
use super::wait::Target;
use crate::wire::rollouts::RolloutState;
use crate::wire::rollouts::{RolloutStage, RolloutView};

enum Display {
    Bars(MultiProgress, Vec<ProgressBar>),
    Lines(Target, Instant, String),
}

fn total(s: &RolloutStage) -> u64 {
    let c = &s.counts;
    (c.pending + c.migrating + c.succeeded + c.failed + c.skipped).max(0) as u64
}

fn done(s: &RolloutStage) -> u64 {
    let c = &s.counts;
    (c.succeeded + c.failed + c.skipped).max(0) as u64
}

impl Display {
    fn new(target: Target) -> Self {
        let tty = match target {
            Target::Stdout => std::io::stdout().is_terminal(),
            Target::Stderr => std::io::stderr().is_terminal(),
        };
        if !tty {
            return Display::Lines(target, Instant::now(), String::new());
        }
        let draw = match target {
            Target::Stdout => ProgressDrawTarget::stdout(),
            Target::Stderr => ProgressDrawTarget::stderr(),
        };
        Display::Bars(MultiProgress::with_draw_target(draw), Vec::new())
    }

    fn show(&mut self, r: &RolloutView) {
        match self {
            Display::Bars(multi, bars) => {
                while bars.len() < r.stages.len() {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {msg}")
                            .expect("valid template")
                            .progress_chars("=> "),
                    );
                    bars.push(bar);
                }
                for (bar, stage) in bars.iter().zip(&r.stages) {
                    bar.set_prefix(stage.name.clone());
                    bar.set_length(total(stage));
                    bar.set_position(done(stage));
                    let c = &stage.counts;
                    bar.set_message(format!(
                        "{} migrating, {} failed, {} skipped ({})",
                        c.migrating,
                        c.failed,
                        c.skipped,
                        r.state.as_str()
                    ));
                }
            }
            Display::Lines(target, started, last) => {
                let stages: Vec<String> = r.stages.iter().map(stage_progress).collect();
                let line = format!("{}: {}", r.state.as_str(), stages.join("; "));
                if *line == *last {
                    return;
                }
                let out = format!("[{:>5}s] {line}", started.elapsed().as_secs());
                let _ = match target {
                    Target::Stdout => writeln!(std::io::stdout(), "{out}"),
                    Target::Stderr => writeln!(std::io::stderr(), "{out}"),
                };
                *last = line;
            }
        }
    }

    fn finish(&self) {
        if let Display::Bars(_, bars) = self {
            for bar in bars {
                bar.finish();
            }
        }
    }
}

/// Follows rollout `id` until it succeeds, halts or is cancelled; returns it as it ended.
pub async fn follow(
    client: &Client,
    id: &str,
    every: Duration,
    target: Target,
) -> Result<RolloutView, ClientError> {
    let mut display = Display::new(target);
    loop {
        let r = client.get_rollout(id).await?;
        display.show(&r);
        if matches!(
            r.state,
            RolloutState::Succeeded | RolloutState::Halted | RolloutState::Cancelled
        ) {
            display.finish();
            return Ok(r);
        }
        tokio::time::sleep(every).await;
    }
}
