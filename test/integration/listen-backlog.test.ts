import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startStack } from '../helpers/stack.js';

/** The accept queue length the kernel reports for a listening TCP port (`ss`: Send-Q of a LISTEN socket). */
function listenQueueLimit(port: number): number {
  const line = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
  // State Recv-Q Send-Q Local Peer
  const sendQ = Number(line.trim().split(/\s+/)[2]);
  assert.ok(Number.isInteger(sendQ), `ss printed no listening socket for port ${port}: ${JSON.stringify(line)}`);
  return sendQ;
}

function hasSs(): boolean {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('LISTEN_BACKLOG', { skip: hasSs() ? false : 'ss (iproute2) is not installed' }, () => {
  test('the listening socket queues LISTEN_BACKLOG connections (default 4096, capped by net.core.somaxconn), not node\'s 511', async () => {
    const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim());
    for (const [env, wanted] of [[{}, 4096], [{ LISTEN_BACKLOG: '700' }, 700]] as const) {
      const stack = await startStack({ env });
      try {
        const port = Number(new URL(stack.gateway.url).port);
        assert.equal(listenQueueLimit(port), Math.min(wanted, somaxconn));
      } finally {
        await stack.close();
      }
    }
  });
});
