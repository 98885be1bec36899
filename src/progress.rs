//! The terminal view of a sweep: one indicatif bar for the run in progress
//! (run i of N, epoch, loss, ETA) and one line per finished run. The bar
//! draws only on a terminal; the lines are always printed (to stderr).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Observer, SweepEvent};
use crate::store::RunState;
use crate::train::TrainEvent;

pub struct ProgressView {
    bar: ProgressBar,
    epochs: i64,
    steps: i64,
    prefix: String,
}

impl Default for ProgressView {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressView {
    pub fn new() -> Self {
        ProgressView {
            bar: ProgressBar::hidden(),
            epochs: 0,
            steps: 0,
            prefix: String::new(),
        }
    }

    fn say(&self, line: String) {
        self.bar.suspend(|| eprintln!("{line}"));
    }
}

impl Observer for ProgressView {
    fn event(&mut self, event: &SweepEvent) {
        match event {
            SweepEvent::RunStarted {
                experiment,
                run,
                index,
                count,
                device,
            } => {
                self.epochs = run.spec.training.epochs;
                self.prefix = format!("run {index}/{count} {experiment} {}", run.label());
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:24}] {msg} {elapsed_precise} ETA {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(self.prefix.clone());
                bar.set_message(format!("on {device}"));
                bar.enable_steady_tick(Duration::from_millis(250));
                self.bar = bar;
            }
            SweepEvent::Train(TrainEvent::Started {
                steps_per_epoch, ..
            }) => {
                self.steps = *steps_per_epoch;
                self.bar.set_length((self.epochs * self.steps) as u64);
            }
            SweepEvent::Train(TrainEvent::Step { epoch, step, loss }) => {
                self.bar
                    .set_position(((epoch - 1) * self.steps + step) as u64);
                if let Some(loss) = loss {
                    self.bar
                        .set_message(format!("epoch {epoch}/{} loss {loss:.4}", self.epochs));
                }
            }
            SweepEvent::Train(TrainEvent::Epoch(row)) => {
                self.bar.set_message(format!(
                    "epoch {}/{} test loss {:.4}",
                    row.epoch, self.epochs, row.test_loss
                ));
            }
            SweepEvent::Train(TrainEvent::Finishing) => {
                self.bar.set_message("making end-of-run files (samples)");
            }
            SweepEvent::RunFinished {
                state,
                seconds,
                last,
                error,
                ..
            } => {
                self.bar.finish_and_clear();
                let detail = match (state, last) {
                    (RunState::Failed, _) => {
                        format!("FAILED: {}", error.unwrap_or("unknown error"))
                    }
                    (RunState::Diverged, Some(row)) => format!("diverged at epoch {}", row.epoch),
                    (_, Some(row)) => match row.test_accuracy {
                        Some(acc) => format!(
                            "test loss {:.4}, accuracy {:.2}%",
                            row.test_loss,
                            100.0 * acc
                        ),
                        None => format!("test loss {:.4}", row.test_loss),
                    },
                    (_, None) => "no epoch recorded".to_string(),
                };
                let line = format!("{}: {detail} ({seconds:.1} s)", self.prefix);
                self.bar = ProgressBar::hidden();
                self.say(line);
            }
        }
    }
}
