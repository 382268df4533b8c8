import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { classifyChange, launchSettings, resolveSettings, SERVER_SETTINGS, serverSettings, type SettingsReader } from '../src/settings';
import { extensionRoot, repositoryRoot } from './paths';

/** A reader over user settings (`set`) and defaults. */
function reader(set: Record<string, unknown>, defaults: Record<string, unknown> = {}): SettingsReader {
  return (key) => (key in set ? { value: set[key], set: true } : { value: defaults[key], set: false });
}

interface Property {
  type: string | string[];
  default?: unknown;
  description?: string;
  markdownDescription?: string;
  enum?: string[];
}
const manifest = JSON.parse(fs.readFileSync(path.join(extensionRoot, 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, Property> } };
};
const properties = manifest.contributes.configuration.properties;

describe('server settings', () => {
  it('sends only what the user set, so .ponder.json and the server defaults apply to the rest', () => {
    const defaults = { context: 16384, reasoningBudget: 2048, 'suggestions.onSave': true };
    assert.deepEqual(serverSettings(reader({}, defaults)), {});
    assert.deepEqual(serverSettings(reader({ reasoningBudget: 512, backend: 'cpu' }, defaults)), {
      backend: 'cpu',
      reasoningBudget: 512,
    });
  });

  it('maps feature switches under "features" and renames the suggestion keys', () => {
    const s = serverSettings(
      reader({
        'suggestions.onSave': false,
        'codeActions.enabled': true,
        'hover.waitsForModel': true,
        'suggestions.debounceMs': 0,
        'suggestions.perHour': 5,
        temperature: 0,
      }),
    );
    assert.deepEqual(s, {
      features: { codeActions: true, suggestions: false },
      hoverWaitsForModel: true,
      suggestionDebounceMs: 0,
      suggestionsPerHour: 5,
      temperature: 0,
    });
  });

  it('sends a model only when one is named, trimmed', () => {
    assert.deepEqual(serverSettings(reader({ model: '' })), {});
    assert.deepEqual(serverSettings(reader({ model: '   ' })), {});
    assert.deepEqual(serverSettings(reader({ model: ' ollama:deepseek-r1:7b ' })), { model: 'ollama:deepseek-r1:7b' });
  });

  it('sends temperature null (the model default) when the user set it so', () => {
    assert.deepEqual(serverSettings(reader({ temperature: null })), { temperature: null });
  });
});

describe('launch settings', () => {
  it('defaults to `ponder` on PATH at log level warn', () => {
    assert.deepEqual(launchSettings(reader({})), { path: 'ponder', logLevel: 'warn' });
    assert.deepEqual(launchSettings(reader({ path: '  ' })), { path: 'ponder', logLevel: 'warn' });
    assert.deepEqual(launchSettings(reader({ path: '~/ponder/build/ponder', logLevel: 'debug' })), {
      path: '~/ponder/build/ponder',
      logLevel: 'debug',
    });
  });
});

describe('configuration changes', () => {
  const base = resolveSettings(reader({ reasoningBudget: 512, 'suggestions.onSave': false }));
  it('nothing changed: nothing to do', () => {
    assert.equal(classifyChange(base, resolveSettings(reader({ reasoningBudget: 512, 'suggestions.onSave': false }))), 'none');
  });
  it('a changed or added server setting is sent to the running server', () => {
    assert.equal(classifyChange(base, resolveSettings(reader({ reasoningBudget: 1024, 'suggestions.onSave': false }))), 'notify');
    assert.equal(
      classifyChange(base, resolveSettings(reader({ reasoningBudget: 512, 'suggestions.onSave': false, model: 'm.gguf' }))),
      'notify',
    );
    assert.equal(
      classifyChange(base, resolveSettings(reader({ reasoningBudget: 512, 'suggestions.onSave': true }))),
      'notify',
    );
  });
  it('a removed setting, a new executable or log level restarts the server', () => {
    assert.equal(classifyChange(base, resolveSettings(reader({ reasoningBudget: 512 }))), 'restart');
    assert.equal(
      classifyChange(base, resolveSettings(reader({ reasoningBudget: 512, 'suggestions.onSave': false, path: '/opt/ponder' }))),
      'restart',
    );
    assert.equal(
      classifyChange(base, resolveSettings(reader({ reasoningBudget: 512, 'suggestions.onSave': false, logLevel: 'debug' }))),
      'restart',
    );
  });
});

describe('contributed settings (package.json)', () => {
  it('every setting the server reads is contributed, with a description and a default', () => {
    for (const [key] of SERVER_SETTINGS) {
      const p = properties[`ponder.${key}`];
      assert.ok(p, `ponder.${key} is contributed`);
      assert.ok(p.description ?? p.markdownDescription, `ponder.${key} has a description`);
      assert.ok('default' in p, `ponder.${key} has a default`);
    }
    for (const key of ['ponder.path', 'ponder.logLevel', 'ponder.reasoning.keep', 'ponder.trace.server']) {
      assert.ok(properties[key], `${key} is contributed`);
    }
  });

  it("the defaults shown are the server's own (lsp/settings.h, lsp/engine_host.h)", () => {
    const sources = ['lsp/settings.h', 'lsp/engine_host.h'].map((f) => fs.readFileSync(path.join(repositoryRoot, f), 'utf8')).join('\n');
    // The server's key → its C++ field.
    const fields: Record<string, string> = {
      backend: 'backend',
      context: 'context',
      promptBudget: 'prompt_budget',
      reasoningBudget: 'reasoning_budget',
      maxTokens: 'max_tokens',
      codeActions: 'code_actions',
      hover: 'hover',
      hoverWaitsForModel: 'hover_waits',
      suggestions: 'suggestions',
      suggestionDebounceMs: 'suggestion_debounce_ms',
      suggestionsPerFile: 'suggestions_per_file',
      suggestionsPerHour: 'suggestions_per_hour',
      idleUnloadSeconds: 'idle_unload_seconds',
    };
    for (const [key, serverPath] of SERVER_SETTINGS) {
      const serverKey = serverPath[serverPath.length - 1];
      const contributed = properties[`ponder.${key}`].default;
      if (serverKey === 'model') assert.equal(contributed, '');
      else if (serverKey === 'temperature') assert.equal(contributed, null); // unset: the model's default
      else {
        const field = fields[serverKey];
        assert.ok(field, `a C++ field for ${serverKey}`);
        const m = new RegExp(`\\b${field}\\s*=\\s*([^;]+);`).exec(sources);
        assert.ok(m, `${field} has a default in the server's headers`);
        assert.equal(JSON.stringify(contributed), m[1].trim(), `ponder.${key}`);
      }
    }
  });

  it('the backend choices are ones the server accepts', () => {
    assert.deepEqual(properties['ponder.backend'].enum, ['auto', 'cpu', 'cuda']);
    assert.deepEqual(properties['ponder.logLevel'].enum, ['debug', 'info', 'warn', 'error', 'off']);
  });
});
