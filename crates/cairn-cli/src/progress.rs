//! Live progress: a thread that redraws one status line on the terminal
//! (stderr), or prints JSON status lines (stdout) with `--json`, until stopped.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Terminal,
    Json,
}

impl Mode {
    pub fn choose(json: bool, quiet: bool) -> Mode {
        if json {
            Mode::Json
        } else if !quiet && std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Off
        }
    }
}

pub struct Reporter {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    mode: Mode,
}

/// What a status callback produces each tick.
pub enum Status {
    Line(String),
    Json(serde_json::Value),
}

impl Reporter {
    /// Call `status(elapsed)` every tick and show the result.
    pub fn start(mode: Mode, status: impl Fn(Duration) -> Status + Send + 'static) -> Reporter {
        let stop = Arc::new(AtomicBool::new(false));
        if mode == Mode::Off {
            return Reporter {
                stop,
                handle: None,
                mode,
            };
        }
        let s = stop.clone();
        let tick = if mode == Mode::Json {
            Duration::from_millis(1000)
        } else {
            Duration::from_millis(200)
        };
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            let mut next = start + tick;
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if Instant::now() < next {
                    continue;
                }
                next += tick;
                match status(start.elapsed()) {
                    Status::Line(l) => {
                        let mut e = std::io::stderr().lock();
                        let _ = write!(e, "\r\x1b[K{l}");
                        let _ = e.flush();
                    }
                    Status::Json(v) => crate::output::json_line(&v),
                }
            }
        });
        Reporter {
            stop,
            handle: Some(handle),
            mode,
        }
    }

    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
            if self.mode == Mode::Terminal {
                eprint!("\r\x1b[K");
            }
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop_now();
    }
}

pub fn eta(done: u64, total: u64, elapsed: Duration) -> Option<u64> {
    if done == 0 || total <= done {
        return None;
    }
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    Some(((total - done) as f64 / rate) as u64)
}
