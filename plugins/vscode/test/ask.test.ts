import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { askErrorMessage, askOutcome, askParams } from '../src/ask';

const range = { start: { line: 3, character: 0 }, end: { line: 6, character: 0 } };

describe('Ponder: Ask about selection', () => {
  it('sends the selection and the trimmed instruction; a blank one asks nothing', () => {
    assert.deepEqual(askParams('file:///w/a.cpp', range, '  use a range-for loop \n'), {
      uri: 'file:///w/a.cpp',
      range,
      instruction: 'use a range-for loop',
    });
    assert.equal(askParams('file:///w/a.cpp', range, '   '), undefined);
    assert.equal(askParams('file:///w/a.cpp', range, undefined), undefined); // input box dismissed
  });

  it('reports an applied edit, a discarded preview, and a question’s answer', () => {
    assert.deepEqual(askOutcome({ applied: true, resultId: '3', summary: 'Iterate over the vector.' }), {
      kind: 'applied',
      resultId: '3',
      message: 'ponder: Iterate over the vector.',
    });
    assert.deepEqual(askOutcome({ applied: false, resultId: '3', summary: 'x' }), {
      kind: 'discarded',
      resultId: '3',
      message: 'ponder: the edit was not applied (x)',
    });
    assert.deepEqual(askOutcome({ resultId: '4', markdown: '# why' }), { kind: 'answer', resultId: '4', markdown: '# why' });
  });

  it('says nothing on cancel or on "no valid edit" (the server shows that one)', () => {
    assert.equal(askErrorMessage(-32800, 'cancelled'), undefined);
    assert.equal(askErrorMessage(-32803, 'ponder: no valid edit (…)'), undefined);
    assert.equal(askErrorMessage(-32602, 'ponder.ask needs an instruction'), 'ponder.ask needs an instruction');
    assert.equal(askErrorMessage(undefined, 'connection closed'), 'ponder: connection closed');
  });
});
