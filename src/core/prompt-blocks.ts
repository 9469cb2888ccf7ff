import { crc32 } from 'node:zlib';

/**
 * The prompt-cache prefix of a Messages request, as hashes: one per top-level block, in the order
 * the API caches them (each `tools` entry, each `system` block, each `messages` entry), and where
 * the last `cache_control` breakpoint is. Read from the body bytes in one structural pass (strings
 * skipped with memchr: see stringEnd) plus CRC-32 of each block (zlib, native):
 * nothing is parsed into values and no block's bytes are kept.
 *
 * Preconditions: `bytes` is valid JSON (the edge's JsonScanner checked it, with its depth bound);
 * anything else gives an empty or partial result, never a throw.
 *
 * A block's hash leaves out its `"cache_control": {...}` members: moving a breakpoint (Claude Code
 * puts it on the newest message each turn) does not change what the API caches. Whitespace between
 * tokens counts (SDKs serialise the same request the same way; a client that reformats an earlier
 * block would be reported though the API, which caches tokens, may still hit). A key written with
 * escapes is not recognised as `cache_control`; a `cache_control` key nested anywhere in a block
 * (an input schema's property of that name too) counts as a breakpoint.
 */

export type PromptPart = 'tools' | 'system' | 'messages';

/** The API's caching order: a change in an earlier part invalidates every later one. */
export const PART_ORDER: readonly PromptPart[] = ['tools', 'system', 'messages'];

export interface PromptBlocks {
  /** CRC-32 per block: tools, then system, then messages (at most `maxBlocks` in all). */
  readonly hashes: Uint32Array;
  /** Bytes of each block (for an estimate of tokens re-written). */
  readonly sizes: Uint32Array;
  /** Blocks of `tools` and of `system` (the rest are messages). */
  readonly tools: number;
  readonly system: number;
  /** Index (in `hashes`) of the last block holding a cache_control breakpoint; -1 when none. */
  readonly lastBreakpoint: number;
}

const OBJECT = 1;
const ARRAY = 2;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const CACHE_CONTROL = Buffer.from('cache_control');
const PART_KEYS: readonly [PromptPart, Buffer][] = PART_ORDER.map((part) => [part, Buffer.from(part)]);

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/**
 * The index just past the string whose opening quote is at `at`. The body is valid JSON, so the
 * closing quote is the first `"` not escaped, i.e. not preceded by an odd run of backslashes: found
 * with Buffer#indexOf (memchr, native), several times faster than a byte walk on prompt text.
 */
function stringEnd(bytes: Buffer, at: number): number {
  let from = at + 1;
  for (;;) {
    const quote = bytes.indexOf(QUOTE, from);
    if (quote < 0) return bytes.length;
    let backslashes = 0;
    while (bytes[quote - 1 - backslashes] === BACKSLASH) backslashes++;
    if ((backslashes & 1) === 0) return quote + 1;
    from = quote + 1;
  }
}

function equalsAt(bytes: Buffer, from: number, to: number, word: Buffer): boolean {
  return to - from === word.length && bytes.compare(word, 0, word.length, from, to) === 0;
}

/** One part's blocks while scanning (per part, since a body may name them in any order). */
interface PartBlocks {
  hashes: number[];
  sizes: number[];
  /** Index within this part of its last block holding a breakpoint; -1 when none. */
  lastBreakpoint: number;
}

/**
 * Scans `bytes` (a JSON object body) for its prompt blocks. `maxBlocks` bounds the blocks kept per
 * part (a longer part keeps its first `maxBlocks`; later breakpoints in it are not seen).
 */
export function scanPromptBlocks(bytes: Buffer, maxBlocks: number): PromptBlocks {
  const parts = new Map<PromptPart, PartBlocks>();
  const n = bytes.length;
  let i = 0;
  while (i < n && isWhitespace(bytes[i] as number)) i++;
  if (bytes[i] !== 0x7b) return assemble(parts);
  i++;
  // Top-level members: read each key; scan the value of tools/system/messages, skip the others.
  for (;;) {
    while (i < n && (isWhitespace(bytes[i] as number) || bytes[i] === 0x2c)) i++;
    if (i >= n || bytes[i] !== QUOTE) break;
    const keyEnd = stringEnd(bytes, i);
    let part: PromptPart | undefined;
    for (const [name, word] of PART_KEYS) if (equalsAt(bytes, i + 1, keyEnd - 1, word)) part = name;
    i = keyEnd;
    while (i < n && (isWhitespace(bytes[i] as number) || bytes[i] === 0x3a)) i++;
    if (part === undefined) {
      i = valueEnd(bytes, i, undefined);
      continue;
    }
    const blocks: PartBlocks = { hashes: [], sizes: [], lastBreakpoint: -1 };
    // A later duplicate key replaces an earlier one, as JSON.parse (and the API) would take it.
    parts.set(part, blocks);
    if (bytes[i] === 0x5b) {
      i++;
      for (;;) {
        while (i < n && (isWhitespace(bytes[i] as number) || bytes[i] === 0x2c)) i++;
        if (i >= n || bytes[i] === 0x5d) {
          i++;
          break;
        }
        const block: BlockScan = { crc: 0, breakpoint: false, textContent: part === 'messages' };
        const start = i;
        i = valueEnd(bytes, i, block);
        if (blocks.hashes.length < maxBlocks) {
          if (block.breakpoint) blocks.lastBreakpoint = blocks.hashes.length;
          blocks.hashes.push(block.crc);
          blocks.sizes.push(i - start);
        }
      }
    } else {
      // `system` as one string: one block, never a breakpoint of its own, hashed as the one text
      // block it stands for (the API caches the same tokens either way).
      const start = i;
      i = valueEnd(bytes, i, undefined);
      const crc = bytes[start] === QUOTE ? crc32(TEXT_BLOCK_CLOSE, crc32(bytes.subarray(start, i), crc32(TEXT_BLOCK_OPEN))) : crc32(bytes.subarray(start, i));
      blocks.hashes.push(crc);
      blocks.sizes.push(i - start);
    }
  }
  return assemble(parts);
}

/** A block being hashed: the CRC so far, and whether a cache_control member was seen in it. */
interface BlockScan {
  crc: number;
  breakpoint: boolean;
  /** A message: its `content` as a string is hashed as the array of one text block it stands for. */
  textContent: boolean;
}

/**
 * `"content": "X"` is the same prompt as `"content": [{"type":"text","text":"X"}]`, and Claude Code
 * sends a message the first way once it is no longer the newest (and so lost its cache_control
 * marker) and the second way while it is: a string content is hashed as that array (compact, in the
 * order the SDKs write it), and a string system prompt as that one block.
 */
const TEXT_BLOCK_OPEN = Buffer.from('{"type":"text","text":');
const TEXT_BLOCK_CLOSE = Buffer.from('}');
const TEXT_CONTENT_OPEN = Buffer.from('[{"type":"text","text":');
const TEXT_CONTENT_CLOSE = Buffer.from('}]');
const CONTENT = Buffer.from('content');

/**
 * The index just past the value starting at `at`. With `block`, the value is hashed into it, less
 * its cache_control members (each with the one comma that separated it), and their presence noted.
 */
function valueEnd(bytes: Buffer, at: number, block: BlockScan | undefined): number {
  const n = bytes.length;
  const c = bytes[at];
  if (c !== 0x7b && c !== 0x5b) {
    // A scalar: a string, or a number/literal running to the next delimiter.
    let end = at;
    if (c === QUOTE) end = stringEnd(bytes, at);
    else while (end < n && !isWhitespace(bytes[end] as number) && bytes[end] !== 0x2c && bytes[end] !== 0x7d && bytes[end] !== 0x5d) end++;
    if (block !== undefined) block.crc = crc32(bytes.subarray(at, end), block.crc);
    return end;
  }
  // Containers: a stack of kinds; in an object, whether the next string is a key and whether the
  // object has had a member yet (for which comma goes with an excluded member).
  const kinds: number[] = [];
  const hadMember: boolean[] = [];
  let expectKey = false;
  let segmentStart = at;
  /** The excluded member's start, its object's depth, and whether it was its object's first member. */
  let excludeFrom = -1;
  let excludeDepth = -1;
  let excludeFirst = false;
  let lastComma = -1;
  /** The last key read in the block's own object (depth 1) was `content`. */
  let keyIsContent = false;
  let i = at;
  while (i < n) {
    const b = bytes[i] as number;
    if (b === QUOTE) {
      const end = stringEnd(bytes, i);
      const depth = kinds.length;
      if (depth === 1 && block?.textContent === true) {
        if (expectKey) keyIsContent = equalsAt(bytes, i + 1, end - 1, CONTENT);
        else if (keyIsContent && excludeFrom < 0) {
          block.crc = crc32(TEXT_CONTENT_OPEN, crc32(bytes.subarray(segmentStart, i), block.crc));
          block.crc = crc32(TEXT_CONTENT_CLOSE, crc32(bytes.subarray(i, end), block.crc));
          segmentStart = end;
        }
      }
      if (expectKey && block !== undefined && excludeFrom < 0 && equalsAt(bytes, i + 1, end - 1, CACHE_CONTROL)) {
        block.breakpoint = true;
        excludeFirst = !(hadMember[depth - 1] ?? false);
        excludeFrom = excludeFirst ? i : lastComma;
        excludeDepth = depth;
      }
      if (expectKey) hadMember[depth - 1] = true;
      expectKey = false;
      i = end;
      if (depth === 0) break;
      continue;
    }
    if (b === 0x7b || b === 0x5b) {
      kinds.push(b === 0x7b ? OBJECT : ARRAY);
      hadMember.push(false);
      expectKey = b === 0x7b;
    } else if (b === 0x7d || b === 0x5d || b === 0x2c) {
      const depth = kinds.length;
      if (excludeFrom >= 0 && depth === excludeDepth) {
        // The excluded member ends here: drop it (and, when it came first, the comma after it).
        const excludeTo = b === 0x2c && excludeFirst ? i + 1 : i;
        if (block !== undefined) block.crc = crc32(bytes.subarray(segmentStart, excludeFrom), block.crc);
        segmentStart = excludeTo;
        excludeFrom = -1;
        excludeDepth = -1;
        if (b === 0x2c && excludeFirst) {
          // The member after it is now the first: a later cache_control in it must not be dropped with the comma.
          hadMember[depth - 1] = false;
          expectKey = true;
          i++;
          continue;
        }
      }
      if (b === 0x2c) {
        lastComma = i;
        expectKey = kinds[depth - 1] === OBJECT;
      } else {
        kinds.pop();
        hadMember.pop();
        expectKey = false;
        if (kinds.length === 0) {
          i++;
          break;
        }
      }
    }
    i++;
  }
  if (block !== undefined) block.crc = crc32(bytes.subarray(segmentStart, i), block.crc);
  return i;
}

function assemble(parts: ReadonlyMap<PromptPart, PartBlocks>): PromptBlocks {
  let total = 0;
  for (const p of parts.values()) total += p.hashes.length;
  const hashes = new Uint32Array(total);
  const sizes = new Uint32Array(total);
  let at = 0;
  let lastBreakpoint = -1;
  for (const part of PART_ORDER) {
    const p = parts.get(part);
    if (p === undefined) continue;
    hashes.set(p.hashes, at);
    sizes.set(p.sizes, at);
    if (p.lastBreakpoint >= 0) lastBreakpoint = at + p.lastBreakpoint;
    at += p.hashes.length;
  }
  return { hashes, sizes, tools: parts.get('tools')?.hashes.length ?? 0, system: parts.get('system')?.hashes.length ?? 0, lastBreakpoint };
}

/** The part and index within it of block `index` of `blocks`. */
export function blockAt(blocks: Pick<PromptBlocks, 'tools' | 'system'>, index: number): { part: PromptPart; index: number } {
  if (index < blocks.tools) return { part: 'tools', index };
  if (index < blocks.tools + blocks.system) return { part: 'system', index: index - blocks.tools };
  return { part: 'messages', index: index - blocks.tools - blocks.system };
}
