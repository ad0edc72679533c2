//! One run of a script in the engine: a fresh QuickJS runtime and context, limits set,
//! `console` and `print` writing to a capped buffer, the script evaluated, its promise jobs
//! drained. This is what the sandbox process ([`crate::child`]) does; [`execute`] can also be
//! called in-process, but only a sandbox process can be killed if the engine fails to stop.
//!
//! The context has the ECMAScript built-ins only (plus `console`, `print`, `performance`,
//! `atob`/`btoa`): no module loader, so `import` fails; no `std`/`os` modules, `require`,
//! `fetch` or timers; `Atomics.wait` cannot block. A script reaches neither the file system
//! nor the network. The engine enforces the limits itself (heap limit, stack limit, an
//! interrupt handler counting the thread's CPU time), so a run that trips one returns normally
//! with a readable error. The interrupt handler is only polled by bytecode and some built-ins,
//! though: native string search, for one, never polls it, which is why calls run in a
//! process of their own ([`crate::supervisor`]).

use std::{
    cell::RefCell,
    fmt,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use rquickjs::{
    context::EvalOptions, function::Rest, promise::PromiseState, Context, Ctx, Error, Function,
    Object, Runtime, Value,
};

use serde::{Deserialize, Serialize};

use crate::{
    limits::Limits,
    os,
    output::{truncate, Output},
    render::{self, SCRIPT_NAME},
};

/// Why a run whose promise is still pending once no job is left fails.
const NEVER_SETTLES: &str =
    "the script awaited a promise that never settles (there are no timers or I/O to settle it)";

/// What one run produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// What the script printed, capped at the output limit.
    pub output: String,
    /// The value of the last expression (`None` for `undefined`), or why the run failed.
    pub outcome: Result<Option<String>, Failure>,
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// The script threw: `Name: message at line N`.
    Thrown(String),
    /// The script ran past its time limit.
    TimeLimit(Duration),
    /// The script ran out of heap.
    MemoryLimit(usize),
    /// The engine could not run the script at all.
    Engine(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Thrown(message) => f.write_str(message),
            Self::TimeLimit(limit) => write!(
                f,
                "stopped: the script exceeded its time limit of {} ms",
                limit.as_millis()
            ),
            Self::MemoryLimit(limit) => write!(
                f,
                "stopped: the script exceeded its memory limit of {limit} bytes"
            ),
            Self::Engine(message) => write!(f, "the JavaScript engine failed: {message}"),
        }
    }
}

/// A fresh runtime and context with the limits set, ready to run one script.
pub struct Engine {
    // Field order is drop order: the context goes before its runtime.
    context: Context,
    _runtime: Runtime,
    interrupted: Arc<AtomicBool>,
    limits: Limits,
}

impl Engine {
    /// Creates the runtime and context; the time limit counts from now.
    pub fn start(limits: &Limits) -> Result<Self, Failure> {
        let runtime = Runtime::new().map_err(|error| Failure::Engine(error.to_string()))?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(limits.stack_bytes);
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&interrupted);
        let clock = Clock::start();
        let (cpu_limit, wall_limit) = (limits.time, limits.stop_after());
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let stop = clock.past(cpu_limit, wall_limit);
            if stop {
                flag.store(true, Ordering::Relaxed);
            }
            stop
        })));
        let context = Context::full(&runtime).map_err(|error| match error {
            Error::Allocation => Failure::MemoryLimit(limits.memory_bytes),
            other => Failure::Engine(other.to_string()),
        })?;
        Ok(Self {
            context,
            _runtime: runtime,
            interrupted,
            limits: limits.clone(),
        })
    }

    /// Runs `code` as a global script; printed text goes to `output`.
    fn run(&self, code: &str, output: &Rc<RefCell<Output>>) -> Result<Option<String>, Failure> {
        self.context.with(|ctx| {
            install_console(&ctx, output).map_err(|error| self.failure(&ctx, error))?;
            let mut options = EvalOptions::default();
            options.filename = Some(SCRIPT_NAME.to_owned());
            // Evaluated as an async script, so top-level `await` works.
            options.promise = true;
            let value = ctx
                .eval_with_options::<Value, _>(code, options)
                .map_err(|error| self.failure(&ctx, error))?;
            // An async script's promise resolves to `{value}`: the last expression's value.
            let completion = self.settle(&ctx, value)?;
            let value = match completion.as_object() {
                Some(completion) => completion
                    .get::<_, Value>("value")
                    .map_err(|error| self.failure(&ctx, error))?,
                None => completion,
            };
            let value = self.settle(&ctx, value)?;
            while self.run_job(&ctx) {}
            let result = render::result(&ctx, value);
            self.check_interrupted()?;
            Ok(result.map(|text| truncate(text, self.limits.output_bytes)))
        })
    }

    /// Runs promise jobs until `value` (when a promise) settles; returns what it settled to.
    /// A promise still pending when no job is left never settles: that is a failure.
    fn settle<'js>(&self, ctx: &Ctx<'js>, value: Value<'js>) -> Result<Value<'js>, Failure> {
        let Some(promise) = value.as_promise().cloned() else {
            return Ok(value);
        };
        while promise.state() == PromiseState::Pending && self.run_job(ctx) {}
        self.check_interrupted()?;
        match promise.result::<Value>() {
            None => Err(Failure::Thrown(NEVER_SETTLES.to_owned())),
            Some(Ok(settled)) => Ok(settled),
            Some(Err(error)) => Err(self.failure(ctx, error)),
        }
    }

    /// Runs one promise job; false when none is left or the time limit has passed (jobs that
    /// keep queueing jobs would otherwise keep this loop going).
    fn run_job(&self, ctx: &Ctx<'_>) -> bool {
        !self.interrupted.load(Ordering::Relaxed) && ctx.execute_pending_job()
    }

    fn check_interrupted(&self) -> Result<(), Failure> {
        if self.interrupted.load(Ordering::Relaxed) {
            Err(Failure::TimeLimit(self.limits.time))
        } else {
            Ok(())
        }
    }

    /// Why evaluation failed with `error`; clears the pending exception.
    fn failure(&self, ctx: &Ctx<'_>, error: Error) -> Failure {
        let thrown = match error {
            Error::Exception => Some(ctx.catch()),
            _ => None,
        };
        if self.interrupted.load(Ordering::Relaxed) {
            return Failure::TimeLimit(self.limits.time);
        }
        match (error, thrown) {
            (Error::Allocation, _) => Failure::MemoryLimit(self.limits.memory_bytes),
            (_, Some(thrown)) if is_out_of_memory(&thrown) => {
                Failure::MemoryLimit(self.limits.memory_bytes)
            }
            (_, Some(thrown)) => Failure::Thrown(truncate(
                render::thrown(ctx, thrown),
                self.limits.output_bytes,
            )),
            (other, None) => Failure::Engine(other.to_string()),
        }
    }
}

/// What the interrupt handler measures: the CPU time of the thread running the engine (the
/// time limit), and the wall clock (a starved script stops before it is killed from outside).
#[derive(Clone, Copy)]
struct Clock {
    cpu: Option<Duration>,
    wall: Instant,
}

impl Clock {
    fn start() -> Self {
        Self {
            cpu: os::thread_cpu_time(),
            wall: Instant::now(),
        }
    }

    /// Whether this thread has used `cpu_limit` of CPU time or `wall_limit` has passed since
    /// the start. Without a CPU clock, the wall clock stands in for it.
    fn past(&self, cpu_limit: Duration, wall_limit: Duration) -> bool {
        let wall = self.wall.elapsed();
        let cpu = match (self.cpu, os::thread_cpu_time()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => wall,
        };
        cpu >= cpu_limit || wall >= wall_limit
    }
}

/// Runs `code` in a fresh engine under `limits`. Blocking: call it off the async executor.
pub fn execute(code: &str, limits: &Limits) -> Execution {
    let output = Rc::new(RefCell::new(Output::new(limits.output_bytes)));
    let outcome = Engine::start(limits).and_then(|engine| engine.run(code, &output));
    let output = output.replace(Output::new(0)).into_text();
    Execution { output, outcome }
}

/// QuickJS reports a failed allocation as `InternalError: out of memory`.
fn is_out_of_memory(thrown: &Value<'_>) -> bool {
    thrown.as_exception().is_some_and(|error| {
        error.message().as_deref() == Some("out of memory")
            && error.get::<_, String>("name").ok().as_deref() == Some("InternalError")
    })
}

/// Defines `console.log/info/warn/error/debug` and `print`, all appending one line to `output`.
fn install_console<'js>(ctx: &Ctx<'js>, output: &Rc<RefCell<Output>>) -> rquickjs::Result<()> {
    let output = Rc::clone(output);
    let print = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        if output.borrow().is_full() {
            return;
        }
        let parts: Vec<String> = args
            .0
            .into_iter()
            .map(|arg| render::printed(&ctx, arg))
            .collect();
        output.borrow_mut().push_line(&parts.join(" "));
    })?;
    let console = Object::new(ctx.clone())?;
    for method in ["log", "info", "warn", "error", "debug"] {
        console.set(method, print.clone())?;
    }
    let globals = ctx.globals();
    globals.set("console", console)?;
    globals.set("print", print)?;
    Ok(())
}
