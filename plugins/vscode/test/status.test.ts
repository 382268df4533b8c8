import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatCount, formatServerStatus, StatusTracker, thinkingText } from '../src/status';

function running(): StatusTracker {
  const t = new StatusTracker();
  t.onServer('running');
  return t;
}

describe('the status-bar item', () => {
  it('follows the server: starting, then the model loading, then idle', () => {
    const t = new StatusTracker();
    assert.equal(t.view().text, '$(sync~spin) ponder: starting');
    t.onServer('running');
    t.onStatus({ state: 'loading', detail: 'mapping m.gguf' });
    assert.deepEqual(t.view(), {
      text: '$(sync~spin) ponder: loading',
      tooltip: 'Loading the model: mapping m.gguf',
      action: 'showReasoning',
      error: false,
    });
    t.onStatus({ state: 'idle', detail: 'DeepSeek-R1-Distill-Qwen-7B Q4_K_M' });
    assert.equal(t.view().text, '$(check) ponder');
    assert.match(t.view().tooltip, /^Model: DeepSeek-R1-Distill-Qwen-7B Q4_K_M/);
  });

  it('thinking: token count and speed, and a click cancels', () => {
    const t = running();
    t.onStatus({ state: 'idle', detail: 'm' });
    t.onStatus({ state: 'thinking', detail: 'Ponder: improve `sum`', tokens: 1234, tokensPerSecond: 41.53 });
    assert.deepEqual(t.view(), {
      text: '$(loading~spin) ponder: 1,234 tokens · 41.5 tok/s',
      tooltip: 'Thinking: Ponder: improve `sum`\nClick to cancel.',
      action: 'cancel',
      error: false,
    });
    // The request's end names the request, not the model: the model's name stays.
    t.onStatus({ state: 'idle', detail: 'Ponder: improve `sum`', tokens: 2000, tokensPerSecond: 40 });
    assert.equal(t.view().action, 'showReasoning');
    assert.match(t.view().tooltip, /^Model: m\n/);
  });

  it('a streaming request shows as thinking even without a thinking status', () => {
    const t = running();
    t.onStatus({ state: 'idle', detail: 'm' });
    t.onReasoning({ id: '4', title: 'Ponder: ask about `sum`', text: '', done: false });
    assert.equal(t.view().text, '$(loading~spin) ponder: thinking');
    assert.equal(t.view().tooltip, 'Thinking: Ponder: ask about `sum`\nClick to cancel.');
    // showReasoning's markdown is not a request.
    t.onReasoning({ id: '4', title: 'x', text: '', done: true });
    t.onReasoning({ id: '3', title: 'old', text: '', done: true, markdown: '#' });
    assert.equal(t.view().text, '$(check) ponder');
  });

  it('no model: an error with a click to the settings', () => {
    const t = running();
    t.onStatus({ state: 'failed', detail: 'no DeepSeek-R1 model found' });
    assert.deepEqual(t.view(), {
      text: '$(error) ponder: no model',
      tooltip: 'no DeepSeek-R1 model found\nClick to set "ponder.model".',
      action: 'openSettings',
      error: true,
    });
  });

  it('unloaded after idle time', () => {
    const t = running();
    t.onStatus({ state: 'unloaded', detail: 'unloaded after 60 s idle' });
    assert.equal(t.view().text, '$(debug-pause) ponder: unloaded');
    assert.match(t.view().tooltip, /loads again on the next request/);
  });

  it('stopped: why, and a click restarts; a restart forgets what ran', () => {
    const t = running();
    t.onReasoning({ id: '1', title: 'x', text: '', done: false });
    t.onServer('stopped', 'The ponder server stopped 6 times in 3 minutes');
    t.onServer('stopped'); // the client's own state change keeps the reason
    assert.deepEqual(t.view(), {
      text: '$(circle-slash) ponder: stopped',
      tooltip: 'The ponder server stopped 6 times in 3 minutes\nClick to restart it.',
      action: 'restart',
      error: true,
    });
    t.onServer('starting');
    t.onServer('running');
    assert.equal(t.view().text, '$(sync~spin) ponder: loading');
  });
});

describe('formatting', () => {
  it('counts with thousands separators; speed only when known', () => {
    assert.equal(formatCount(0), '0');
    assert.equal(formatCount(999), '999');
    assert.equal(formatCount(12345678), '12,345,678');
    assert.equal(thinkingText(null), 'ponder: thinking');
    assert.equal(thinkingText({ title: '', tokens: 12 }), 'ponder: 12 tokens');
    assert.equal(thinkingText({ title: '', tokens: 12, tokensPerSecond: 0 }), 'ponder: 12 tokens');
    assert.equal(thinkingText({ title: '', tokens: 1200, tokensPerSecond: 7 }), 'ponder: 1,200 tokens · 7.0 tok/s');
  });

  it('ponder.status in one line', () => {
    assert.equal(
      formatServerStatus({ model: 'R1-Qwen-7B', running: true, queued: 2, indexReady: true }),
      'ponder: R1-Qwen-7B · running, 2 queued · index ready',
    );
    assert.equal(formatServerStatus({ model: '', running: false, queued: 0, indexReady: false }), 'ponder: no model · idle · index building');
  });
});
