import { createServer } from 'node:http';
import { Agent } from 'undici';

/**
 * The floor for any Node proxy: node:http + undici, nothing else (no headers hygiene, no errors,
 * no metrics). `npm run bench` measures it beside the gateway so the gateway's own cost is visible.
 *   node dist/benchmarks/bare-proxy.js <upstream-url> <port>
 */
const [upstream, port] = process.argv.slice(2);
if (upstream === undefined || port === undefined) throw new Error('usage: bare-proxy <upstream-url> <port>');
// No connection cap (undici's default): every request is live upstream, as in the gateway's default.
const agent = new Agent();
createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    agent
      .request({ origin: upstream, path: req.url ?? '/', method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': String(req.headers['x-api-key']), 'anthropic-version': '2023-06-01' }, body: Buffer.concat(chunks) })
      .then(async (r) => {
        res.writeHead(r.statusCode, { 'content-type': String(r.headers['content-type']) });
        for await (const c of r.body) res.write(c as Buffer);
        res.end();
      })
      .catch(() => res.destroy());
  });
}).listen(Number(port), '127.0.0.1');
