import { StringDecoder } from 'node:string_decoder';

/**
 * Incremental server-sent-events parser (WHATWG "event stream interpretation"). Feed it network
 * chunks as they come, split anywhere (inside a UTF-8 character, between \r and \n); it calls
 * `onEvent` once per complete event. Only the unfinished tail line and the current event's fields
 * are kept between chunks, so a chunk is scanned once; one event larger than `maxEventLength`
 * characters (a stream whose events never end, say) throws `SseEventTooLarge` instead of growing.
 */
export interface SseEvent {
  event: string;
  data: string;
}

export class SseEventTooLarge extends Error {
  override readonly name = 'SseEventTooLarge';
  constructor(readonly limit: number) {
    super(`an event-stream event exceeded ${limit} characters`);
  }
}

export class SseParser {
  private readonly decoder = new StringDecoder('utf8');
  private tail = '';
  private skipLeadingLf = false;
  private eventName = '';
  private data: string[] = [];
  /** Characters of the current event so far (complete lines plus the unfinished tail). */
  private eventLength = 0;

  constructor(
    private readonly onEvent: (event: SseEvent) => void,
    private readonly maxEventLength = 8 * 1024 * 1024,
  ) {}

  /**
   * Nothing of an unfinished event is held: no partial line and no field since the last event (or
   * blank line). Comment lines (`:`) leave nothing held.
   */
  get idle(): boolean {
    return this.tail === '' && this.data.length === 0 && this.eventName === '';
  }

  push(chunk: Buffer): void {
    let text = this.decoder.write(chunk);
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    let start = 0;
    const n = text.length;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.tail === '' ? text.slice(start, i) : this.tail + text.slice(start, i);
      this.tail = '';
      this.eventLength += line.length + 1;
      if (this.eventLength > this.maxEventLength) throw new SseEventTooLarge(this.maxEventLength);
      this.line(line);
      if (c === 13) {
        if (i + 1 < n) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.skipLeadingLf = true;
        }
      }
      start = i + 1;
    }
    if (start < n) {
      if (this.eventLength + this.tail.length + (n - start) > this.maxEventLength) throw new SseEventTooLarge(this.maxEventLength);
      this.tail += text.slice(start);
    }
  }

  private line(line: string): void {
    if (line === '') {
      this.eventLength = 0;
      if (this.data.length > 0) this.onEvent({ event: this.eventName === '' ? 'message' : this.eventName, data: this.data.join('\n') });
      this.eventName = '';
      this.data = [];
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'event') this.eventName = value;
    else if (field === 'data') this.data.push(value);
  }
}
