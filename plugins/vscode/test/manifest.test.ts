// The extension's manifest against its code: what it contributes is what it registers, and the
// modules tested here load without VS Code.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { extensionRoot } from './paths';

interface Manifest {
  main: string;
  engines: { vscode: string };
  contributes: {
    commands: { command: string; title: string }[];
    views: Record<string, { id: string; type?: string }[]>;
    viewsContainers: { panel: { id: string; icon: string }[] };
  };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const manifest = JSON.parse(fs.readFileSync(path.join(extensionRoot, 'package.json'), 'utf8')) as Manifest;
const extensionSource = fs.readFileSync(path.join(extensionRoot, 'src', 'extension.ts'), 'utf8');

describe('package.json', () => {
  it('contributes exactly the commands the extension registers, none of the server’s', () => {
    const registered = [...extensionSource.matchAll(/^\s+\w+: '(ponder\.[A-Za-z]+)',$/gm)].map((m) => m[1]).sort();
    const contributed = manifest.contributes.commands.map((c) => c.command).sort();
    assert.deepEqual(contributed, registered);
    // The client registers the server's commands itself; the same id twice would fail activation.
    for (const server of ['ponder.run', 'ponder.ask', 'ponder.showReasoning', 'ponder.cancel', 'ponder.status']) {
      assert.ok(!contributed.includes(server), server);
    }
    assert.ok(manifest.contributes.commands.some((c) => c.title === 'Ask about selection…'));
  });

  it('the reasoning view lives in a panel container with its icon', () => {
    assert.deepEqual(manifest.contributes.views.ponder, [{ type: 'webview', id: 'ponder.reasoning', name: 'Reasoning' }]);
    const icon = manifest.contributes.viewsContainers.panel[0].icon;
    assert.ok(fs.existsSync(path.join(extensionRoot, icon)), icon);
  });

  it('main is the compiled extension; dependencies are pinned exactly', () => {
    assert.ok(fs.existsSync(path.join(extensionRoot, manifest.main)), manifest.main);
    for (const [name, version] of Object.entries({ ...manifest.dependencies, ...manifest.devDependencies })) {
      assert.match(version, /^\d+\.\d+\.\d+$/, `${name} ${version}`);
    }
    // vsce refuses an @types/vscode newer than the engine.
    assert.equal(manifest.devDependencies['@types/vscode'], manifest.engines.vscode.replace(/^\^/, ''));
  });
});

describe('the modules tested in node', () => {
  it('load without VS Code; only extension.js and reasoningPanel.js need it', () => {
    const dir = path.join(extensionRoot, 'out', 'src');
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.js'))) {
      const source = fs.readFileSync(path.join(dir, file), 'utf8');
      const needsVscode = /require\("vscode(-languageclient[^"]*)?"\)/.test(source);
      assert.equal(needsVscode, ['extension.js', 'reasoningPanel.js'].includes(file), file);
    }
  });
});
