// Globals k6 provides that @types/k6 does not declare (the "dom" lib would bring far more than k6 has).
// https://grafana.com/docs/k6/latest/javascript-api/#console
declare global {
  const console: {
    log(...data: unknown[]): void;
    info(...data: unknown[]): void;
    warn(...data: unknown[]): void;
    error(...data: unknown[]): void;
    debug(...data: unknown[]): void;
  };
}

export {};
