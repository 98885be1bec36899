//! What a sweep reports while it works. Scheduling and training never print;
//! views (the progress bars, logs) implement `Observer`.

use crate::plan::Run;
use crate::store::RunState;
use crate::train::{EpochRecord, TrainEvent};

pub enum SweepEvent<'a> {
    /// A run is about to train: the `index`-th of `count` to compute.
    RunStarted {
        experiment: &'a str,
        run: &'a Run,
        index: usize,
        count: usize,
        device: &'a str,
    },
    Train(TrainEvent<'a>),
    RunFinished {
        experiment: &'a str,
        run: &'a Run,
        state: RunState,
        seconds: f64,
        last: Option<&'a EpochRecord>,
        error: Option<&'a str>,
    },
}

pub trait Observer {
    fn event(&mut self, event: &SweepEvent);
}

/// Discards every event (tests, scripts).
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: &SweepEvent) {}
}
