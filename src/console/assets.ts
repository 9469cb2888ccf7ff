import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import { CONSOLE_CSS } from './styles.js';

interface Asset {
  readonly type: string;
  readonly identity: Buffer;
  readonly gzip: Buffer;
  readonly br: Buffer;
}

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

/**
 * Everything the console's pages load, from this process only (the console works air-gapped): its
 * own modules (compiled from console/browser/ next to this file), uPlot (npm: the charts) and its
 * stylesheet. Read and compressed once at start (gzip and brotli); served under one path segment
 * that is the hash of all of them, so each is cached for a year and a new build is a new URL.
 * What the browser loads is bounded by what is listed here: nothing else is readable through it.
 */
export class ConsoleAssets {
  readonly hash: string;
  private readonly assets = new Map<string, Asset>();

  constructor() {
    const require = createRequire(import.meta.url);
    const files: [string, Buffer][] = [
      ['console.css', Buffer.from(CONSOLE_CSS)],
      ['vendor/uplot.js', readFileSync(require.resolve('uplot/dist/uPlot.esm.js'))],
      ['vendor/uplot.css', readFileSync(require.resolve('uplot/dist/uPlot.min.css'))],
    ];
    const own = new URL('./browser/', import.meta.url);
    for (const name of readdirSync(own)) {
      if (name.endsWith('.js')) files.push([name, readFileSync(new URL(name, own))]);
    }
    files.sort(([a], [b]) => (a < b ? -1 : 1));
    const hash = createHash('sha256');
    for (const [name, bytes] of files) {
      hash.update(name).update('\0').update(bytes);
      const ext = name.slice(name.lastIndexOf('.'));
      this.assets.set(name, {
        type: TYPES[ext] ?? 'application/octet-stream',
        identity: bytes,
        gzip: gzipSync(bytes, { level: 9 }),
        br: brotliCompressSync(bytes, { params: { [zlib.BROTLI_PARAM_QUALITY]: 11 } }),
      });
    }
    this.hash = hash.digest('hex').slice(0, 16);
  }

  /** The URL of an asset for pages to reference. */
  url(name: string): string {
    return `/console/assets/${this.hash}/${name}`;
  }

  /** Bytes the browser downloads for every script, as served with brotli (the budget: 150 KB). */
  scriptBytesCompressed(): number {
    let total = 0;
    for (const asset of this.assets.values()) if (asset.type.startsWith('text/javascript')) total += asset.br.length;
    return total;
  }

  /** Serves `/console/assets/<hash>/<name>`; false when the path is not an asset of this build. */
  serve(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const prefix = `/console/assets/${this.hash}/`;
    if (!path.startsWith(prefix)) return false;
    const asset = this.assets.get(path.slice(prefix.length));
    if (asset === undefined) return false;
    const accepted = req.headers['accept-encoding'] ?? '';
    const [encoding, body] = /\bbr\b/.test(accepted) ? ['br', asset.br] : /\bgzip\b/.test(accepted) ? ['gzip', asset.gzip] : [undefined, asset.identity];
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': body.length,
      'cache-control': 'public, max-age=31536000, immutable',
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
      ...(encoding === undefined ? {} : { 'content-encoding': encoding }),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
}
