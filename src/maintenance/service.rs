//! A maintenance service: a periodic round of work that one process does for the whole fleet
//! (the leader), with what the others do meanwhile.

use std::time::Duration;

use async_trait::async_trait;

use super::term::Term;

/// Why a round failed; logged, and the next round tries again.
pub type RoundError = Box<dyn std::error::Error + Send + Sync>;

#[async_trait]
pub trait Service: Send + Sync + 'static {
    /// Names the service in logs and metrics.
    fn name(&self) -> &'static str;

    /// Time between two rounds; zero switches the service off.
    fn every(&self) -> Duration;

    /// One round, on the leader, in its `term`: dropped unfinished when the term ends; its
    /// writes to the control database go through [`Term::fence`].
    async fn lead(&self, term: &Term) -> Result<(), RoundError>;

    /// One round on a process that is not the leader; most services do nothing there.
    async fn follow(&self) -> Result<(), RoundError> {
        Ok(())
    }
}
