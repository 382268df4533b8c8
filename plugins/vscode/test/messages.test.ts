import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { OPEN_SETTINGS, shownMessage } from '../src/messages';

describe("the server's messages", () => {
  it('a missing model gets a link to the model setting', () => {
    const m = shownMessage(
      1,
      'ponder: no DeepSeek-R1 distill found — name a model with the "model" setting, .ponder.json, --model or PONDER_MODEL (`ponder models` lists what it finds)',
    );
    assert.deepEqual({ level: m.level, actions: m.actions, settingsQuery: m.settingsQuery }, {
      level: 'error',
      actions: [OPEN_SETTINGS],
      settingsQuery: 'ponder.model',
    });
  });

  it('a bad setting links to that setting', () => {
    assert.equal(shownMessage(2, 'ponder: setting "reasoningBudget" must be an integer, -1 for none').settingsQuery, 'ponder.reasoningBudget');
    assert.equal(shownMessage(2, 'ponder: setting "suggestionDebounceMs" must be ...').settingsQuery, 'ponder.suggestions.debounceMs');
    assert.equal(shownMessage(2, 'ponder: setting "features" must be an object').settingsQuery, 'ponder');
  });

  it('other messages pass as they are', () => {
    assert.deepEqual(shownMessage(3, 'ponder: no valid edit (the search text is not in the file)'), {
      level: 'info',
      text: 'ponder: no valid edit (the search text is not in the file)',
      actions: [],
    });
    assert.equal(shownMessage(2, 'x').level, 'warning');
  });
});
