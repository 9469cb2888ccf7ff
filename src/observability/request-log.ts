import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * What a request's context says for its log line (the http layer's request context has these
 * fields): read in place, so writing a line builds no object. Undefined fields are left out, as pino
 * leaves them out.
 */
export interface RequestLogFacts {
  readonly mode: string;
  readonly tenant: string | undefined;
  /** The coalescing role, logged as `coalesce`. */
  readonly role: string | undefined;
  readonly upstreamRequestId: string | undefined;
  /** The gateway's error code, logged as `code`. */
  readonly errorCode: string | undefined;
}

/**
 * Writes the one-line-per-request log straight to the logger's destination: the record pino writes
 * for `logger.info(line, 'request')` with the gateway's logger options (level label, ISO time, its
 * bindings), with the same keys in the same order and the same values (strings are escaped by
 * JSON.stringify, which may spell an escape differently from pino's own escaper). This is the hottest log call by far, once per
 * request: pino's generic path (level dispatch, a walk over the object's keys with a serializer
 * lookup for each, the time function) cost about 8-12 µs per line inside a busy gateway, this about
 * 1. Every other log line still goes through pino. A unit test compares the two records.
 */
export class RequestLog {
  private readonly destination: DestinationStream;
  /** `"service":"claude-gateway",` : the logger's bindings, rendered once. */
  private readonly bindings: string;
  /** `"Z",<bindings>"method":…,"path":…,"status":` by method, then path: rendered once each, at most MAX_FRAGMENTS in all (paths are the client's). */
  private readonly fragments = new Map<string, Map<string, string>>();
  private fragmentCount = 0;
  /** JSON strings of mode names, at most MAX_QUOTED (mode names are the client's). */
  private readonly quotedModes = new Map<string, string>();
  /** `{"level":"<level>","time":"<ISO time up to the second>.`, per level, rendered once per second. */
  private second = Number.NaN;
  private infoHead = '';
  private debugHead = '';

  constructor(private readonly logger: Logger) {
    this.destination = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym] as DestinationStream;
    const rendered = JSON.stringify(logger.bindings());
    this.bindings = rendered === '{}' ? '' : `${rendered.slice(1, -1)},`;
  }

  enabled(level: 'info' | 'debug'): boolean {
    return this.logger.isLevelEnabled(level);
  }

  /**
   * The caller checked `enabled(level)`: a level nobody reads builds no line. The line is joined from
   * a few pieces rendered once (per second, per method and path, per mode), not from each key's text.
   */
  write(level: 'info' | 'debug', method: string, path: string, status: number, durationMs: number, completed: boolean, f: RequestLogFacts, traceId: string | undefined): void {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      const prefix = isoPrefix(second);
      this.infoHead = `{"level":"info","time":"${prefix}`;
      this.debugHead = `{"level":"debug","time":"${prefix}`;
    }
    let line = (level === 'info' ? this.infoHead : this.debugHead) + threeDigits(now - second * 1000);
    line += `${this.fragment(method, path)}${status},"durationMs":${durationMs}${completed ? ',"completed":true,"mode":' : ',"completed":false,"mode":'}${this.quotedMode(f.mode)}`;
    if (f.tenant !== undefined) line += `,"tenant":${JSON.stringify(f.tenant)}`;
    if (f.role !== undefined) line += `,"coalesce":${JSON.stringify(f.role)}`;
    if (f.upstreamRequestId !== undefined) line += `,"upstreamRequestId":${JSON.stringify(f.upstreamRequestId)}`;
    if (f.errorCode !== undefined) line += `,"code":${JSON.stringify(f.errorCode)}`;
    if (traceId !== undefined) line += `,"trace_id":${JSON.stringify(traceId)}`;
    this.destination.write(line + ',"msg":"request"}\n');
  }

  private fragment(method: string, path: string): string {
    let byPath = this.fragments.get(method);
    let fragment = byPath?.get(path);
    if (fragment !== undefined) return fragment;
    fragment = `Z",${this.bindings}"method":${JSON.stringify(method)},"path":${JSON.stringify(path)},"status":`;
    if (this.fragmentCount < MAX_FRAGMENTS) {
      if (byPath === undefined) {
        byPath = new Map();
        this.fragments.set(method, byPath);
      }
      byPath.set(path, fragment);
      this.fragmentCount++;
    }
    return fragment;
  }

  private quotedMode(mode: string): string {
    let quoted = this.quotedModes.get(mode);
    if (quoted !== undefined) return quoted;
    quoted = JSON.stringify(mode);
    if (this.quotedModes.size < MAX_QUOTED) this.quotedModes.set(mode, quoted);
    return quoted;
  }
}

/** (method, path) fragments kept: a gateway's routes are a handful; client-chosen paths past the bound are rendered per line. */
const MAX_FRAGMENTS = 256;
/** Mode names kept quoted. */
const MAX_QUOTED = 64;

/** Milliseconds (0-999) as the three digits of an ISO time. */
function threeDigits(ms: number): string {
  return ms < 10 ? `00${ms}` : ms < 100 ? `0${ms}` : `${ms}`;
}

/** `YYYY-MM-DDTHH:MM:SS.` of a second since the epoch. */
function isoPrefix(second: number): string {
  return new Date(second * 1000).toISOString().slice(0, 20);
}

let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** `new Date().toISOString()`, with the part up to the second formatted once per second. */
export function isoTime(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = isoPrefix(second);
  }
  return `${cachedPrefix}${threeDigits(now - second * 1000)}Z`;
}

/** pino's `timestamp` option: the same ISO time as pino.stdTimeFunctions.isoTime. */
export const isoTimestamp = (): string => `,"time":"${isoTime()}"`;
