import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_RESTART_POLICY, RestartPolicy } from '../src/restartPolicy';

describe('restarting a crashed server', () => {
  it('waits 1, 2, 4, 8, 16 s, then gives up with a message', () => {
    const p = new RestartPolicy();
    const delays = [0, 1, 2, 3, 4].map((i) => p.onCrash(1000 * i));
    assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000].map((delayMs) => ({ restart: true, delayMs })));
    const last = p.onCrash(5000);
    assert.match(last.restart ? '' : last.message, /stopped 6 times in 3 minutes.*Ponder: Restart Server/);
  });

  it('forgets crashes older than the window', () => {
    const p = new RestartPolicy();
    for (let i = 0; i < 5; ++i) p.onCrash(i);
    assert.deepEqual(p.onCrash(DEFAULT_RESTART_POLICY.windowMs + 10), { restart: true, delayMs: 1000 });
  });

  it('caps the delay, and starts afresh after a restart by hand', () => {
    const p = new RestartPolicy({ maxRestarts: 10, windowMs: 60000, firstDelayMs: 500, maxDelayMs: 3000 });
    const delays = [0, 1, 2, 3, 4, 5].map((t) => p.onCrash(t));
    assert.deepEqual(
      delays.map((d) => (d.restart ? d.delayMs : -1)),
      [500, 1000, 2000, 3000, 3000, 3000],
    );
    p.reset();
    assert.deepEqual(p.onCrash(10), { restart: true, delayMs: 500 });
  });
});
