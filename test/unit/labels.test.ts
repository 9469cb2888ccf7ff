import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ModeLabels, ModelLabels } from '../../src/observability/labels.js';

describe('ModelLabels', () => {
  const vouched = new Set(['claude-opus-5']);
  const labels = (): ModelLabels => new ModelLabels((m) => vouched.has(m), 2);

  test('a requested model is `other` until vouched for or earned; none is `unknown`', () => {
    const l = labels();
    assert.equal(l.known(undefined), 'unknown');
    assert.equal(l.known(''), 'unknown');
    assert.equal(l.known('claude-sonnet-5'), 'other');
    assert.equal(l.known('claude-opus-5'), 'claude-opus-5');
    assert.equal(l.earn('claude-sonnet-5'), 'claude-sonnet-5');
    assert.equal(l.known('claude-sonnet-5'), 'claude-sonnet-5');
  });

  test('earned labels are bounded and never evicted; vouched models take no slot; junk strings never earn', () => {
    const l = labels();
    assert.equal(l.earn('claude-opus-5'), 'claude-opus-5');
    assert.equal(l.earn('a-1'), 'a-1');
    assert.equal(l.earn('x'.repeat(500)), 'other');
    assert.equal(l.earn('bad label"}'), 'other');
    assert.equal(l.earn('a-2'), 'a-2');
    assert.equal(l.earn('a-3'), 'other', 'past the cap');
    assert.equal(l.known('a-1'), 'a-1', 'the first earned are kept');
    assert.equal(l.known('a-2'), 'a-2');
  });
});

describe('ModeLabels', () => {
  test('a mode is `other` until a 2xx earns it; the first `cap` earned keep their label, nothing evicts them', () => {
    const modes = new ModeLabels(undefined, 2);
    for (let i = 0; i < 1_000; i++) assert.equal(modes.known(`junk-${i}`), 'other', 'seen is not earned');
    assert.equal(modes.known('batch'), 'other');
    assert.equal(modes.earn('batch'), 'batch');
    assert.equal(modes.earn('chat'), 'chat');
    assert.equal(modes.earn('late'), 'other', 'past the cap');
    assert.equal(modes.known('batch'), 'batch');
    assert.equal(modes.known('default'), 'default', "the gateway's own names need no slot");
    assert.equal(modes.known('invalid'), 'invalid');
  });

  test('with MODES only the allowlist (and default) are labels; earning changes nothing', () => {
    const modes = new ModeLabels(new Set(['chat', 'default']), 20);
    assert.equal(modes.known('chat'), 'chat');
    assert.equal(modes.earn('nope'), 'other');
    assert.equal(modes.known('nope'), 'other');
  });
});
