import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { clientOptions, documentSelector, LANGUAGES, serverOptions } from '../src/clientOptions';
import { extensionRoot } from './paths';

describe('the client options', () => {
  it('serves files on disk in every language ponder parses', () => {
    const selector = documentSelector();
    assert.equal(selector.length, LANGUAGES.length);
    for (const s of selector) assert.equal(s.scheme, 'file');
    assert.deepEqual(
      selector.map((s) => s.language),
      ['c', 'cpp', 'cuda-cpp', 'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'rust', 'go', 'java'],
    );
  });

  it('activates on each of those languages (package.json)', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(extensionRoot, 'package.json'), 'utf8')) as { activationEvents: string[] };
    for (const language of LANGUAGES) assert.ok(manifest.activationEvents.includes(`onLanguage:${language}`), language);
  });

  it('starts `ponder lsp` on stdio from the workspace folder', () => {
    assert.deepEqual(serverOptions('/usr/bin/ponder', ['lsp', '--log-level', 'warn'], '/w'), {
      command: '/usr/bin/ponder',
      args: ['lsp', '--log-level', 'warn'],
      options: { cwd: '/w' },
    });
    const noFolder = serverOptions('/usr/bin/ponder', ['lsp']);
    assert.equal(noFolder.transport, undefined); // stdio
    assert.deepEqual(noFolder.options, {});
  });

  it('reads the settings at every start, so a restart sends the current ones', () => {
    let reasoningBudget = 512;
    const options = clientOptions(() => ({ reasoningBudget }));
    const init = options.initializationOptions as () => unknown;
    assert.equal(typeof init, 'function');
    assert.deepEqual(init(), { reasoningBudget: 512 });
    reasoningBudget = 64;
    assert.deepEqual(init(), { reasoningBudget: 64 });
  });

  it('shows the model’s markdown untrusted, and keeps what the extension adds', () => {
    const errorHandler = { error: () => ({ action: 1 as const }), closed: () => ({ action: 1 as const }) };
    const options = clientOptions(() => ({}), { outputChannelName: 'Ponder', errorHandler });
    assert.deepEqual(options.markdown, { isTrusted: false, supportHtml: false });
    assert.equal(options.outputChannelName, 'Ponder');
    assert.equal(options.errorHandler, errorHandler);
    assert.equal(options.synchronize, undefined); // didChangeConfiguration is sent by the extension
  });
});
