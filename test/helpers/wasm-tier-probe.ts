/**
 * Preloaded into a gateway process started with `--allow-natives-syntax` (`node --import`): on
 * SIGUSR2 it reports on stderr, as `wasm-tier-probe <JSON>`, whether V8 recompiles a hot
 * WebAssembly function with TurboFan (its optimizing tier) in this process.
 *
 * It instantiates a one-function module, calls the function far past V8's tiering budget, then
 * asks V8 which tier the function runs on until it is TurboFan or WAIT_MS have passed. Tier-up runs
 * on a platform worker, so TurboFan comes some milliseconds after the loop where it is allowed; where
 * it is not (`--liftoff-only`), the function stays on Liftoff for good and the probe reports at the
 * deadline.
 */
const WAIT_MS = 5_000;
const POLL_MS = 10;
const CALLS = 3_000_000;
/** (module (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add)) */
const MODULE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 9, 1, 7, 0, 32, 0, 65, 1, 106, 11,
]);

/** The WebAssembly global (this project's TypeScript libraries do not declare it). */
const { WebAssembly: Wasm } = globalThis as unknown as {
  WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (module: object) => { exports: Record<string, unknown> } };
};

/* eslint-disable @typescript-eslint/no-implied-eval -- V8's own answer: natives-syntax runtime functions (TypeScript cannot parse `%`) */
const isTurboFan = new Function('f', 'return %IsTurboFanFunction(f)') as (f: unknown) => boolean;
const isLiftoff = new Function('f', 'return %IsLiftoffFunction(f)') as (f: unknown) => boolean;
/* eslint-enable @typescript-eslint/no-implied-eval */

process.on('SIGUSR2', () => {
  const f = new Wasm.Instance(new Wasm.Module(MODULE)).exports.f as (x: number) => number;
  let x = 0;
  for (let i = 0; i < CALLS; i++) x = f(x);
  const deadline = Date.now() + WAIT_MS;
  const report = (): void => {
    const turbofan = isTurboFan(f);
    if (!turbofan && Date.now() < deadline) {
      setTimeout(report, POLL_MS);
      return;
    }
    process.stderr.write(`wasm-tier-probe ${JSON.stringify({ turbofan, liftoff: isLiftoff(f), calls: x })}\n`);
  };
  report();
});
