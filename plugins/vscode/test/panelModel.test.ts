import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { PanelModel } from '../src/panelModel';
import { panelHtml, makeNonce } from '../src/panelHtml';
import { ReasoningStore } from '../src/reasoning';

function setup() {
  const store = new ReasoningStore();
  const panel = new PanelModel(store);
  const feed = (id: string, text: string, done = false, markdown?: string) =>
    panel.onEvents(store.apply({ id, title: `t${id}`, text, done, ...(markdown === undefined ? {} : { markdown }) }));
  return { store, panel, feed };
}

describe('the reasoning panel', () => {
  it('is empty with nothing to show', () => {
    const { panel } = setup();
    assert.deepEqual(panel.snapshot(), [{ type: 'entries', entries: [], selected: null }]);
  });

  it('a request that starts takes the panel over; its text streams in as appends', () => {
    const { panel, feed } = setup();
    assert.deepEqual(feed('1', ''), [
      { type: 'entries', entries: [{ id: '1', title: 't1', done: false }], selected: '1' },
      { type: 'show', id: '1', title: 't1', text: '', done: false },
    ]);
    assert.deepEqual(feed('1', 'Okay, '), [{ type: 'append', id: '1', text: 'Okay, ' }]);
    assert.deepEqual(feed('1', 'so.', true), [
      { type: 'entries', entries: [{ id: '1', title: 't1', done: true }], selected: '1' },
      { type: 'show', id: '1', title: 't1', text: 'Okay, so.', done: true },
    ]);
    assert.equal(panel.selectedId, '1');
  });

  it('a newer request takes over; an older one keeps streaming in the background', () => {
    const { panel, feed } = setup();
    feed('1', 'a');
    feed('2', 'x');
    assert.deepEqual(feed('1', 'b'), []);
    assert.equal(panel.selectedId, '2');
    const picked = panel.select('1');
    assert.deepEqual(picked[1], { type: 'show', id: '1', title: 't1', text: 'ab', done: false });
    assert.deepEqual(panel.select('nope'), []);
  });

  it('shows the result’s markdown once showReasoning sent it', () => {
    const { panel, feed } = setup();
    feed('1', 'reasoning', true);
    const out = feed('1', '', true, '# Result\n');
    assert.deepEqual(out[out.length - 1], { type: 'show', id: '1', title: 't1', text: '# Result\n', done: true });
    assert.deepEqual(panel.snapshot()[1], { type: 'show', id: '1', title: 't1', text: '# Result\n', done: true });
  });

  it('moves to the newest result when the shown one is dropped', () => {
    const store = new ReasoningStore(1);
    const panel = new PanelModel(store);
    panel.onEvents(store.apply({ id: '1', title: 't1', text: 'a', done: true }));
    const out = panel.onEvents(store.apply({ id: '2', title: 't2', text: 'b', done: true }));
    assert.equal(panel.selectedId, '2');
    assert.deepEqual(out[0], { type: 'entries', entries: [{ id: '2', title: 't2', done: true }], selected: '2' });
  });
});

describe('the panel page', () => {
  it('loads only its own script and style, by nonce, under a strict CSP', () => {
    const html = panelHtml({ cspSource: 'vscode-webview://x', script: 'S.js', style: 'S.css', nonce: 'abc' });
    assert.match(html, /default-src 'none'; style-src vscode-webview:\/\/x; script-src 'nonce-abc'/);
    assert.match(html, /<script nonce="abc" src="S.js"><\/script>/);
    assert.doesNotMatch(html, /https?:/);
    assert.equal(makeNonce((n) => new Uint8Array(n).fill(171)), 'ab'.repeat(16));
  });
});
