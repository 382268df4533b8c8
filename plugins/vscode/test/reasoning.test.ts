import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { ReasoningParams } from '../src/protocol';
import { displayText, isReasoningDocument, ReasoningStore } from '../src/reasoning';

const uri = 'file:///w/src/sum.cpp';
function chunk(id: string, text: string, done = false): ReasoningParams {
  return { id, uri, title: `Ponder: improve \`sum\` (${id})`, text, done };
}

describe('assembling the reasoning stream', () => {
  it('appends each notification’s text to its result, in order, until done', () => {
    const s = new ReasoningStore();
    assert.deepEqual(s.apply(chunk('1', '')), [
      { kind: 'started', entry: { id: '1', uri, title: 'Ponder: improve `sum` (1)', text: '', done: false } },
    ]);
    assert.deepEqual(s.apply(chunk('1', 'Okay, the loop ')), [{ kind: 'appended', id: '1', text: 'Okay, the loop ' }]);
    s.apply(chunk('1', 'runs while i <= n.\n'));
    assert.equal(s.running()?.id, '1');
    const end = s.apply(chunk('1', 'Use the size.', true));
    assert.deepEqual(end.map((e) => e.kind), ['appended', 'updated']);
    assert.equal(s.get('1')?.text, 'Okay, the loop runs while i <= n.\nUse the size.');
    assert.equal(s.get('1')?.done, true);
    assert.equal(s.running(), undefined);
  });

  it('keeps two interleaved streams apart', () => {
    const s = new ReasoningStore();
    s.apply(chunk('1', 'a'));
    s.apply(chunk('2', 'x'));
    s.apply(chunk('1', 'b'));
    s.apply(chunk('2', 'y', true));
    assert.equal(s.get('1')?.text, 'ab');
    assert.equal(s.get('2')?.text, 'xy');
    assert.equal(s.running()?.id, '1');
    assert.deepEqual(
      s.list().map((e) => e.id),
      ['2', '1'],
    );
  });

  it('attaches showReasoning’s markdown to the result, or keeps it as a new one', () => {
    const s = new ReasoningStore();
    s.apply(chunk('1', 'thinking', true));
    const md = '# Ponder: improve `sum`\n\n**Iterate over the vector.**\n';
    const ev = s.apply({ id: '1', title: 'Ponder: improve `sum`', text: '', done: true, markdown: md });
    assert.equal(ev.length, 1);
    assert.equal(ev[0].kind, 'updated');
    assert.equal(s.get('1')?.markdown, md);
    assert.equal(s.get('1')?.text, 'thinking');
    assert.equal(displayText(s.get('1') ?? { id: '', title: '', text: '', done: true }), md);
    // A result from before the extension started (or one dropped since).
    s.apply({ id: '9', title: 'Ponder: explain `twice`', text: '', done: true, markdown: 'old' });
    assert.equal(s.get('9')?.markdown, 'old');
    assert.equal(s.get('9')?.done, true);
  });

  it('keeps the newest results, never dropping a running one', () => {
    const s = new ReasoningStore(2);
    s.apply(chunk('1', 'running'));
    s.apply(chunk('2', 'x', true));
    const ev = s.apply(chunk('3', 'y', true));
    assert.deepEqual(ev.filter((e) => e.kind === 'removed'), [{ kind: 'removed', id: '2' }]);
    assert.deepEqual(s.list().map((e) => e.id), ['3', '1']);
    assert.deepEqual(s.setKeep(1), [{ kind: 'removed', id: '3' }]);
    assert.deepEqual(s.list().map((e) => e.id), ['1']);
  });

  it('marks what was running as finished when the server goes away', () => {
    const s = new ReasoningStore();
    s.apply(chunk('1', 'half a thought'));
    assert.deepEqual(s.stopAll().map((e) => e.kind), ['updated']);
    assert.equal(s.running(), undefined);
    assert.equal(s.get('1')?.text, 'half a thought');
  });

  it('ignores notifications without an id', () => {
    const s = new ReasoningStore();
    assert.deepEqual(s.apply({ id: '', title: '', text: 'x', done: false }), []);
  });
});

describe('the markdown document of ponder.showReasoning', () => {
  it('is recognised by its path, so the panel shows it instead', () => {
    assert.ok(isReasoningDocument('file:///tmp/ponder-reasoning/ponder-3.md'));
    assert.ok(!isReasoningDocument('file:///w/README.md'));
    assert.ok(!isReasoningDocument('file:///w/ponder-3.md'));
  });
});
